"""Crops warped with one batched affine_grid + grid_sample (pose.gpu_crops), on the CPU: the same matrices
as cv2.warpAffine, the same rounding of source positions and values as the installed cv2, the same zero border.

Measured here on the image and boxes of `test_crops_match_cv2_to_within_its_rounding` (a blurred noise frame
with a sharp bar, four boxes, rotations 0/15/-30 degrees, two cutting the frame border). OpenCV 4.14: 99.90 %
of crop values equal cv2's, 99.998 % within 1 level, the largest difference 5 levels (at the bar's edges, where
OpenCV's two-part fixed-point position arithmetic rounds a position into the next 1/32 cell); without the 1/32
rounding 96.9 % were equal, without the power-of-two padding of the planes 99.64 %. OpenCV 5.0 (exact
positions, values rounded half to even; a venv with torch 2.13): 99.99 % equal, at most 1 level apart.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dehrnet_cli.pose.backends import normalize_crops
from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
from dehrnet_cli.pose.gpu_crops import (
    crop_matrices,
    frame_to_planes,
    normalize_crops_torch,
    opencv_warp_convention,
    sampling_grid,
    warp_crops_torch,
)
from models import get_config

INPUT = (288, 384)  # crop (w, h)


def _frame(h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    image[100:300, 200:205] = (255, 0, 128)  # sharp edges, different per channel
    return image


def _device_crops(image: np.ndarray, centers, scales, rotations=None) -> np.ndarray:
    """(N, h, w, 3) BGR crops of the torch path, as float values, for comparison with cv2's uint8 ones."""
    planes = frame_to_planes(torch.from_numpy(image))  # RGB planes
    crops = warp_crops_torch(planes, crop_matrices(centers, scales, INPUT, rotations), INPUT)
    return crops.flip(1).permute(0, 2, 3, 1).numpy()


def test_crops_match_cv2_to_within_its_rounding() -> None:
    image = _frame()
    boxes = np.array([[50.3, 60.7, 250.1, 400.9], [-30.5, 100.2, 120.3, 500.7], [400.2, 10.1, 700.9, 300.3],
                      [10, 10, 40, 60]])
    centers, scales = center_scale_from_xyxy(boxes, INPUT)
    rotations = np.array([0.0, 15.0, -30.0, 0.0])
    expected = warp_crops(image, centers, scales, INPUT, rotations).astype(np.float32)
    got = _device_crops(image, centers, scales, rotations)
    assert got.shape == expected.shape
    diff = np.abs(got - expected)
    assert (diff == 0).mean() > 0.998  # OpenCV 4 without the 1/32-pixel rounding: 96.9 %; without the padding 99.64 %
    assert (diff <= 1).mean() > 0.9999
    assert diff.max() <= 8
    assert (got == np.floor(got)).all() and got.min() >= 0 and got.max() <= 255


def test_crops_on_a_pixel_grid_equal_cv2_bit_for_bit_border_included() -> None:
    """Scale factors 1 and 2 with whole-pixel centers put every source position on the 1/32 grid (no
    rounding anywhere): the crops equal OpenCV 4's exactly, also where they leave the frame (zero border) and
    where factor 2 interpolates half way (ties rounded up, as its fixed point does). OpenCV 5 computes the
    positions in float, so a tie there may fall on either side: at most 1 level apart on 0.1 % of values."""
    image = _frame(200, 300, seed=1)
    centers = np.array([[150.0, 100.0], [20.0, 30.0], [290.0, 190.0], [100.5, 60.0]], np.float32)
    scales = np.array([[288 / 200, 384 / 200], [288 / 200, 384 / 200], [144 / 200, 192 / 200], [144 / 200, 192 / 200]],
                      np.float32)
    expected = warp_crops(image, centers, scales, INPUT).astype(np.float32)
    got = _device_crops(image, centers, scales)
    if opencv_warp_convention().subpixel_steps is not None:
        np.testing.assert_array_equal(got, expected)
    else:
        assert (got == expected).mean() > 0.999 and np.abs(got - expected).max() <= 1
    assert (got[1, :10, :10] == 0).all()  # outside the frame: the constant 0 border


def test_sampling_grid_is_normalised_for_the_frame_without_corners_aligned() -> None:
    """A crop at scale factor 1 centered on the frame center samples pixel x at (2x + 1) / W - 1."""
    frame_h, frame_w = 384, 288
    matrices = crop_matrices(np.array([[144.0, 192.0]]), np.array([[288 / 200, 384 / 200]]), INPUT)
    grid = sampling_grid(matrices, INPUT, (frame_h, frame_w), "cpu")
    assert grid.shape == (1, 384, 288, 2) and grid.dtype == torch.float32
    xs = (2 * torch.arange(frame_w, dtype=torch.float32) + 1) / frame_w - 1
    torch.testing.assert_close(grid[0, 0, :, 0], xs, atol=1e-6, rtol=0)
    ys = (2 * torch.arange(frame_h, dtype=torch.float32) + 1) / frame_h - 1
    torch.testing.assert_close(grid[0, :, 0, 1], ys, atol=1e-6, rtol=0)


def test_no_crops_and_normalisation_equal_to_the_host_path() -> None:
    cfg = get_config("dehrnet_w32_384x288")
    planes = frame_to_planes(torch.from_numpy(_frame()))
    assert warp_crops_torch(planes, crop_matrices(np.zeros((0, 2)), np.zeros((0, 2)), INPUT), INPUT).shape == \
        (0, 3, 384, 288)
    crops_bgr = np.random.default_rng(2).integers(0, 256, (3, 384, 288, 3), dtype=np.uint8)
    rgb = torch.from_numpy(crops_bgr).flip(3).permute(0, 3, 1, 2).float()
    got = normalize_crops_torch(rgb, cfg.mean, cfg.std)
    assert got.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(got.numpy(), normalize_crops(crops_bgr, cfg.mean, cfg.std))
    assert normalize_crops_torch(rgb, cfg.mean, cfg.std, torch.bfloat16).dtype == torch.bfloat16


@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_one_crop_or_many_give_the_same_pixels(rotation: float) -> None:
    """All crops of a frame in one grid_sample call equal each crop sampled alone."""
    image = _frame(seed=3)
    centers, scales = center_scale_from_xyxy(np.array([[10.0, 20, 200, 400], [300, 50, 600, 420]]), INPUT)
    rotations = np.full(2, rotation)
    together = _device_crops(image, centers, scales, rotations)
    for i in range(2):
        alone = _device_crops(image, centers[i:i + 1], scales[i:i + 1], rotations[i:i + 1])
        np.testing.assert_array_equal(together[i:i + 1], alone)


def test_the_probe_reads_the_installed_opencvs_rounding() -> None:
    """OpenCV 4 rounds source positions to 1/32 pixel and values half up (this project pins opencv < 5)."""
    convention = opencv_warp_convention()
    if cv2.__version__.startswith("4."):
        assert convention.subpixel_steps == 32 and not convention.half_to_even
    else:
        assert convention.subpixel_steps is None and convention.half_to_even
