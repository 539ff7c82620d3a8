"""Rescoring and OKS-NMS: the official evaluate() rules of shared/REFERENCE.md."""

from __future__ import annotations

import numpy as np
import pytest

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.postprocess.nms import oks_nms
from dehrnet_cli.postprocess.oks import UNIFORM_SIGMA, oks_sigmas
from dehrnet_cli.postprocess.rescore import box_areas, rescore
from models.keypoints import COCO17, MPII16

COCO_SIGMAS = np.array(COCO17.sigmas) / 10.0


def _oks(
    a: np.ndarray, b: np.ndarray, area_a: float, area_b: float, sigmas: np.ndarray = COCO_SIGMAS
) -> float:
    """OKS as REFERENCE.md states it: all joints, var = (2 sigma)^2, mean area + eps."""
    d2 = ((a[:, :2] - b[:, :2]) ** 2).sum(axis=1)
    e = d2 / (2 * sigmas) ** 2 / ((area_a + area_b) / 2 + np.spacing(1)) / 2
    return float(np.mean(np.exp(-e)))


def _person(seed: int, num_k: int = 17) -> np.ndarray:
    return np.random.default_rng(seed).uniform(100, 300, size=(num_k, 2)).astype(np.float32)


# --- rescore --------------------------------------------------------------------------------------


def test_rescore_mean_of_confident_keypoints_times_box() -> None:
    kpt_scores = np.float32([[0.1, 0.5, 0.3, 0.0], [0.1, 0.2, 0.05, 0.15], [0.9, 0.9, 0.9, 0.9]])
    scores = rescore(kpt_scores, np.array([0.8, 0.9, 0.5]))
    assert scores.dtype == np.float64 and scores.shape == (3,)
    # the mean runs in float64 over the float32 scores
    assert scores[0] == (float(np.float32(0.5)) + float(np.float32(0.3))) / 2 * 0.8
    assert scores[1] == float(np.float32(0.2)) * 0.9  # float32 0.2 is just above 0.2
    assert scores[2] == float(np.float32(0.9)) * 0.5


def test_rescore_threshold_is_strict_and_none_passing_gives_zero() -> None:
    kpt_scores = np.float32([[0.5, 0.5, 0.25], [0.5, 0.25, 0.0]])
    np.testing.assert_array_equal(rescore(kpt_scores, np.ones(2), thr=0.5), [0.0, 0.0])
    np.testing.assert_array_equal(rescore(kpt_scores, np.ones(2), thr=0.3), [0.5, 0.5])


def test_rescore_empty_and_bad_shapes() -> None:
    assert rescore(np.zeros((0, 17)), np.zeros(0)).shape == (0,)
    with pytest.raises(DehrnetError):
        rescore(np.zeros((2, 17)), np.zeros(3))


# --- areas ----------------------------------------------------------------------------------------


def test_box_areas_of_the_enlarged_box() -> None:
    areas = box_areas(np.float32([[0.375, 0.5], [1.0, 4 / 3]]))
    assert areas.dtype == np.float64
    assert areas[0] == 75.0 * 100.0
    assert areas[1] == np.float32(np.float32(200.0) * np.float32(200.0 * np.float32(4 / 3)))
    with pytest.raises(DehrnetError):
        box_areas(np.zeros(4))


# --- OKS-NMS --------------------------------------------------------------------------------------


def test_oks_nms_suppresses_identical_candidates() -> None:
    person = _person(0)
    kpts = np.stack([person, person, person])
    kept = oks_nms(kpts, np.array([0.5, 0.9, 0.7]), np.full(3, 10000.0))
    assert kept.dtype == np.int64
    assert kept.tolist() == [1]


def test_oks_nms_keeps_distant_candidates_best_first() -> None:
    kpts = np.stack([_person(0), _person(0) + 500, _person(0) + 1000])
    kept = oks_nms(kpts, np.array([0.5, 0.9, 0.7]), np.full(3, 10000.0))
    assert kept.tolist() == [1, 2, 0]


