"""Crops warped on the device: per frame, one batched `affine_grid` + `grid_sample` over all its people,
from the very matrices the CPU path hands to cv2.warpAffine (`geometry.get_affine_transform`).

Shape letters: N crops, h x w the crop (network input), H x W the frame. Works on any torch device; on
CUDA it replaces the per-crop cv2.warpAffine of `geometry.warp_crops`, which at thousands of crops per
second becomes the CPU's bottleneck.

Parity with cv2.warpAffine(INTER_LINEAR, constant 0 border), whose arithmetic changed between versions (a
probe of the installed cv2 picks the convention, `opencv_warp_convention`): OpenCV 4 computes each source
position in fixed point, rounds it to 1/32 pixel (INTER_BITS = 5), interpolates with exact weights of that
grid and rounds to uint8 half up; OpenCV 5 interpolates at the exact position and rounds half to even. Here
positions are rounded the same way (or not), interpolation is exact in float32 (see `frame_to_planes`) and
values are rounded as that cv2 rounds. Measured on a test frame (tests/test_pose_gpu_crops.py): against
OpenCV 4.14, 99.90 % of crop values equal, 99.998 % within one level, at most 5 levels apart at sharp edges
(its two-part fixed-point position arithmetic); against OpenCV 5.0, 99.99 % equal, at most 1 level apart.
`grid_sample`'s zero padding treats taps outside the frame as OpenCV's constant 0 border does: a crop edge
that cuts the frame border blends towards black, and crop pixels wholly outside are 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dehrnet_cli.pose.geometry import get_affine_transform

SUBPIXEL_STEPS = 32  # OpenCV 4's INTER_TAB_SIZE: source positions are rounded to 1/32 pixel


@dataclass(frozen=True)
class WarpConvention:
    """How the installed cv2.warpAffine rounds: source positions to 1/`subpixel_steps` pixel (None: exact
    positions), and interpolated values half to even (else half up)."""

    subpixel_steps: int | None
    half_to_even: bool


@functools.cache
def opencv_warp_convention() -> WarpConvention:
    """Probe the installed cv2 once: a step edge shifted by 1/64 pixel tells whether positions are rounded
    to 1/32 (OpenCV 4: a 255 edge reads 8, else about 4), a half-pixel shift between 2 and 3 whether 2.5
    rounds to 2 (half to even) or 3."""
    edge = np.zeros((1, 8), np.uint8)
    edge[:, 4:] = 255
    shifted = cv2.warpAffine(edge, np.float64([[1, 0, -1 / 64], [0, 1, 0]]), (8, 1), flags=cv2.INTER_LINEAR)
    steps = SUBPIXEL_STEPS if shifted[0, 3] >= 6 else None  # x=3 samples 3 + 1/64: 8 (rounded to 3 + 1/32) or 4
    pair = np.array([[2, 3, 3, 3]], np.uint8)
    half = cv2.warpAffine(pair, np.float64([[1, 0, -0.5], [0, 1, 0]]), (4, 1), flags=cv2.INTER_LINEAR)
    return WarpConvention(steps, bool(half[0, 0] == 2))


def crop_matrices(centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int],
                  rotations: np.ndarray | None = None) -> np.ndarray:
    """(N, 2, 3) float64 image -> crop matrices of crops at centers (N, 2) / scales (N, 2) (200 px units),
    rotations (N,) degrees (default 0): exactly those `geometry.warp_crops` gives cv2.warpAffine."""
    rots = np.zeros(len(centers)) if rotations is None else np.asarray(rotations, np.float64)
    return np.stack([get_affine_transform(c, s, float(r), input_size) for c, s, r in zip(centers, scales, rots)]
                    ) if len(centers) else np.zeros((0, 2, 3))


def _grid_thetas(matrices: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """(N, 2, 3) float64 thetas for affine_grid (align_corners=False) whose grid holds, for every crop pixel,
    the source position in frame *pixels* (not normalised): the inverse of each crop matrix after the map
    from affine_grid's normalised output coordinates to crop pixels (j = x_n * w / 2 + (w - 1) / 2)."""
    w, h = input_size
    rows = np.concatenate([matrices, np.broadcast_to([0.0, 0.0, 1.0], (len(matrices), 1, 3))], axis=1)
    inverse = np.linalg.inv(rows)
    to_pixels = np.array([[w / 2, 0, (w - 1) / 2], [0, h / 2, (h - 1) / 2], [0, 0, 1]], np.float64)
    return (inverse @ to_pixels)[:, :2, :]


