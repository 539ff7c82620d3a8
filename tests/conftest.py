"""Shared fixtures: repository paths, sample data, offline ultralytics, weights that are not near zero."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from local_http import server  # noqa: F401 (a fixture: a local HTTP server standing in for weight hosts)

import dehrnet_cli.estimator as estimator_module
import dehrnet_cli.weights.pose_model as pose_model_module

REPO = Path(__file__).resolve().parents[1]
# the sample data beside the checkout, or where DEHRNET_TEST_DATA says (scripts/gpu_check.sh: carried in .gpu/data)
SHARED_DATA = Path(os.environ.get("DEHRNET_TEST_DATA") or REPO.parent / "shared" / "data")
COCO_SAMPLE = SHARED_DATA / "coco_sample"
MPII_SAMPLE = SHARED_DATA / "mpii_sample"


@pytest.fixture(autouse=True, scope="session")
def _offline_environment(tmp_path_factory):
    """Keep ultralytics and dehrnet off the network and away from the user's config and weights folders."""
    cfg = tmp_path_factory.mktemp("yolo_config")
    home = tmp_path_factory.mktemp("dehrnet_home")  # exports, guard verdicts, downloads: never the checkout's cache
    os.environ.update({"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "YOLO_CONFIG_DIR": str(cfg),
                       "DEHRNET_OFFLINE": "1", "DEHRNET_HOME": str(home)})
    yield


@pytest.fixture
def coco_sample() -> Path:
    if not (COCO_SAMPLE / "test_coco.json").exists():
        pytest.skip("shared COCO sample data not present")
    return COCO_SAMPLE


@pytest.fixture
def mpii_sample() -> Path:
    if not (MPII_SAMPLE / "test_mpii.json").exists():
        pytest.skip("shared MPII sample data not present")
    return MPII_SAMPLE


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and BN statistic values of order one, so that tests comparing outputs
    compare real signals (the official init leaves outputs near 1e-9)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            elif name.endswith("weight"):  # BN gamma
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:  # biases, DEM scales
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(1 + 0.2 * torch.rand(b.shape, generator=g))
    return model


def calibrate_bn(model: torch.nn.Module, input_hw: tuple[int, int], seed: int = 0) -> torch.nn.Module:
    """Set BN running statistics from random crops, so activations stay of order one through the
    network as in a trained model (random statistics let them grow into the thousands)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, *input_hw, generator=g))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


TINY_MODEL = "dehrnet_w8_128x96"


def tiny_estimator(detector: str = "none", boxes: Path | None = None, ann: Path | None = None, backend: str = "auto",
                   seed: int = 0, **pose):
    """A PoseEstimator of the tiny architecture with random weights (seeded when it is built) on the CPU;
    `pose`: TopDownSettings fields (flip, oks_thr, batch...)."""
    from dehrnet_cli.detect.spec import DetectorSpec
    from dehrnet_cli.estimator import PoseEstimator
    from dehrnet_cli.pose.settings import TopDownSettings
    from dehrnet_cli.precision.runtime import RuntimeSpec
    from dehrnet_cli.weights.model_choice import ModelSpec

    torch.manual_seed(seed)
    estimator = PoseEstimator.from_specs(ModelSpec(name=TINY_MODEL, untrained=True), RuntimeSpec(backend, "cpu"),
                                         DetectorSpec(detector, boxes=boxes, ann=ann), TopDownSettings(**pose))
    return estimator.prepare()


def save_seeded_checkpoint(path: Path, name: str = "dehrnet_w8_128x96", seed: int = 0, **config) -> Path:
    """`name` (config overrides in `config`) with randomize()d weights and calibrated BN, saved with its
    config to `path`: every process that loads it computes the same keypoints."""
    from models import create_model, save_checkpoint

    model = create_model(name, **config)
    w, h = model.config.input_size
    return save_checkpoint(calibrate_bn(randomize(model, seed=seed), (h, w)), path)


@pytest.fixture(scope="session")
def learned_model_path(tmp_path_factory) -> Path:
    """dehrnet_w8_128x96 trained as `train_synthetic_model` does, minus its 100-image validation (15 s saved):
    40 steps of 4 crops (one thread, about 35 s) reach PCK@0.1 about 0.45; an untrained model scores about 0.06.
    Trained once per session for the tests that need a model that has learned something (the training check,
    the accuracy guard)."""
    from dehrnet_cli.train.config import TrainConfig
    from dehrnet_cli.train.loop import train
    from dehrnet_cli.train.synthetic_model import SYNTHETIC_AUGMENT
    from models import load_model, save_checkpoint

    out = tmp_path_factory.mktemp("learned_model")
    config = TrainConfig(model="dehrnet_w8_128x96", data="synthetic", synthetic_images=200, batch=4, seed=0,
                         epochs=10**6, max_steps=40, val_every=10**6, device="cpu", workers=0, out=out / "run",
                         quiet=True, augment=SYNTHETIC_AUGMENT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained = load_model(train(config).last_path)
    finally:
        torch.set_num_threads(threads)
    return save_checkpoint(trained, out / "learned.pt", meta={"trained_on": "synthetic people", "steps": 40})


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread: small models gain nothing from more, and on a busy 2-core machine two
    spinning OpenMP threads run them several times slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pose model load and detector construction of PoseEstimator."""
    calls: list[str] = []
    load, make = pose_model_module.load_pose_model, estimator_module.make_detector

    def recorded_load(*args, **kwargs):
        calls.append("pose model")
        return load(*args, **kwargs)

    def recorded_make(*args, **kwargs):
        calls.append("detector")
        return make(*args, **kwargs)

    monkeypatch.setattr(pose_model_module, "load_pose_model", recorded_load)
    monkeypatch.setattr(estimator_module, "make_detector", recorded_make)
    return calls


# gpu-marked tests (tests/test_gpu_*.py): `pytestmark = GPU`; scripts/gpu_check.sh runs them with -m gpu
GPU = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture
def conv_input_devices(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The device types of every tensor a Conv2d sees during the test (a real forward adds "cpu",
    counting on the meta device adds "meta")."""
    devices: set[str] = set()
    forward = torch.nn.Conv2d.forward

    def spy(self, x):
        devices.add(x.device.type)
        return forward(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    return devices
