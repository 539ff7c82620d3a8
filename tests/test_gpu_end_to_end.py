"""predict and eval end to end on CUDA on the COCO sample (the whole image or ground-truth boxes, so no
detector weights are needed), against the same commands on the CPU.

With the accuracy guard's trained model at hand (scripts/gpu_check.sh carries it) the CUDA and CPU keypoints
are compared (GPU crops and TF32 convolutions move them a little) and predict runs fp16 through the precision check on
CUDA; otherwise a random tiny checkpoint checks that everything runs and agrees in shape."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import GPU, save_seeded_checkpoint
from typer.testing import CliRunner

from dehrnet_cli.cli.app import app
from dehrnet_cli.precision.guard import guard_model_path

pytestmark = GPU


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, bool]:
    """(checkpoint, trained): the guard's trained model when present, else a random tiny one."""
    folder = tmp_path_factory.mktemp("weights")
    if guard_model_path().is_file():
        shutil.copy(guard_model_path(), folder / "trained.pt")
        return folder / "trained.pt", True
    return save_seeded_checkpoint(folder / "tiny.pt"), False


def _run(*args: object) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _eval(coco_sample: Path, weights: Path, device: str, out: Path) -> list[dict]:
    _run("eval", "--coco", coco_sample, "--ann", coco_sample / "test_coco.json", "--gt-boxes", "--weights", weights,
         "--device", device, "--precision", "fp32", "--save-results", out, "-q")
    return json.loads(out.read_text())


def test_eval_on_cuda_agrees_with_the_cpu(coco_sample: Path, weights, tmp_path: Path, record_property) -> None:
    checkpoint, trained = weights
    on_cuda = _eval(coco_sample, checkpoint, "cuda", tmp_path / "cuda.json")
    on_cpu = _eval(coco_sample, checkpoint, "cpu", tmp_path / "cpu.json")
    assert [r["image_id"] for r in on_cuda] == [r["image_id"] for r in on_cpu] and on_cuda
    cuda_xy = np.array([r["keypoints"] for r in on_cuda]).reshape(len(on_cuda), -1, 3)[..., :2]
    cpu_xy = np.array([r["keypoints"] for r in on_cpu]).reshape(len(on_cpu), -1, 3)[..., :2]
    within = float((np.linalg.norm(cuda_xy - cpu_xy, axis=2) <= 1.0).mean())
    record_property("eval_cuda_vs_cpu_within_1px", within)
    if trained:  # a random network amplifies the rounding differences of the crops: compare only a trained one
        assert within >= 0.9, f"CUDA and CPU keypoints within 1 px on {within:.0%} of joints"


def test_predict_on_cuda_writes_every_output(coco_sample: Path, weights, tmp_path: Path, monkeypatch) -> None:
    checkpoint, trained = weights
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))  # fp16 of the trained model: a fresh precision check
    precision = "fp16" if trained else "fp32"
    out = _run("predict", coco_sample, "--weights", checkpoint, "--device", "cuda", "--precision", precision,
               "--detector", "none", "--json", tmp_path / "poses.json", "--out", tmp_path / "annotated", "-q")
    doc = json.loads((tmp_path / "poses.json").read_text())
    assert len(doc["images"]) == 4 and len(doc["annotations"]) == 4, out
    assert len(list((tmp_path / "annotated").glob("*.jpg"))) == 4
    for annotation in doc["annotations"]:
        assert len(annotation["keypoints"]) == 51 and np.isfinite(annotation["keypoints"]).all()
