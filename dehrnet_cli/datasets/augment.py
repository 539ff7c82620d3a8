"""The paper's training augmentation drawn the official HRNet way, in the official order: half-body, scale,
rotation, flip (flip pairs swapped); and the training crop with its keypoints moved by the same matrix.

Shape letters: K keypoints, h x w crop rows x columns. Sizes are (w, h). Coordinates are 0-based image
pixels unless a name says crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dehrnet_cli.datasets.records import PersonRecord
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import (
    PIXEL_STD,
    affine_points,
    get_affine_transform,
    warp_crops,
)
from models import KeypointSpec


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation; the defaults are the paper's recipe drawn the official HRNet way.

    scale: s * clip(N(1, scale_factor), 1 - f, 1 + f) ("+-32 %" in the paper; the official COCO yaml has
    0.35). Rotation, with probability `rotation_prob`: clip(N(0, rotation_factor), +-2 x factor) degrees
    (the papers' "+-45 deg" is the official ROT_FACTOR 45). Flip with probability `flip_prob` (flip pairs
    swapped). Half-body with probability `half_body_prob` for people with more than `half_body_min_joints`
    labelled joints: the box of the upper (spec.upper_body) or lower joints, x `half_body_padding` (never for a
    keypoint set without an upper body, such as one a data set defines).
    """

    scale_factor: float = 0.32
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5
    joint_weights: bool = False  # official per-joint loss weights (COCO only): elbows/knees 1.2, wrists/ankles 1.5

    def __post_init__(self) -> None:
        probs = {"rotation_prob": self.rotation_prob, "flip_prob": self.flip_prob,
                 "half_body_prob": self.half_body_prob}
        bad = [f"{k}={v}" for k, v in probs.items() if not 0 <= v <= 1]
        if not 0 <= self.scale_factor < 1:
            bad.append(f"scale_factor={self.scale_factor} (needs 0 <= f < 1)")
        if self.rotation_factor < 0 or self.half_body_padding <= 0:
            bad.append(f"rotation_factor={self.rotation_factor}, half_body_padding={self.half_body_padding}")
        if bad:
            raise DehrnetError(f"invalid augmentation settings: {', '.join(bad)}; probabilities lie in [0, 1]")


NO_AUGMENT = AugmentSettings(scale_factor=0.0, rotation_prob=0.0, flip=False, half_body_prob=0.0)


@dataclass(frozen=True, eq=False)
class CropParams:
    """One sample's crop: center (2,) in the (flipped, if `flip`) image, scale (2,), rotation in degrees."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False


def half_body_box(keypoints_xy: np.ndarray, visible: np.ndarray, upper_body: tuple[int, ...], aspect: float,
                  rng: np.random.Generator, padding: float = 1.5) -> tuple[np.ndarray, np.ndarray] | None:
    """Center (2,) and scale (2,) of the upper or lower body's labelled joints, or None (fewer than 2).

    Official choice: the upper body when N(0, 1) < 0.5 (about 69 %) and it has more than 2 labelled joints,
    else the lower body when it has more than 2, else the upper body. The joints' box is grown to `aspect`
    (crop w / h) and multiplied by `padding`.
    """
    labelled = np.asarray(visible) > 0
    upper_mask = np.zeros(len(labelled), bool)
    upper_mask[list(upper_body)] = True
    upper, lower = keypoints_xy[labelled & upper_mask], keypoints_xy[labelled & ~upper_mask]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    center = selected.mean(axis=0).astype(np.float32)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, (np.array([w, h], np.float32) / PIXEL_STD * padding).astype(np.float32)


def sample_crop_params(rng: np.random.Generator, record: PersonRecord, image_w: int, settings: AugmentSettings,
                       spec: KeypointSpec, aspect: float) -> CropParams:
    """Draw one sample's augmentation in the official order: half-body, scale, rotation, flip."""
    center, scale = record.center.astype(np.float32).copy(), record.scale.astype(np.float32).copy()
    labelled = int((record.visible > 0).sum())
    if spec.upper_body and labelled > settings.half_body_min_joints and rng.random() < settings.half_body_prob:
        box = half_body_box(record.keypoints_xy, record.visible, spec.upper_body, aspect, rng,
                            settings.half_body_padding)
        if box is not None:
            center, scale = box
    f = settings.scale_factor
    scale = scale * np.float32(np.clip(rng.standard_normal() * f + 1, 1 - f, 1 + f))
    rotation = 0.0
    if rng.random() < settings.rotation_prob:
        r = settings.rotation_factor
        rotation = float(np.clip(rng.standard_normal() * r, -2 * r, 2 * r))
    flip = settings.flip and rng.random() < settings.flip_prob
    if flip:
        center[0] = image_w - center[0] - 1
    return CropParams(center, scale, rotation, flip)


def warp_training_crop(image: np.ndarray, keypoints_xy: np.ndarray, visible: np.ndarray, params: CropParams,
                       input_size: tuple[int, int], flip_index: list[int]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training crop (h, w, 3) uint8, its keypoints (K, 2) in crop pixels and visibility (K,).

    With `params.flip` the image is mirrored first (x -> W - 1 - x), left/right joints swap labels and
    unlabelled joints are zeroed, as the official `fliplr_joints`; then the image is warped with the shared
    geometry (bilinear, zero border) and the labelled joints are moved by the same matrix.
    """
    points = np.asarray(keypoints_xy, np.float64).copy()
    vis = np.asarray(visible, np.float32).copy()
    if params.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        points[:, 0] = image.shape[1] - points[:, 0] - 1
        points, vis = points[flip_index], vis[flip_index]
        points *= vis[:, None]
    crop = warp_crops(image, params.center[None], params.scale[None], input_size,
                      np.array([params.rotation]))[0]
    matrix = get_affine_transform(params.center, params.scale, params.rotation, input_size)
    points_crop = np.where(vis[:, None] > 0, affine_points(points, matrix), points)
    return crop, points_crop, vis
