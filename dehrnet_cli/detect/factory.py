"""The detector the user's flags ask for: --boxes FILE, --detector yolo | hog | none."""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.detect.base import Detector, WholeImageDetector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.hog import HogDetector
from dehrnet_cli.detect.yolo import DEFAULT_YOLO, DEFAULT_YOLO_CONF, YoloPersonDetector
from dehrnet_cli.errors import DehrnetError

DETECTORS = ("yolo", "none", "hog")


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
