"""Evaluation with the standard protocols: COCO keypoint AP/AR (COCOeval "keypoints", as the official
HRNet `COCODataset.evaluate`) and MPII PCKh (as the official HRNet `MPIIDataset.evaluate`).

COCOeval runs in faster-coco-eval when it is installed (the same ten numbers, bit for bit, several
times faster), else in pycocotools; the per-keypoint breakdown is computed here, the same with either.

Shape letters: N people, K keypoints. COCO keypoints are image pixels; MPII predictions passed to
`score_mpii` are 0-based image pixels, while MPII files (annotations, head boxes, results) use MPII's
1-based (Matlab) pixels.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from models.keypoints import COCO17

from .cli_common import err_console
from .coco_format import poses_to_results
from .detector import BoxesFileDetector, Detector
from .errors import DehrnetError
from .geometry import clean_gt_box, warp_crops
from .postprocess import oks_nms, rescore
from .sources import read_image
from .topdown import TopDownEstimator, TopDownSettings
from .types import Detections, Frame, Poses

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
KEYPOINT_OK_TERM = 0.5  # per_keypoint "accuracy": a matched joint counts as correct when its OKS term >= this
OKS_MATCH_THR = 0.5  # per_keypoint matching: COCOeval's first OKS threshold
COCO_SIGMAS = np.asarray(COCO17.sigmas, np.float64) / 10  # COCOeval's kpt_oks_sigmas


@dataclass
class CocoEvalResult:
    """What a COCO keypoint evaluation gives.

    stats: the ten COCOeval numbers (STAT_NAMES; -1 where the evaluated images have no ground truth of
    that size, as pycocotools). per_keypoint: {joint name: {"oks", "accuracy", "count"}} (see
    `keypoint_breakdown`). results: the COCO results list that was scored. timings: seconds per phase.
    """

    stats: dict[str, float]
    per_keypoint: dict[str, dict[str, float]]
    results: list[dict]
    timings: dict[str, float] = field(default_factory=dict)
    num_images: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_report(self, settings: dict) -> dict:
        """The --report document: stats, per_keypoint and settings (plus images, timings, warnings)."""
        return {"stats": self.stats, "per_keypoint": self.per_keypoint, "settings": settings,
                "num_images": self.num_images, "timings": self.timings, "warnings": self.warnings}


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """pycocotools prints its progress and tables to stdout: keep them out of ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _read_json(path: Path, what: str, flag: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DehrnetError(f"{flag} {path}: no such {what} file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{flag} {path}: not valid JSON ({e})") from None


def load_coco_gt(ann_file: Path) -> COCO:
    """A pycocotools COCO of a person-keypoints annotation file; DehrnetError if absent or malformed."""
    doc = _read_json(ann_file, "annotation", "--ann")
    ok = isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories"))
    if not ok or not any("keypoints" in c for c in doc["categories"]):
        raise DehrnetError(f"--ann {ann_file}: not a COCO keypoint annotation file (needs images, annotations and "
                           "a category with keypoints, like person_keypoints_val2017.json)")
    gt = COCO()
    gt.dataset = doc
    try:
        with _silenced():
            gt.createIndex()
    except (KeyError, TypeError) as e:
        raise DehrnetError(f"--ann {ann_file}: malformed COCO annotations ({type(e).__name__}: {e})") from None
    return gt


def _keypoint_names(gt: COCO) -> list[str]:
    return next(c["keypoints"] for c in gt.dataset["categories"] if "keypoints" in c)


def _check_results(results: list[dict], gt: COCO, source: str) -> None:
    """Every entry has image_id, category_id, 3K keypoints and a score, for an image of `gt`."""
    if not isinstance(results, list):
        raise DehrnetError(f"{source}: expected a COCO results list [{{image_id, category_id, keypoints, score}}]")
    num_values = 3 * len(_keypoint_names(gt))
    for n, entry in enumerate(results):
        ok = isinstance(entry, dict) and {"image_id", "category_id", "keypoints", "score"} <= entry.keys()
        if not ok or len(entry["keypoints"]) != num_values:
            raise DehrnetError(f"{source}: entry {n} is not a keypoint result (image_id, category_id, score and "
                               f"{num_values} keypoint numbers)")
    unknown = sorted({r["image_id"] for r in results} - set(gt.imgs), key=str)
    if unknown:
        raise DehrnetError(f"{source}: {len(unknown)} image id(s) such as {unknown[:3]} are not in the annotation "
                           "file: these results belong to another dataset or split; pass the matching --ann")


def _match_people(gts: list[dict], dts: list[dict], variances: np.ndarray) -> Iterator[tuple[dict, np.ndarray]]:
    """(ground truth, OKS terms (K,)) of each person matched as COCOeval matches at OKS 0.5.

    gts: the image's non-ignored people (not crowd, num_keypoints > 0) in annotation order; dts: its
    results, best score first (stable), at most maxDets. Each result in turn takes the still unmatched
    person of highest OKS >= 0.5 (the last one on ties), as `COCOeval.evaluateImg`; ignored ground
    truth never takes a result that a non-ignored person could, so it can be left out here.
    """
    points = np.asarray([d["keypoints"] for d in dts], np.float64).reshape(len(dts), -1, 3)
    oks = np.zeros((len(dts), len(gts)))
    terms = []
    for j, gt in enumerate(gts):
        g = np.asarray(gt["keypoints"], np.float64).reshape(-1, 3)
        labelled = g[:, 2] > 0
        e = ((points[:, :, 0] - g[:, 0]) ** 2 + (points[:, :, 1] - g[:, 1]) ** 2) / variances
        e = e / (gt["area"] + np.spacing(1)) / 2
        terms.append(np.exp(-e))
        oks[:, j] = np.sum(np.exp(-e[:, labelled]), axis=1) / max(int(labelled.sum()), 1)
    taken = np.zeros(len(gts), bool)
    for i in range(len(dts)):
        best, match = OKS_MATCH_THR, -1
        for j in np.flatnonzero(~taken):
            if oks[i, j] >= best:
                best, match = oks[i, j], j
        if match >= 0:
            taken[match] = True
            yield gts[match], terms[match][i]


def keypoint_breakdown(gt: COCO, results: list[dict], image_ids: list[int],
                       sigmas: np.ndarray = COCO_SIGMAS, max_dets: int = 20) -> dict[str, dict[str, float]]:
    """Per-joint quality on the people matched as COCOeval matches them at OKS 0.5, area range "all".

    For each matched pair and each joint labelled in the ground truth (v > 0), the OKS term is
    exp(-d^2 / (2 * area * (2 sigma)^2)) (d: distance in image pixels, area: the ground truth's area,
    sigma: COCO sigma / 10), exactly the terms that COCOeval averages into OKS. Returns {joint name:
    {"oks": mean term, "accuracy": fraction of terms >= 0.5, "count": labelled matched joints}}.
    """
    names = _keypoint_names(gt)
    variances = (np.asarray(sigmas, np.float64) * 2) ** 2
    person = next(c["id"] for c in gt.dataset["categories"] if "keypoints" in c)
    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r["category_id"] == person:
            by_image.setdefault(r["image_id"], []).append(r)
    terms: list[list[float]] = [[] for _ in names]
    for image_id in image_ids:
        gts = [a for a in gt.imgToAnns.get(image_id, []) if a["category_id"] == person and not a.get("iscrowd")
               and a.get("num_keypoints", 0) > 0]
        dts = sorted(by_image.get(image_id, []), key=lambda r: -r["score"])[:max_dets]
        for gt_ann, joint_terms in _match_people(gts, dts, variances) if gts and dts else ():
            for k in np.flatnonzero(np.asarray(gt_ann["keypoints"]).reshape(-1, 3)[:, 2] > 0):
                terms[k].append(float(joint_terms[k]))
    return {name: {"oks": float(np.mean(t)) if t else 0.0,
                   "accuracy": float(np.mean(np.asarray(t) >= KEYPOINT_OK_TERM)) if t else 0.0,
                   "count": len(t)} for name, t in zip(names, terms)}


def cocoeval_stats(gt: COCO, results: list[dict], image_ids: list[int], library: str = "auto") -> np.ndarray:
    """The ten COCOeval "keypoints" stats (useSegm None) over `image_ids`. library "auto": faster-coco-eval
    when it is installed (identical numbers, several times faster), else pycocotools; or name either."""
    FastCOCO = None
    if library in ("auto", "faster-coco-eval"):
        try:
            from faster_coco_eval import COCO as FastCOCO
            from faster_coco_eval import COCOeval_faster
        except ImportError:
            if library != "auto":
                raise DehrnetError("faster-coco-eval is not installed: pip install faster-coco-eval") from None
    elif library != "pycocotools":
        raise DehrnetError(f"COCOeval library {library!r}: use auto, pycocotools or faster-coco-eval")
    with _silenced():
        if FastCOCO is not None:
            fast_gt = FastCOCO()
            fast_gt.dataset = gt.dataset
            fast_gt.createIndex()
            coco_eval = COCOeval_faster(fast_gt, fast_gt.loadRes([dict(r) for r in results]), "keypoints")
        else:
            coco_eval = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "keypoints")  # loadRes edits entries
            coco_eval.params.useSegm = None
        coco_eval.params.imgIds = sorted(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return np.asarray(coco_eval.stats[:len(STAT_NAMES)], np.float64)


def _score(results: list[dict], gt: COCO, image_ids: list[int] | None, source: str) -> CocoEvalResult:
    _check_results(results, gt, source)
    names = _keypoint_names(gt)
    if len(names) != len(COCO_SIGMAS):
        raise DehrnetError(f"{source}: COCO keypoint AP is defined for the 17 COCO keypoints; the annotations have "
                           f"{len(names)}")
    image_ids = gt.getImgIds() if image_ids is None else list(image_ids)
    if not results:
        zeros = {name: {"oks": 0.0, "accuracy": 0.0, "count": 0} for name in names}
        return CocoEvalResult(dict.fromkeys(STAT_NAMES, 0.0), zeros, [], num_images=len(image_ids),
                              warnings=[f"{source}: no results to score; every number is 0"])
    stats = dict(zip(STAT_NAMES, cocoeval_stats(gt, results, image_ids).tolist()))
    missing = [name for name, v in stats.items() if v < 0]
    warnings = [f"{', '.join(missing)} = -1: the evaluated images have no ground-truth people of that size"] \
        if missing else []
    return CocoEvalResult(stats, keypoint_breakdown(gt, results, image_ids), results, num_images=len(image_ids),
                          warnings=warnings)


def score_coco_results(results: list[dict], ann_file: Path, image_ids: list[int] | None = None) -> CocoEvalResult:
    """COCO keypoint AP/AR of a results list against `ann_file` (`cocoeval_stats`) and the per-keypoint
    breakdown, over `image_ids` (default: every image of the file). Empty results give zeros and a
    warning; results for images that the file does not have raise DehrnetError."""
    start = time.perf_counter()
    gt = load_coco_gt(ann_file)
    loaded = time.perf_counter()
    scored = _score(results, gt, image_ids, "results")
    scored.timings = {"load": loaded - start, "scoring": time.perf_counter() - loaded}
    return scored


def read_coco_results(path: Path) -> list[dict]:
    """A COCO results json (the list that COCOeval's loadRes takes); checked when scored."""
    return _read_json(path, "results", "--coco-results")


class GroundTruthBoxes:
    """Person boxes from the annotations, as the official loader: crowd and keypoint-less people skipped,
    boxes cleaned by `clean_gt_box` (dropped unless area > 0), score 1. Called like any detector."""

    def __init__(self, gt: COCO) -> None:
        self.gt = gt

    def boxes_xywh(self, image_id: int) -> np.ndarray:
        """(N, 4) float64 cleaned boxes x, y, w, h (image pixels) of one image."""
        image = self.gt.imgs[image_id]
        boxes = []
        for ann in self.gt.loadAnns(self.gt.getAnnIds(imgIds=image_id, iscrowd=False)):
            box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
            if box is not None and max(ann["keypoints"]) > 0:
                boxes.append(box)
        return np.asarray(boxes, np.float64).reshape(-1, 4)

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        out = []
        for image_id in image_ids:
            xywh = self.boxes_xywh(image_id)
            xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            out.append(Detections(xyxy, np.ones(len(xyxy), np.float32)))
        return out


class _PhaseTimer:
    """Seconds spent per phase: `with timer("read"): ...` adds to seconds["read"]."""

    def __init__(self, phases: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(phases, 0.0)

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start


def _nms(poses: Poses, settings: TopDownSettings, sigmas: np.ndarray) -> Poses:
    """Per-image OKS-NMS exactly as `TopDownEstimator.estimate` (float64 rescored order, enlarged-box areas)."""
    if settings.oks_thr is None or len(poses) <= 1:
        return poses
    scores = rescore(poses.kpt_scores, poses.box_scores, settings.kpt_score_thr)
    return poses.select(oks_nms(poses.keypoints_xy, scores, poses.areas, settings.oks_thr, sigmas))


def _progress(enabled: bool) -> Any:
    """A rich progress bar on stderr; disabled when not asked for or stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err_console, transient=True,
                    disable=not (enabled and err_console.is_terminal))


def _image_paths(gt: COCO, image_ids: list[int], images_dir: Path, ann_file: Path) -> list[Path]:
    if not Path(images_dir).is_dir():
        raise DehrnetError(f"image folder {images_dir}: no such folder")
    paths = [Path(images_dir) / gt.imgs[i]["file_name"] for i in image_ids]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DehrnetError(f"{missing[0]}: image listed in {ann_file} is missing ({len(missing)} missing in all); "
                           "give the image folder that matches the annotation file")
    return paths


def run_coco_eval(
    topdown: TopDownEstimator,
    images_dir: Path,
    ann_file: Path,
    boxes: str | Path | Detector = "gt",
    limit: int | None = None,
    progress: bool = True,
    frames_per_batch: int = 8,
) -> CocoEvalResult:
    """Run the model over the images of `ann_file` and score it with the official protocol.

    boxes: "gt" (`GroundTruthBoxes`), a Path to a COCO person-detections json (all boxes used, as
    IMAGE_THRE 0), or any detector object. `limit` evaluates the first N images (annotation order);
    the crops of `frames_per_batch` images go through `topdown.estimate` together. Rescoring and OKS-NMS
    follow `topdown.settings` (NMS timed on its own). Timings: load, read, detect, inference, nms, scoring.
    """
    timer = _PhaseTimer(("load", "read", "detect", "inference", "nms", "scoring"))
    start = time.perf_counter()
    gt = load_coco_gt(ann_file)
    names = _keypoint_names(gt)
    if topdown.spec.num_keypoints != len(names):
        raise DehrnetError(f"the model predicts {topdown.spec.num_keypoints} keypoints but {ann_file} has "
                           f"{len(names)}: use a COCO-17 model for COCO evaluation")
    image_ids = gt.getImgIds()[:limit] if limit is not None else gt.getImgIds()
    paths = _image_paths(gt, image_ids, images_dir, ann_file)
    detector: Detector = GroundTruthBoxes(gt) if isinstance(boxes, str) and boxes == "gt" else \
        BoxesFileDetector(Path(boxes)) if isinstance(boxes, (str, Path)) else boxes
    settings = topdown.settings
    no_nms = TopDownEstimator(topdown.backend, replace(settings, oks_thr=None))
    timer.seconds["load"] = time.perf_counter() - start
    results: list[dict] = []
    with _progress(progress) as bar:
        task = bar.add_task("evaluating", total=len(image_ids))
        step = max(1, frames_per_batch)
        for first in range(0, len(image_ids), step):
            ids, batch_paths = image_ids[first:first + step], paths[first:first + step]
            with timer("read"):
                frames = [Frame(first + n, read_image(p), p) for n, p in enumerate(batch_paths)]
            with timer("detect"):
                detections = detector(frames, ids)
            with timer("inference"):
                all_poses = no_nms.estimate([f.image for f in frames], detections)
            with timer("nms"):
                for image_id, poses in zip(ids, all_poses):
                    results.extend(poses_to_results(_nms(poses, settings, no_nms.sigmas), image_id))
            bar.advance(task, len(ids))
    with timer("scoring"):
        scored = _score(results, gt, image_ids, "predictions")
    scored.timings = dict(timer.seconds)
    return scored


# ------------------------------------------------------------------------------------------------ MPII

MPII_GROUPS = {"Head": (9,), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15), "Hip": (2, 3),
               "Knee": (1, 4), "Ankle": (0, 5)}  # MPII joint indices; Head is head_top only, as the official code
MPII_MEAN_EXCLUDED = (6, 7)  # pelvis and thorax do not count in Mean
MPII_HEAD_FACTOR = 0.6  # head size = 0.6 x head-box diagonal (official SC_BIAS)
MPII_OFFICIAL_LOW_THR = float(np.arange(0, 0.5 + 0.01, 0.01)[11])  # the official "Mean@0.1" reads rng[11] = 0.11


def load_mpii_annotations(ann_file: Path) -> list[dict]:
    """The per-person MPII json (official HRNet / mmpose layout): image, center, scale, joints (16 x [x, y],
    1-based pixels), joints_vis (16 flags)."""
    people = _read_json(ann_file, "MPII annotation", "--ann")
    for n, person in enumerate(people if isinstance(people, list) else [None]):
        ok = isinstance(person, dict) and {"image", "center", "scale", "joints", "joints_vis"} <= person.keys()
        if not ok or np.shape(person["joints"]) != (16, 2) or np.shape(person["joints_vis"]) != (16,):
            raise DehrnetError(f"--ann {ann_file}: entry {n} is not an MPII person (image, center, scale, 16 joints "
                               "and 16 joints_vis, as annot/valid.json)")
    return people


def load_headboxes(path: Path, annotations: list[dict]) -> np.ndarray:
    """Head boxes (N, 2, 2) [[x1, y1], [x2, y2]] in annotation order.

    Supported: the official `gt_valid.mat` (its `headboxes_src`, 2 x 2 x N; needs scipy), a json list of
    N boxes in annotation order, or a json dict {image name: box} (one person per image) or {image name:
    [box, box, ...]} (that image's people in annotation order).
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        if not path.is_file():
            raise DehrnetError(f"--headboxes {path}: no such file")
        try:
            from scipy.io import loadmat
        except ImportError:
            raise DehrnetError(f"--headboxes {path}: reading .mat files needs scipy (pip install scipy), or give the "
                               "head boxes as json") from None
        try:
            boxes = np.transpose(np.asarray(loadmat(str(path))["headboxes_src"], np.float64), (2, 0, 1))
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise DehrnetError(f"--headboxes {path}: not an MPII gt_valid.mat with headboxes_src ({e})") from None
    else:
        doc = _read_json(path, "head-box", "--headboxes")
        try:
            boxes = _headboxes_by_image(doc, annotations) if isinstance(doc, dict) else np.asarray(doc, np.float64)
        except (ValueError, TypeError):
            boxes = np.zeros(0)
    if boxes.shape != (len(annotations), 2, 2) or not np.isfinite(boxes).all():
        raise DehrnetError(f"--headboxes {path}: expected one head box [[x1, y1], [x2, y2]] per annotated person "
                           f"({len(annotations)}); got shape {boxes.shape} or missing people")
    return boxes


def _headboxes_by_image(doc: dict, annotations: list[dict]) -> np.ndarray:
    """(N, 2, 2) from {image: box} or {image: [box, ...]}; NaN where a person has no box."""
    taken: dict[str, int] = {}
    rows = []
    for person in annotations:
        name = person["image"]
        n = taken[name] = taken.get(name, -1) + 1
        entry = np.asarray(doc.get(name, np.nan), np.float64)
        entry = entry[None] if entry.shape == (2, 2) else entry
        ok = entry.ndim == 3 and entry.shape[1:] == (2, 2) and n < len(entry)
        rows.append(entry[n] if ok else np.full((2, 2), np.nan))
    return np.asarray(rows).reshape(-1, 2, 2)


def _mpii_table(pckh: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    """Groups (mean of left and right) and the official Mean: per-joint PCKh weighted by the number of
    labelled joints, pelvis and thorax excluded. Groups without labels are None."""
    table: dict[str, float | None] = {}
    for group, joints in MPII_GROUPS.items():
        values = pckh[list(joints)]
        table[group] = float(values.mean()) if np.isfinite(values).all() else None
    weights = counts.astype(np.float64)
    weights[list(MPII_MEAN_EXCLUDED)] = 0
    table["Mean"] = float(np.sum(np.nan_to_num(pckh) * weights / weights.sum())) if weights.sum() else None
    return table


def score_mpii(preds: np.ndarray, annotations: list[dict], headboxes: np.ndarray) -> dict:
    """PCKh as the official MPII evaluation (HRNet `MPIIDataset.evaluate`).

    preds (N, 16, 2) 0-based image pixels, in annotation order; headboxes (N, 2, 2). A joint is correct
    when its distance to the ground truth <= thr x 0.6 x head-box diagonal; unlabelled joints
    (joints_vis 0) are skipped. Returns {"PCKh@0.5": groups + Mean, "PCKh@0.1": groups + Mean,
    "Mean@0.1 (official)": the official code's number, which reads threshold 0.11, "per_joint@0.5":
    {joint: PCKh}, "num_people"}. Values are percentages.
    """
    preds_arr = np.asarray(preds, np.float64)
    if preds_arr.shape != (len(annotations), 16, 2) or np.shape(headboxes) != (len(annotations), 2, 2):
        raise DehrnetError(f"MPII predictions {preds_arr.shape} and head boxes {np.shape(headboxes)} do not match "
                           f"the {len(annotations)} annotated people; expected (N, 16, 2) and (N, 2, 2)")
    gt = np.asarray([p["joints"] for p in annotations], np.float64)  # 1-based, as the official pos_gt_src
    visible = np.asarray([p["joints_vis"] for p in annotations], np.float64) > 0
    errors = np.linalg.norm(preds_arr + 1.0 - gt, axis=2)  # official: preds + 1 against 1-based gt
    head_sizes = np.linalg.norm(np.asarray(headboxes)[:, 1] - np.asarray(headboxes)[:, 0], axis=1) * MPII_HEAD_FACTOR
    scaled = errors / head_sizes[:, None] * visible
    counts = visible.sum(axis=0)

    def pckh(thr: float) -> np.ndarray:
        hits = ((scaled <= thr) & visible).sum(axis=0)
        return np.divide(100.0 * hits, counts, out=np.full(16, np.nan), where=counts > 0)

    at_05 = pckh(0.5)
    from models.keypoints import MPII16

    return {"PCKh@0.5": _mpii_table(at_05, counts), "PCKh@0.1": _mpii_table(pckh(0.1), counts),
            "Mean@0.1 (official)": _mpii_table(pckh(MPII_OFFICIAL_LOW_THR), counts)["Mean"],
            "per_joint@0.5": {name: None if np.isnan(v) else float(v) for name, v in zip(MPII16.names, at_05)},
            "num_people": len(annotations)}


def mpii_center_scale(person: dict) -> tuple[np.ndarray, np.ndarray]:
    """The official MPII test crop of one annotated person: center moved down 15 x scale px, scale x1.25
    (unless center x is -1), then 1-based -> 0-based. Returns center (2,) image pixels, scale (2,) (200 px)."""
    center = np.asarray(person["center"], np.float64).copy()
    scale = np.asarray([person["scale"], person["scale"]], np.float64)
    if center[0] != -1:
        center[1] += 15 * scale[1]
        scale = scale * 1.25
    return center - 1, scale


def read_mpii_results(path: Path, annotations: list[dict]) -> np.ndarray:
    """Predictions (N, 16, 2) 0-based of a results json in annotation order: a list of {"image", "joints"}
    (16 [x, y], 1-based MPII pixels, as written by --save-results) or of bare 16 x [x, y] lists."""
    doc = _read_json(path, "MPII results", "--mpii-results")
    entries = doc if isinstance(doc, list) else []
    joints = [e.get("joints") if isinstance(e, dict) else e for e in entries]
    if len(joints) != len(annotations) or any(np.shape(j) != (16, 2) for j in joints):
        raise DehrnetError(f"--mpii-results {path}: expected {len(annotations)} predictions of 16 [x, y] joints in "
                           "annotation order")
    for n, (entry, person) in enumerate(zip(entries, annotations)):
        if isinstance(entry, dict) and entry.get("image", person["image"]) != person["image"]:
            raise DehrnetError(f"--mpii-results {path}: entry {n} is for {entry['image']} but the annotations have "
                               f"{person['image']} there: the files do not match")
    return np.asarray(joints, np.float64) - 1.0


def run_mpii_eval(topdown: TopDownEstimator, mpii_dir: Path, ann_json: Path, headboxes: Path | np.ndarray,
                  progress: bool = True, limit: int | None = None) -> dict:
    """Run a 16-joint model on every annotated MPII person (official crop, flip test and decoding of
    `topdown`) and score it. mpii_dir: the image folder; `limit`: only the first N people. Returns
    `score_mpii`'s dict plus "predictions" ({"image", "joints" 1-based, "scores"} per person, the
    --save-results format) and "timings"."""
    if topdown.spec.num_keypoints != 16:
        raise DehrnetError(f"the model predicts {topdown.spec.num_keypoints} keypoints; MPII PCKh needs a 16-joint "
                           "MPII model (e.g. hrnet_w32_mpii_256x256)")
    timer = _PhaseTimer(("read", "inference", "scoring"))
    annotations = load_mpii_annotations(ann_json)
    boxes = headboxes if isinstance(headboxes, np.ndarray) else load_headboxes(headboxes, annotations)
    annotations, boxes = annotations[:limit], boxes[:limit]
    if not Path(mpii_dir).is_dir():
        raise DehrnetError(f"image folder {mpii_dir}: no such folder")
    preds = np.zeros((len(annotations), 16, 2), np.float32)
    scores = np.zeros((len(annotations), 16), np.float32)
    by_image: dict[str, list[int]] = {}
    for n, person in enumerate(annotations):
        by_image.setdefault(person["image"], []).append(n)
    with _progress(progress) as bar:
        task = bar.add_task("evaluating", total=len(annotations))
        for image_name, rows in by_image.items():
            with timer("read"):
                image = read_image(Path(mpii_dir) / image_name)
            with timer("inference"):
                centers, scales = (np.asarray(v) for v in zip(*(mpii_center_scale(annotations[n]) for n in rows)))
                heatmaps = topdown.heatmaps(warp_crops(image, centers, scales, topdown.config.input_size))
                preds[rows], scores[rows] = topdown.codec.decode_to_image(heatmaps, centers, scales)
            bar.advance(task, len(rows))
    with timer("scoring"):
        scored = score_mpii(preds, annotations, boxes)
    scored["predictions"] = [{"image": p["image"], "joints": (preds[n].astype(np.float64) + 1.0).tolist(),
                              "scores": scores[n].round(5).tolist()} for n, p in enumerate(annotations)]
    scored["timings"] = dict(timer.seconds)
    return scored
