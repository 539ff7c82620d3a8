"""Benchmark results as plain data: repeated timings, their median and spread, and the target ratios.

A `Measurement` is one stage (or the whole pipeline) in one configuration, timed over repetitions after
warm-up; frames/s and crops/s are computed per repetition and summarised by `Spread` (median,
quartiles, min, max). `compute_ratios` turns a run's measurements into the ratios the speed targets
name, so that they always come from numbers measured in the same run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

STAGES = ("video_decode", "detector", "crop", "pose", "decode_flip", "render", "encode")

PIPELINE = "pipeline"

PIPELINE_PRECISION = "pipeline_precision"  # the pipeline once per precision (1280x720, 3 people, flip on)

PEER = "peer_yolo11n_pose"
PIPELINE_BACKEND = "pipeline_backend"  # the pipeline on torch, onnx, openvino, the default path (1280x720, 1 and 5)

PIPELINE_STAGES = ("video_decode", "crop", "pose", "decode_flip", "render", "encode")  # what predict runs


@dataclass(frozen=True)
class Spread:
    """Median, quartiles (linear interpolation), min and max of `n` samples."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        values = np.asarray(samples, dtype=np.float64)
        if values.size == 0:
            raise ValueError("no samples to summarise")
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        return cls(float(median), float(q1), float(q3), float(values.min()), float(values.max()), int(values.size))


@dataclass
class Measurement:
    """One stage in one configuration.

    config: what was run (resolution "WxH", people, model, backend, precision, batch, flip, ...).
    frames / crops: frames and person crops handled per repetition (crops 0 where there are none);
    seconds: the duration of every timed repetition; extra: numbers that belong to the row (FLOP/s,
    peak RSS, first-call time...).
    """

    stage: str
    config: dict[str, Any]
    frames: float
    crops: int
    seconds: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> Spread:
        return Spread.of([self.frames / s for s in self.seconds])

    @property
    def crops_per_s(self) -> Spread | None:
        return Spread.of([self.crops / s for s in self.seconds]) if self.crops else None

    def matches(self, stage: str, **config: Any) -> bool:
        return self.stage == stage and all(self.config.get(k) == v for k, v in config.items())

    def to_dict(self) -> dict[str, Any]:
        crops = self.crops_per_s
        return {"stage": self.stage, "config": self.config, "frames_per_rep": self.frames,
                "crops_per_rep": self.crops, "seconds": self.seconds, "frames_per_s": asdict(self.fps),
                "crops_per_s": None if crops is None else asdict(crops), "extra": self.extra}


def find(measurements: Sequence[Measurement], stage: str, **config: Any) -> Measurement | None:
    """The first measurement of `stage` whose config holds every given key with that value."""
    return next((m for m in measurements if m.matches(stage, **config)), None)


@dataclass(frozen=True)
class Ratio:
    """A target ratio: `value` (None when its inputs were not measured) against `target`."""

    name: str
    label: str
    value: float | None
    target: float
    higher_is_better: bool
    detail: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def stage_fps(measurements: Sequence[Measurement], stage: str, config: dict[str, Any]) -> float | None:
    """Median frames/s of `stage` alone in the pipeline configuration `config`. The pose stage is
    timed on crop batches, so its frames/s is crops/s / people."""
    keys = {"video_decode": ("size",), "crop": ("size", "people", "model"), "render": ("size", "people"),
            "encode": ("size",), "decode_flip": ("people", "flip", "model"),
            "pose": ("model", "backend", "precision", "batch", "flip")}[stage]
    found = find(measurements, stage, **{k: config[k] for k in keys})
    if found is None:
        return None
    if stage == "pose":
        return found.crops_per_s.median / config["people"]
    return found.fps.median


