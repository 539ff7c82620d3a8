"""The precision check: a reduced-precision path against fp32 on the model's own crops, its tolerances, its cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.datasets.synthetic import SyntheticPeople
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, TorchBackend
from dehrnet_cli.pose.geometry import warp_crops
from dehrnet_cli.precision import model_check
from dehrnet_cli.precision.cpu import CpuInfo
from dehrnet_cli.precision.model_check import PrecisionVerdict, check_key, check_precision, compare_paths
from models import create_model, load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty DEHRNET_HOME: the verdict cache goes there."""
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def people_crops(learned_model_path) -> np.ndarray:
    """Crops of 12 held-out synthetic people (the learned model sees most of their joints)."""
    config = load_model(learned_model_path).config
    people = SyntheticPeople(8, config, None, seed=1_000_003)
    crops = [warp_crops(people.load_image(r), r.center[None].astype(np.float32), r.scale[None].astype(np.float32),
                        config.input_size) for r in people.records[:12]]
    return np.concatenate(crops)


class Perturbed:
    """A damaged path: the wrapped backend's heatmaps moved `shift` pixels down (survives the flip test) and
    multiplied by `gain` (moves the scores)."""

    name = "perturbed"

    def __init__(self, backend: Backend, shift: int = 0, gain: float = 1.0) -> None:
        self.backend, self.config, self.device = backend, backend.config, backend.device
        self.shift, self.gain = shift, gain

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.roll(self.backend(batch), self.shift, axis=2) * np.float32(self.gain)


def _fp32(path: Path) -> TorchBackend:
    return TorchBackend(load_model(path), "cpu")


def test_bf16_passes_on_a_trained_model(learned_model_path, people_crops):
    verdict = compare_paths(_fp32(learned_model_path), TorchBackend(load_model(learned_model_path), "cpu",
                                                                     precision="bf16"),
                            people_crops, "bf16 torch cpu", "fp32 torch", "synthetic people")
    assert verdict.joints >= model_check.MIN_VISIBLE_JOINTS and verdict.crops == 12
    assert verdict.passed, verdict.line()
    assert verdict.score_p99 <= verdict.worst_score <= model_check.SCORE_TOLERANCE
    line = verdict.line()
    assert "\n" not in line and line.endswith(f"passed ({verdict.seconds:.1f} s)")
    assert "bf16 torch cpu vs fp32 torch on 12 person crops (synthetic people)" in line


def test_the_same_path_passes_with_no_difference(learned_model_path, people_crops):
    verdict = compare_paths(_fp32(learned_model_path), _fp32(learned_model_path), people_crops, "fp32 again")
    assert verdict.passed and verdict.moved == 0 and verdict.worst_move == 0.0 and verdict.worst_score == 0.0
    assert verdict.joints >= model_check.MIN_VISIBLE_JOINTS


@pytest.mark.parametrize("damage,reason", [(dict(shift=1), "moved"), (dict(gain=1.5), "scores")])
def test_a_path_whose_keypoints_or_scores_move_is_refused(learned_model_path, people_crops, damage, reason):
    damaged = Perturbed(_fp32(learned_model_path), **damage)
    verdict = compare_paths(_fp32(learned_model_path), damaged, people_crops, "int8 openvino cpu")
    assert not verdict.passed and verdict.line().split(": ")[-1].startswith("refused")
    if reason == "moved":
        assert verdict.moved > verdict.joints / 2 and verdict.worst_move >= 1.0
    else:
        assert verdict.moved == 0 and verdict.score_p99 > model_check.SCORE_TOLERANCE


def test_too_few_visible_joints_cannot_pass(people_crops):
    """An untrained network sees no joint: nothing to judge a path on, so it does not pass."""
    model = create_model("dehrnet_w8_128x96")
    verdict = compare_paths(TorchBackend(model, "cpu"), TorchBackend(create_model("dehrnet_w8_128x96"), "cpu"),
                            people_crops, "bf16 torch cpu")
    assert verdict.joints < model_check.MIN_VISIBLE_JOINTS and not verdict.passed
    assert "too few to judge" in verdict.line()


def test_crops_of_the_wrong_size_are_refused(learned_model_path):
    with pytest.raises(DehrnetError, match="expected uint8"):
        compare_paths(_fp32(learned_model_path), _fp32(learned_model_path), np.zeros((2, 64, 48, 3), np.uint8), "x")


def test_the_verdict_is_cached_per_checkpoint_path_and_cpu(home, learned_model_path, people_crops):
    built: list[str] = []

    def factory(kind: str, precision: str = "fp32"):
        def build() -> Backend:
            built.append(kind)
            return TorchBackend(load_model(learned_model_path), "cpu", precision=precision)
        return build

    lines: list[str] = []
    first = check_precision("a" * 64, "bf16 torch cpu", factory("fp32"), factory("bf16", "bf16"), people_crops,
                            log=lines.append)
    assert first.passed and built == ["fp32", "bf16"] and lines == [first.line()]
    again = check_precision("a" * 64, "bf16 torch cpu", factory("fp32"), factory("bf16", "bf16"), log=lines.append)
    assert again == first and built == ["fp32", "bf16"]  # from the cache: no backend built, no crops needed
    assert lines[-1] == f"{first.line()} [cached]"
    assert model_check.checks_path() == home / "weights" / "precision" / "checks.json"
    # another checkpoint is measured again
    check_precision("b" * 64, "bf16 torch cpu", factory("fp32"), factory("bf16", "bf16"), people_crops,
                    log=lines.append)
    assert built == ["fp32", "bf16"] * 2


