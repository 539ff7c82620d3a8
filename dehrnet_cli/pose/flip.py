"""The flip test of the official HRNet protocol: heatmaps of the mirrored crop brought back (flip_back,
left/right channels swapped, the one-pixel SHIFT_HEATMAP) and averaged with the plain ones.
Shape letters: N people, K keypoints, H x W heatmap rows x columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dehrnet_cli.errors import DehrnetError


def flip_heatmaps(heatmaps: np.ndarray, flip_index: Sequence[int], shift: bool = True) -> np.ndarray:
    """Heatmaps (N, K, H, W) of a width-flipped input brought back to the original frame.

    Official `flip_back` (reverse the width axis, swap left/right channels: out[:, k] = in[:, flip_index[k]])
    then, with `shift`, SHIFT_HEATMAP: move one pixel right (out[..., 1:] = out[..., :-1]; column 0 keeps
    its value). flip_index: `KeypointSpec.flip_index()`.
    """
    maps = np.asarray(heatmaps)
    index = np.asarray(flip_index, dtype=np.int64)
    if maps.ndim != 4 or index.shape != (maps.shape[1],):
        raise DehrnetError(
            f"flip_heatmaps got heatmaps {maps.shape} and {index.size} flip indices;"
            " expected (N, K, H, W) and K indices (KeypointSpec.flip_index())"
        )
    flipped = maps[:, index, :, ::-1].copy()
    if shift:
        flipped[..., 1:] = flipped[..., :-1].copy()
    return flipped


def fuse_flip_test(
    heatmaps: np.ndarray, heatmaps_of_flipped_input: np.ndarray, flip_index: Sequence[int], shift: bool = True
) -> np.ndarray:
    """Flip-test heatmaps (N, K, H, W): (heatmaps + flip_heatmaps(heatmaps_of_flipped_input)) * 0.5."""
    maps = np.asarray(heatmaps)
    if maps.shape != np.shape(heatmaps_of_flipped_input):
        raise DehrnetError(
            f"flip test got heatmaps {maps.shape} and flipped heatmaps {np.shape(heatmaps_of_flipped_input)};"
            " the two must have the same (N, K, H, W) shape"
        )
    return (maps + flip_heatmaps(heatmaps_of_flipped_input, flip_index, shift)) * 0.5
