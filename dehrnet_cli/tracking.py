"""Track ids across video frames, and person boxes from the previous frame's keypoints.

Two trackers, each the state of one source run:
- `BoxTracker`: ultralytics' own multi-object trackers (ByteTrack, BoT-SORT, OC-SORT, ...) configured by
  their YAML files (`bytetrack.yaml`, `botsort.yaml` or a file of yours), run on our person boxes
  before the pose stage. Boxes it does not (yet) track are dropped, as `yolo track` does.
- `OksTracker`: for boxes that carry no motion (a whole-image box, boxes from a file): each frame's
  poses are matched greedily to the tracks' poses predicted at this frame (last pose + constant
  velocity), by OKS over the joints confident in both; unmatched poses start new tracks and tracks
  unseen for more than `max_age` frames expire.

Shape letters: N people, K keypoints. Coordinates are image pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DehrnetError
from .types import Detections, Poses

OKS_TRACKER = "oks"
DEFAULT_BOX_TRACKER = "bytetrack.yaml"


# ----------------------------------------------------------------------------- boxes from keypoints


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


# --------------------------------------------------------------------------- OKS pose association


def pose_oks(kpts_a: np.ndarray, scores_a: np.ndarray, kpts_b: np.ndarray, scores_b: np.ndarray,
             areas: np.ndarray, sigmas: np.ndarray, kpt_thr: float) -> np.ndarray:
    """OKS (A, B) between poses A (A, K, 2) and B (B, K, 2): COCO's per-joint exp(-d^2 / (2 area (2 sigma/10)^2)),
    averaged over the joints scored >= kpt_thr in both (0 where none is); areas (A, B) in pixels^2,
    sigmas (K,) on the COCO scale (before /10)."""
    variances = (2 * np.asarray(sigmas, np.float64) / 10) ** 2
    d2 = ((kpts_a[:, None] - kpts_b[None]) ** 2).sum(axis=-1)  # (A, B, K)
    terms = np.exp(-d2 / (2 * np.maximum(areas, 1.0)[..., None] * variances))
    both = (scores_a[:, None] >= kpt_thr) & (scores_b[None] >= kpt_thr)
    count = both.sum(axis=-1)
    return np.where(count > 0, (terms * both).sum(axis=-1) / np.maximum(count, 1), 0.0)


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


# ----------------------------------------------------------------------- ultralytics box trackers


def tracker_config(name: str):
    """The ultralytics tracker config (a namespace) named by a YAML file: a built-in name
    (bytetrack.yaml, botsort.yaml, ...) or a path of yours."""
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    if not name.endswith((".yaml", ".yml")):
        raise DehrnetError(f"--tracker {name}: give 'oks' or an ultralytics tracker YAML, e.g. bytetrack.yaml or "
                           "botsort.yaml")
    try:
        return IterableSimpleNamespace(**YAML.load(check_yaml(name)))
    except (FileNotFoundError, OSError, TypeError, ValueError) as e:
        reason = str(e).replace("❌", "").strip().splitlines()[0][:160] if str(e) else type(e).__name__
        raise DehrnetError(f"--tracker {name}: cannot read it ({reason}); use bytetrack.yaml, botsort.yaml, "
                           f"oks or the path of a tracker YAML") from None


class BoxTracker:
    """An ultralytics tracker (ByteTrack, BoT-SORT, ...) fed with our person boxes, one frame per call."""

    def __init__(self, config_name: str = DEFAULT_BOX_TRACKER) -> None:
        cfg = tracker_config(config_name)
        try:  # ultralytics' trackers import `lap` and, when it is missing, try to pip install it at run time
            import lap  # noqa: F401
        except ImportError:
            raise DehrnetError(f"--tracker {config_name}: ultralytics' trackers need the 'lap' package: pip install "
                               "'lap>=0.5.12' (or use --tracker oks)") from None
        from ultralytics.trackers.track import TRACKER_MAP

        kind = getattr(cfg, "tracker_type", None)
        tracker_cls = TRACKER_MAP.get(kind)
        if tracker_cls is None or hasattr(tracker_cls, "setup_predictor") or hasattr(tracker_cls,
                                                                                     "compute_frame_extras"):
            usable = sorted(k for k, c in TRACKER_MAP.items()
                            if not hasattr(c, "setup_predictor") and not hasattr(c, "compute_frame_extras"))
            raise DehrnetError(f"--tracker {config_name}: tracker_type {kind!r} is not usable on dehrnet's boxes; "
                               f"use one of {', '.join(usable)}")
        cfg.device = "cpu"
        self.name = Path(config_name).name
        self.tracker = tracker_cls(args=cfg)

    def update(self, detections: Detections, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rows (M,) int64 of the detections the tracker keeps this frame and their track ids (M,) int64.
        image_bgr (H, W, 3) is used by trackers with camera-motion compensation (BoT-SORT)."""
        from ultralytics.engine.results import Boxes

        data = np.zeros((len(detections), 6), np.float32)  # x1, y1, x2, y2, score, class 0 (person)
        data[:, :4] = detections.boxes_xyxy
        data[:, 4] = detections.scores
        tracks = self.tracker.update(Boxes(data, image_bgr.shape[:2]), image_bgr)
        if len(tracks) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return tracks[:, -1].astype(np.int64), tracks[:, 4].astype(np.int64)
