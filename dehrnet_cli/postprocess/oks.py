"""Object keypoint similarity (OKS): the one implementation that OKS-NMS, the video tracker and the
evaluation's per-keypoint breakdown share.

COCO's per-joint term is exp(-d^2 / var / (area + eps) / 2) with var = (2 sigma / 10)^2 and eps =
np.spacing(1), computed in that order (as pycocotools and the official HRNet NMS do, so the numbers match
theirs to the last bit); OKS is the mean of the terms over the joints that count.

Shape letters: A, B poses compared, K keypoints. Keypoints are image pixels; sigmas are on the COCO scale
(before the /10 of the COCO code), areas in pixels^2.
"""

from __future__ import annotations

import numpy as np

from models.keypoints import KeypointSpec

UNIFORM_SIGMA = 0.5
"""OKS sigma (COCO scale, before /10) that `oks_sigmas` gives every keypoint of a set without sigmas."""


def oks_sigmas(spec: KeypointSpec) -> np.ndarray:
    """OKS sigmas (K,) of a keypoint set (COCO scale, before /10): its own, else UNIFORM_SIGMA for all."""
    if spec.sigmas:
        return np.asarray(spec.sigmas, dtype=np.float64)
    return np.full(spec.num_keypoints, UNIFORM_SIGMA)


def oks_terms(kpts_a: np.ndarray, kpts_b: np.ndarray, areas: np.ndarray | float, sigmas: np.ndarray) -> np.ndarray:
    """Per-joint OKS terms (A, B, K) float64 between poses kpts_a (A, K, 2+) and kpts_b (B, K, 2+) (columns
    past x, y are ignored); areas: the area each pair is normalised by, broadcastable to (A, B)."""
    # differences in the keypoints' own dtype, as the official NMS
    return _joint_terms(np.asarray(kpts_a)[:, None, :, :2], np.asarray(kpts_b)[None, :, :, :2], areas, sigmas)


def paired_oks_terms(kpts_a: np.ndarray, kpts_b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Per-joint OKS terms (N, K) of the pairs (kpts_a[n], kpts_b[n]), both (N, K, 2+); areas (N,)."""
    return _joint_terms(np.asarray(kpts_a)[..., :2], np.asarray(kpts_b)[..., :2], areas, sigmas)


def _joint_terms(a: np.ndarray, b: np.ndarray, areas: np.ndarray | float, sigmas: np.ndarray) -> np.ndarray:
    """exp(-d^2 / (2 area (2 sigma)^2)) per joint of positions a and b (..., K, 2), broadcast against each other;
    areas broadcastable to their leading shape."""
    variances = (np.asarray(sigmas, np.float64) / 10.0 * 2) ** 2
    d2 = (a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2
    pair_areas = np.broadcast_to(np.asarray(areas, np.float64), d2.shape[:-1])
    return np.exp(-(d2 / variances / (pair_areas[..., None] + np.spacing(1)) / 2))


def mean_oks(terms: np.ndarray, counted: np.ndarray | None = None) -> np.ndarray:
    """OKS (A, B) of terms (A, B, K): the mean over every joint, or over the `counted` ones (a (K,) mask for
    all pairs, or an (A, B, K) mask per pair); 0 for a pair with no counted joint."""
    if counted is None:
        return np.sum(terms, axis=-1) / terms.shape[-1]
    counted = np.asarray(counted, bool)
    if counted.ndim == 1:
        return np.sum(terms[..., counted], axis=-1) / max(int(counted.sum()), 1)
    count = counted.sum(axis=-1)
    return np.where(count > 0, (terms * counted).sum(axis=-1) / np.maximum(count, 1), 0.0)
