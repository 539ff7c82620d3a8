"""The flip merge and the official decode on torch tensors (the device path) against the numpy path, bit for bit:
one flip loop (pose.flip) and one codec serve both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.flip import flip_tested, fuse_flip_test
from models.keypoints import COCO17

CODEC = HeatmapCodec(input_size=(288, 384), heatmap_size=(72, 96), sigma=3)


def _maps(seed: int, num: int = 20) -> np.ndarray:
    """Random heatmaps with the hard cases planted: peaks <= 0, ties, peaks on every border row/column,
    plateaus (equal neighbours) and peaks next to the strict-interior limit."""
    rng = np.random.default_rng(seed)
    maps = rng.random((num, 17, 96, 72), np.float32)
    maps[0, 0] = -rng.random((96, 72), np.float32)  # all negative: (0, 0), maxval kept
    maps[0, 1] = 0.0  # all zero
    maps[0, 2] = 0.25
    maps[0, 2, 40, 30] = maps[0, 2, 10, 5] = 2.0  # tie: the first in row-major order wins
    for k, (y, x) in enumerate([(0, 30), (95, 30), (40, 0), (40, 71), (1, 1), (94, 70), (2, 2), (93, 69)], 3):
        maps[1, k] = 0.0
        maps[1, k, y, x] = 1.0
    maps[2, 0] = 0.0
    maps[2, 0, 50:53, 20:23] = 1.0  # plateau: equal neighbours give no offset
    return maps


@pytest.mark.parametrize("seed", [0, 1])
def test_decode_equals_the_numpy_codec_bit_for_bit(seed: int) -> None:
    maps = _maps(seed)
    expected_coords, expected_maxvals = CODEC.decode(maps)
    coords, maxvals = CODEC.decode(torch.from_numpy(maps))
    assert coords.dtype == maxvals.dtype == torch.float32
    np.testing.assert_array_equal(coords.numpy(), expected_coords)
    np.testing.assert_array_equal(maxvals.numpy(), expected_maxvals)
    assert coords[0, 0].tolist() == [0.0, 0.0] and maxvals[0, 0] < 0
    assert coords[0, 2].tolist() == [5.0, 10.0]


@pytest.mark.parametrize("shift", [True, False])
def test_flip_merge_equals_the_numpy_flip_test(shift: bool) -> None:
    maps, maps_of_flipped = _maps(2, 6), _maps(3, 6)
    flip_index = COCO17.flip_index()
    expected = fuse_flip_test(maps, maps_of_flipped, flip_index, shift)
    got = fuse_flip_test(torch.from_numpy(maps), torch.from_numpy(maps_of_flipped), flip_index, shift)
    np.testing.assert_array_equal(got.numpy(), expected)
    coords, maxvals = CODEC.decode(got)
    expected_coords, expected_maxvals = CODEC.decode(expected)
    np.testing.assert_array_equal(coords.numpy(), expected_coords)
    np.testing.assert_array_equal(maxvals.numpy(), expected_maxvals)


def test_the_flip_loop_gives_the_same_heatmaps_on_numpy_and_torch() -> None:
    """One loop for the host and the device path: chunks of crops with their mirror images, fused."""
    rng = np.random.default_rng(4)
    crops = rng.standard_normal((5, 3, 8, 6)).astype(np.float32)
    weights = rng.standard_normal((17, 3)).astype(np.float32)

    def network(batch):  # a per-pixel linear map (not mirror-symmetric, so the flip matters), the same numbers
        if isinstance(batch, torch.Tensor):  # for both: the loop and the merge are what is compared
            return torch.from_numpy(network(batch.numpy()))
        return np.einsum("kc,nchw->nkhw", weights, np.ascontiguousarray(batch))

    flip_index = COCO17.flip_index()
    host = np.concatenate(list(flip_tested(crops, network, flip_index, 2)))
    device = torch.cat(list(flip_tested(torch.from_numpy(crops), network, flip_index, 2)))
    np.testing.assert_array_equal(device.numpy(), host)
    expected = fuse_flip_test(network(crops), network(crops[..., ::-1].copy()), flip_index)
    np.testing.assert_allclose(host, expected, rtol=1e-6, atol=1e-6)
    plain = np.concatenate(list(flip_tested(crops, network, None, 2)))
    np.testing.assert_array_equal(plain, network(crops))
