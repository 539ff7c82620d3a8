"""Rescoring of the official HRNet evaluation: a person's score from its keypoint scores and box score, and
the enlarged-box areas OKS-NMS uses. Shape letters: N person candidates of one image, K keypoints.
"""

from __future__ import annotations

import numpy as np

from dehrnet_cli.errors import DehrnetError


def rescore(kpt_scores: np.ndarray, box_scores: np.ndarray, thr: float = 0.2) -> np.ndarray:
    """Person scores (N,) float64: mean of the keypoint scores > thr (0 if none) x box score.

    kpt_scores (N, K) heatmap maxima (float32, as the official results array stores them),
    box_scores (N,). The threshold is strict; the mean runs in float64, as the official evaluate()
    did under the numpy of its time (a Python 0 plus numpy float32 scalars promoted to float64).
    """
    kpt = np.asarray(kpt_scores, dtype=np.float32).astype(np.float64)
    box = np.asarray(box_scores, dtype=np.float64)
    if kpt.ndim != 2 or box.shape != (kpt.shape[0],):
        raise DehrnetError(
            f"rescore got keypoint scores {kpt.shape} and box scores {box.shape}; expected (N, K), (N,)"
        )
    passed = kpt > thr
    count = passed.sum(axis=1)
    total = np.where(passed, kpt, 0.0).sum(axis=1)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return mean * box


def box_areas(scales: np.ndarray) -> np.ndarray:
    """Areas (N,) float64 of the enlarged crop boxes, (scale_w * 200) * (scale_h * 200): what OKS-NMS uses.

    scales (N, 2) in 200 px units; the product runs in float32 as in the official code.
    """
    scales_arr = np.asarray(scales, dtype=np.float32)
    if scales_arr.ndim != 2 or scales_arr.shape[1] != 2:
        raise DehrnetError(f"box_areas got scales {scales_arr.shape}; expected (N, 2)")
    return np.prod(scales_arr * np.float32(200), axis=1).astype(np.float64)
