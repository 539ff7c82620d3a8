"""The accuracy guard: reduced-precision paths measured against fp32 on a model that has learned something."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.datasets.synthetic import SyntheticPeople
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.pck import evaluate_pck, pck
from dehrnet_cli.pose.backends import Backend, TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.precision import guard
from dehrnet_cli.precision.cpu import CpuInfo
from dehrnet_cli.precision.guard import GuardReport
from models import create_model, load_model

IMAGES = 15  # held-out scenes per comparison here (about 20 people, 350 labelled joints)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty DEHRNET_HOME: the guard model and the verdicts go there."""
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path))
    return tmp_path


class ShiftedBackend:
    """A damaged path: the wrapped backend's heatmaps moved `shift` heatmap pixels down (a vertical shift
    survives the flip test; a horizontal one would cancel against the mirrored crop's)."""

    name = "shifted"

    def __init__(self, backend: Backend, shift: int = 3) -> None:
        self.backend, self.config, self.device, self.shift = backend, backend.config, backend.device, shift

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.roll(self.backend(batch), self.shift, axis=2)


def _report(path: str = "bf16 torch cpu", loss: float = 0.2) -> GuardReport:
    return GuardReport(path=path, model="dehrnet_w8_128x96", images=100, keypoints=1500, pck_fp32=0.875,
                       pck=0.875 - loss / 100, within_1px=0.97, loss_points=loss, passed=loss <= guard.MAX_PCK_LOSS,
                       seconds=12.5)


def test_identical_path_passes_and_pck_matches_evaluate_pck(learned_model_path, one_torch_thread):
    reference = TorchBackend(load_model(learned_model_path), "cpu")
    candidate = TorchBackend(load_model(learned_model_path), "cpu")
    report = guard.compare_backends(reference, candidate, "fp32 torch cpu", images=IMAGES)
    assert report.loss_points == 0.0 and report.pck == report.pck_fp32
    assert report.within_1px == 1.0 and report.passed
    assert (report.images, report.model) == (IMAGES, "dehrnet_w8_128x96")
    held_out = SyntheticPeople(IMAGES, reference.config, None, seed=guard.HELD_OUT_SEED)
    assert report.keypoints == sum(int((r.visible > 0).sum()) for r in held_out.records) > 300
    assert report.pck_fp32 == evaluate_pck(TopDownEstimator(reference), held_out, 0.1)
    assert report.pck_fp32 > 0.25  # it has learned: untrained scores about 0.06
    guard.enforce(report)  # passed: no error


def test_damaged_path_is_refused_with_the_numbers(learned_model_path, one_torch_thread):
    reference = TorchBackend(load_model(learned_model_path), "cpu")
    damaged = ShiftedBackend(TorchBackend(load_model(learned_model_path), "cpu"))
    report = guard.compare_backends(reference, damaged, "int8 onnx cpu", images=IMAGES)
    assert report.loss_points > guard.MAX_PCK_LOSS and not report.passed
    assert report.loss_points == pytest.approx(100 * (report.pck_fp32 - report.pck))
    assert report.within_1px < 0.5
    with pytest.raises(DehrnetError) as error:
        guard.enforce(report)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--precision int8 refused")
    assert f"loss of {report.loss_points:.1f} PCK points" in message
    assert f"{100 * report.pck:.1f} vs {100 * report.pck_fp32:.1f}" in message
    assert f"{IMAGES} synthetic held-out images" in message and message.endswith("use --precision fp32")


