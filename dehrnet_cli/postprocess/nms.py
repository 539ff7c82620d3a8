"""Greedy OKS-NMS of the official HRNet evaluation (public API: dehrnet_cli.postprocess.oks_nms).

Shape letters: N person candidates of one image, K keypoints. Keypoints are in image pixels.
"""

from __future__ import annotations

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.postprocess.oks import mean_oks, oks_terms
from models.keypoints import COCO17


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
    sigma_arr = np.asarray(COCO17.sigmas if sigmas is None else sigmas, dtype=np.float64)
    if sigma_arr.shape != (points.shape[1],):
        raise DehrnetError(
            f"oks_nms got {points.shape[1]} keypoints but {sigma_arr.size} OKS sigmas;"
            " pass sigmas=oks_sigmas(spec) for a keypoint set other than COCO-17"
        )
    order = score_arr.argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        top, rest = order[0], order[1:]
        keep.append(int(top))
        mean_areas = (area_arr[top] + area_arr[rest]) / 2
        oks = mean_oks(oks_terms(points[top][None], points[rest], mean_areas[None], sigma_arr))[0]
        order = rest[oks <= thr]
    return np.asarray(keep, dtype=np.int64)
