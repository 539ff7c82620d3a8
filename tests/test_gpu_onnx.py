"""ONNX Runtime on CUDA: the CUDA provider (and TensorRT with its engine cache where that provider loads)
against torch fp32 on the same exported network. The GPU machine's onnxruntime is the CPU build: both skip
there and say so."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GPU, calibrate_bn, randomize

from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.backends import OnnxBackend, TorchBackend
from models import create_model

pytestmark = GPU

TINY = "dehrnet_w8_128x96"


def _providers() -> list[str]:
    ort = pytest.importorskip("onnxruntime")
    return ort.get_available_providers()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = calibrate_bn(randomize(create_model(TINY)), (128, 96))
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(net, path, check=False)
    crops = torch.randn(4, 3, 128, 96, generator=torch.Generator().manual_seed(0)).numpy()
    return path, crops, TorchBackend(net, "cpu", precision="fp32")(crops)


def test_cuda_provider_matches_torch(exported, record_property) -> None:
    if "CUDAExecutionProvider" not in _providers():
        pytest.skip("onnxruntime has no CUDA provider here (the CPU build: onnxruntime-gpu is not installed)")
    path, crops, expected = exported
    backend = OnnxBackend(path, "cuda")
    assert backend.providers[0] == "CUDAExecutionProvider"
    got = backend(crops)
    record_property("ort_cuda_max_abs_diff", float(np.abs(got - expected).max()))
    np.testing.assert_allclose(got, expected, atol=1e-3 * np.abs(expected).max(), rtol=1e-3)


def test_tensorrt_provider_builds_and_reuses_a_cached_engine(exported, tmp_path, monkeypatch) -> None:
    if "TensorrtExecutionProvider" not in _providers():
        pytest.skip("onnxruntime has no TensorRT provider here")
    path, crops, expected = exported
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path))
    monkeypatch.setenv("DEHRNET_TENSORRT", "1")
    backend = OnnxBackend(path, "cuda")
    assert backend.providers[0] == "TensorrtExecutionProvider"
    np.testing.assert_allclose(backend(crops), expected, atol=1e-2 * np.abs(expected).max(), rtol=1e-2)
    engines = list((tmp_path / "weights" / "tensorrt").glob("*"))
    assert engines, "no engine cached"
    again = OnnxBackend(path, "cuda")  # loads the cached engine (seconds instead of a build)
    np.testing.assert_allclose(again(crops), expected, atol=1e-2 * np.abs(expected).max(), rtol=1e-2)
