"""The accuracy guard: a reduced-precision path (bf16, fp16, int8) is measured against fp32 before it is used.

Both paths run one model that has actually learned something (dehrnet_w8_128x96 trained on synthetic people,
cached in the weights folder) on the same crops of synthetic held-out people, flip test on. The report gives
PCK@0.1 of both, the fraction of labelled keypoints whose decoded heatmap position moved by at most one
heatmap pixel, and the PCK loss; a path that loses more than MAX_PCK_LOSS points is refused. Verdicts are
cached per path and machine (CPU, GPU, torch and onnxruntime versions), so the guard runs once per machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.synthetic import SyntheticPeople
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.pck import dataset_keypoints, pck
from dehrnet_cli.pose.backends import Backend, TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.precision.cpu import CpuInfo, cpu_signature
from dehrnet_cli.precision.verdict_store import VerdictStore, installed_versions
from dehrnet_cli.train.synthetic_model import train_synthetic_model
from dehrnet_cli.weights.cache import weights_dir
from models import PoseHRNet, load_model

MAX_PCK_LOSS = 1.0  # PCK@0.1 points a reduced-precision path may lose against fp32

PCK_THR = 0.1

GUARD_MODEL = "dehrnet_w8_128x96"

GUARD_IMAGES = 100

HELD_OUT_SEED = 1_000_003  # the held-out scenes of train_synthetic_model(seed=0): never trained on

SECONDS_PER_STEP = 2.4  # train_synthetic_model on a 2-core CPU (300 steps: about 12 minutes)


@dataclass(frozen=True)
class GuardReport:
    """One path measured against fp32. path: "<precision> <backend> <device>", e.g. "bf16 torch cpu";
    keypoints: labelled joints compared; pck_fp32, pck: PCK@0.1 as fractions; within_1px: fraction of labelled
    keypoints whose decoded heatmap position is within 1 heatmap pixel (Euclidean) of fp32's;
    loss_points = 100 * (pck_fp32 - pck); seconds: wall time of the comparison."""

    path: str
    model: str
    images: int
    keypoints: int
    pck_fp32: float
    pck: float
    within_1px: float
    loss_points: float
    passed: bool
    seconds: float

    @property
    def precision(self) -> str:
        """The precision named first in `path`, e.g. "int8"."""
        return self.path.split()[0]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GuardReport:
        """The report of `to_dict`; KeyError or ValueError when a field is missing or of the wrong kind."""
        if not isinstance(d["passed"], bool):
            raise ValueError(f"passed must be true or false, not {d['passed']!r}")
        kinds = {"path": str, "model": str, "images": int, "keypoints": int, "passed": bool}
        return cls(**{f.name: kinds.get(f.name, float)(d[f.name]) for f in fields(cls)})

    def summary(self) -> str:
        verdict = "passed" if self.passed else f"refused (more than {MAX_PCK_LOSS:.1f} point lost)"
        return (f"accuracy guard {self.path}: PCK@0.1 {100 * self.pck:.1f} vs {100 * self.pck_fp32:.1f} fp32 "
                f"(loss {self.loss_points:.1f} points), {100 * self.within_1px:.0f} % of keypoints within 1 heatmap "
                f"pixel, {self.images} held-out images, {self.seconds:.0f} s: {verdict}")


def compare_backends(reference: Backend, candidate: Backend, path: str, images: int = GUARD_IMAGES,
                     seed: int = HELD_OUT_SEED) -> GuardReport:
    """Measure `candidate` against the fp32 `reference` (both running the same model) on `images` synthetic
    held-out scenes of series `seed`, flip test on; each backend runs once per crop."""
    if reference.config != candidate.config:
        raise DehrnetError(f"accuracy guard {path}: the candidate runs {candidate.config.name}, the fp32 reference "
                           f"{reference.config.name}; both must run the same model")
    start = time.perf_counter()
    dataset = SyntheticPeople(images, reference.config, None, seed=seed)
    settings = TopDownSettings(flip=True)
    ref_hm, ref_xy = dataset_keypoints(TopDownEstimator(reference, settings), dataset)
    cand_hm, cand_xy = dataset_keypoints(TopDownEstimator(candidate, settings), dataset)
    labelled = np.stack([r.visible for r in dataset.records]) > 0
    moved = np.linalg.norm(cand_hm.astype(np.float64) - ref_hm, axis=2)
    num_labelled = int(labelled.sum())
    pck_fp32, pck_candidate = pck(ref_xy, dataset.records, PCK_THR), pck(cand_xy, dataset.records, PCK_THR)
    loss_points = 100.0 * (pck_fp32 - pck_candidate)
    return GuardReport(path=path, model=reference.config.name, images=images, keypoints=num_labelled,
                       pck_fp32=pck_fp32, pck=pck_candidate,
                       within_1px=int(((moved <= 1.0) & labelled).sum()) / max(num_labelled, 1),
                       loss_points=loss_points, passed=bool(loss_points <= MAX_PCK_LOSS),
                       seconds=time.perf_counter() - start)


def enforce(report: GuardReport) -> None:
    """Raise DehrnetError (exit code 2) naming the measured loss when the path did not pass."""
    if report.passed:
        return
    raise DehrnetError(
        f"--precision {report.precision} refused: the accuracy guard measured a loss of {report.loss_points:.1f} "
        f"PCK points against fp32 (more than {MAX_PCK_LOSS:.1f} allowed; {report.path}: PCK@0.1 "
        f"{100 * report.pck:.1f} vs {100 * report.pck_fp32:.1f} on {report.images} synthetic held-out images, "
        f"{100 * report.within_1px:.0f} % of keypoints within 1 heatmap pixel); use --precision fp32")


def guard_model_path() -> Path:
    """Where the guard's learned model lives: <weights folder>/guard/synthetic_dehrnet_w8_128x96.pt."""
    return weights_dir() / "guard" / f"synthetic_{GUARD_MODEL}.pt"