def test_oks_nms_threshold_is_strict_and_uses_the_mean_area() -> None:
    a, b = _person(1), _person(1) + np.float32([3.0, -2.0])
    areas = np.array([20000.0, 5000.0])
    oks = _oks(a, b, *areas)
    assert 0.5 < oks < 0.99
    kpts, scores = np.stack([a, b]), np.array([0.9, 0.8])
    assert oks_nms(kpts, scores, areas, thr=oks).tolist() == [0, 1]  # OKS == thr: kept
    assert oks_nms(kpts, scores, areas, thr=oks - 1e-9).tolist() == [0]  # OKS > thr: dropped
    # with the smaller of the two areas the OKS would be lower: the mean is what counts
    assert _oks(a, b, 5000.0, 5000.0) < oks - 0.01
    assert oks_nms(kpts, scores, areas, thr=_oks(a, b, 5000.0, 5000.0) + 1e-6).tolist() == [0]


def test_oks_nms_greedy_chain() -> None:
    # b overlaps a and c, a and c do not overlap: a suppresses b, then c survives
    a = _person(2)
    b, c = a + 4.0, a + 8.0
    areas = np.full(3, 40000.0)
    kpts = np.stack([a, b, c])
    thr = 0.5 * (_oks(a, b, 4e4, 4e4) + _oks(a, c, 4e4, 4e4))
    assert _oks(a, b, 4e4, 4e4) > thr > _oks(a, c, 4e4, 4e4) and _oks(b, c, 4e4, 4e4) > thr
    assert oks_nms(kpts, np.array([0.9, 0.8, 0.7]), areas, thr=thr).tolist() == [0, 2]
    assert oks_nms(kpts, np.array([0.8, 0.9, 0.7]), areas, thr=thr).tolist() == [1]


def test_oks_nms_ties_follow_the_official_argsort_order() -> None:
    person = _person(3)
    scores = np.array([0.7, 0.7, 0.7])
    kept = oks_nms(np.stack([person] * 3), scores, np.full(3, 1e4))
    assert kept.tolist() == [int(scores.argsort()[::-1][0])]


def test_oks_nms_ignores_the_score_column_and_empty_input() -> None:
    kpts = np.concatenate([np.stack([_person(4), _person(4) + 1]), np.zeros((2, 17, 1), np.float32)], axis=2)
    kpts[1, :, 2] = 1.0  # a visibility/score column does not filter joints
    assert oks_nms(kpts, np.array([0.2, 0.1]), np.full(2, 1e4)).tolist() == [0]
    empty = oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0))
    assert empty.dtype == np.int64 and empty.shape == (0,)


def test_oks_nms_sigmas_for_other_keypoint_sets() -> None:
    np.testing.assert_array_equal(oks_sigmas(COCO17), COCO17.sigmas)
    np.testing.assert_array_equal(oks_sigmas(MPII16), np.full(16, UNIFORM_SIGMA))
    a = _person(5, 16)
    b = a + 6.0
    sigmas = oks_sigmas(MPII16)
    oks = _oks(a, b, 1e4, 1e4, sigmas / 10)
    kpts = np.stack([a, b])
    assert oks_nms(kpts, np.array([0.9, 0.8]), np.full(2, 1e4), thr=oks, sigmas=sigmas).tolist() == [0, 1]
    assert oks_nms(kpts, np.array([0.9, 0.8]), np.full(2, 1e4), thr=oks - 1e-9, sigmas=sigmas).tolist() == [0]
    with pytest.raises(DehrnetError, match="oks_sigmas"):
        oks_nms(kpts, np.array([0.9, 0.8]), np.full(2, 1e4))


def test_oks_nms_rejects_bad_shapes() -> None:
    with pytest.raises(DehrnetError):
        oks_nms(np.zeros((2, 17, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(DehrnetError):
        oks_nms(np.zeros((2, 17, 4)), np.zeros(2), np.zeros(2))
