"""The bench's input: a synthetic video (fixed seed) of stick figures standing in fixed person boxes, a
detector that returns those boxes, and poses to render. Coordinates are image pixels; sizes are (w, h).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from dehrnet_cli.stage_data import Detections, Frame, Poses

VIDEO_FPS = 30.0


def person_boxes(size: tuple[int, int], people: int) -> np.ndarray:
    """(people, 4) xyxy float32 image-pixel boxes of standing people side by side across the frame."""
    w, h = size
    box_h = 0.6 * h
    box_w = min(0.4 * box_h, w / people * 0.9)
    centers_x = (np.arange(people) + 0.5) * w / people
    y1 = 0.2 * h
    return np.array([[cx - box_w / 2, y1, cx + box_w / 2, y1 + box_h] for cx in centers_x], np.float32)


def synthetic_frame(texture: np.ndarray, boxes_xyxy: np.ndarray, t: int) -> np.ndarray:
    """Frame `t` (H, W, 3) uint8 BGR: the texture panned 3 px per frame, a swaying stick figure per box."""
    image = np.roll(texture, 3 * t, axis=1)
    for i, (x1, y1, x2, y2) in enumerate(boxes_xyxy):
        bw, bh = x2 - x1, y2 - y1
        cx, sway = (x1 + x2) / 2, 0.1 * bw * math.sin(t / 4 + i)
        width = max(1, round(bw / 12))
        head, neck, hip = (cx + sway, y1 + 0.1 * bh), (cx, y1 + 0.25 * bh), (cx, y1 + 0.55 * bh)
        limbs = [(head, hip), (hip, (x1 + sway, y2)), (hip, (x2 - sway, y2)),
                 (neck, (x1 - sway, y1 + 0.5 * bh)), (neck, (x2 + sway, y1 + 0.5 * bh))]
        for a, b in limbs:
            cv2.line(image, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), (40, 60, 200), width, cv2.LINE_AA)
        cv2.circle(image, (round(head[0]), round(head[1])), max(2, round(bw / 6)), (150, 190, 240), -1, cv2.LINE_AA)
    return image


def write_synthetic_video(path: Path, size: tuple[int, int], frames: int, boxes_xyxy: np.ndarray, seed: int) -> Path:
    """An H.264 video of `frames` synthetic frames (same seed, same pixels) at 30 fps."""
    from dehrnet_cli.sinks.video_writer import VideoWriter

    w, h = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    with VideoWriter(path, VIDEO_FPS, size) as writer:
        for t in range(frames):
            writer.write(synthetic_frame(texture, boxes_xyxy, t))
    return path


class FixedBoxesDetector:
    """The same person boxes (N, 4) xyxy, score 1, on every frame: a detector that costs nothing."""

    def __init__(self, boxes_xyxy: np.ndarray) -> None:
        self.detections = Detections(np.asarray(boxes_xyxy, np.float32), np.ones(len(boxes_xyxy), np.float32))

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        return [self.detections for _ in frames]


def synthetic_poses(boxes_xyxy: np.ndarray, num_keypoints: int, seed: int) -> Poses:
    """Poses with every keypoint visible (score 1) at seeded random places inside each box."""
    rng = np.random.default_rng(seed)
    lo, hi = boxes_xyxy[:, None, :2], boxes_xyxy[:, None, 2:]
    kpts = (lo + rng.random((len(boxes_xyxy), num_keypoints, 2)) * (hi - lo)).astype(np.float32)
    ones = np.ones(len(boxes_xyxy), np.float32)
    return Poses(boxes_xyxy, ones, kpts, np.ones(kpts.shape[:2], np.float32), ones, ones)
