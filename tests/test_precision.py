"""--precision: choosing the path (auto, native bf16 detection, refusals), the torch bf16 backend, and the
accuracy guard standing between a reduced-precision path and the user."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import calibrate_bn, randomize, save_seeded_checkpoint
from typer.testing import CliRunner

import dehrnet_cli.precision.resolve as precision_module
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.precision.cpu import CpuInfo, cpu_units, native_bf16
from dehrnet_cli.precision.resolve import resolve_precision
from dehrnet_cli.precision.runtime import precision_of
from models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AVX2 = CpuInfo("AMD EPYC", 2, 2445.0, frozenset({"avx", "avx2", "fma"}))
SAPPHIRE_RAPIDS = CpuInfo("Intel Xeon Platinum 8480+", 56, 2000.0,
                          frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"}))
ZEN4 = CpuInfo("AMD EPYC 9654", 96, 2400.0, frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"}))


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to run on the CpuInfo the test sets: `cpu(info)`."""
    def use(info: CpuInfo) -> None:
        monkeypatch.setattr(precision_module, "cpu_info", lambda: info)
    return use


def test_native_bf16_means_avx512_bf16_or_amx() -> None:
    assert not native_bf16(AVX2)
    assert native_bf16(SAPPHIRE_RAPIDS) and native_bf16(ZEN4)
    assert cpu_units(SAPPHIRE_RAPIDS) == "AMX-BF16, AVX512-BF16, AMX-INT8, AVX512-VNNI"
    assert "no bf16/int8 units" in cpu_units(AVX2)


@pytest.mark.parametrize("info,device,backend,expected", [
    (AVX2, "cpu", "torch", "fp32"),
    (ZEN4, "cpu", "torch", "bf16"),
    (SAPPHIRE_RAPIDS, "cpu", "torch", "bf16"),
    (SAPPHIRE_RAPIDS, "cpu", "onnx", "fp32"),  # ONNX Runtime has no CPU bf16 convolutions
    (AVX2, "cuda", "torch", "fp16"),
    (AVX2, "cuda:1", "onnx", "fp32"),
])
def test_auto_picks_the_fast_path_the_hardware_has(cpu, info, device, backend, expected) -> None:
    cpu(info)
    chosen, note = resolve_precision("auto", device, backend)
    assert chosen == expected
    assert note.startswith(f"precision {expected} (auto") and "\n" not in note
    if not device.startswith("cuda"):
        assert info.model in note  # the one line names the CPU it decided on


def test_explicit_bf16_on_a_cpu_without_it_runs_but_says_it_is_slow(cpu) -> None:
    cpu(AVX2)
    chosen, note = resolve_precision("bf16", "cpu", "torch")
    assert chosen == "bf16" and "slower than fp32" in note
    cpu(ZEN4)
    assert "slower" not in resolve_precision("bf16", "cpu", "torch")[1]


@pytest.mark.parametrize("precision,device,backend,half,message", [
    ("fp16", "cpu", "torch", False, "needs a CUDA device"),
    ("auto", "cpu", "torch", True, "needs a CUDA device"),  # --half is fp16
    ("int8", "cpu", "torch", True, "contradicts --precision int8"),
    ("bf16", "cpu", "onnx", False, "drop --backend onnx"),
    ("int8", "cuda", "torch", False, "CPU path"),
    ("fp64", "cpu", "torch", False, "use one of auto, fp32, bf16, fp16, int8"),
])
def test_impossible_combinations_are_one_line_errors(cpu, precision, device, backend, half, message) -> None:
    cpu(AVX2)
    with pytest.raises(DehrnetError, match=message):
        resolve_precision(precision_of(precision, half), device, backend)


def test_half_is_folded_into_fp16_at_the_edge(cpu) -> None:
    cpu(AVX2)
    assert precision_of("auto", True) == precision_of("fp16", True) == "fp16"
    assert precision_of("bf16", False) == "bf16"
    assert resolve_precision(precision_of("auto", True), "cuda", "torch")[0] == "fp16"


def test_torch_bf16_backend_keeps_fp32_input_and_output_and_stays_close() -> None:
    net = calibrate_bn(randomize(create_model("dehrnet_w8_128x96")), (128, 96))
    batch = np.random.default_rng(0).standard_normal((2, 3, 128, 96)).astype(np.float32)
    reference = TorchBackend(net, "cpu")(batch)
    bf16 = TorchBackend(create_model("dehrnet_w8_128x96").eval(), "cpu", precision="bf16")
    bf16.model.load_state_dict(net.state_dict())
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    heatmaps = bf16(batch)
    assert heatmaps.dtype == np.float32 and heatmaps.shape == reference.shape
    assert np.abs(heatmaps - reference).max() > 1e-4  # really computed in bf16 (8-bit mantissa)
    correlation = np.corrcoef(heatmaps.ravel(), reference.ravel())[0, 1]
    print(f"bf16 vs fp32 heatmap correlation {correlation:.4f}")
    assert correlation > 0.95  # yet the same heatmaps (a random net amplifies rounding; a broken path gives ~0)


def test_torch_backend_refuses_int8_and_cpu_fp16() -> None:
    net = create_model("dehrnet_w8_128x96")
    with pytest.raises(DehrnetError, match="--backend onnx"):
        TorchBackend(net, "cpu", precision="int8")
    with pytest.raises(DehrnetError, match="CUDA"):
        TorchBackend(net, "cpu", precision="fp16")


