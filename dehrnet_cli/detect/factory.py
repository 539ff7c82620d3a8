"""The detector a `DetectorSpec` asks for: a COCO detections file, YOLO, HOG or the whole image."""

from __future__ import annotations

from dehrnet_cli.detect.base import Detector, WholeImageDetector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.hog import HogDetector
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import DEFAULT_YOLO_CONF, YoloPersonDetector


def make_detector(spec: DetectorSpec, device: str = "auto") -> Detector:
    """The detector `spec` asks for (a boxes file wins over `spec.kind`); YOLO runs on `device`."""
    if spec.boxes is not None:
        return BoxesFileDetector(spec.boxes, spec.conf or 0.0, spec.max_people, spec.ann)
    if spec.kind == "none":
        return WholeImageDetector()
    if spec.kind == "hog":
        return HogDetector(spec.conf or 0.0, spec.max_people)
    return YoloPersonDetector(spec.model, DEFAULT_YOLO_CONF if spec.conf is None else spec.conf, spec.iou,
                              spec.max_people, device)
