"""Keypoint smoothing for video: a One-Euro filter per track and keypoint (Casiez et al., CHI 2012).

The One-Euro filter is a first-order low-pass filter whose cutoff rises with the signal's speed:
still joints are smoothed hard (no jitter), fast ones lightly (little lag). For each sample x at time t:

    te      = t - t_prev                                   (s)
    alpha(f) = 1 / (1 + 1 / (2 pi f te))                    (smoothing factor of cutoff f, Hz)
    dx_hat  = alpha(d_cutoff) (x - x_hat_prev) / te + (1 - alpha(d_cutoff)) dx_hat_prev
    cutoff  = min_cutoff + beta |dx_hat| / scale
    x_hat   = alpha(cutoff) x + (1 - alpha(cutoff)) x_hat_prev

dehrnet divides the speed by the person's box height (`scale`), so beta is in Hz per (person heights/s)
and the same settings suit every resolution and distance. On a ramp of speed v (sampled every te) the
filter settles to a lag of 1 / (2 pi cutoff) seconds, v / (2 pi cutoff) pixels, where the speed estimate
reads v (1 + 1 / (2 pi cutoff te)) (it differences against the lagging output), so that
cutoff = min_cutoff + beta v (1 + 1 / (2 pi cutoff te)) / scale.

Confidence-aware: a keypoint whose score is below `score_thr` does not update its filter; its output
is the filter's held estimate (the raw low-score position is usually an occluded guess), and the next
confident sample is filtered with the time elapsed since the last confident one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Poses


@dataclass(frozen=True)
class OneEuroSettings:
    """Filter parameters. min_cutoff (Hz): the cutoff of a still joint (lower: smoother, more lag at low
    speed); beta (Hz per person-height/s): how fast the cutoff grows with speed (higher: less lag on
    fast moves, more jitter left in them); d_cutoff (Hz): cutoff of the speed estimate; score_thr:
    keypoints scored below it hold their filter; idle_s: a track unseen this long forgets its filter."""

    min_cutoff: float = 1.0
    beta: float = 8.0
    d_cutoff: float = 1.0
    score_thr: float = 0.3
    idle_s: float = 2.0

    def __post_init__(self) -> None:
        for flag, value in (("--smooth-min-cutoff", self.min_cutoff), ("d_cutoff", self.d_cutoff)):
            if not value > 0:
                raise DehrnetError(f"{flag} {value}: must be a positive frequency in Hz, e.g. 1.0")
        if not self.beta >= 0:
            raise DehrnetError(f"--smooth-beta {self.beta}: must be 0 or more (0: a fixed cutoff), e.g. 8.0")


def smoothing_factor(cutoff_hz: np.ndarray | float, te_s: np.ndarray | float) -> np.ndarray:
    """alpha = 1 / (1 + tau / te), tau = 1 / (2 pi cutoff): the weight of the new sample."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / np.asarray(te_s, dtype=np.float64))


class OneEuroFilter:
    """One-Euro filter over K points of D coordinates each (e.g. the keypoints of one person).

    Each point has its own time of last update, so a point held back (below the score threshold)
    restarts with the right time step. Points start unset: their first confident sample passes through.
    """

    def __init__(self, settings: OneEuroSettings, num_points: int, dims: int = 2) -> None:
        self.settings = settings
        self.x_hat = np.zeros((num_points, dims), np.float64)
        self.dx_hat = np.zeros((num_points, dims), np.float64)
        self.t_prev = np.zeros(num_points, np.float64)
        self.is_set = np.zeros(num_points, bool)

    def __call__(self, values: np.ndarray, time_s: float, update: np.ndarray | None = None,
                 scale: float = 1.0) -> np.ndarray:
        """Filtered (K, D) float64 values. values (K, D); update (K,) bool: points allowed to update
        (default all; the others return their held estimate, or their raw value while unset);
        scale: what speeds are divided by before `beta` (person height in pixels; 1: raw units)."""
        s = self.settings
        values = np.asarray(values, dtype=np.float64)
        update = np.ones(len(values), bool) if update is None else np.asarray(update, bool)
        first = update & ~self.is_set
        later = update & self.is_set
        self.x_hat[first] = values[first]
        self.dx_hat[first] = 0.0
        self.t_prev[first] = time_s
        self.is_set |= first
        if later.any():
            te = np.maximum(time_s - self.t_prev[later], 1e-6)[:, None]
            a_d = smoothing_factor(s.d_cutoff, te)
            dx = (values[later] - self.x_hat[later]) / te
            self.dx_hat[later] = a_d * dx + (1 - a_d) * self.dx_hat[later]
            speed = np.linalg.norm(self.dx_hat[later], axis=1, keepdims=True) / max(scale, 1e-6)
            a = smoothing_factor(s.min_cutoff + s.beta * speed, te)
            self.x_hat[later] = a * values[later] + (1 - a) * self.x_hat[later]
            self.t_prev[later] = time_s
        return np.where(self.is_set[:, None], self.x_hat, values)


class PoseSmoother:
    """One One-Euro filter per track id, over its K keypoints (image pixels). State of one source run."""

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()) -> None:
        self.settings = settings
        self.filters: dict[int, OneEuroFilter] = {}
        self.last_seen: dict[int, float] = {}

    def __call__(self, poses: Poses, time_s: float) -> Poses:
        """`poses` with smoothed keypoints_xy (N, K, 2); scores and boxes unchanged. Needs track_ids."""
        if poses.track_ids is None:
            raise DehrnetError("smoothing needs track ids: run the poses through a tracker first")
        smoothed = np.array(poses.keypoints_xy, dtype=np.float32, copy=True)
        for n, track_id in enumerate(int(t) for t in poses.track_ids):
            if track_id < 0:
                continue  # an untracked person: nothing to smooth against
            filt = self.filters.get(track_id)
            if filt is None:
                filt = self.filters[track_id] = OneEuroFilter(self.settings, smoothed.shape[1])
            x1, y1, x2, y2 = poses.boxes_xyxy[n]
            confident = poses.kpt_scores[n] >= self.settings.score_thr
            smoothed[n] = filt(poses.keypoints_xy[n], time_s, confident, scale=max(float(y2 - y1), 1.0))
            self.last_seen[track_id] = time_s
        self._forget(time_s)
        return replace(poses, keypoints_xy=smoothed)

    def _forget(self, time_s: float) -> None:
        """Drop the filters of tracks unseen for more than idle_s (ids of a run are never reused)."""
        stale = [t for t, seen in self.last_seen.items() if time_s - seen > self.settings.idle_s]
        for track_id in stale:
            del self.filters[track_id], self.last_seen[track_id]
