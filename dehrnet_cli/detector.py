"""Person boxes for the top-down stage: ultralytics YOLO, a COCO detections file, OpenCV's HOG people
detector, or the whole image. Every detector maps (frames, image ids) -> one `Detections` per frame.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import DehrnetError
from .types import Detections, Frame

DETECTORS = ("yolo", "none", "hog")
PERSON_CLASS = 0  # COCO class index of 'person' in YOLO models
DEFAULT_YOLO = "yolo11n.pt"
DEFAULT_YOLO_CONF = 0.25


class Detector(Protocol):
    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]: ...


def _offline() -> bool:
    flags = (os.environ.get("DEHRNET_OFFLINE", ""), os.environ.get("YOLO_OFFLINE", ""))
    return any(v.strip().lower() not in ("", "0", "false", "no") for v in flags)


def _keep_top(det: Detections, max_people: int | None) -> Detections:
    if max_people is None or len(det) <= max_people:
        return det
    order = np.argsort(-det.scores, kind="stable")[:max_people]
    return Detections(det.boxes_xyxy[order], det.scores[order])


class WholeImageDetector:
    """One box per frame covering the whole image (score 1): for single-person crops."""

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        return [Detections(np.array([[0, 0, *f.size]], np.float32), np.ones(1, np.float32)) for f in frames]


HOG_WINDOW_WH = (64, 128)  # the default people detector's window, in pixels


class HogDetector:
    """OpenCV's built-in HOG + linear SVM people detector: weak, but needs no download.

    An image smaller than its 64x128 window gets no boxes: OpenCV 4's detectMultiScale corrupts
    memory (segfault, abort) on such images instead of raising."""

    def __init__(self, conf: float = 0.0, max_people: int | None = None) -> None:
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.conf = conf
        self.max_people = max_people

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        out = []
        for frame in frames:
            if frame.size[0] < HOG_WINDOW_WH[0] or frame.size[1] < HOG_WINDOW_WH[1]:
                out.append(Detections.empty())
                continue
            rects, weights = self.hog.detectMultiScale(frame.image, winStride=(8, 8), padding=(8, 8), scale=1.05)
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            scores = 1 / (1 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))  # SVM margin -> (0, 1)
            boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            keep = scores >= self.conf
            out.append(_keep_top(Detections(boxes[keep], scores[keep]), self.max_people))
        return out


class BoxesFileDetector:
    """Boxes from a COCO detections list (image_id, category_id, bbox [x, y, w, h], score)."""

    def __init__(self, path: Path, conf: float = 0.0, max_people: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise DehrnetError(f"--boxes {path}: no such file")
        try:
            entries = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DehrnetError(f"--boxes {path}: not valid JSON ({e})") from None
        if not isinstance(entries, list):
            raise DehrnetError(f"--boxes {path}: expected a COCO detections list [{{image_id, bbox, score}}, ...]")
        self.by_image: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
        for n, entry in enumerate(entries):
            try:
                if entry.get("category_id", 1) != 1:
                    continue
                x, y, w, h = (float(v) for v in entry["bbox"])
                score = float(entry.get("score", 1.0))
                image_id = int(entry["image_id"])
            except (KeyError, TypeError, ValueError, AttributeError):
                raise DehrnetError(f"--boxes {path}: entry {n} lacks image_id/bbox [x, y, w, h]/score") from None
            if score >= conf:
                self.by_image[image_id].append(([x, y, x + w, y + h], score))
        self.path = path
        self.max_people = max_people

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        out = []
        for image_id in image_ids:
            rows = self.by_image.get(image_id, [])
            boxes = np.array([r[0] for r in rows], np.float64).reshape(-1, 4)
            out.append(_keep_top(Detections(boxes, np.array([r[1] for r in rows], np.float32)), self.max_people))
        return out


class YoloPersonDetector:
    """ultralytics YOLO, person class only, batched over frames."""

    def __init__(self, weights: str = DEFAULT_YOLO, conf: float = DEFAULT_YOLO_CONF, iou: float = 0.7,
                 max_people: int | None = None, device: str = "auto") -> None:
        weights = self._locate(weights)
        from ultralytics import YOLO

        try:
            self.model = YOLO(weights)
        except Exception as e:  # ultralytics raises many types for missing/corrupt files and failed downloads
            reason = str(e).replace("❌", "").strip().splitlines()[0][:160]
            raise DehrnetError(f"--det-model {weights}: cannot load it ({reason}): place the file in this folder "
                               f"or give its path, {self._alternatives()}") from None
        self.conf, self.iou, self.max_people = conf, iou, max_people
        self.device = None if device == "auto" else device

    @staticmethod
    def _alternatives() -> str:
        return "or take boxes from a file with --boxes dets.json, or use --detector none (whole image) or hog"

    @classmethod
    def _locate(cls, weights: str) -> str:
        """A usable path or name for YOLO(); fails fast offline when the file is nowhere to be found."""
        if weights.endswith((".yaml", ".yml")) or Path(weights).exists():
            return weights
        from .weights import load_detectors, weights_dir

        cached = weights_dir() / Path(weights).name
        if cached.exists():
            return str(cached)
        if Path(weights).parent != Path(".") or _offline():
            where = weights if Path(weights).parent != Path(".") else f"./{weights} or {cached}"
            known = load_detectors().get(Path(weights).name)
            source = f" (download it from {known.url})" if known else ""
            raise DehrnetError(f"detector weights {weights} not found and dehrnet is offline: place the file at "
                               f"{where}{source}, {cls._alternatives()}")
        return weights  # ultralytics downloads its own assets on first use

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        import torch

        threads = torch.get_num_threads()  # ultralytics' select_device lowers it to cores - 1 for good
        try:
            results = self.model.predict([f.image for f in frames], classes=[PERSON_CLASS], conf=self.conf,
                                         iou=self.iou, max_det=self.max_people or 300, device=self.device,
                                         verbose=False)
        finally:
            torch.set_num_threads(threads)
        out = []
        for r in results:
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            out.append(_keep_top(Detections(boxes, scores), self.max_people))
        return out


def make_detector(kind: str = "yolo", *, boxes: Path | None = None, det_model: str = DEFAULT_YOLO,
                  conf: float | None = None, iou: float = 0.7, max_people: int | None = None,
                  device: str = "auto") -> Detector:
    """The detector the flags ask for; `boxes` (a detections file) wins over `kind`."""
    if boxes is not None:
        return BoxesFileDetector(boxes, conf or 0.0, max_people)
    if kind == "none":
        return WholeImageDetector()
    if kind == "hog":
        return HogDetector(conf or 0.0, max_people)
    if kind == "yolo":
        return YoloPersonDetector(det_model, DEFAULT_YOLO_CONF if conf is None else conf, iou, max_people, device)
    raise DehrnetError(f"--detector {kind!r}: use one of {', '.join(DETECTORS)} (or --boxes FILE)")
