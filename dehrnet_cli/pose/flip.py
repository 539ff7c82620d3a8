"""The flip test of the official HRNet protocol: heatmaps of the mirrored crop brought back (flip_back,
left/right channels swapped, the one-pixel SHIFT_HEATMAP) and averaged with the plain ones, and the loop that
runs a network over crops with it. One implementation for numpy arrays (the host path, any backend) and torch
tensors (the device path: the heatmaps stay on the GPU), the same float32 operations in the same order, so both
give the same numbers bit for bit.
Shape letters: N people, K keypoints, H x W heatmap rows x columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from dehrnet_cli.errors import DehrnetError


def is_tensor(array: Any) -> bool:
    """Whether `array` is a torch tensor (without importing torch for numpy input)."""
    return type(array).__module__.startswith("torch")


def flip_tested(crops: Any, forward: Callable[[Any], Any], flip_index: Sequence[int] | None,
                chunk: int) -> Iterator[Any]:
    """Heatmaps (n, K, H, W) of normalised crops (N, 3, h, w), `chunk` crops at a time: `forward` runs each
    chunk together with its mirror image (2 x chunk) and the two are fused (`fuse_flip_test`); without
    `flip_index`, the plain forward. numpy in, numpy out; torch in, torch out (on the crops' device)."""
    for start in range(0, len(crops), chunk):
        part = crops[start:start + chunk]
        if flip_index is None:
            yield forward(part)
            continue
        if is_tensor(part):
            import torch

            both = forward(torch.cat([part, part.flip(3)]))
        else:
            both = forward(np.concatenate([part, part[..., ::-1]]))
        yield fuse_flip_test(both[:len(part)], both[len(part):], flip_index)


def flip_heatmaps(heatmaps: Any, flip_index: Sequence[int], shift: bool = True) -> Any:
    """Heatmaps (N, K, H, W) of a width-flipped input brought back to the original frame.

    Official `flip_back` (reverse the width axis, swap left/right channels: out[:, k] = in[:, flip_index[k]])
    then, with `shift`, SHIFT_HEATMAP: move one pixel right (out[..., 1:] = out[..., :-1]; column 0 keeps
    its value). flip_index: `KeypointSpec.flip_index()`.
    """
    if heatmaps.ndim != 4 or len(flip_index) != heatmaps.shape[1]:
        raise DehrnetError(
            f"flip_heatmaps got heatmaps {tuple(heatmaps.shape)} and {len(flip_index)} flip indices;"
            " expected (N, K, H, W) and K indices (KeypointSpec.flip_index())"
        )
    if is_tensor(heatmaps):
        import torch

        index = torch.as_tensor(list(flip_index), dtype=torch.long, device=heatmaps.device)
        back = heatmaps.index_select(1, index).flip(3)
        return torch.cat([back[..., :1], back[..., :-1]], dim=3) if shift else back
    maps = np.asarray(heatmaps)
    flipped = maps[:, np.asarray(flip_index, dtype=np.int64), :, ::-1].copy()
    if shift:
        flipped[..., 1:] = flipped[..., :-1].copy()
    return flipped


def fuse_flip_test(heatmaps: Any, heatmaps_of_flipped_input: Any, flip_index: Sequence[int],
                   shift: bool = True) -> Any:
    """Flip-test heatmaps (N, K, H, W): (heatmaps + flip_heatmaps(heatmaps_of_flipped_input)) * 0.5."""
    if tuple(heatmaps.shape) != tuple(heatmaps_of_flipped_input.shape):
        raise DehrnetError(
            f"flip test got heatmaps {tuple(heatmaps.shape)} and flipped heatmaps "
            f"{tuple(heatmaps_of_flipped_input.shape)}; the two must have the same (N, K, H, W) shape"
        )
    return (heatmaps + flip_heatmaps(heatmaps_of_flipped_input, flip_index, shift)) * 0.5
