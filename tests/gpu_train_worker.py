"""Training runs on CUDA in a process of their own (tests/test_gpu_train.py): deterministic kernels need
CUBLAS_WORKSPACE_CONFIG set before the first cuBLAS call, and NCCL wants a fresh process group.

    python tests/gpu_train_worker.py resume OUT [DEVICE]  # one run vs the same run stopped twice and resumed
    python tests/gpu_train_worker.py ddp OUT [DEVICE]     # one process plain vs one process through DDP (NCCL;
                                                          # gloo with DEVICE cpu, as tests/test_train_process_group.py)

Prints one JSON line with what the test checks. Both use the tiny DE-HRNet with nearest upsampling:
DySample's grid_sample has no deterministic CUDA backward.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from dehrnet_cli.train.config import TrainConfig
from dehrnet_cli.train.loop import train
from dehrnet_cli.train.resume import resume_config
from models.checkpoint import read_checkpoint

DEVICE = sys.argv[3] if len(sys.argv) > 3 else "cuda"


def _config(out: Path, **overrides) -> TrainConfig:
    values = dict(model="dehrnet_w8_128x96", model_overrides={"upsample": "nearest"}, data="synthetic",
                  synthetic_images=4, synthetic_val_images=1, epochs=2, batch=2, lr_steps=(1,), workers=0,
                  device=DEVICE, val_every=1, out=out, quiet=True)
    return TrainConfig(**{**values, **overrides})


def _same_weights(a: Path, b: Path) -> tuple[bool, float]:
    first, second = read_checkpoint(a)["state_dict"], read_checkpoint(b)["state_dict"]
    worst = max(float((first[k].double() - second[k].double()).abs().max()) for k in first
                if first[k].is_floating_point())
    return all(torch.equal(first[k], second[k]) for k in first), worst


def resume(out: Path) -> dict:
    whole: dict[int, float] = {}
    train(_config(out / "whole"), on_step=lambda step, loss: whole.__setitem__(step, loss))
    parts: dict[int, float] = {}
    last = out / "parts" / "last.pt"
    train(_config(out / "parts", max_steps=3), on_step=lambda step, loss: parts.__setitem__(step, loss))
    train(resume_config(last, max_steps=4), resume=last, on_step=lambda step, loss: parts.__setitem__(step, loss))
    train(resume_config(last), resume=last, on_step=lambda step, loss: parts.__setitem__(step, loss))
    equal, worst = _same_weights(out / "whole" / "last.pt", last)
    return {"steps": sorted(parts), "losses_equal": parts == whole, "weights_equal": equal, "max_weight_diff": worst,
            "amp": json.loads((out / "whole" / "config.json").read_text())["amp"]}


def ddp(out: Path) -> dict:
    common = dict(synthetic_images=6, epochs=1, max_steps=3, val_every=100, freeze_bn=True,
                  model_overrides={"upsample": "nearest", "dem_dropout": 0.0})
    plain = train(_config(out / "plain", **common))
    wrapped = []
    original = torch.nn.parallel.DistributedDataParallel.__init__

    def counting_init(self, *args, **kwargs):
        wrapped.append(kwargs.get("device_ids"))
        original(self, *args, **kwargs)

    torch.nn.parallel.DistributedDataParallel.__init__ = counting_init
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    group = "nccl" if DEVICE.startswith("cuda") else "gloo"
    dist.init_process_group(group, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    backend = dist.get_backend()
    try:
        through_ddp = train(_config(out / "ddp", **common))
    finally:
        dist.destroy_process_group()
    equal, worst = _same_weights(plain.last_path, through_ddp.last_path)
    return {"backend": backend, "ddp_device_ids": wrapped, "weights_equal": equal, "max_weight_diff": worst,
            "steps": through_ddp.global_step}


if __name__ == "__main__":
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    mode, folder = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"resume": resume, "ddp": ddp}[mode](folder)))