def _pipeline_ratios(measurements: Sequence[Measurement]) -> list[Ratio]:
    ratios = []
    for pipe in (m for m in measurements if m.stage == PIPELINE):
        rates = {s: stage_fps(measurements, s, pipe.config) for s in PIPELINE_STAGES}
        known = {s: r for s, r in rates.items() if r is not None}
        missing = sorted(set(rates) - set(known))
        slowest = min(known, key=known.get) if known else None
        value = pipe.fps.median / known[slowest] if slowest and not missing else None
        people = pipe.config["people"]
        where = f"{pipe.config['size']}, {people} {'person' if people == 1 else 'people'}, {pipe.config['model']}"
        detail = (f"{pipe.fps.median:.3g} fps vs {slowest} alone {known[slowest]:.3g} fps ({where})" if value
                  else f"stages not measured: {', '.join(missing)} ({where})")
        ratios.append(Ratio("pipeline_overlap", "pipeline fps / slowest stage fps", value, 0.85, True, detail))
    for fast in (m for m in measurements if m.matches(PIPELINE_BACKEND, backend="openvino")):
        today = find(measurements, PIPELINE_BACKEND, backend="onnx", people=fast.config["people"])
        if today is not None:
            ratios.append(Ratio("pipeline_openvino_vs_onnx", "pipeline fps, OpenVINO path / ONNX Runtime fp32",
                                fast.fps.median / today.fps.median, 1.8, True,
                                "{size}, {people} people, {model}, openvino {precision}, flip".format(**fast.config)))
    return ratios


def _pose_pairs(measurements: Sequence[Measurement], key: str, first: Any, second: Any,
                same: Sequence[str]) -> list[tuple[Measurement, Measurement]]:
    """Pose measurements that differ only in `key` (first, second) and agree on every key in `same`."""
    pairs = []
    for a in (m for m in measurements if m.matches("pose", **{key: first})):
        b = find(measurements, "pose", **{key: second}, **{k: a.config[k] for k in same})
        if b is not None:
            pairs.append((a, b))
    return pairs


def _time_ratio(slow: Measurement, fast: Measurement) -> float:
    """Time per crop of `slow` / time per crop of `fast` (= crops/s of fast / crops/s of slow)."""
    return fast.crops_per_s.median / slow.crops_per_s.median


# (name, label, (backend, precision) of the reduced path, of the fp32 path it is compared with, target)
_PRECISION_TARGETS = (
    ("bf16_speedup_openvino", "bf16 speed-up over fp32 (OpenVINO)", ("openvino", "bf16"), ("openvino", "fp32"), 1.5),
    ("bf16_vs_onnx_fp32", "OpenVINO bf16 speed / fp32 ONNX Runtime", ("openvino", "bf16"), ("onnx", "fp32"), 1.8),
    ("int8_speedup_onnx", "int8 speed-up over fp32 (ONNX Runtime)", ("onnx", "int8"), ("onnx", "fp32"), 1.5),
)


def _precision_ratios(measurements: Sequence[Measurement]) -> list[Ratio]:
    """The CPU reduced-precision targets: each bf16/int8 pose row without flip against the fp32 row of the
    same model and batch on the backend the target names (only where both were measured)."""
    ratios = []
    for name, label, (kind, precision), (base_kind, base_precision), target in _PRECISION_TARGETS:
        for fast in (m for m in measurements if m.matches("pose", backend=kind, precision=precision, flip=False)):
            base = find(measurements, "pose", backend=base_kind, precision=base_precision, flip=False,
                        model=fast.config["model"], batch=fast.config["batch"])
            if base is not None:
                detail = (f"{fast.config['model']} batch {fast.config['batch']}, no flip: "
                          f"{fast.crops_per_s.median:.3g} vs {base.crops_per_s.median:.3g} crops/s")
                ratios.append(Ratio(name, label, _time_ratio(base, fast), target, True, detail))
    return ratios


