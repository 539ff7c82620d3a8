"""One-Euro keypoint smoothing: unit behaviour of the filter and its effect on a synthetic clip."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from video_synth import error_px, jitter_px, noisy_poses, walking_clip

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Poses
from dehrnet_cli.video.smoothing import OneEuroFilter, OneEuroSettings, PoseSmoother, smoothing_factor

FPS = 30.0


def _run(settings: OneEuroSettings, signal: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Filter a 1-D signal sampled at FPS (as one point's x; y stays 0)."""
    filt = OneEuroFilter(settings, num_points=1)
    return np.array([filt(np.array([[x, 0.0]]), i / FPS, scale=scale)[0, 0] for i, x in enumerate(signal)])


def _steady_cutoff(settings: OneEuroSettings, speed: float, scale: float, te: float) -> float:
    """The cutoff a ramp of `speed` settles to: fc = m + beta v (1 + 1 / (2 pi fc te)) / scale, solved."""
    m, b = settings.min_cutoff, settings.beta * speed / scale
    return ((m + b) + math.sqrt((m + b) ** 2 + 4 * b / (2 * math.pi * te))) / 2


def test_smoothing_factor_is_the_first_order_low_pass_weight() -> None:
    # alpha = te / (te + tau), tau = 1 / (2 pi f)
    assert smoothing_factor(1.0, 1 / 30) == pytest.approx((1 / 30) / (1 / 30 + 1 / (2 * math.pi)))
    assert smoothing_factor(1e9, 1 / 30) == pytest.approx(1.0)


def test_a_constant_signal_stays_constant() -> None:
    out = _run(OneEuroSettings(min_cutoff=0.5, beta=50.0), np.full(100, 123.25))
    np.testing.assert_array_equal(out, 123.25)


def test_a_step_converges_without_overshoot() -> None:
    settings = OneEuroSettings(min_cutoff=1.0, beta=0.0)
    signal = np.r_[np.zeros(10), np.full(200, 10.0)]
    out = _run(settings, signal)
    after = out[10:]
    assert np.all(np.diff(after) >= 0) and after.max() <= 10.0  # monotone, no overshoot
    # with beta = 0 it is a plain exponential: the remaining error shrinks by (1 - alpha) per sample
    alpha = smoothing_factor(1.0, 1 / FPS)
    np.testing.assert_allclose(10 - after, 10 * (1 - alpha) ** np.arange(1, 201), rtol=1e-9, atol=1e-12)
    assert abs(after[-1] - 10) < 1e-3


def test_beta_makes_a_step_converge_faster() -> None:
    signal = np.r_[np.zeros(10), np.full(40, 10.0)]
    slow = _run(OneEuroSettings(min_cutoff=1.0, beta=0.0), signal)
    fast = _run(OneEuroSettings(min_cutoff=1.0, beta=1.0), signal)
    assert abs(10 - fast[20]) < 0.2 * abs(10 - slow[20])


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
@pytest.mark.parametrize("speed", [30.0, 300.0])
def test_lag_on_a_ramp_matches_the_analytic_steady_state(beta: float, speed: float) -> None:
    """A ramp x = v t settles to a lag of v / (2 pi fc) pixels, fc the configured cutoff at that speed."""
    settings = OneEuroSettings(min_cutoff=1.2, beta=beta, d_cutoff=1.0)
    scale = 180.0  # the person's height: speeds count in heights per second
    times = np.arange(400) / FPS
    out = _run(settings, speed * times, scale=scale)
    lag_px = speed * times[-1] - out[-1]
    cutoff = _steady_cutoff(settings, speed, scale, 1 / FPS)
    assert lag_px == pytest.approx(speed / (2 * math.pi * cutoff), rel=1e-6)
    if beta == 0:
        assert lag_px / speed == pytest.approx(1 / (2 * math.pi * 1.2), rel=1e-6)  # tau seconds behind


def test_frame_times_not_frame_counts_set_the_time_step() -> None:
    """Half the frame rate, same motion in time: same lag in seconds (the filter works in Hz)."""
    settings = OneEuroSettings(min_cutoff=2.0, beta=0.0)
    lags = []
    for fps in (30.0, 15.0):
        filt = OneEuroFilter(settings, 1)
        times = np.arange(int(10 * fps)) / fps
        for t in times:
            last = filt(np.array([[50.0 * t, 0.0]]), t)[0, 0]
        lags.append((50.0 * times[-1] - last) / 50.0)
    # discrete steady state: tau seconds behind whatever the step (alpha = te / (te + tau))
    np.testing.assert_allclose(lags, 1 / (2 * math.pi * 2.0), rtol=1e-6)


