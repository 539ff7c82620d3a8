"""Crop geometry and flip test: the official HRNet facts of shared/REFERENCE.md, Part 1."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.flip import flip_heatmaps, fuse_flip_test
from dehrnet_cli.pose.geometry import (
    affine_points,
    center_scale_from_xywh,
    center_scale_from_xyxy,
    clean_gt_box,
    get_affine_transform,
    heatmap_to_image,
    warp_crops,
)
from models.keypoints import COCO17, MPII16

INPUT = (288, 384)  # crop (w, h)


# --- box -> center/scale ---------------------------------------------------------------------------


def test_center_scale_tall_box_grows_width() -> None:
    centers, scales = center_scale_from_xywh(np.array([[10.0, 20.0, 30.0, 80.0]]), INPUT)
    assert centers.dtype == np.float32 and scales.dtype == np.float32
    np.testing.assert_array_equal(centers, [[25.0, 60.0]])  # x + w/2, no +-0.5
    # w 30 < 0.75 * 80 -> w = 60; scale = size / 200 * 1.25
    np.testing.assert_array_equal(scales, np.float32([[60 / 200, 80 / 200]]) * np.float32(1.25))


def test_center_scale_wide_box_grows_height() -> None:
    centers, scales = center_scale_from_xywh(np.array([[0.0, 0.0, 300.0, 100.0]]), INPUT)
    np.testing.assert_array_equal(centers, [[150.0, 50.0]])
    np.testing.assert_array_equal(scales, np.float32([[300 / 200, 400 / 200]]) * np.float32(1.25))


def test_center_scale_exact_aspect_unchanged_and_padding() -> None:
    _, scales = center_scale_from_xywh(np.array([[5.0, 5.0, 75.0, 100.0]]), INPUT)
    np.testing.assert_array_equal(scales, [[0.46875, 0.625]])
    _, unpadded = center_scale_from_xywh(np.array([[5.0, 5.0, 75.0, 100.0]]), INPUT, padding=1.0)
    np.testing.assert_array_equal(unpadded, [[0.375, 0.5]])


def test_center_scale_odd_values_are_float32_of_the_official_arithmetic() -> None:
    boxes = np.array([[12.3, 45.6, 78.9, 123.4], [0.5, 0.25, 301.7, 99.1]])
    centers, scales = center_scale_from_xywh(boxes, (192, 256))
    for (x, y, w, h), center, scale in zip(boxes, centers, scales, strict=True):
        assert center[0] == np.float32(x + w * 0.5) and center[1] == np.float32(y + h * 0.5)
        aspect = 192 / 256
        if w > aspect * h:
            h = w / aspect
        elif w < aspect * h:
            w = h * aspect
        np.testing.assert_array_equal(scale, np.float32([w / 200, h / 200]) * np.float32(1.25))


def test_center_x_minus_one_is_not_padded() -> None:
    # official quirk: no x1.25 when center.x == -1
    _, scales = center_scale_from_xywh(np.array([[-11.0, 0.0, 20.0, 80.0]]), INPUT)
    np.testing.assert_array_equal(scales, np.float32([[0.3, 0.4]]))


def test_center_scale_xyxy_matches_xywh() -> None:
    boxes_xyxy = np.array([[10.0, 20.0, 40.0, 100.0], [3.5, 4.5, 200.0, 90.0]])
    boxes_xywh = np.concatenate([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]], axis=1)
    for got, want in zip(
        center_scale_from_xyxy(boxes_xyxy, INPUT), center_scale_from_xywh(boxes_xywh, INPUT), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_center_scale_empty_and_bad_shape() -> None:
    centers, scales = center_scale_from_xyxy(np.zeros((0, 4)), INPUT)
    assert centers.shape == (0, 2) and scales.shape == (0, 2)
    with pytest.raises(DehrnetError, match="boxes_xywh"):
        center_scale_from_xywh(np.zeros((2, 3)), INPUT)


# --- GT box cleaning -------------------------------------------------------------------------------


def test_clean_gt_box_is_one_pixel_smaller() -> None:
    np.testing.assert_array_equal(clean_gt_box([10, 20, 30, 40], 640, 480), [10, 20, 29, 39])


def test_clean_gt_box_clips_the_origin_without_shrinking() -> None:
    # x1 = max(0, x), then x2 = x1 + (w - 1): a box hanging out on the left is moved, not cut
    np.testing.assert_array_equal(clean_gt_box([-5, -3, 30, 40], 640, 480), [0, 0, 29, 39])


def test_clean_gt_box_clips_right_and_bottom() -> None:
    np.testing.assert_array_equal(clean_gt_box([630, 470, 30, 40], 640, 480), [630, 470, 9, 9])


def test_clean_gt_box_drops_boxes_outside_or_without_area() -> None:
    assert clean_gt_box([700, 10, 30, 40], 640, 480) is None
    assert clean_gt_box([10, 10, 30, 40], 640, 480, area=0.0) is None
    np.testing.assert_array_equal(clean_gt_box([10, 10, 30, 40], 640, 480, area=12.0), [10, 10, 29, 39])
    # a zero-width box survives with width 0 (x2 >= x1)
    np.testing.assert_array_equal(clean_gt_box([10, 10, 0.5, 40], 640, 480), [10, 10, 0, 39])


# --- affine transform ------------------------------------------------------------------------------


def test_affine_rot0_closed_form() -> None:
    center, scale = np.float32([100.0, 150.0]), np.float32([0.75, 1.0])  # exact in float32
    matrix = get_affine_transform(center, scale, 0, INPUT)
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    k = INPUT[0] / (float(scale[0]) * 200)
    points = np.array([[100.0, 150.0], [0.0, 0.0], [37.5, 251.25]])
    want = np.stack([k * (points[:, 0] - 100) + 144, k * (points[:, 1] - 150) + 192], axis=1)
    np.testing.assert_allclose(affine_points(points, matrix), want, atol=1e-9)


def test_affine_uses_only_scale_width() -> None:
    center = np.float32([50.0, 60.0])
    a = get_affine_transform(center, np.float32([1.0, 1.0]), 0, INPUT)
    b = get_affine_transform(center, np.float32([1.0, 7.0]), 0, INPUT)
    c = get_affine_transform(center, 1.0, 0, INPUT)  # a scalar scale means (s, s)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_affine_rotation_convention() -> None:
    # REFERENCE.md: rot=30, scale factor 1.6: 10 px right of the centre -> 13.86 px right, 8 px up
    center = np.float32([100.0, 100.0])
    matrix = get_affine_transform(center, np.float32([0.9, 1.2]), 30, INPUT)  # 288 / 180 = 1.6
    out = affine_points(np.array([110.0, 100.0]), matrix)
    np.testing.assert_allclose(out - [144.0, 192.0], [16 * np.cos(np.pi / 6), -8.0], atol=1e-4)
    assert abs(out[0] - 144 - 13.86) < 0.01


def test_affine_shift_moves_the_source_center() -> None:
    matrix = get_affine_transform(np.float32([100, 100]), np.float32([1.0, 1.0]), 0, INPUT, shift=(0.1, -0.2))
    np.testing.assert_allclose(affine_points(np.array([120.0, 60.0]), matrix), [144.0, 192.0], atol=1e-9)


@pytest.mark.parametrize("rot", [0.0, 30.0, -45.0])
def test_affine_inverse(rot: float) -> None:
    center, scale = np.float32([123.4, 56.7]), np.float32([0.77, 1.03])
    forward = get_affine_transform(center, scale, rot, INPUT)
    backward = get_affine_transform(center, scale, rot, INPUT, inv=True)
    points = np.random.default_rng(0).uniform(0, 300, size=(20, 2))
    np.testing.assert_allclose(affine_points(affine_points(points, forward), backward), points, atol=1e-6)
    # the rotated map is a similarity: no reflection, same factor on both axes
    linear = forward[:, :2]
    assert np.linalg.det(linear) > 0
    k_squared = (INPUT[0] / (scale[0] * 200)) ** 2
    np.testing.assert_allclose(linear @ linear.T, np.eye(2) * k_squared, rtol=0, atol=1e-6 * k_squared)


def test_affine_points_shapes_and_errors() -> None:
    matrix = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    out = affine_points(np.ones((4, 5, 2)), matrix)
    assert out.shape == (4, 5, 2)
    np.testing.assert_array_equal(out[0, 0], [3.0, 2.0])
    with pytest.raises(DehrnetError):
        affine_points(np.ones((4, 3)), matrix)


def test_heatmap_to_image_closed_form() -> None:
    # x_img = cx + (x_hm - 36) * scale_w * 200 / 72
    centers, scales = np.float32([[100.0, 200.0]]), np.float32([[0.9, 1.2]])
    coords = np.array([[[36.0, 48.0], [0.0, 0.0], [10.25, 70.75]]])
    factor = 0.9 * 200 / 72
    want = np.stack([100 + (coords[0, :, 0] - 36) * factor, 200 + (coords[0, :, 1] - 48) * factor], axis=1)
    np.testing.assert_allclose(heatmap_to_image(coords, centers, scales, (72, 96))[0], want, atol=1e-4)
    with pytest.raises(DehrnetError):
        heatmap_to_image(coords, centers, np.zeros((2, 2)), (72, 96))


# --- warp -----------------------------------------------------------------------------------------


def test_warp_crops_equals_direct_warp() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    centers = np.float32([[160.0, 120.0], [30.5, 200.25]])
    scales = np.float32([[0.6, 0.8], [1.7, 2.2667]])
    rotations = np.array([0.0, 25.0])
    crops = warp_crops(image, centers, scales, (96, 128), rotations)
    assert crops.shape == (2, 128, 96, 3) and crops.dtype == np.uint8
    for i in range(2):
        matrix = get_affine_transform(centers[i], scales[i], rotations[i], (96, 128))
        direct = cv2.warpAffine(image, matrix, (96, 128), flags=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(crops[i], direct)
    # the border is constant 0: the second crop reaches outside the image
    assert (crops[1, 0, 0] == 0).all()


def test_warp_crop_puts_a_known_pixel_where_the_affine_says() -> None:
    image = np.zeros((400, 500, 3), dtype=np.uint8)
    image[210, 170] = (10, 20, 30)
    # scale_w * 200 = 200 = crop width -> factor 1: crop (u, v) = (x - 150 + 100, y - 200 + 130)
    center, scale, size = np.float32([150.0, 200.0]), np.float32([1.0, 1.3]), (200, 260)
    crops = warp_crops(image, center[None], scale[None], size)
    u, v = affine_points(np.array([170.0, 210.0]), get_affine_transform(center, scale, 0, size))
    np.testing.assert_allclose([u, v], [120.0, 140.0], atol=1e-9)
    np.testing.assert_array_equal(crops[0, 140, 120], (10, 20, 30))
    assert crops[0].sum() == 60  # nothing else lit


def test_warp_crop_of_a_ramp_follows_the_zoom() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (100, 1))
    image = np.dstack([ramp, ramp, ramp])
    center, scale = np.float32([128.0, 50.0]), np.float32([0.4, 0.5])  # 80 px wide -> factor 3.6
    crop = warp_crops(image, center[None], scale[None], INPUT)[0]
    inverse = get_affine_transform(center, scale, 0, INPUT, inv=True)
    columns = np.arange(INPUT[0], dtype=np.float64)
    x_img = affine_points(np.stack([columns, np.full_like(columns, 192.0)], axis=1), inverse)[:, 0]
    np.testing.assert_allclose(crop[192, :, 0], x_img, atol=1.0)  # bilinear of a linear ramp is linear


def test_warp_crops_rejects_bad_shapes() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    with pytest.raises(DehrnetError):
        warp_crops(image, np.zeros((2, 2)), np.zeros((3, 2)), INPUT)
    with pytest.raises(DehrnetError):
        warp_crops(np.zeros((10, 10)), np.zeros((1, 2)), np.ones((1, 2)), INPUT)


# --- flip test ------------------------------------------------------------------------------------


def _random_heatmaps(num_k: int = 17, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((2, num_k, 8, 6)).astype(np.float32)


@pytest.mark.parametrize("spec", [COCO17, MPII16])
def test_flip_twice_is_identity(spec) -> None:
    heatmaps = _random_heatmaps(spec.num_keypoints)
    once = flip_heatmaps(heatmaps, spec.flip_index(), shift=False)
    assert not np.array_equal(once, heatmaps)
    np.testing.assert_array_equal(flip_heatmaps(once, spec.flip_index(), shift=False), heatmaps)


def test_flip_swaps_pairs_and_mirrors_columns() -> None:
    heatmaps = np.zeros((1, 17, 4, 6), dtype=np.float32)
    heatmaps[0, 1, 2, 1] = 1.0  # left_eye at column 1
    heatmaps[0, 0, 3, 0] = 0.5  # nose at column 0
    flipped = flip_heatmaps(heatmaps, COCO17.flip_index(), shift=False)
    assert flipped[0, 2, 2, 4] == 1.0 and flipped[0, 1].sum() == 0  # right_eye at 6 - 1 - 1
    assert flipped[0, 0, 3, 5] == 0.5
    shifted = flip_heatmaps(heatmaps, COCO17.flip_index(), shift=True)
    assert shifted[0, 2, 2, 5] == 1.0 and shifted[0, 2].sum() == 1.0  # one pixel to the right


def test_flip_shift_keeps_column_zero() -> None:
    heatmaps = _random_heatmaps()
    plain = flip_heatmaps(heatmaps, COCO17.flip_index(), shift=False)
    shifted = flip_heatmaps(heatmaps, COCO17.flip_index(), shift=True)
    np.testing.assert_array_equal(shifted[..., 1:], plain[..., :-1])
    np.testing.assert_array_equal(shifted[..., 0], plain[..., 0])  # not zeroed
    # the caller's array is left alone
    np.testing.assert_array_equal(heatmaps, _random_heatmaps())


def test_fuse_flip_test_of_a_mirror_symmetric_input_is_the_input() -> None:
    heatmaps = _random_heatmaps()
    # what a perfectly mirror-consistent model outputs on the flipped input
    of_flipped_input = flip_heatmaps(heatmaps, COCO17.flip_index(), shift=False)
    fused = fuse_flip_test(heatmaps, of_flipped_input, COCO17.flip_index(), shift=False)
    np.testing.assert_allclose(fused, heatmaps, rtol=0, atol=1e-7)
    shifted = fuse_flip_test(heatmaps, of_flipped_input, COCO17.flip_index(), shift=True)
    want = heatmaps.copy()
    want[..., 1:] = (heatmaps[..., 1:] + heatmaps[..., :-1]) * 0.5
    np.testing.assert_allclose(shifted, want, atol=1e-7)


def test_flip_rejects_bad_input() -> None:
    with pytest.raises(DehrnetError, match="flip_index"):
        flip_heatmaps(_random_heatmaps(), MPII16.flip_index())
    with pytest.raises(DehrnetError):
        fuse_flip_test(_random_heatmaps(), _random_heatmaps()[:1], COCO17.flip_index())
