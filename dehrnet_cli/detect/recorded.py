"""A detector whose boxes are kept, so that a second pose model runs on exactly the same ones (`eval --compare`
of two models: the detector may run on another engine, or not be deterministic, the second time)."""

from __future__ import annotations

from dehrnet_cli.detect.base import Detector
from dehrnet_cli.errors import InternalError
from dehrnet_cli.stage_data import Detections, Frame


class RecordingDetector:
    """`detector`, its detections kept per frame index, in the order of its calls."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.detections: dict[int, Detections] = {}

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        found = self.detector(frames)
        self.detections.update((frame.index, dets) for frame, dets in zip(frames, found))
        return found

    def replay(self) -> ReplayDetector:
        return ReplayDetector(dict(self.detections))


class ReplayDetector:
    """The detections a RecordingDetector kept, given again for the same frames (by frame index)."""

    def __init__(self, detections: dict[int, Detections]) -> None:
        self.detections = detections

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        missing = [frame.index for frame in frames if frame.index not in self.detections]
        if missing:
            raise InternalError(f"no recorded boxes for frames {missing[:5]}: the replay must see the recorded frames")
        return [self.detections[frame.index] for frame in frames]
