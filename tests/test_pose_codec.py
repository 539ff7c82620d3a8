"""Heatmap codec: official generate_target / get_max_preds / get_final_preds facts, and DARK."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.geometry import affine_points, center_scale_from_xywh, get_affine_transform

CODEC = HeatmapCodec(input_size=(288, 384), heatmap_size=(72, 96), sigma=3)
SMALL = HeatmapCodec(input_size=(192, 256), heatmap_size=(48, 64), sigma=2)


def _reference_decode(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """get_max_preds + quarter offset, one joint at a time, straight from the REFERENCE.md rules."""
    num, num_k, hm_h, hm_w = heatmaps.shape
    coords = np.zeros((num, num_k, 2), np.float32)
    maxvals = np.zeros((num, num_k), np.float32)
    for n in range(num):
        for k in range(num_k):
            hm = heatmaps[n, k]
            idx = int(np.argmax(hm))
            maxvals[n, k] = hm.flat[idx]
            x, y = (float(idx % hm_w), float(idx // hm_w)) if hm.flat[idx] > 0 else (0.0, 0.0)
            px, py = math.floor(x + 0.5), math.floor(y + 0.5)
            if 1 < px < hm_w - 1 and 1 < py < hm_h - 1:
                x += 0.25 * np.sign(hm[py, px + 1] - hm[py, px - 1])
                y += 0.25 * np.sign(hm[py + 1, px] - hm[py - 1, px])
            coords[n, k] = x, y
    return coords, maxvals


# --- encode ---------------------------------------------------------------------------------------


def test_encode_peak_at_rounded_grid_point() -> None:
    heatmaps, weights = SMALL.encode(np.array([[13.9, 6.1]]), np.array([1]))
    assert heatmaps.shape == (1, 64, 48) and heatmaps.dtype == np.float32
    assert weights.dtype == np.float32 and weights[0] == 1.0
    # int(13.9 / 4 + 0.5) = 3, int(6.1 / 4 + 0.5) = 2
    assert np.unravel_index(np.argmax(heatmaps[0]), (64, 48)) == (2, 3)
    assert heatmaps[0, 2, 3] == 1.0
    np.testing.assert_allclose(heatmaps[0, 2, 4], np.exp(-1 / 8), rtol=1e-6)
    np.testing.assert_allclose(heatmaps[0, 4, 5], np.exp(-8 / 8), rtol=1e-6)
    # radius 3 sigma: 6 pixels away is in the patch, 7 is not
    assert heatmaps[0, 2, 9] > 0 and heatmaps[0, 2, 10] == 0
    assert heatmaps[0, 8, 3] > 0 and heatmaps[0, 9, 3] == 0


def test_encode_truncates_toward_zero_like_the_official_int() -> None:
    heatmaps, weights = SMALL.encode(np.array([[-3.0, 20.0]]), np.array([1]))
    # int(-0.75 + 0.5) = 0 (floor would give -1)
    assert weights[0] == 1.0 and heatmaps[0, 5, 0] == 1.0


def test_encode_clips_the_patch_at_the_border() -> None:
    heatmaps, weights = SMALL.encode(np.array([[0.0, 0.0], [4 * 47.0, 4 * 63.0]]), np.array([1, 1]))
    assert weights.tolist() == [1.0, 1.0]
    assert heatmaps[0, 0, 0] == 1.0 and np.count_nonzero(heatmaps[0]) == 7 * 7
    assert heatmaps[1, 63, 47] == 1.0 and np.count_nonzero(heatmaps[1]) == 7 * 7


def test_encode_joint_outside_gets_weight_zero() -> None:
    joints = np.array([[-40.0, 10.0], [4 * 55.0, 10.0], [10.0, 4 * 71.0], [4 * 50.0, 10.0]])
    heatmaps, weights = SMALL.encode(joints, np.ones(4))
    # fully outside: weight 0, empty map
    assert weights[:3].tolist() == [0.0, 0.0, 0.0] and not heatmaps[:3].any()
    # the peak is outside (column 50) but part of the patch is inside: weight stays, patch is drawn
    assert weights[3] == 1.0 and heatmaps[3, :, 44:].any() and not heatmaps[3, :, :44].any()
    np.testing.assert_allclose(heatmaps[3, 3, 47], np.exp(-9 / 8), rtol=1e-6)


def test_encode_invisible_joint_has_no_target() -> None:
    heatmaps, weights = SMALL.encode(np.array([[50.0, 60.0], [80.0, 90.0]]), np.array([0, 1]))
    assert weights.tolist() == [0.0, 1.0]
    assert not heatmaps[0].any() and heatmaps[1].max() == 1.0


def test_encode_decode_round_trip() -> None:
    rng = np.random.default_rng(42)
    for codec in (CODEC, SMALL):
        joints = rng.uniform(8, np.array(codec.input_size) - 8, size=(50, 2))
        heatmaps, weights = codec.encode(joints, np.ones(50))
        assert (weights == 1).all()
        coords, maxvals = codec.decode(heatmaps[None])
        np.testing.assert_array_equal(maxvals, 1.0)
        # the target is centred on the grid point int(joint / stride + 0.5): decode returns it exactly
        np.testing.assert_array_equal(coords[0], np.floor(joints / codec.stride + 0.5))
        # so the round trip is exact to half a heatmap pixel (2 input pixels at stride 4)
        assert np.abs(coords[0] * codec.stride - joints).max() <= 0.5 * codec.stride.max() + 1e-9


# --- decode ---------------------------------------------------------------------------------------


def test_decode_first_maximum_wins() -> None:
    heatmaps = np.zeros((1, 1, 64, 48), np.float32)
    heatmaps[0, 0, 7, 5] = 0.8
    heatmaps[0, 0, 3, 9] = 0.8  # earlier in row-major order
    coords, maxvals = SMALL.decode(heatmaps)
    np.testing.assert_array_equal(coords[0, 0], [9.0, 3.0])  # neighbours equal (0, 0): no offset
    assert maxvals[0, 0] == np.float32(0.8)


def test_decode_non_positive_maximum_gives_origin_and_keeps_maxval() -> None:
    heatmaps = np.full((1, 2, 64, 48), -0.5, np.float32)
    heatmaps[0, 0, 30, 20] = -0.1
    heatmaps[0, 1] = 0.0
    coords, maxvals = SMALL.decode(heatmaps)
    np.testing.assert_array_equal(coords, np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(maxvals, np.float32([[-0.1, 0.0]]))
    # in the image that is heatmap pixel (0, 0), not the image origin
    centers, scales = np.float32([[300.0, 200.0]]), np.float32([[0.75, 1.0]])
    keypoints, _ = SMALL.decode_to_image(heatmaps, centers, scales)
    factor = 0.75 * 200 / 48
    np.testing.assert_allclose(keypoints[0], [[300 - 24 * factor, 200 - 32 * factor]] * 2, atol=1e-4)


def _peak_at(x: int, y: int, right: float, down: float) -> np.ndarray:
    heatmaps = np.zeros((1, 1, 64, 48), np.float32)
    heatmaps[0, 0, y, x] = 1.0
    heatmaps[0, 0, y, x - 1] = 0.5 if x > 0 else 0
    heatmaps[0, 0, y - 1, x] = 0.5 if y > 0 else 0
    if x + 1 < 48:
        heatmaps[0, 0, y, x + 1] = right
    if y + 1 < 64:
        heatmaps[0, 0, y + 1, x] = down
    return heatmaps


def test_decode_quarter_offset_strict_interior() -> None:
    # column 1 / row 1 have both neighbours but are NOT refined (1 < px is strict), and the rule is
    # joint: a peak on the edge band is refined along neither axis
    np.testing.assert_array_equal(SMALL.decode(_peak_at(1, 30, 0.9, 0.9))[0][0, 0], [1.0, 30.0])
    np.testing.assert_array_equal(SMALL.decode(_peak_at(20, 1, 0.9, 0.9))[0][0, 0], [20.0, 1.0])
    # column 2 is refined, toward the higher neighbour
    np.testing.assert_array_equal(SMALL.decode(_peak_at(2, 30, 0.9, 0.1))[0][0, 0], [2.25, 29.75])
    np.testing.assert_array_equal(SMALL.decode(_peak_at(2, 30, 0.1, 0.9))[0][0, 0], [1.75, 30.25])
    # the last refined column / row is W-2 / H-2; the last one is not
    np.testing.assert_array_equal(SMALL.decode(_peak_at(46, 62, 0.9, 0.9))[0][0, 0], [46.25, 62.25])
    np.testing.assert_array_equal(SMALL.decode(_peak_at(47, 63, 0.9, 0.9))[0][0, 0], [47.0, 63.0])
    np.testing.assert_array_equal(SMALL.decode(_peak_at(0, 30, 0.9, 0.9))[0][0, 0], [0.0, 30.0])


def test_decode_equal_neighbours_give_no_offset() -> None:
    np.testing.assert_array_equal(SMALL.decode(_peak_at(20, 30, 0.5, 0.5))[0][0, 0], [20.0, 30.0])


def test_decode_matches_a_joint_by_joint_reference() -> None:
    rng = np.random.default_rng(7)
    heatmaps = rng.normal(0.0, 0.3, size=(3, 17, 64, 48)).astype(np.float32)
    heatmaps[0, :3] -= 5.0  # all negative: coords (0, 0)
    heatmaps[1, 3, :, :] = 0.0  # all equal: first pixel, equal neighbours
    heatmaps[2, 4, 1, 1] = 9.0  # peak in row/column 1
    heatmaps[2, 5, 62, 2] = 9.0
    coords, maxvals = SMALL.decode(heatmaps)
    want_coords, want_maxvals = _reference_decode(heatmaps)
    assert coords.dtype == np.float32 and maxvals.dtype == np.float32 and coords.shape == (3, 17, 2)
    np.testing.assert_array_equal(coords, want_coords)
    np.testing.assert_array_equal(maxvals, want_maxvals)


def test_decode_empty_batch() -> None:
    coords, maxvals = CODEC.decode(np.zeros((0, 17, 96, 72), np.float32))
    assert coords.shape == (0, 17, 2) and maxvals.shape == (0, 17)


# --- back to the image ----------------------------------------------------------------------------


def test_planted_peaks_land_where_the_affine_says() -> None:
    """A peak planted at the heatmap pixel of an image keypoint decodes back to that keypoint.

    At an integer heatmap pixel with equal neighbours the expectation is exact (float32 rounding only).
    For an arbitrary keypoint the peak sits on the nearest pixel and the quarter offset leaves at most
    0.25 heatmap pixel per axis: that, in image pixels, is the honest tolerance.
    """
    rng = np.random.default_rng(3)
    hm_w, hm_h = CODEC.heatmap_size
    for _ in range(40):
        w, h = rng.uniform(10, 600), rng.uniform(10, 600)  # many sizes and aspect ratios
        boxes = np.array([[rng.uniform(-50, 800), rng.uniform(-50, 800), w, h]])
        centers, scales = center_scale_from_xywh(boxes, CODEC.input_size)
        forward = get_affine_transform(centers[0], scales[0], 0, CODEC.heatmap_size)
        inverse = get_affine_transform(centers[0], scales[0], 0, CODEC.heatmap_size, inv=True)
        image_px_per_hm_px = float(scales[0, 0]) * 200 / hm_w

        grid_xy = rng.integers(2, [hm_w - 2, hm_h - 2], size=(5, 2)).astype(np.float64)
        keypoints_img = affine_points(grid_xy, inverse)
        np.testing.assert_allclose(affine_points(keypoints_img, forward), grid_xy, atol=1e-6)
        heatmaps = np.zeros((1, 5, hm_h, hm_w), np.float32)
        for k, (gx, gy) in enumerate(grid_xy.astype(int)):
            heatmaps[0, k, gy, gx] = 1.0
            heatmaps[0, k, gy, [gx - 1, gx + 1]] = 0.5
            heatmaps[0, k, [gy - 1, gy + 1], gx] = 0.5
        decoded, _ = CODEC.decode_to_image(heatmaps, centers, scales)
        assert decoded.dtype == np.float32
        np.testing.assert_allclose(decoded[0], keypoints_img, atol=1e-3 * max(1.0, image_px_per_hm_px))

        # arbitrary image keypoints inside the crop: nearest pixel + quarter offset toward the fraction
        keypoints_img = affine_points(rng.uniform([3, 3], [hm_w - 3, hm_h - 3], size=(5, 2)), inverse)
        hm_xy = affine_points(keypoints_img, forward)
        heatmaps = np.zeros((1, 5, hm_h, hm_w), np.float32)
        for k, (fx, fy) in enumerate(hm_xy):
            gx, gy = int(np.floor(fx + 0.5)), int(np.floor(fy + 0.5))
            heatmaps[0, k, gy, gx] = 1.0
            heatmaps[0, k, gy, gx + (1 if fx > gx else -1)] = 0.6
            heatmaps[0, k, gy + (1 if fy > gy else -1), gx] = 0.6
        decoded, _ = CODEC.decode_to_image(heatmaps, centers, scales)
        tolerance = 0.25 * image_px_per_hm_px + 1e-3 * max(1.0, image_px_per_hm_px)
        assert np.abs(decoded[0] - keypoints_img).max() <= tolerance


# --- DARK -----------------------------------------------------------------------------------------


def _gaussian(x0: float, y0: float, sigma: float, size: tuple[int, int]) -> np.ndarray:
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    return np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma**2)).astype(np.float32)


@pytest.mark.parametrize("msra", [SMALL, CODEC], ids=["sigma2", "sigma3"])
def test_dark_recovers_a_sub_pixel_peak(msra: HeatmapCodec) -> None:
    dark = HeatmapCodec(msra.input_size, msra.heatmap_size, msra.sigma, decoder="dark")
    truths = np.array([[20.4, 30.6], [10.1, 50.85], [33.7, 12.3]])
    heatmaps = np.stack([_gaussian(x, y, msra.sigma, msra.heatmap_size) for x, y in truths])[None]
    dark_coords, dark_maxvals = dark.decode(heatmaps)
    msra_coords, msra_maxvals = msra.decode(heatmaps)
    assert np.abs(dark_coords[0] - truths).max() < 0.02
    assert np.abs(msra_coords[0] - truths).max() > 0.1  # the quarter offset cannot do this
    np.testing.assert_array_equal(dark_maxvals, msra_maxvals)  # scores stay the heatmap maxima


def test_dark_step_is_clipped_and_skips_the_border() -> None:
    dark = HeatmapCodec(SMALL.input_size, SMALL.heatmap_size, sigma=2, decoder="dark")
    heatmaps = np.zeros((1, 3, 64, 48), np.float32)
    # two close spikes: the blurred log surface puts the Newton step 1.27 px to the right
    heatmaps[0, 0, 30, 20] = 1.0
    heatmaps[0, 0, 30, 23] = 0.99
    heatmaps[0, 1] = _gaussian(1.3, 30.0, 2, SMALL.heatmap_size)  # peak in column 1: px < 2, untouched
    heatmaps[0, 2] = _gaussian(20.0, 30.0, 2, SMALL.heatmap_size)
    coords, _ = dark.decode(heatmaps)
    np.testing.assert_allclose(coords[0, 0], [21.0, 30.0], atol=1e-6)  # clipped to one pixel
    assert coords[0, 1, 0] == 1.0
    np.testing.assert_allclose(coords[0, 2], [20.0, 30.0], atol=1e-4)


# --- errors ---------------------------------------------------------------------------------------


def test_codec_rejects_bad_configuration() -> None:
    with pytest.raises(DehrnetError, match="decoder 'udp'"):
        HeatmapCodec((192, 256), (48, 64), sigma=2, decoder="udp")
    with pytest.raises(DehrnetError, match="sigma"):
        HeatmapCodec((192, 256), (48, 64), sigma=0)
    with pytest.raises(DehrnetError):
        HeatmapCodec((192, 256), (48, 0), sigma=2)


def test_codec_rejects_wrong_shapes() -> None:
    with pytest.raises(DehrnetError, match=r"\(N, K, 64, 48\)"):
        SMALL.decode(np.zeros((1, 17, 96, 72), np.float32))
    with pytest.raises(DehrnetError):
        SMALL.decode(np.zeros((17, 64, 48), np.float32))
    with pytest.raises(DehrnetError):
        SMALL.encode(np.zeros((17, 3)), np.ones(17))
    with pytest.raises(DehrnetError):
        SMALL.encode(np.zeros((17, 2)), np.ones(16))
