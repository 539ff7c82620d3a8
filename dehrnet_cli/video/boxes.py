"""Person boxes for the next frame from this frame's keypoints (between detections with --det-every), and
matching the pose stage's boxes back to the tracker's rows. Coordinates are image pixels.
"""

from __future__ import annotations

import numpy as np


def boxes_from_keypoints(keypoints_xy: np.ndarray, kpt_scores: np.ndarray, image_size: tuple[int, int],
                         kpt_thr: float = 0.3, expand: float = 1.25, min_size: float = 32.0,
                         min_kpts: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes for the next frame from this frame's keypoints (what real-time pipelines run between
    detections). The box of each person's confident joints (score >= kpt_thr) is scaled by `expand`
    about its centre (joints lie inside the body outline, e.g. the head top is above the eyes), grown to
    at least `min_size` pixels a side and clipped to the image (w, h).

    keypoints_xy (N, K, 2), kpt_scores (N, K). Returns boxes_xyxy (M, 4) float32 and rows (M,) int64,
    the people kept: those with at least `min_kpts` confident joints and a box inside the image.
    """
    width, height = image_size
    boxes, rows = [], []
    for n in range(len(keypoints_xy)):
        confident = (kpt_scores[n] >= kpt_thr) & np.isfinite(keypoints_xy[n]).all(axis=1)
        if confident.sum() < min_kpts:
            continue
        points = keypoints_xy[n][confident]
        (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half_w = max((x2 - x1) * expand, min_size) / 2
        half_h = max((y2 - y1) * expand, min_size) / 2
        box = np.clip([cx - half_w, cy - half_h, cx + half_w, cy + half_h], 0, [width, height, width, height])
        if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
            boxes.append(box)
            rows.append(n)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(rows, np.int64)


def source_rows(pose_boxes: np.ndarray, det_boxes: np.ndarray) -> np.ndarray:
    """For each pose box (N, 4), the row of the detection box (M, 4) it came from (the pose stage copies
    boxes and may drop or reorder people by OKS-NMS): the closest unused box, exact in practice."""
    rows = np.full(len(pose_boxes), -1, np.int64)
    free = np.ones(len(det_boxes), bool)
    for n, box in enumerate(np.asarray(pose_boxes, np.float64)):
        dist = np.abs(np.asarray(det_boxes, np.float64) - box).sum(axis=1)
        dist[~free] = np.inf
        if len(dist) and np.isfinite(dist.min()):
            rows[n] = int(np.argmin(dist))
            free[rows[n]] = False
    return rows
