"""`DetectorSpec`: which person boxes a run uses, checked once and without heavy imports (the CLI builds it from
--detector, --det-model, --conf, --iou, --max-people, --boxes, --ann and --det-engine; `detect.factory` makes the
detector)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.errors import DehrnetError

DETECTORS = ("yolo", "none", "hog")
DETECTOR_ENGINE_CHOICES = ("auto", "torch", "openvino")


@dataclass(frozen=True)
class DetectorSpec:
    """kind: "yolo" (an ultralytics model, `model`), "hog" (OpenCV, no download) or "none" (the whole image);
    boxes: a COCO detections file used instead of any detector, its entries looked up by image id (`ann`: the
    annotation file naming the images, else numeric file names); conf: the score threshold (None: the
    detector's default); iou: YOLO's NMS IoU; max_people: the best boxes kept per frame (None: all); engine: what
    runs YOLO: "torch", "openvino" (ultralytics' OpenVINO export, made beside the .pt once) or "auto" (OpenVINO
    when the pose network runs there: detect.factory.follow_pose_engine)."""

    kind: str = "yolo"
    model: str = DEFAULT_YOLO
    conf: float | None = None
    iou: float = 0.7
    max_people: int | None = None
    boxes: Path | None = None
    ann: Path | None = None
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in DETECTORS:
            raise DehrnetError(f"--detector {self.kind!r}: use one of {', '.join(DETECTORS)} (or --boxes FILE)")
        if self.engine not in DETECTOR_ENGINE_CHOICES:
            raise DehrnetError(f"--det-engine {self.engine!r}: use one of {', '.join(DETECTOR_ENGINE_CHOICES)}")
        if self.engine == "openvino" and not self.uses_yolo:
            what = "--boxes gives the boxes" if self.boxes is not None else f"--detector {self.kind} is not YOLO"
            raise DehrnetError(f"--det-engine openvino runs the YOLO detector, and {what}")
        for flag, value in (("--conf", self.conf), ("--iou", self.iou)):
            if value is not None and (math.isnan(value) or not 0 <= value <= 1):
                raise DehrnetError(f"{flag} {value}: must be between 0 and 1")
        if self.max_people is not None and self.max_people < 1:
            raise DehrnetError(f"--max-people {self.max_people}: must be at least 1")

    @property
    def uses_yolo(self) -> bool:
        return self.kind == "yolo" and self.boxes is None

    def check(self, device: str = "auto") -> None:
        """Before any model work, refuse a missing --boxes file, YOLO weights that cannot be found offline, and
        --det-engine openvino where it cannot run (not a .pt file, not on the CPU `device`)."""
        if self.boxes is not None and not Path(self.boxes).expanduser().is_file():
            raise DehrnetError(f"--boxes {self.boxes}: no such file")
        if self.uses_yolo:
            from dehrnet_cli.detect.yolo import locate_yolo_weights, refuse_openvino

            locate_yolo_weights(self.model)
            if self.engine == "openvino":
                refuse_openvino(self.model, device)
