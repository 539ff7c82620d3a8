"""TorchBackend on tensors: `forward` (device tensors in and out) and the fixed-size padded batches a compiled
network runs at, so that torch.compile and CUDA graphs see a few static shapes only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import calibrate_bn, randomize

from dehrnet_cli.pose.backends import TorchBackend, static_batch
from models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


def _backend() -> TorchBackend:
    return TorchBackend(calibrate_bn(randomize(create_model(TINY)), (128, 96)), "cpu", precision="fp32")


def test_static_batch_is_the_next_power_of_two() -> None:
    assert [static_batch(n) for n in (1, 2, 3, 4, 5, 8, 9, 33, 64)] == [1, 2, 4, 4, 8, 8, 16, 64, 64]


def test_forward_takes_tensors_and_numpy_calls_agree() -> None:
    backend = _backend()
    crops = torch.randn(3, 3, 128, 96, generator=torch.Generator().manual_seed(0))
    heatmaps = backend.forward(crops)
    assert heatmaps.shape == (3, 17, 32, 24) and heatmaps.dtype == torch.float32
    np.testing.assert_array_equal(backend(crops.numpy()), heatmaps.numpy())


def test_compiled_backends_pad_every_forward_to_its_static_size() -> None:
    """The padding alone (the network is not compiled here: `compiled` set by hand): the network sees only
    power-of-two batches, and the first N rows of the padded output are the unpadded heatmaps (to within the
    batch-size dependent summation order of oneDNN's kernels: 5e-5 here)."""
    backend = _backend()
    crops = torch.randn(7, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    eager = backend.forward(crops)
    seen: list[int] = []
    backend.model.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    backend.compiled = True
    for num in (7, 3, 1):
        torch.testing.assert_close(backend.forward(crops[:num]), eager[:num], atol=2e-4, rtol=1e-3)
    assert seen == [8, 4, 1]


@pytest.mark.slow  # inductor compiles the tiny network on the CPU: 3 to 15 minutes here (30 s with its cache)
def test_torch_compile_on_the_cpu_matches_eager() -> None:
    backend = _backend()
    crops = torch.randn(3, 3, 128, 96, generator=torch.Generator().manual_seed(2))
    eager = backend.forward(crops)
    backend.compile()
    compiled = backend.forward(crops)
    # inductor fuses and reorders float32 sums, which this random network amplifies: 5e-4 at most here
    assert float((compiled - eager).norm() / eager.norm()) < 1e-3 and float((compiled - eager).abs().max()) < 5e-3


def test_onnx_providers_put_tensorrt_first_only_when_asked_and_present(tmp_path, monkeypatch) -> None:
    from dehrnet_cli.pose import onnx_session

    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnx_session.torch.cuda, "is_available", lambda: True)
    assert onnx_session.onnx_providers("cpu", every, True, tmp_path) == ["CPUExecutionProvider"]
    assert onnx_session.onnx_providers("cuda", every, False, tmp_path) == every[1:]
    assert onnx_session.onnx_providers("cuda", every[1:], True, tmp_path) == every[1:]
    first, *rest = onnx_session.onnx_providers("cuda:0", every, True, tmp_path)
    assert rest == every[1:] and first[0] == "TensorrtExecutionProvider"
    assert first[1]["trt_engine_cache_enable"] and first[1]["trt_engine_cache_path"] == str(tmp_path)
    monkeypatch.setattr(onnx_session.torch.cuda, "is_available", lambda: False)
    assert onnx_session.onnx_providers("cuda", every, True, tmp_path) == ["CPUExecutionProvider"]


def test_pose_estimator_compile_makes_the_backend_pad_to_static_sizes() -> None:
    """compile=True (predict --compile) compiles the torch backend (lazily: nothing compiles until a forward)."""
    from typer.testing import CliRunner

    from dehrnet_cli.cli.app import app
    from dehrnet_cli.detect.spec import DetectorSpec
    from dehrnet_cli.estimator import PoseEstimator
    from dehrnet_cli.precision.runtime import RuntimeSpec
    from dehrnet_cli.weights.model_choice import ModelSpec

    def estimator(compile_net: bool) -> PoseEstimator:
        return PoseEstimator.from_specs(ModelSpec(name=TINY, untrained=True),
                                        RuntimeSpec("auto", "cpu", "fp32", compile=compile_net),
                                        DetectorSpec("none"), log=lambda _: None)

    assert estimator(True).backend.compiled and not estimator(False).backend.compiled
    assert "--compile" in CliRunner().invoke(app, ["predict", "--help"]).output
