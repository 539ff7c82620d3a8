"""The flip merge and the official decode (argmax + quarter offset) in torch, on the heatmaps' own device.

Shape letters: N crops, K keypoints, H x W heatmap rows x columns. The numbers are exactly those of the
numpy path (`flip.fuse_flip_test`, `codec.HeatmapCodec.decode` with decoder "msra"): the same float32
operations in the same order, so on a GPU only (N, K, 2) coordinates and (N, K) scores travel back to the
host instead of (N, K, H, W) heatmaps. Mapping back to image pixels stays on the host
(`geometry.heatmap_to_image`, float64 per person), where it is exact and cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def fuse_flip_test_torch(heatmaps: torch.Tensor, heatmaps_of_flipped_input: torch.Tensor,
                         flip_index: Sequence[int], shift: bool = True) -> torch.Tensor:
    """Flip-test heatmaps (N, K, H, W) float32: (heatmaps + flip_back(flipped)) * 0.5, where flip_back
    reverses the width axis, swaps left/right channels (flip_index) and, with `shift`, moves the maps one
    pixel right keeping column 0 (official SHIFT_HEATMAP)."""
    index = torch.as_tensor(list(flip_index), dtype=torch.long, device=heatmaps.device)
    back = heatmaps_of_flipped_input.index_select(1, index).flip(3)
    if shift:
        back = torch.cat([back[..., :1], back[..., :-1]], dim=3)
    return (heatmaps + back) * 0.5


def decode_torch(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official get_max_preds + POST_PROCESS of (N, K, H, W) float32 heatmaps: coords (N, K, 2) float32 in
    heatmap pixels (first maximum; (0, 0) where the peak is <= 0; 0.25 px toward the higher neighbour where
    1 < px < W-1 and 1 < py < H-1) and maxvals (N, K) float32."""
    num, num_k, hm_h, hm_w = heatmaps.shape
    flat = heatmaps.reshape(num, num_k, hm_h * hm_w)
    maxvals, index = flat.max(dim=2)  # the first maximum, as np.argmax
    index_f = index.to(torch.float32)
    coords = torch.stack([torch.remainder(index_f, hm_w), torch.floor(index_f / hm_w)], dim=2)
    coords = coords * (maxvals > 0).unsqueeze(2).to(torch.float32)
    px = torch.floor(coords[..., 0] + 0.5).long()
    py = torch.floor(coords[..., 1] + 0.5).long()
    inside = (px > 1) & (px < hm_w - 1) & (py > 1) & (py < hm_h - 1)
    xs, ys = px.clamp(1, hm_w - 2), py.clamp(1, hm_h - 2)

    def at(dy: int, dx: int) -> torch.Tensor:
        return flat.gather(2, ((ys + dy) * hm_w + xs + dx).unsqueeze(2)).squeeze(2)

    offset = torch.stack([torch.sign(at(0, 1) - at(0, -1)), torch.sign(at(1, 0) - at(-1, 0))], dim=2) * 0.25
    return coords + torch.where(inside.unsqueeze(2), offset, torch.zeros_like(offset)), maxvals