def test_the_key_names_checkpoint_path_cpu_flags_and_engines():
    cpu = CpuInfo("Some CPU", 2, 2000.0, frozenset({"avx2", "fma", "avx512_bf16"}))
    versions = {"torch": "2.14.1", "onnxruntime": "1.31.1", "openvino": "2026.4.1"}
    base = check_key("a" * 64, "bf16 openvino cpu", cpu, versions)
    assert check_key("b" * 64, "bf16 openvino cpu", cpu, versions) != base
    assert check_key("a" * 64, "int8 openvino cpu", cpu, versions) != base
    assert check_key("a" * 64, "bf16 openvino cpu", CpuInfo("Some CPU", 2, 2000.0, cpu.flags - {"avx512_bf16"}),
                     versions) != base
    assert check_key("a" * 64, "bf16 openvino cpu", CpuInfo("Other CPU", 2, 2000.0, cpu.flags), versions) != base
    assert check_key("a" * 64, "bf16 openvino cpu", cpu, {**versions, "openvino": "2027.0"}) != base
    # cores, clock and flags that change no kernel do not split the cache
    assert check_key("a" * 64, "bf16 openvino cpu", CpuInfo("Some CPU", 8, 3000.0, cpu.flags | {"rdrand"}),
                     versions) == base


def test_a_corrupt_cache_counts_as_empty_and_is_rewritten(home):
    model_check.checks_path().parent.mkdir(parents=True)
    model_check.checks_path().write_text("{not json")
    assert model_check.load_check("key") is None
    verdict = model_check.skipped("bf16 openvino cpu")
    model_check.save_check("key", verdict)
    assert model_check.load_check("key") == verdict
    model_check.checks_path().write_text('{"key": {"path": 3}}')
    assert model_check.load_check("key") is None


def test_random_weights_skip_the_check():
    verdict = model_check.skipped("bf16 openvino cpu")
    assert verdict.passed and verdict.skipped
    assert verdict.line() == "precision check of bf16 openvino cpu skipped: random weights"
    assert PrecisionVerdict.from_dict(verdict.to_dict()) == verdict


def test_reference_crops_are_the_bundled_people(monkeypatch):
    config = create_model("dehrnet_w8_128x96").config
    crops = model_check.reference_crops(config)
    assert crops.shape == (12, 128, 96, 3) and crops.dtype == np.uint8
    assert all(crop.std() > 10 for crop in crops)  # image content, not padding
    assert not np.array_equal(crops[0], crops[1])  # each box and its variant
    monkeypatch.setattr(model_check, "BUNDLED_PEOPLE", {"missing.jpg": ((0, 0, 10, 20),)})
    with pytest.raises(DehrnetError, match="lacks its bundled image"):
        model_check.reference_crops(config)


def test_one_joint_may_always_move_and_one_percent_of_many():
    assert [model_check.allowed_moves(n) for n in (17, 52, 199, 200, 450)] == [1, 1, 1, 2, 4]


def test_torch_bf16_of_a_checkpoint_is_checked_against_a_model_left_in_fp32(home, learned_model_path):
    """The bf16 candidate and the fp32 reference come from one loaded checkpoint: converting the candidate must not
    convert the reference (it ran bf16 weights on fp32 input: a RuntimeError instead of a verdict)."""
    from dehrnet_cli.precision.backend_factory import make_pose_backend
    from dehrnet_cli.precision.runtime import RuntimeSpec
    from dehrnet_cli.weights.model_choice import ModelSpec

    notes: list[str] = []
    try:
        runtime = RuntimeSpec(backend="torch", device="cpu", precision="bf16")
        backend = make_pose_backend(ModelSpec(weights=learned_model_path).choose(), runtime, None, 10, notes.append)
    except DehrnetError as e:  # a verdict either way; which one depends on this CPU's bf16 arithmetic
        assert "refused by the precision check" in str(e)
    else:
        assert backend.precision == "bf16"
    assert any(n.startswith("precision check: bf16 torch cpu vs fp32 torch") for n in notes), notes


def test_an_int8_verdict_is_kept_per_calibration(monkeypatch, tmp_path):
    """--calib DIR re-quantizes: the verdict on the default calibration must not decide the new one."""
    from types import SimpleNamespace

    from dehrnet_cli.precision import backend_factory
    from dehrnet_cli.precision.auto_path import RunPath

    labels: list[str] = []

    def checked(sha, label, **kwargs):
        labels.append(label)
        return SimpleNamespace(passed=True)

    monkeypatch.setattr(backend_factory, "check_precision", checked)
    int8 = SimpleNamespace(device="cpu")
    path = RunPath("openvino", "int8", "asked")
    for calib in (None, tmp_path / "mine", None):
        assert backend_factory._checked(int8, path, "sha", lambda p: int8, print, calib) is int8
    assert labels[0] == labels[2] == "int8 openvino cpu"
    assert labels[1] == f"int8 openvino cpu calibrated on {(tmp_path / 'mine').resolve()}"