def test_pck_counts_labelled_joints_within_a_tenth_of_the_box():
    held_out = SyntheticPeople(4, create_model("dehrnet_w8_128x96").config, None, seed=guard.HELD_OUT_SEED)
    truth = np.stack([r.keypoints_xy for r in held_out.records])
    assert any((r.visible == 0).any() for r in held_out.records)  # unlabelled joints sit at (0, 0)
    sizes = np.array([max(r.box_xywh[2], r.box_xywh[3]) for r in held_out.records])[:, None]
    assert pck(truth, held_out.records) == 1.0
    inside, outside = truth.copy(), truth.copy()
    inside[..., 1] += 0.0999 * sizes
    outside[..., 1] += 0.1001 * sizes
    assert pck(inside, held_out.records) == 1.0
    assert pck(outside, held_out.records) == 0.0
    assert pck(outside, held_out.records, thr=0.2) == 1.0


def test_compare_refuses_different_models(learned_model_path):
    reference = TorchBackend(load_model(learned_model_path), "cpu")
    other = TorchBackend(create_model("dehrnet_w8_128x96", upsample="nearest"), "cpu")
    with pytest.raises(DehrnetError, match="same model"):
        guard.compare_backends(reference, other, "bf16 torch cpu", images=1)


def test_report_dict_round_trip_and_summary():
    report = _report(loss=2.4)
    assert GuardReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert report.precision == "bf16"
    summary = report.summary()
    assert "\n" not in summary and "loss 2.4 points" in summary and "refused" in summary
    assert "passed" in _report(loss=0.5).summary()


def test_verdict_cache_round_trip_keeps_other_keys(home):
    assert guard.verdicts_path() == home / "weights" / "guard" / "verdicts.json"
    assert guard.load_verdict("bf16 torch cpu @ m") is None
    guard.save_verdict("bf16 torch cpu @ m", _report())
    guard.save_verdict("int8 onnx cpu @ m", _report("int8 onnx cpu", 2.4))
    assert guard.load_verdict("bf16 torch cpu @ m") == _report()
    assert guard.load_verdict("int8 onnx cpu @ m") == _report("int8 onnx cpu", 2.4)
    assert guard.load_verdict("bf16 torch cpu @ another machine") is None
    assert not list(guard.verdicts_path().parent.glob(".*partial*"))


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_corrupt_verdict_cache_counts_as_empty_and_is_rewritten(home, content):
    guard.verdicts_path().parent.mkdir(parents=True)
    guard.verdicts_path().write_bytes(content)
    assert guard.load_verdict("bf16 torch cpu @ m") is None
    guard.save_verdict("bf16 torch cpu @ m", _report())
    assert list(json.loads(guard.verdicts_path().read_text())) == ["bf16 torch cpu @ m"]
    assert guard.load_verdict("bf16 torch cpu @ m") == _report()


def test_malformed_verdict_entry_counts_as_missing(home):
    guard.save_verdict("good", _report())
    verdicts = json.loads(guard.verdicts_path().read_text())
    verdicts.update({"partial": {"path": "bf16 torch cpu"}, "not a dict": 3,
                     "bad number": {**_report().to_dict(), "pck": "high"},
                     "bad flag": {**_report().to_dict(), "passed": "no"}})
    guard.verdicts_path().write_text(json.dumps(verdicts))
    assert [guard.load_verdict(k) for k in ("partial", "not a dict", "bad number", "bad flag")] == [None] * 4
    assert guard.load_verdict("good") == _report()


def test_machine_signature_changes_with_libraries_and_kernel_flags():
    cpu = CpuInfo("Some CPU", 2, 2000.0, frozenset({"avx2", "fma", "sse2"}))
    versions = {"torch": "2.5.1", "onnxruntime": "1.20.1"}
    base = guard.machine_signature(cpu, versions)
    assert "Some CPU" in base and "torch 2.5.1" in base and "onnxruntime 1.20.1" in base
    assert guard.machine_signature(cpu, {**versions, "torch": "2.6.0"}) != base
    assert guard.machine_signature(cpu, {**versions, "onnxruntime": "1.21.0"}) != base
    assert guard.machine_signature(CpuInfo("Some CPU", 2, 2000.0, cpu.flags | {"amx_bf16"}), versions) != base
    assert guard.machine_signature(CpuInfo("Other CPU", 2, 2000.0, cpu.flags), versions) != base
    assert guard.machine_signature(cpu, versions, gpu="NVIDIA H100") != base
    # flags that no reduced-precision kernel depends on, and core counts, do not split the cache
    assert guard.machine_signature(CpuInfo("Some CPU", 8, 3000.0, cpu.flags | {"rdrand"}), versions) == base
    assert guard.verdict_key("bf16 torch cpu", base) != guard.verdict_key("int8 onnx cpu", base)
    assert set(guard.library_versions()) == {"torch", "onnxruntime"}
    assert guard.machine_signature()  # this machine's


