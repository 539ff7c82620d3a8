"""The precision check: before a reduced-precision path (bf16, int8) runs a job, it is compared with fp32 on the
job's own model and person crops, in seconds; the verdict is cached per checkpoint, path and CPU.

Both backends run the same crops through the top-down stage's heatmaps (flip test as the job runs it) and the
codec's decode. A path passes when
- at most MOVED_FRACTION (1 %, and always one) of the joints fp32 sees (score >= VISIBLE_SCORE, the rescoring
  threshold) move more than MOVE_TOLERANCE (0.75 heatmap pixel) from fp32's position, i.e. leave their peak
  pixel. The decode's quarter-pixel step toward the higher neighbour flips when the two neighbours of a peak are
  nearly equal, which moves a joint by 0.25 to 0.71 pixel with the peak unchanged; bf16 does that to 5-15 % of
  joints (they are ties), while a moved peak is a whole pixel or more. The one joint allowed whatever the count
  is a joint with two nearly equal maxima, which any rounding can swap;
- the 99th percentile of |score - fp32 score| over all joints is at most SCORE_TOLERANCE (0.05).
Measured on dehrnet_w8_128x96 trained on synthetic people (scripts/measure_precision_check.py,
docs/precision.md): bf16 (torch and OpenVINO) kept 98-100 % of peaks (all but one or two joints) with scores
within 0.005-0.009 (99th percentile); NNCF int8 calibrated on like images kept 99.7 % with 0.04, and calibrated
on other images 44 % with 0.25, which the check refuses. Fewer than MIN_VISIBLE_JOINTS visible joints cannot
judge a path: it does not pass.

Crops: the job's first crops when the caller has them, else `reference_crops`: the people in the two images
bundled with ultralytics (a dependency, so they are there offline), at boxes measured by hand.

`dehrnet guard` stays the deeper audit (PCK of a path on a model trained on synthetic people).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.precision.cpu import CpuInfo, cpu_signature
from dehrnet_cli.precision.verdict_store import VerdictStore, installed_versions
from models import PoseNetConfig

MOVE_TOLERANCE = 0.75  # heatmap pixels a visible joint may move: its peak pixel stays, the quarter step may flip
MOVED_FRACTION = 0.01  # of visible joints that may move more than MOVE_TOLERANCE (at least one may)
SCORE_TOLERANCE = 0.05  # largest 99th percentile of |score - fp32 score| over all joints
VISIBLE_SCORE = TopDownSettings().kpt_score_thr  # joints fp32 scores at least this are position-checked
MIN_VISIBLE_JOINTS = 17

# People in the images bundled with ultralytics, boxes x1, y1, x2, y2 in image pixels, measured by hand
BUNDLED_PEOPLE = {
    "bus.jpg": ((50, 398, 248, 905), (222, 405, 346, 862), (668, 395, 810, 880), (0, 545, 78, 875)),
    "zidane.jpg": ((125, 198, 1150, 720), (745, 40, 1140, 720)),
}
# each box as measured, then grown, shrunk and shifted as a detector's boxes vary: 6 people x 2 = 12 crops
BOX_VARIANTS = ((1.0, 0.0, 0.0), (1.1, 0.03, -0.02))  # (scale, x shift, y shift as fractions of the box size)


@dataclass(frozen=True)
class PrecisionVerdict:
    """One path compared with fp32 on `crops` person crops (from `crops_from`). joints: the visible joints
    position-checked; moved: how many of them moved more than MOVE_TOLERANCE; worst_move: the largest move of a
    visible joint (heatmap pixels); score_p99 and worst_score: the 99th percentile and the largest
    |score - fp32 score| over all joints; skipped: the model has random weights, nothing was compared."""

    path: str
    reference: str
    crops: int
    crops_from: str
    joints: int
    moved: int
    worst_move: float
    score_p99: float
    worst_score: float
    passed: bool
    seconds: float
    skipped: bool = False

    def line(self) -> str:
        """What was compared, the worst difference and the verdict, in one line."""
        if self.skipped:
            return f"precision check of {self.path} skipped: random weights"
        verdict = "passed" if self.passed else "refused"
        if self.joints < MIN_VISIBLE_JOINTS:
            detail = f"only {self.joints} visible joints, too few to judge (at least {MIN_VISIBLE_JOINTS})"
        else:
            detail = (f"{self.joints - self.moved} of {self.joints} visible joints within {MOVE_TOLERANCE} heatmap px "
                      f"(at most {allowed_moves(self.joints)} may move; worst {self.worst_move:.2f} px)")
        return (f"precision check: {self.path} vs {self.reference} on {self.crops} person crops ({self.crops_from}): "
                f"{detail}, scores within {self.score_p99:.3f} at the 99th percentile (<= {SCORE_TOLERANCE}; worst "
                f"{self.worst_score:.3f}): {verdict} ({self.seconds:.1f} s)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PrecisionVerdict:
        """The verdict of `to_dict`; KeyError, TypeError or ValueError when a field is missing or of the wrong kind."""
        values = {f.name: data[f.name] for f in fields(cls)}
        kinds = {"path": str, "reference": str, "crops_from": str, "crops": int, "joints": int, "moved": int,
                 "passed": bool,
                 "skipped": bool}
        for name, kind in kinds.items():
            if not isinstance(values[name], kind):
                raise ValueError(f"{name} must be a {kind.__name__}, not {values[name]!r}")
        return cls(**values)


def allowed_moves(joints: int) -> int:
    """How many of `joints` visible joints may move their peak: MOVED_FRACTION of them, and always one."""
    return max(1, int(MOVED_FRACTION * joints))


def skipped(path: str) -> PrecisionVerdict:
    """The verdict of a path on random weights: not compared (nothing to lose), runs as asked."""
    return PrecisionVerdict(path, "fp32", 0, "-", 0, 0, 0.0, 0.0, 0.0, passed=True, seconds=0.0, skipped=True)


def _keypoints(backend: Backend, crops_bgr: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """(coords_hm (N, K, 2), scores (N, K)) of `backend` on (N, h, w, 3) uint8 BGR crops, as the job decodes them."""
    from dehrnet_cli.pose.topdown import TopDownEstimator

    estimator = TopDownEstimator(backend, TopDownSettings(flip=flip, crops_on="host"))
    return estimator.codec.decode(estimator.heatmaps(crops_bgr))


def compare_paths(reference: Backend, candidate: Backend, crops_bgr: np.ndarray, path: str,
                  reference_name: str = "fp32", crops_from: str = "job crops", flip: bool = True) -> PrecisionVerdict:
    """`candidate` (the reduced-precision path named `path`, e.g. "bf16 openvino cpu") against the fp32
    `reference` on (N, h, w, 3) uint8 BGR crops at the model's input size: the verdict of the module docstring."""
    if reference.config != candidate.config:
        raise DehrnetError(f"precision check {path}: the candidate runs {candidate.config.name}, the fp32 reference "
                           f"{reference.config.name}; both must run the same model")
    w, h = reference.config.input_size
    if crops_bgr.dtype != np.uint8 or crops_bgr.ndim != 4 or crops_bgr.shape[1:] != (h, w, 3) or not len(crops_bgr):
        raise DehrnetError(f"precision check crops {crops_bgr.dtype} {crops_bgr.shape}: expected uint8 "
                           f"(N >= 1, {h}, {w}, 3) for {reference.config.name}")
    start = time.perf_counter()
    ref_xy, ref_scores = _keypoints(reference, crops_bgr, flip)
    cand_xy, cand_scores = _keypoints(candidate, crops_bgr, flip)
    visible = ref_scores >= VISIBLE_SCORE
    moves = np.linalg.norm(cand_xy.astype(np.float64) - ref_xy, axis=-1)[visible]
    joints = int(visible.sum())
    moved = int((moves > MOVE_TOLERANCE).sum())
    score_diffs = np.abs(cand_scores.astype(np.float64) - ref_scores)
    score_p99 = float(np.percentile(score_diffs, 99))
    passed = joints >= MIN_VISIBLE_JOINTS and moved <= allowed_moves(joints) and score_p99 <= SCORE_TOLERANCE
    return PrecisionVerdict(path, reference_name, len(crops_bgr), crops_from, joints, moved,
                            float(moves.max()) if joints else 0.0, score_p99, float(score_diffs.max()), passed,
                            time.perf_counter() - start)


