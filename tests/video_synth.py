"""Synthetic video clips with known poses, for the tracking, smoothing and det-every tests and the
video benchmark (scripts/bench_video.py). Not a test module itself.

A clip is P people walking on smooth paths (arms and legs swinging), sampled at `fps`: ground truth
`gt_xy` (T, P, 17, 2) image pixels and `heights` (T, P) pixels. `noisy_poses` adds what a top-down
detector adds: per-keypoint Gaussian jitter proportional to the person's height and the keypoint's OKS
sigma, plus rare outliers with low scores. `OracleTopDown` and `OracleDetector` stand in for the
network and the person detector: they see the ground truth, but only through the crop a box gives,
quantised to a heatmap grid, so bad boxes cost accuracy as they would with a real model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dehrnet_cli.pose.geometry import center_scale_from_xyxy
from dehrnet_cli.stage_data import Detections, Frame, Poses
from dehrnet_cli.video.oks_tracker import pose_oks
from models import COCO17

SIGMAS = np.asarray(COCO17.sigmas, np.float64)  # COCO scale, before /10
INPUT_SIZE = (192, 256)  # crop (w, h) of the oracle pose stage
HEATMAP_STRIDE = 4


@dataclass(frozen=True)
class Clip:
    gt_xy: np.ndarray  # (T, P, 17, 2) image pixels
    heights: np.ndarray  # (T, P) pixels, head top to feet
    fps: float
    size: tuple[int, int]  # (w, h) of the frames

    @property
    def num_frames(self) -> int:
        return self.gt_xy.shape[0]

    def person_boxes(self, t: int) -> np.ndarray:
        """Tight person boxes (P, 4) xyxy at frame t: the joints' box grown to the head top and feet."""
        pts = self.gt_xy[t]
        lo, hi = pts.min(axis=1), pts.max(axis=1)
        h = self.heights[t][:, None]
        return np.concatenate([lo - [0.08, 0.08] * h, hi + [0.08, 0.04] * h], axis=1)


def _unit(angle: np.ndarray) -> np.ndarray:
    """Direction at `angle` radians from straight down (positive: towards +x)."""
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)