def compute_ratios(measurements: Sequence[Measurement], rss: dict[str, Any] | None = None,
                   device: str = "cpu") -> list[Ratio]:
    """Every target ratio the run's measurements allow: pipeline overlap (>= 0.85), flip cost
    (<= 2.1), ONNX Runtime CPU speed-up (>= 1.4), on CPU OpenVINO bf16 over its fp32 (>= 1.5), OpenVINO bf16
    over fp32 ONNX Runtime (>= 1.8) and int8 over fp32 ONNX Runtime (>= 1.5), DE-HRNet / HRNet time per crop
    (<= 1.15), peak RSS growth from N to 2N frames (<= 1.05) and, on CUDA, the absolute GPU targets."""
    ratios = _pipeline_ratios(measurements)
    base = ("model", "backend", "precision", "batch")
    for flip, plain in _pose_pairs(measurements, "flip", True, False, base):
        ratios.append(Ratio("flip_cost", "pose time with flip / without", _time_ratio(flip, plain), 2.1, False,
                            "{model} {backend} {precision} batch {batch}".format(**flip.config)))
    if not device.startswith("cuda"):
        same = ("model", "precision", "batch", "flip")
        for onnx, eager in _pose_pairs(measurements, "backend", "onnx", "torch", same):
            if not onnx.config["flip"]:
                ratios.append(Ratio("onnx_cpu_speedup", "ONNX Runtime CPU speed-up over torch eager",
                                    _time_ratio(eager, onnx), 1.4, True,
                                    "{model} {precision} batch {batch}, no flip".format(**onnx.config)))
        ratios += _precision_ratios(measurements)
    for de in (m for m in measurements if m.stage == "pose" and m.config["model"].startswith("dehrnet_")
               and not m.config["flip"]):
        hr = find(measurements, "pose", model=de.config["model"].replace("dehrnet_", "hrnet_", 1),
                  **{k: de.config[k] for k in ("backend", "precision", "batch", "flip")})
        if hr is not None:
            ratios.append(Ratio("dehrnet_overhead", "DE-HRNet / HRNet time per crop", _time_ratio(de, hr), 1.15,
                                False, "{model} {backend} {precision} batch {batch}".format(**de.config)))
    if rss:
        ratios.append(Ratio("rss_growth", "peak RSS at 2N frames / at N frames",
                            rss["peak_2n_bytes"] / rss["peak_n_bytes"], 1.05, False,
                            f"{rss['peak_n_bytes'] / 2**20:.0f} MiB at {rss['frames_n']} frames, "
                            f"{rss['peak_2n_bytes'] / 2**20:.0f} MiB at {2 * rss['frames_n']}"))
    if device.startswith("cuda"):
        ratios += _gpu_targets(measurements)
    return ratios


def _network_row(measurements: Sequence[Measurement], model: str, compiled: bool) -> Measurement | None:
    """The GPU section's fp16 batch-64 row of `model`, eager or compiled."""
    return next((m for m in measurements if m.matches("gpu_pose", model=model, precision="fp16", batch=64)
                 and bool(m.config.get("compile")) == compiled), None)


def _gpu_targets(measurements: Sequence[Measurement]) -> list[Ratio]:
    """Issue 19's GPU targets (H100-class), from the GPU section's rows: HRNet-W32 384x288 fp16 batch 64 crops/s
    (the network alone, eager and compiled), DE-HRNet's time per crop against HRNet's there, and 1080p video
    frames/s with 5 people and the flip test."""
    out = []
    for compiled, suffix, label in ((False, "", ""), (True, "_compiled", ", compiled")):
        hr = _network_row(measurements, "hrnet_w32_384x288", compiled)
        de = _network_row(measurements, "dehrnet_w32_384x288", compiled)
        if hr is not None:
            out.append(Ratio(f"gpu_hrnet_crops_per_s{suffix}", f"HRNet-W32 fp16 batch 64{label}: crops/s (H100 target)",
                             hr.crops_per_s.median, 4000.0, True, f"the network alone on {hr.config['device']}"))
        if hr is not None and de is not None:
            out.append(Ratio(f"gpu_dehrnet_overhead{suffix}", f"DE-HRNet / HRNet time per crop, fp16 batch 64{label}",
                             _time_ratio(de, hr), 1.15, False,
                             f"{de.crops_per_s.median:.4g} vs {hr.crops_per_s.median:.4g} crops/s"))
    pipe = find(measurements, PIPELINE, size="1920x1080", people=5, flip=True)
    if pipe is not None:
        out.append(Ratio("gpu_pipeline_fps", "1080p, 5 people, flip: pipeline frames/s (H100 target)",
                         pipe.fps.median, 150.0, True, "{model} {backend} {precision}".format(**pipe.config)))
    return out
