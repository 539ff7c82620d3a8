"""Plain data exchanged between pipeline stages (numpy inside small frozen dataclasses).

Shape letters: N people, K keypoints. All coordinates are float pixels of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One image of a source: `image` is (H, W, 3) uint8 BGR."""

    index: int  # 0-based position in the source
    image: np.ndarray
    path: Path | None = None  # the image file; None for video, camera and stream frames
    time_s: float | None = None  # presentation time of a video frame

    @property
    def size(self) -> tuple[int, int]:
        """(w, h) in pixels."""
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class Detections:
    """Person boxes of one frame: `boxes_xyxy` (N, 4) float32, `scores` (N,) float32."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass(frozen=True)
class Poses:
    """Poses of one frame.

    boxes_xyxy (N, 4), box_scores (N,), keypoints_xy (N, K, 2), kpt_scores (N, K) (heatmap maxima),
    scores (N,) (rescored: mean of keypoint scores above the threshold x box score), areas (N,) (the
    enlarged crop-box area used by OKS-NMS), track_ids (N,) int64 or None.
    """

    boxes_xyxy: np.ndarray
    box_scores: np.ndarray
    keypoints_xy: np.ndarray
    kpt_scores: np.ndarray
    scores: np.ndarray
    areas: np.ndarray
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray | list[int]) -> Poses:
        """The people at `index`, in that order."""
        index = np.asarray(index, dtype=np.int64)
        ids = None if self.track_ids is None else self.track_ids[index]
        return Poses(self.boxes_xyxy[index], self.box_scores[index], self.keypoints_xy[index],
                     self.kpt_scores[index], self.scores[index], self.areas[index], ids)

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        z = np.zeros
        return cls(z((0, 4), np.float32), z((0,), np.float32), z((0, num_keypoints, 2), np.float32),
                   z((0, num_keypoints), np.float32), z((0,), np.float32), z((0,), np.float32))


FALLBACK_FPS = 30.0  # frame times of sources that know neither times nor a frame rate


class Timed(Protocol):
    """Anything with a frame's index and presentation time (a Frame, a PoseResult)."""

    index: int
    time_s: float | None


def frame_time_s(frame: Timed, fps: float | None) -> float:
    """A frame's time in seconds: its presentation time, else index / fps (FALLBACK_FPS if unknown)."""
    if frame.time_s is not None:
        return float(frame.time_s)
    return frame.index / (fps or FALLBACK_FPS)
