"""Running a model over an evaluation set: COCO images with ground-truth boxes, a detections file or a
detector, then COCOeval; MPII people with their official crops, then PCKh. Times every phase.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from dehrnet_cli.datasets.mpii import load_mpii_annotations, mpii_center_scale
from dehrnet_cli.datasets.records import rows_by_image
from dehrnet_cli.detect.base import Detector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.coco import CocoEvalResult, eval_category, load_coco_gt, score_results
from dehrnet_cli.eval.mpii import load_headboxes, score_mpii
from dehrnet_cli.pose.geometry import clean_gt_box
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.progress import progress_bar
from dehrnet_cli.sinks.coco import ImageIds, poses_to_results
from dehrnet_cli.sources.images import read_image
from dehrnet_cli.stage_data import Detections, Frame


class GroundTruthBoxes:
    """Person boxes from the annotations, as the official loader: crowd and keypoint-less people skipped,
    boxes cleaned by `clean_gt_box` (dropped unless area > 0), score 1; only those of `category_id` when
    given. Called like any detector."""

    def __init__(self, gt: COCO, category_id: int | None = None) -> None:
        self.gt = gt
        self.category_ids = [] if category_id is None else [category_id]
        self.ids = ImageIds.of_images(gt.dataset["images"])

    def boxes_xywh(self, image_id: int) -> np.ndarray:
        """(N, 4) float64 cleaned boxes x, y, w, h (image pixels) of one image."""
        image = self.gt.imgs[image_id]
        boxes = []
        for ann in self.gt.loadAnns(self.gt.getAnnIds(imgIds=image_id, catIds=self.category_ids, iscrowd=False)):
            box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
            if box is not None and max(ann["keypoints"]) > 0:
                boxes.append(box)
        return np.asarray(boxes, np.float64).reshape(-1, 4)

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            xywh = self.boxes_xywh(self.ids(frame.path, frame.index))
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


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

    return progress_bar("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), enabled=enabled, transient=True)


def _image_paths(gt: COCO, image_ids: list[int], images_dir: Path, ann_file: Path | str) -> list[Path]:
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
    ann_file: Path | dict,
    boxes: str | Path | Detector = "gt",
    limit: int | None = None,
    progress: bool = True,
    frames_per_batch: int = 8,
    category: str | None = None,
) -> CocoEvalResult:
    """Run the model over the images of `ann_file` (a file, or a COCO document in memory) and score it with the
    official protocol, on the keypoint category called `category`, else the file's only one, else the one with
    the model's keypoint names (its sigmas: `eval.coco.eval_category`).

    boxes: "gt" (`GroundTruthBoxes`), a Path to a COCO person-detections json (all boxes used, as
    IMAGE_THRE 0), or any detector object. `limit` evaluates the first N images (annotation order);
    the crops of `frames_per_batch` images go through `topdown.estimate` together. Rescoring and OKS-NMS
    follow `topdown.settings` (NMS timed on its own). Timings: load, read, detect, inference, nms, scoring.
    """
    timer = _PhaseTimer(("load", "read", "detect", "inference", "nms", "scoring"))
    start = time.perf_counter()
    gt = load_coco_gt(ann_file)
    source = "the annotations" if isinstance(ann_file, dict) else str(ann_file)
    evaluated = eval_category(gt, source, category, topdown.spec)
    if topdown.spec.num_keypoints != len(evaluated.names):
        raise DehrnetError(f"the model predicts {topdown.spec.num_keypoints} keypoints ({topdown.spec.name}) but "
                           f"{source} has {len(evaluated.names)}: evaluate a model of this keypoint set")
    image_ids = gt.getImgIds()[:limit] if limit is not None else gt.getImgIds()
    paths = _image_paths(gt, image_ids, images_dir, source)
    detector: Detector = GroundTruthBoxes(gt, evaluated.id) if isinstance(boxes, str) and boxes == "gt" else \
        BoxesFileDetector(Path(boxes)) if isinstance(boxes, (str, Path)) else boxes
    if isinstance(detector, BoxesFileDetector):  # boxes of another split: one clear line, not AP 0 at the end
        detector.for_source(paths, None, f"the images of {source}", ImageIds.of_images(gt.dataset["images"]))
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
                detections = detector(frames)
            with timer("inference"):
                all_poses = no_nms.estimate([f.image for f in frames], detections)
            with timer("nms"):
                for image_id, poses in zip(ids, all_poses):
                    results.extend({**r, "category_id": evaluated.id}
                                   for r in poses_to_results(topdown.suppress(poses), image_id))
            bar.advance(task, len(ids))
    if isinstance(detector, BoxesFileDetector):
        detector.warn_outside()
    with timer("scoring"):
        scored = score_results(results, gt, image_ids, "predictions", evaluated)
    scored.timings = dict(timer.seconds)
    return scored


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
    with _progress(progress) as bar:
        task = bar.add_task("evaluating", total=len(annotations))
        for image_name, rows in rows_by_image([p["image"] for p in annotations]).items():
            with timer("read"):
                image = read_image(Path(mpii_dir) / image_name)
            with timer("inference"):
                centers, scales = (np.asarray(v) for v in zip(*(mpii_center_scale(annotations[n]) for n in rows)))
                _, preds[rows], scores[rows] = topdown.keypoints_at(image, centers, scales)
            bar.advance(task, len(rows))
    with timer("scoring"):
        scored = score_mpii(preds, annotations, boxes)
    scored["predictions"] = [{"image": p["image"], "joints": (preds[n].astype(np.float64) + 1.0).tolist(),
                              "scores": scores[n].round(5).tolist()} for n, p in enumerate(annotations)]
    scored["timings"] = dict(timer.seconds)
    return scored