def reference_crops(config: PoseNetConfig) -> np.ndarray:
    """(12, h, w, 3) uint8 BGR crops of the people in the images bundled with ultralytics (BUNDLED_PEOPLE,
    BOX_VARIANTS), cut as inference cuts them; DehrnetError when the images are missing."""
    import ultralytics

    from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
    from dehrnet_cli.sources.images import read_image

    assets = Path(ultralytics.__file__).parent / "assets"
    crops = []
    for name, boxes in BUNDLED_PEOPLE.items():
        if not (assets / name).is_file():
            raise DehrnetError(f"{assets / name}: the ultralytics package lacks its bundled image; the precision "
                               "check needs person crops (pass the job's crops)")
        image = read_image(assets / name)
        boxes_xyxy = np.array([_varied(box, variant) for box in boxes for variant in BOX_VARIANTS])
        centers, scales = center_scale_from_xyxy(boxes_xyxy, config.input_size)
        crops.append(warp_crops(image, centers, scales, config.input_size))
    return np.concatenate(crops)


def _varied(box: tuple[int, int, int, int], variant: tuple[float, float, float]) -> tuple[float, ...]:
    scale, shift_x, shift_y = variant
    x1, y1, x2, y2 = box
    w, h = (x2 - x1) * scale, (y2 - y1) * scale
    cx, cy = (x1 + x2) / 2 + shift_x * w, (y1 + y2) / 2 + shift_y * h
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def engine_versions() -> dict[str, str]:
    """Installed versions of the engines whose kernels a verdict depends on ("none" when absent)."""
    return installed_versions({"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
                               "openvino": ("openvino",)})