def _must_not_train(*args, **kwargs):
    raise AssertionError("the guard trained although it had a verdict or a model")


def test_guard_path_uses_a_cached_verdict_without_training(home, monkeypatch):
    monkeypatch.setattr(guard, "train_synthetic_model", _must_not_train)
    key = guard.verdict_key("int8 onnx cpu", guard.machine_signature())
    guard.save_verdict(key, _report("int8 onnx cpu", 2.4))

    def no_backend(model):
        raise AssertionError("a cached verdict needs no backend")

    report = guard.guard_path("int8 onnx cpu", no_backend, log=_must_not_train)
    assert report == _report("int8 onnx cpu", 2.4)
    with pytest.raises(DehrnetError, match="int8 refused"):
        guard.enforce(report)


def test_guard_path_trains_the_model_once_when_missing(home, monkeypatch, learned_model_path, one_torch_thread):
    trained = []

    def fake_train(out_path: Path, steps: int = 300, **kwargs) -> Path:
        trained.append((Path(out_path), steps, kwargs))
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(learned_model_path, out_path)
        return Path(out_path)

    monkeypatch.setattr(guard, "train_synthetic_model", fake_train)
    models_seen = []

    def fp32_candidate(model):
        models_seen.append(model)
        return TorchBackend(model, "cpu")

    def fp32_reference(model):
        models_seen.append(model)
        return TorchBackend(model, "cpu")

    lines: list[str] = []
    report = guard.guard_path("fp32 torch cpu", fp32_candidate, fp32_reference, log=lines.append, steps=7, images=3)
    assert trained == [(guard.guard_model_path(), 7, {"model": "dehrnet_w8_128x96"})]
    assert guard.guard_model_path() == home / "weights" / "guard" / "synthetic_dehrnet_w8_128x96.pt"
    assert "training" in lines[0] and "7 steps" in lines[0] and "about 1 min" in lines[0]
    assert lines[-1] == report.summary()
    assert report.passed and report.images == 3 and report.within_1px == 1.0
    assert len(models_seen) == 2 and models_seen[0] is not models_seen[1]  # each backend owns its weights
    assert guard.load_verdict(guard.verdict_key("fp32 torch cpu", guard.machine_signature())) == report
    # the second time: the cached verdict, no training, no backend
    monkeypatch.setattr(guard, "train_synthetic_model", _must_not_train)
    assert guard.guard_path("fp32 torch cpu", _must_not_train, log=_must_not_train) == report
    # another path on the same machine: the model is there now, so it is measured without training
    other = guard.guard_path("bf16 torch cpu", fp32_candidate, log=lines.append, images=1)
    assert other.path == "bf16 torch cpu" and len(models_seen) == 3


@pytest.mark.slow
def test_bf16_torch_cpu_on_the_learned_model(learned_model_path, one_torch_thread):
    """bf16 on this CPU (emulated without AVX512-BF16/AMX: slow); the numbers go in the report, no verdict."""
    reference = TorchBackend(load_model(learned_model_path), "cpu")
    bf16 = TorchBackend(load_model(learned_model_path), "cpu", precision="bf16")
    report = guard.compare_backends(reference, bf16, "bf16 torch cpu", images=IMAGES)
    print(report.summary())
    assert report.keypoints > 300 and 0.0 <= report.within_1px <= 1.0