def pose_at(hip_xy: np.ndarray, height: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints (T, 17, 2) of a walking figure facing the camera: hip centre (T, 2), height (T,),
    gait phase (T,) radians. The person's left is on the image's right, as in COCO."""
    h = height[:, None]
    swing = 0.45 * np.sin(phase)[:, None]
    k = np.zeros((len(hip_xy), 17, 2))
    top = hip_xy + [0, -0.30] * h  # shoulder line
    k[:, 0] = hip_xy + [0, -0.42] * h
    for idx, dx, dy in ((1, 0.02, -0.44), (2, -0.02, -0.44), (3, 0.045, -0.43), (4, -0.045, -0.43)):
        k[:, idx] = hip_xy + [dx, dy] * h
    for side, sign in ((0, 1.0), (1, -1.0)):  # 0: left (image right), 1: right
        shoulder = top + [sign * 0.11, 0] * h
        elbow = shoulder + 0.17 * h * _unit(sign * 0.15 + (swing if side else -swing)[:, 0])
        wrist = elbow + 0.15 * h * _unit(sign * 0.1 + 1.4 * (swing if side else -swing)[:, 0])
        hip = hip_xy + [sign * 0.07, 0] * h
        knee = hip + 0.24 * h * _unit((-swing if side else swing)[:, 0])
        ankle = knee + 0.22 * h * _unit(0.6 * (-swing if side else swing)[:, 0])
        k[:, 5 + side], k[:, 7 + side], k[:, 9 + side] = shoulder, elbow, wrist
        k[:, 11 + side], k[:, 13 + side], k[:, 15 + side] = hip, knee, ankle
    return k


def walking_clip(num_frames: int = 150, fps: float = 30.0, size: tuple[int, int] = (640, 360),
                 crossing: bool = True, speed: float = 1.0) -> Clip:
    """Two people walking towards each other on gently curved paths, crossing mid-clip (or, with
    crossing=False, one person walking slowly). speed scales every motion (1: a brisk walk)."""
    t = np.arange(num_frames) / fps
    width, height = size
    duration = num_frames / fps
    people = []
    if crossing:
        specs = [(0.15 * width, 0.85 * width, 0.62 * height, 170.0, 0.0),
                 (0.85 * width, 0.15 * width, 0.66 * height, 200.0, 1.3)]
    else:
        specs = [(0.35 * width, 0.35 * width + 0.2 * width * speed, 0.6 * height, 220.0, 0.0)]
    for x0, x1, y0, h0, phase0 in specs:
        frac = t / duration
        hip = np.stack([x0 + (x1 - x0) * frac + 8 * np.sin(2 * np.pi * 0.3 * t),
                        y0 + 4 * np.sin(4 * np.pi * 1.0 * speed * t + phase0)], axis=1)
        heights = h0 * (1 + 0.08 * np.sin(2 * np.pi * 0.2 * t + phase0))
        phase = 2 * np.pi * 1.0 * speed * t + phase0
        people.append((pose_at(hip, heights, phase), heights))
    gt = np.stack([p[0] for p in people], axis=1)
    heights = np.stack([p[1] for p in people], axis=1)
    return Clip(gt, heights, fps, size)


def noisy_poses(clip: Clip, t: int, rng: np.random.Generator, noise: float = 0.012,
                outlier_rate: float = 0.03) -> Poses:
    """Detector-like poses of frame t: keypoints = truth + N(0, (noise x height x sigma_k / mean sigma)^2)
    per axis, scores 0.6-0.95; an outlier keypoint jumps by ~15% of the height with a score < 0.25."""
    gt = clip.gt_xy[t]
    people, k = gt.shape[:2]
    std = noise * clip.heights[t][:, None, None] * (SIGMAS / SIGMAS.mean())[None, :, None]
    kpts = gt + rng.normal(size=gt.shape) * std
    scores = rng.uniform(0.6, 0.95, size=(people, k))
    outliers = rng.random((people, k)) < outlier_rate
    jump = rng.normal(size=gt.shape) * 0.15 * clip.heights[t][:, None, None]
    kpts = np.where(outliers[..., None], kpts + jump, kpts)
    scores = np.where(outliers, rng.uniform(0.02, 0.25, size=(people, k)), scores)
    boxes = clip.person_boxes(t)
    return Poses(boxes.astype(np.float32), np.full(people, 0.9, np.float32), kpts.astype(np.float32),
                 scores.astype(np.float32), scores.mean(axis=1).astype(np.float32),
                 np.prod(boxes[:, 2:] - boxes[:, :2], axis=1).astype(np.float32))


def clip_frames(clip: Clip) -> list[Frame]:
    """Frames of the clip: tiny black images that carry their index in pixel (0, 0) (for the oracles)."""
    width, height = clip.size
    frames = []
    for t in range(clip.num_frames):
        image = np.zeros((height, width, 3), np.uint8)
        image[0, 0, :2] = (t % 256, t // 256)
        frames.append(Frame(t, image, None, t / clip.fps))
    return frames


def frame_index(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


class OracleDetector:
    """Person boxes of the clip with a little noise (score 0.9); `calls` counts the frames detected."""

    def __init__(self, clip: Clip, seed: int = 0, noise: float = 0.02) -> None:
        self.clip, self.rng, self.noise, self.calls = clip, np.random.default_rng(seed), noise, 0

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            self.calls += 1
            t = frame_index(frame.image)
            boxes = self.clip.person_boxes(t)
            boxes = boxes + self.rng.normal(size=boxes.shape) * self.noise * self.clip.heights[t][:, None]
            out.append(Detections(boxes.astype(np.float32), np.full(len(boxes), 0.9, np.float32)))
        return out


class OracleTopDown:
    """A stand-in pose stage with the spec/estimate interface of TopDownEstimator. For each box it
    returns the person whose true box overlaps it most (the person the crop is centred on), each joint
    quantised to the heatmap grid of the crop the real stage would warp (plus Gaussian noise of
    `noise` x the person's height); joints outside the crop are clamped to its edge and get score 0.05,
    as a heatmap argmax cannot leave its crop."""

    spec = COCO17

    def __init__(self, clip: Clip, noise: float = 0.0, seed: int = 0) -> None:
        self.clip, self.noise, self.rng = clip, noise, np.random.default_rng(seed)

    def estimate(self, images: list[np.ndarray], detections: list[Detections]) -> list[Poses]:
        out = []
        for image, det in zip(images, detections):
            gt = self.clip.gt_xy[frame_index(image)]
            if len(det) == 0:
                out.append(Poses.empty(17))
                continue
            centers, scales = center_scale_from_xyxy(det.boxes_xyxy, INPUT_SIZE)
            half = scales.astype(np.float64) * 200 / 2
            kpts, scores = [], []
            true_boxes = self.clip.person_boxes(frame_index(image))
            for box, c, hw in zip(det.boxes_xyxy, centers.astype(np.float64), half):
                lo, hi = c - hw, c + hw
                inside = ((gt >= lo) & (gt <= hi)).all(axis=-1)  # (P, K)
                person = int(np.argmax(box_iou(box, true_boxes)))
                cell = 2 * hw / (np.asarray(INPUT_SIZE) / HEATMAP_STRIDE)  # heatmap pixel in image pixels
                xy = np.clip(gt[person], lo, hi)
                xy = lo + np.round((xy - lo) / cell) * cell
                xy = xy + self.rng.normal(size=xy.shape) * self.noise * self.clip.heights[frame_index(image), person]
                kpts.append(xy)
                scores.append(np.where(inside[person], 0.9, 0.05))
            kpts_arr, scores_arr = np.asarray(kpts, np.float32), np.asarray(scores, np.float32)
            areas = np.prod(scales.astype(np.float64) * 200, axis=1).astype(np.float32)
            out.append(Poses(det.boxes_xyxy.astype(np.float32), det.scores.astype(np.float32), kpts_arr, scores_arr,
                             (scores_arr.mean(axis=1) * det.scores).astype(np.float32), areas))
        return out


def owner_of(clip, t: int, poses) -> np.ndarray:
    """The true person behind each pose: the nearest ground truth."""
    d = np.linalg.norm(poses.keypoints_xy[:, None] - clip.gt_xy[t][None], axis=-1).mean(axis=-1)
    return d.argmin(axis=1)


def agreement(a_poses: list, b_poses: list, clip) -> float:
    """Mean OKS between two runs' poses of the same person (matched by nearest ground truth), with
    the person's box area; people missing from one run count 0."""
    values = []
    for t, (a, b) in enumerate(zip(a_poses, b_poses)):
        owners_a, owners_b = owner_of(clip, t, a), owner_of(clip, t, b)
        for person in range(clip.gt_xy.shape[1]):
            ia, ib = np.flatnonzero(owners_a == person), np.flatnonzero(owners_b == person)
            if len(ia) == 0 or len(ib) == 0:
                values.append(0.0)
                continue
            area = np.prod(clip.person_boxes(t)[person, 2:] - clip.person_boxes(t)[person, :2])
            ones = np.ones((1, 17))
            values.append(pose_oks(a.keypoints_xy[ia[:1]], ones, b.keypoints_xy[ib[:1]], ones,
                                   np.full((1, 1), area), SIGMAS, 0.5)[0, 0])
    return float(np.mean(values))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU (P,) of one xyxy box with P boxes."""
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return inter / np.maximum(union, 1e-9)


def jitter_px(kpts: np.ndarray, gt: np.ndarray) -> float:
    """Frame-to-frame jitter: RMS over frames and joints of |(p_t - p_t-1) - (g_t - g_t-1)| (pixels),
    the part of each step that the true motion does not explain. kpts, gt (T, K, 2) of one person."""
    return float(np.sqrt((np.linalg.norm(np.diff(kpts, axis=0) - np.diff(gt, axis=0), axis=-1) ** 2).mean()))


def error_px(kpts: np.ndarray, gt: np.ndarray, skip: int = 0) -> float:
    """RMS distance (pixels) to the ground truth over frames (after the first `skip`) and joints."""
    return float(np.sqrt((np.linalg.norm(kpts[skip:] - gt[skip:], axis=-1) ** 2).mean()))


def lap_stand_in():
    """A module with `lapjv` as the `lap` package defines it (extend_cost, cost_limit), solved with
    ultralytics' own assignment solver, for machines without `lap` (ultralytics' trackers import it).
    Unassigned rows and columns cost cost_limit / 2 each, as in lap."""
    import types

    from ultralytics.utils.ops import linear_sum_assignment

    def lapjv(cost, extend_cost=False, cost_limit=np.inf, return_cost=True):
        cost = np.asarray(cost, np.float64)
        rows, cols = cost.shape
        big = 1e9
        full = np.full((rows + cols, rows + cols), big)
        full[:rows, :cols] = np.where(cost <= cost_limit, cost, big)
        full[:rows, cols:][np.eye(rows, dtype=bool)] = cost_limit / 2
        full[rows:, :cols][np.eye(cols, dtype=bool)] = cost_limit / 2
        full[rows:, cols:] = 0
        r, c = linear_sum_assignment(full)
        x, y = np.full(rows, -1), np.full(cols, -1)
        for i, j in zip(r, c):
            if i < rows and j < cols and full[i, j] < big:
                x[i], y[j] = j, i
        total = float(sum(cost[i, x[i]] for i in range(rows) if x[i] >= 0))
        return (total, x, y) if return_cost else (x, y)

    module = types.ModuleType("lap")
    module.lapjv = lapjv
    module.__version__ = "stand-in"
    return module
