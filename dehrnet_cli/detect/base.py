"""What every person detector is: `frames -> one Detections per frame`; the whole-image
"detector" (one box per frame) and the top-N rule they share.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from dehrnet_cli.stage_data import Detections, Frame


class Detector(Protocol):
    def __call__(self, frames: list[Frame]) -> list[Detections]: ...


def keep_top(det: Detections, max_people: int | None) -> Detections:
    """The `max_people` highest-scoring boxes of `det` (ties in their order), or all of them when None."""
    if max_people is None or len(det) <= max_people:
        return det
    order = np.argsort(-det.scores, kind="stable")[:max_people]
    return Detections(det.boxes_xyxy[order], det.scores[order])


class WholeImageDetector:
    """One box per frame covering the whole image (score 1): for single-person crops."""

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        return [Detections(np.array([[0, 0, *f.size]], np.float32), np.ones(1, np.float32)) for f in frames]
