"""Pose post-processing of the official HRNet evaluation: rescoring and greedy OKS-NMS (public API).

Shape letters: N person candidates of one image, K keypoints. Keypoints are in image pixels.
"""

from __future__ import annotations

import numpy as np

from dehrnet_cli.errors import DehrnetError
from models.keypoints import COCO17, KeypointSpec

UNIFORM_SIGMA = 0.5
"""OKS sigma (COCO scale, before /10) that `oks_sigmas` gives every keypoint of a set without sigmas."""


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


def oks_sigmas(spec: KeypointSpec) -> np.ndarray:
    """OKS sigmas (K,) of a keypoint set (COCO scale, before /10): its own, else UNIFORM_SIGMA for all."""
    if spec.sigmas:
        return np.asarray(spec.sigmas, dtype=np.float64)
    return np.full(spec.num_keypoints, UNIFORM_SIGMA)


def oks_nms(
    kpts: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    thr: float = 0.9,
    sigmas: np.ndarray | None = None,
) -> np.ndarray:
    """Indices (int64) of the candidates kept by the official greedy OKS-NMS, best score first.

    kpts (N, K, 2) or (N, K, 3) image pixels (a third column is ignored: no visibility filter),
    scores (N,) (rescored), areas (N,) (`box_areas`). Order = scores.argsort()[::-1]; the top candidate
    is kept and every other with OKS > thr against it is dropped; repeat. OKS per pair: mean over all
    K joints of exp(-d^2 / (2 sigma/10)^2 / (mean area + eps) / 2), eps = np.spacing(1).
    sigmas: (K,) on the COCO scale before /10; default the COCO-17 sigmas (use `oks_sigmas(spec)`
    for another keypoint set).
    """
    points = np.asarray(kpts)
    score_arr = np.asarray(scores)
    area_arr = np.asarray(areas, dtype=np.float64)
    num = len(score_arr)
    points_ok = points.ndim == 3 and points.shape[0] == num and points.shape[2] in (2, 3)
    if not points_ok or area_arr.shape != (num,):
        raise DehrnetError(
            f"oks_nms got keypoints {points.shape}, scores {score_arr.shape}, areas {area_arr.shape};"
            " expected (N, K, 2 or 3), (N,), (N,)"
        )
    sigma_arr = np.asarray(COCO17.sigmas if sigmas is None else sigmas, dtype=np.float64) / 10.0
    if sigma_arr.shape != (points.shape[1],):
        raise DehrnetError(
            f"oks_nms got {points.shape[1]} keypoints but {sigma_arr.size} OKS sigmas;"
            " pass sigmas=oks_sigmas(spec) for a keypoint set other than COCO-17"
        )
    variances = (sigma_arr * 2) ** 2
    xs, ys = points[:, :, 0], points[:, :, 1]
    order = score_arr.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        top, rest = order[0], order[1:]
        keep.append(int(top))
        dx = xs[rest] - xs[top]
        dy = ys[rest] - ys[top]
        mean_area = (area_arr[top] + area_arr[rest]) / 2 + np.spacing(1)
        e = (dx**2 + dy**2) / variances / mean_area[:, None] / 2
        oks = np.sum(np.exp(-e), axis=1) / e.shape[1]
        order = rest[oks <= thr]
    return np.asarray(keep, dtype=np.int64)