def check_key(checkpoint_sha256: str, path: str, cpu: CpuInfo | None = None,
              versions: dict[str, str] | None = None) -> str:
    """The cache key of a verdict: the checkpoint's content, the path ("bf16 openvino cpu"), the CPU (model and
    kernel flags) and the engines' versions."""
    versions = versions or engine_versions()
    engines = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
    return f"{checkpoint_sha256[:16]} | {path} | {cpu_signature(cpu)} | {engines}"


def checks_path() -> Path:
    """The verdict cache: <weights folder>/precision/checks.json, {check_key: PrecisionVerdict.to_dict()}."""
    from dehrnet_cli.weights.cache import weights_dir

    return weights_dir() / "precision" / "checks.json"


_CHECKS: VerdictStore[PrecisionVerdict] = VerdictStore(checks_path, PrecisionVerdict.from_dict)
load_check = _CHECKS.load  # the cached verdict of a check_key, or None
save_check = _CHECKS.save  # store a verdict under a check_key (atomic; the other keys kept)


def check_precision(checkpoint_sha256: str, path: str, reference: Callable[[], Backend],
                    candidate: Callable[[], Backend], crops_bgr: np.ndarray | None = None, flip: bool = True,
                    log: Callable[[str], None] | None = None, fresh: bool = False) -> PrecisionVerdict:
    """The verdict on `path` for this checkpoint on this CPU: the cached one (unless `fresh`), else measured on
    `crops_bgr` (the job's crops; None: `reference_crops`) and cached. `reference` and `candidate` build the fp32
    and the reduced-precision backend of the checkpoint; they are called only when the check runs. The
    verdict's line goes to `log` (default `progress.note`)."""
    from dehrnet_cli.progress import note

    log = log or note
    key = check_key(checkpoint_sha256, path)
    cached = None if fresh else load_check(key)
    if cached is not None:
        log(f"{cached.line()} [cached]")
        return cached
    fp32, reduced = reference(), candidate()
    crops_from = "job crops" if crops_bgr is not None else "bundled images"
    crops = crops_bgr if crops_bgr is not None else reference_crops(fp32.config)
    verdict = compare_paths(fp32, reduced, crops, path, f"fp32 {fp32.name}", crops_from, flip)
    log(verdict.line())
    save_check(key, verdict)
    return verdict