def ensure_guard_model(steps: int = 300, log: Callable[[str], None] = print) -> Path:
    """The guard model's path, training it once on synthetic people (CPU) when it is missing."""
    path = guard_model_path()
    if path.is_file():
        return path
    minutes = max(1, round(steps * SECONDS_PER_STEP / 60))
    log(f"accuracy guard: training its reference model once ({GUARD_MODEL} on synthetic people, {steps} steps, "
        f"about {minutes} min on a 2-core CPU) into {path}")
    return train_synthetic_model(path, steps=steps, model=GUARD_MODEL)


def verdicts_path() -> Path:
    """The verdict cache: <weights folder>/guard/verdicts.json, {verdict key: GuardReport.to_dict()}."""
    return weights_dir() / "guard" / "verdicts.json"


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose kernels a verdict depends on ("none" when absent)."""
    return installed_versions({"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu")})


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine_signature(info: CpuInfo | None = None, versions: dict[str, str] | None = None,
                      gpu: str | None = None) -> str:
    """A short description of what decides reduced-precision numerics here: CPU model and its kernel flags,
    the GPU (detected when `info` is None), torch and onnxruntime versions."""
    if info is None:
        from dehrnet_cli.precision.cpu import cpu_info

        info, gpu = cpu_info(), _gpu_name()
    versions = versions or library_versions()
    parts = [cpu_signature(info)]
    if gpu:
        parts.append(gpu)
    parts += [f"{name} {version}" for name, version in sorted(versions.items())]
    return ", ".join(parts)


def verdict_key(path: str, machine: str) -> str:
    """The cache key of `path` measured on `machine` (see machine_signature)."""
    return f"{path} @ {machine}"


_VERDICTS: VerdictStore[GuardReport] = VerdictStore(verdicts_path, GuardReport.from_dict)
load_verdict = _VERDICTS.load  # the cached report of a verdict_key, or None
save_verdict = _VERDICTS.save  # store a report under a verdict_key (atomic; the other keys kept)


def _fp32_cpu(model: PoseHRNet) -> Backend:
    return TorchBackend(model, "cpu")


def guard_path(path: str, candidate_factory: Callable[[PoseHRNet], Backend],
               reference_factory: Callable[[PoseHRNet], Backend] | None = None,
               log: Callable[[str], None] = print, steps: int = 300, images: int = GUARD_IMAGES,
               fresh: bool = False) -> GuardReport:
    """The guard's verdict on `path` ("<precision> <backend> <device>") on this machine: the cached one, else
    measured (training the guard model first if needed) and cached. The reference is fp32 torch on the CPU
    unless `reference_factory` says otherwise. Each factory gets its own copy of the model (backends may
    convert weights in place). `fresh` measures again even when a verdict is cached. Call `enforce` on the
    result to refuse a failing path."""
    key = verdict_key(path, machine_signature())
    cached = None if fresh else load_verdict(key)
    if cached is not None:
        return cached
    model_path = ensure_guard_model(steps, log)
    reference = (reference_factory or _fp32_cpu)(load_model(model_path))
    candidate = candidate_factory(load_model(model_path))
    log(f"accuracy guard: measuring {path} against fp32 on {images} synthetic held-out images (once per machine)")
    report = compare_backends(reference, candidate, path, images)
    log(report.summary())
    save_verdict(key, report)
    return report