def test_low_score_keypoints_do_not_drag_the_filter() -> None:
    filt = OneEuroFilter(OneEuroSettings(), num_points=2)
    still = np.array([[100.0, 50.0], [10.0, 10.0]])
    for i in range(10):
        filt(still, i / FPS)
    jumped = np.array([[400.0, -300.0], [10.0, 10.0]])  # an occluded joint's wild guess
    out = filt(jumped, 10 / FPS, update=np.array([False, True]))
    np.testing.assert_array_equal(out[0], still[0])  # held
    out = filt(still, 11 / FPS)
    np.testing.assert_allclose(out, still)  # nothing of the jump leaked into the state


def test_an_unset_keypoint_passes_through_until_a_confident_sample() -> None:
    filt = OneEuroFilter(OneEuroSettings(), num_points=1)
    out = filt(np.array([[7.0, 8.0]]), 0.0, update=np.array([False]))
    np.testing.assert_array_equal(out, [[7.0, 8.0]])
    assert not filt.is_set[0]
    np.testing.assert_array_equal(filt(np.array([[1.0, 2.0]]), 0.1), [[1.0, 2.0]])  # first sample: as is


def _poses(kpts: np.ndarray, ids: list[int], score: float = 0.9) -> Poses:
    n, k = kpts.shape[:2]
    boxes = np.tile(np.array([0, 0, 100, 200], np.float32), (n, 1))
    return Poses(boxes, np.ones(n, np.float32), kpts.astype(np.float32), np.full((n, k), score, np.float32),
                 np.ones(n, np.float32), np.ones(n, np.float32), np.asarray(ids, np.int64))


def test_pose_smoother_keeps_one_filter_per_track() -> None:
    smoother = PoseSmoother(OneEuroSettings(min_cutoff=0.5, beta=0.0))
    a, b = np.zeros((1, 3, 2)), np.full((1, 3, 2), 100.0)
    smoother(_poses(np.concatenate([a, b]), [1, 2]), 0.0)
    # the people swap places in the list: each filter follows its id, not its position
    out = smoother(_poses(np.concatenate([b + 1, a + 1]), [2, 1]), 1 / FPS)
    assert np.all(out.keypoints_xy[0] > 100) and np.all(out.keypoints_xy[0] < 101)
    assert np.all(out.keypoints_xy[1] > 0) and np.all(out.keypoints_xy[1] < 1)
    np.testing.assert_array_equal(out.track_ids, [2, 1])


def test_pose_smoother_forgets_idle_tracks_and_needs_ids() -> None:
    smoother = PoseSmoother(OneEuroSettings(idle_s=1.0))
    smoother(_poses(np.zeros((1, 3, 2)), [5]), 0.0)
    smoother(_poses(np.zeros((1, 3, 2)), [6]), 2.0)
    assert set(smoother.filters) == {6}
    with pytest.raises(DehrnetError, match="track ids"):
        smoother(replace(_poses(np.zeros((1, 3, 2)), [1]), track_ids=None), 3.0)


def test_settings_are_checked() -> None:
    with pytest.raises(DehrnetError, match="--smooth-min-cutoff"):
        OneEuroSettings(min_cutoff=0)
    with pytest.raises(DehrnetError, match="--smooth-beta"):
        OneEuroSettings(beta=-1)


def smoothing_effect(settings: OneEuroSettings, num_frames: int = 240, outlier_rate: float = 0.0,
                     seed: int = 1) -> dict[str, float]:
    """Jitter and RMS error (pixels) of raw and smoothed poses on the crossing clip, mean over people.
    The ids are the true ones, so only the filter is measured."""
    clip = walking_clip(num_frames)
    rng = np.random.default_rng(seed)
    smoother = PoseSmoother(settings)
    raw, smooth = [], []
    for t in range(clip.num_frames):
        poses = noisy_poses(clip, t, rng, outlier_rate=outlier_rate)
        poses = replace(poses, track_ids=np.arange(len(poses)) + 1)
        raw.append(poses.keypoints_xy)
        smooth.append(smoother(poses, t / clip.fps).keypoints_xy)
    out = {}
    for name, kpts in (("raw", np.asarray(raw, np.float64)), ("smooth", np.asarray(smooth, np.float64))):
        people = range(clip.gt_xy.shape[1])
        out[f"{name}_jitter"] = float(np.mean([jitter_px(kpts[:, p], clip.gt_xy[:, p]) for p in people]))
        out[f"{name}_error"] = float(np.mean([error_px(kpts[:, p], clip.gt_xy[:, p]) for p in people]))
    return out


@pytest.mark.parametrize("outlier_rate", [0.0, 0.03])
def test_smoothing_lowers_jitter_without_raising_the_error(outlier_rate: float) -> None:
    m = smoothing_effect(OneEuroSettings(), outlier_rate=outlier_rate)
    print(f"\noutliers {outlier_rate}: jitter {m['raw_jitter']:.2f} -> {m['smooth_jitter']:.2f} px, "
          f"RMS error {m['raw_error']:.2f} -> {m['smooth_error']:.2f} px")
    assert m["smooth_jitter"] < m["raw_jitter"] / 1.8
    assert m["smooth_error"] <= m["raw_error"]
