"""Training on CUDA: AMP steps that lower the loss, exact resume from a checkpoint, DDP over NCCL (one GPU is
enough: a process group of one still trains through DistributedDataParallel and NCCL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import GPU, REPO

from dehrnet_cli.datasets.augment import AugmentSettings
from dehrnet_cli.train.config import TrainConfig
from dehrnet_cli.train.loop import train

pytestmark = GPU


def run_worker(mode: str, out: Path, device: str = "cuda") -> dict:
    """The JSON line of `tests/gpu_train_worker.py MODE OUT DEVICE`, run in a fresh process."""
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "gpu_train_worker.py"), mode, str(out), device],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_amp_steps_lower_the_loss(tmp_path: Path, record_property) -> None:
    """30 AMP steps on the same 4 synthetic people (bf16 autocast where the GPU has it, else fp16 + GradScaler)."""
    losses: list[float] = []
    config = TrainConfig(model="dehrnet_w8_128x96", data="synthetic", synthetic_images=2, synthetic_val_images=1,
                         epochs=30, batch=4, workers=0, device="cuda", amp=True, val_every=100, out=tmp_path / "amp",
                         quiet=True, augment=AugmentSettings(scale_factor=0.0, rotation_prob=0.0, flip=False,
                                                             half_body_prob=0.0))
    result = train(config, on_step=lambda step, loss: losses.append(loss))
    amp = json.loads((result.run_dir / "config.json").read_text())["amp"]
    record_property("amp_dtype", amp)
    record_property("amp_first_loss", losses[0])
    record_property("amp_last_loss", losses[-1])
    assert amp in ("bfloat16", "float16") and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_checkpoint_and_exact_resume_on_cuda(tmp_path: Path) -> None:
    result = run_worker("resume", tmp_path)
    assert result["steps"] == list(range(1, 7))
    assert result["losses_equal"] and result["weights_equal"], result


def test_ddp_over_nccl_equals_one_plain_process(tmp_path: Path, record_property) -> None:
    result = run_worker("ddp", tmp_path)
    record_property("ddp_max_weight_diff", result["max_weight_diff"])
    assert result["backend"] == "nccl" and result["ddp_device_ids"] == [[0]] and result["steps"] == 3
    assert result["max_weight_diff"] <= 1e-6, result
