"""Track ids by pose similarity (--tracker oks), for boxes that carry no motion (a whole-image box, boxes
from a file): each frame's poses are matched greedily to the tracks' poses predicted at this frame (last
pose + constant velocity), by OKS over the joints confident in both; unmatched poses start new tracks and
tracks unseen for more than `max_age` frames expire. The state of one source run.

Shape letters: N people, K keypoints. Coordinates are image pixels.
"""

from __future__ import annotations

import numpy as np

from dehrnet_cli.postprocess.oks import mean_oks, oks_terms
from dehrnet_cli.stage_data import Poses

OKS_TRACKER = "oks"


def pose_oks(kpts_a: np.ndarray, scores_a: np.ndarray, kpts_b: np.ndarray, scores_b: np.ndarray,
             areas: np.ndarray, sigmas: np.ndarray, kpt_thr: float) -> np.ndarray:
    """OKS (A, B) between poses A (A, K, 2) and B (B, K, 2) (`postprocess.oks`), averaged over the joints
    scored >= kpt_thr in both (0 where none is); areas (A, B) in pixels^2 (at least 1), sigmas (K,) on the
    COCO scale (before /10)."""
    terms = oks_terms(kpts_a, kpts_b, np.maximum(areas, 1.0), sigmas)
    both = (scores_a[:, None] >= kpt_thr) & (scores_b[None] >= kpt_thr)
    return mean_oks(terms, both)


def greedy_match(similarity: np.ndarray, thr: float) -> list[tuple[int, int]]:
    """(row, col) pairs taken greedily from the highest similarity down, each row and column once,
    similarities >= thr only. similarity (R, C)."""
    pairs: list[tuple[int, int]] = []
    if similarity.size == 0:
        return pairs
    order = np.argsort(-similarity, axis=None, kind="stable")
    used_r, used_c = set(), set()
    for flat in order:
        r, c = divmod(int(flat), similarity.shape[1])
        if similarity[r, c] < thr:
            break
        if r not in used_r and c not in used_c:
            pairs.append((r, c))
            used_r.add(r)
            used_c.add(c)
    return pairs


class _PoseTrack:
    """One track of the OKS tracker: its last pose, box area and per-frame velocity of its joints."""

    def __init__(self, track_id: int, frame_no: int, kpts_xy: np.ndarray, kpt_scores: np.ndarray,
                 area: float) -> None:
        self.track_id = track_id
        self.last_frame = frame_no
        self.kpts_xy = kpts_xy.astype(np.float64)
        self.kpt_scores = kpt_scores.astype(np.float64)
        self.area = area
        self.velocity = np.zeros(2)  # pixels per frame, of the whole pose

    def predicted(self, frame_no: int) -> np.ndarray:
        return self.kpts_xy + self.velocity * (frame_no - self.last_frame)

    def update(self, frame_no: int, kpts_xy: np.ndarray, kpt_scores: np.ndarray, area: float,
               kpt_thr: float, momentum: float) -> None:
        both = (kpt_scores >= kpt_thr) & (self.kpt_scores >= kpt_thr)
        if both.any():  # mean motion of the joints seen in both poses, smoothed
            step = (kpts_xy[both] - self.kpts_xy[both]).mean(axis=0) / max(frame_no - self.last_frame, 1)
            self.velocity = momentum * self.velocity + (1 - momentum) * step
        self.kpts_xy = kpts_xy.astype(np.float64)
        self.kpt_scores = kpt_scores.astype(np.float64)
        self.area = area
        self.last_frame = frame_no


class OksTracker:
    """Ids for poses frame after frame by OKS to each track's predicted pose (greedy, best first).

    sigmas (K,): the keypoint set's OKS sigmas (`postprocess.oks_sigmas(spec)`); match_thr: the least
    OKS that continues a track; max_age: frames a track may go unseen before its id expires;
    kpt_thr: joints scored below it are left out of the OKS; momentum: smoothing of the velocity.
    Ids start at 1 and are never reused within a run.
    """

    def __init__(self, sigmas: np.ndarray, match_thr: float = 0.2, max_age: int = 30, kpt_thr: float = 0.3,
                 momentum: float = 0.5) -> None:
        self.sigmas = np.asarray(sigmas, np.float64)
        self.match_thr, self.max_age, self.kpt_thr, self.momentum = match_thr, max_age, kpt_thr, momentum
        self.tracks: list[_PoseTrack] = []
        self.frame_no = 0
        self.next_id = 1

    def update(self, poses: Poses) -> np.ndarray:
        """Track ids (N,) int64 of this frame's poses (call once per frame, in order)."""
        self.frame_no += 1
        self.tracks = [t for t in self.tracks if self.frame_no - t.last_frame <= self.max_age]
        box_wh = np.clip(poses.boxes_xyxy[:, 2:] - poses.boxes_xyxy[:, :2], 1.0, None).astype(np.float64)
        areas = box_wh.prod(axis=1)
        ids = np.full(len(poses), -1, np.int64)
        if self.tracks and len(poses):
            predicted = np.stack([t.predicted(self.frame_no) for t in self.tracks])
            track_scores = np.stack([t.kpt_scores for t in self.tracks])
            mean_areas = (np.array([t.area for t in self.tracks])[:, None] + areas[None]) / 2
            oks = pose_oks(predicted, track_scores, poses.keypoints_xy.astype(np.float64),
                           poses.kpt_scores.astype(np.float64), mean_areas, self.sigmas, self.kpt_thr)
            for t, n in greedy_match(oks, self.match_thr):
                track = self.tracks[t]
                track.update(self.frame_no, poses.keypoints_xy[n], poses.kpt_scores[n], areas[n], self.kpt_thr,
                             self.momentum)
                ids[n] = track.track_id
        for n in np.flatnonzero(ids < 0):
            track = _PoseTrack(self.next_id, self.frame_no, poses.keypoints_xy[n], poses.kpt_scores[n], areas[n])
            self.tracks.append(track)
            ids[n] = track.track_id
            self.next_id += 1
        return ids