def test_predict_says_which_precision_runs(tmp_path) -> None:
    import cv2

    from dehrnet_cli.cli.app import app

    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.full((64, 48, 3), 128, np.uint8))
    args = ["predict", str(image), "--model", "dehrnet_w8_128x96", "--untrained", "--detector", "none", "--no-flip",
            "--json", str(tmp_path / "out.json")]
    result = CliRunner().invoke(app, [*args, "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert "precision bf16" in result.stderr and "check of bf16 torch cpu skipped: random weights" in result.stderr
    assert "torch bf16 on cpu" in result.stderr
    result = CliRunner().invoke(app, [*args, "--precision", "fp16"])
    assert result.exit_code == 2 and "needs a CUDA device" in result.stderr
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------- the check and int8 end to end


def _verdict(checkpoint: Path, path: str, passed: bool) -> None:
    """Cache a precision-check verdict on `path` for `checkpoint` on this machine (as a run of the check would)."""
    from dehrnet_cli.precision.model_check import PrecisionVerdict, check_key, save_check
    from dehrnet_cli.weights.download import sha256_file

    moved = 0 if passed else 40
    save_check(check_key(sha256_file(checkpoint), path),
               PrecisionVerdict(path, "fp32", 12, "bundled images", 200, moved, 0.25 if passed else 9.0, 0.004,
                                0.01, passed, 1.0))


@pytest.fixture
def trained_like_checkpoint(tmp_path):
    """A checkpoint file (the guard applies to real weights, not to --untrained ones)."""
    return save_seeded_checkpoint(tmp_path / "w.pt")


def test_an_asked_precision_the_check_refused_is_refused_and_a_passed_one_runs(
        tmp_path, monkeypatch, trained_like_checkpoint) -> None:
    import cv2

    from dehrnet_cli.cli.app import app

    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.full((64, 48, 3), 128, np.uint8))
    args = ["predict", str(image), "--weights", str(trained_like_checkpoint), "--detector", "none", "--no-flip",
            "--json", str(tmp_path / "out.json"), "--precision", "bf16"]
    _verdict(trained_like_checkpoint, "bf16 torch cpu", passed=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    error = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "--precision bf16: refused by the precision check" in error[0]
    assert "160 of 200 visible joints" in error[0]
    assert not (tmp_path / "out.json").exists()
    _verdict(trained_like_checkpoint, "bf16 torch cpu", passed=True)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "torch bf16 on cpu" in result.stderr


def test_export_int8_then_predict_with_it(tmp_path, monkeypatch, trained_like_checkpoint) -> None:
    import json

    import cv2
    import onnx

    from dehrnet_cli.cli.app import app

    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(calib / f"{i}.png"), rng.integers(0, 255, (160, 120, 3), dtype=np.uint8))
    out = tmp_path / "w.int8.onnx"
    export = ["export", "--weights", str(trained_like_checkpoint), "--out", str(out), "--int8"]
    result = CliRunner().invoke(app, [*export, "--calib", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "nothing" in result.stderr and not out.exists()
    result = CliRunner().invoke(app, [*export, "--calib", str(calib), "--calib-crops", "8"])
    assert result.exit_code == 0, result.output
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["dehrnet_precision"] == "int8" and "within 1 heatmap pixel" in result.output

    predict = ["predict", str(calib / "0.png"), "--weights", str(out), "--backend", "onnx", "--detector", "none",
               "--no-flip", "--json", str(tmp_path / "out.json")]
    result = CliRunner().invoke(app, predict)
    assert result.exit_code == 0, result.output
    assert "precision int8" in result.stderr and "onnx int8 on cpu" in result.stderr
    assert len(json.loads((tmp_path / "out.json").read_text())["annotations"]) == 1
    result = CliRunner().invoke(app, [*predict, "--precision", "bf16"])
    assert result.exit_code == 2 and "computes in int8, not bf16" in result.stderr


def test_precision_int8_with_a_checkpoint_quantizes_once_into_the_cache(tmp_path, monkeypatch,
                                                                         trained_like_checkpoint) -> None:
    from dehrnet_cli.estimator import PoseEstimator

    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    _verdict(trained_like_checkpoint, "int8 onnx cpu", passed=True)
    notes: list[str] = []
    image = np.random.default_rng(0).integers(0, 255, (160, 120, 3), dtype=np.uint8)
    estimator = PoseEstimator(trained_like_checkpoint, backend="onnx", precision="int8", detector="none", flip=False,
                              log=notes.append)
    assert (estimator.backend.name, estimator.backend.precision) == ("onnx", "int8")
    assert estimator(image).keypoints_xy.shape == (1, 17, 2)
    assert sum("quantizing" in n for n in notes) == 1
    cached = sorted(p.name for p in (tmp_path / "home" / "weights" / "onnx").glob("*.onnx"))
    assert len(cached) == 2 and cached[0].endswith(".int8.onnx")  # the fp32 export and its int8 model
    PoseEstimator(trained_like_checkpoint, backend="onnx", precision="int8", detector="none", flip=False,
                  log=notes.append).prepare()
    assert sum("quantizing" in n for n in notes) == 1  # the second estimator reuses the cached int8 model
    assert sum("[cached]" in n for n in notes) == 2  # both read the cached verdict: no check ran