def sampling_grid(matrices: np.ndarray, input_size: tuple[int, int], frame_hw: tuple[int, int],
                  device: torch.device | str) -> torch.Tensor:
    """(N, h, w, 2) float32 grid_sample grid (x, y normalised with align_corners=False) of the crops of
    `matrices` (N, 2, 3) in a frame of frame_hw (H, W), source positions rounded as the installed cv2 does."""
    w, h = input_size
    theta = torch.from_numpy(_grid_thetas(np.asarray(matrices, np.float64), input_size)).to(device, torch.float32)
    grid = F.affine_grid(theta, [len(matrices), 1, h, w], align_corners=False)  # frame pixels
    steps = opencv_warp_convention().subpixel_steps
    if steps is not None:
        grid = torch.floor(grid * steps + 0.5) / steps
    size = torch.tensor([frame_hw[1], frame_hw[0]], dtype=torch.float32, device=grid.device)
    return (2 * grid + 1) / size - 1


def frame_to_planes(frame_bgr: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) uint8 BGR frame (any device) -> (1, 3, H', W') float32 RGB planes, values 0..255, zero-padded
    on the right and bottom to powers of two. The padding changes no crop value (grid_sample's zero border
    reads 0 there too), but it makes grid_sample's normalise/unnormalise round trip of 1/32-pixel positions
    exact in float32, so bilinear weights and sums are exact and ties round as cv2's fixed point does."""
    height, width = frame_bgr.shape[:2]
    planes = frame_bgr.new_zeros((1, 3, _power_of_two(height), _power_of_two(width)), dtype=torch.float32)
    planes[0, :, :height, :width] = frame_bgr.permute(2, 0, 1).flip(0)
    return planes


def _power_of_two(size: int) -> int:
    return 1 << max(0, size - 1).bit_length()


def warp_crops_torch(planes: torch.Tensor, matrices: np.ndarray, input_size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, h, w) float32 crops, whole numbers 0..255, of a frame's (1, 3, H, W) float32 planes (best from
    `frame_to_planes`, whose power-of-two size makes the interpolation exact): one
    affine_grid + grid_sample for all N crops (bilinear, zero border), rounded to whole numbers as cv2 rounds.
    The channel order is the planes' (RGB from `frame_to_planes`)."""
    w, h = input_size
    num = len(matrices)
    if num == 0:
        return planes.new_zeros((0, 3, h, w))
    grid = sampling_grid(matrices, input_size, planes.shape[2:], planes.device)
    # one batch-1 call over a (1, N*h, w) grid reads the frame once, with no N-fold expanded copy of it
    values = F.grid_sample(planes, grid.reshape(1, num * h, w, 2), mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    rounded = torch.round(values) if opencv_warp_convention().half_to_even else torch.floor(values + 0.5)
    return rounded.reshape(3, num, h, w).transpose(0, 1)


def normalize_crops_torch(crops_rgb: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, 3, h, w) float32 RGB crops 0..255 -> /255, ImageNet-normalised in float32 (as
    `backends.normalize_crops`, so equal crops give equal inputs), then cast to `dtype`, channels_last."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=crops_rgb.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=crops_rgb.device).view(1, 3, 1, 1)
    normalised = (crops_rgb / 255.0 - mean_t) / std_t
    return normalised.to(dtype=dtype, memory_format=torch.channels_last)
