"""The detector a `DetectorSpec` asks for: a COCO detections file, YOLO, HOG or the whole image; and, with
`--det-engine auto`, YOLO moved onto OpenVINO when the pose network runs there."""

from __future__ import annotations

from collections.abc import Callable

from dehrnet_cli.detect.base import Detector, WholeImageDetector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.hog import HogDetector
from dehrnet_cli.detect.safe_load import detector_format
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import DEFAULT_YOLO_CONF, YoloPersonDetector
from dehrnet_cli.errors import DehrnetError


def make_detector(spec: DetectorSpec, device: str = "auto") -> Detector:
    """The detector `spec` asks for (a boxes file wins over `spec.kind`); YOLO runs on `device`, through torch
    unless spec.engine is "openvino" (auto starts on torch: see follow_pose_engine)."""
    if spec.boxes is not None:
        return BoxesFileDetector(spec.boxes, spec.conf or 0.0, spec.max_people, spec.ann)
    if spec.kind == "none":
        return WholeImageDetector()
    if spec.kind == "hog":
        return HogDetector(spec.conf or 0.0, spec.max_people)
    return YoloPersonDetector(spec.model, DEFAULT_YOLO_CONF if spec.conf is None else spec.conf, spec.iou,
                              spec.max_people, device, engine="openvino" if spec.engine == "openvino" else "torch")


def follow_pose_engine(detector: Detector, spec: DetectorSpec, pose_engine: str, pose_precision: str,
                       log: Callable[[str], None]) -> None:
    """With spec.engine "auto": move a YOLO detector read from a .pt file onto ultralytics' OpenVINO export when
    the pose network runs on OpenVINO (the job is long and on the CPU, so the one-time export of a few seconds is
    repaid: yolo26n took 7-10 ms a 1280x720 frame there against 30-45 ms with torch, docs/benchmarks.md), unless
    --precision fp32 was asked (OpenVINO computes in bf16 on CPUs with bf16 units: boxes within 0.7 px). An export
    that cannot be made leaves it on torch, with a note. `pose_precision`: the precision the run asked for."""
    if spec.engine != "auto" or not isinstance(detector, YoloPersonDetector) or detector.engine != "torch":
        return
    if pose_engine != "openvino" or pose_precision == "fp32" or detector_format(spec.model) != "pt":
        return
    try:
        detector.use_openvino()
    except DehrnetError as e:
        log(f"detector: torch ({e})")
        return
    log("detector: OpenVINO (ultralytics' export of the YOLO weights, cached beside them), as the pose network")
