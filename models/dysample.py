"""DySample: a learned point-sampling upsampler (Liu, Lu, Fu, Cao, ICCV 2023).

Written from the facts in shared/REFERENCE.md Part 2 so that a state dict of the official module
loads strictly (keys `offset.weight`, `offset.bias`, `scope.weight`, buffer `init_pos`) and gives the
same output. Shapes: B batch, C channels, G groups, s scale, (H, W) input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import STYLES

SAMPLERS = ("grid_sample", "gather")


def bilinear_sample_border(x: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) sampled bilinearly at input-pixel coordinates px, py (B, Ho, Wo) (pixel centres at
    integers), clamped to the border: F.grid_sample(mode="bilinear", padding_mode="border",
    align_corners=False) written as row gathers and lerps, for ONNX export.

    Hand-written because ONNX Runtime's CPU GridSample kernel is slow: on 2 cores it took 12 ms where this
    graph takes 4.8 ms (torch's own grid_sample: 2 ms) for (8, 8, 48, 36) -> 96 x 72. The gathers take
    whole channel rows (NHWC) and the lerps run channel-major, the two layouts ONNX Runtime is fast in.
    """
    b, c, h, w = x.shape
    out_h, out_w = px.shape[1], px.shape[2]
    px = px.clamp(0, w - 1)
    py = py.clamp(0, h - 1)
    x0, y0 = px.floor(), py.floor()
    wx, wy = (px - x0).reshape(-1), (py - y0).reshape(-1)
    x0i, y0i = x0.long(), y0.long()
    x1i, y1i = (x0i + 1).clamp(max=w - 1), (y0i + 1).clamp(max=h - 1)
    rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C): one row per input pixel
    first_row = (torch.arange(b, device=x.device) * (h * w)).view(b, 1, 1)

    def take(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:  # (C, B*Ho*Wo)
        return rows[(first_row + yi * w + xi).reshape(-1)].t()

    top_left, top_right = take(y0i, x0i), take(y0i, x1i)
    bottom_left, bottom_right = take(y1i, x0i), take(y1i, x1i)
    top = top_left + (top_right - top_left) * wx
    bottom = bottom_left + (bottom_right - bottom_left) * wx
    out = top + (bottom - top) * wy
    return out.reshape(c, b, out_h, out_w).transpose(0, 1)


class DySample(nn.Module):
    """Upsample (B, C, H, W) -> (B, C, sH, sW) by bilinear sampling at learned positions.

    style "lp": 1x1 conv C -> 2*G*s^2 offsets on the input grid, then pixel-shuffle.
    style "pl": pixel-shuffle the input to C/s^2 channels, then a 1x1 conv -> 2*G offsets.
    dyscope: offsets scaled by 0.5*sigmoid(scope conv) instead of the static 0.25.
    With a zero offset conv this is exactly bilinear upsampling (align_corners=False); `start_as_nearest`
    makes it nearest upsampling (style 'lp').
    `sampler`: "grid_sample" (torch) or "gather" (`bilinear_sample_border`: same numbers, fast in ONNX Runtime).
    """

    sampler = "grid_sample"

    def __init__(
        self, in_channels: int, scale: int = 2, style: str = "lp", groups: int = 4, dyscope: bool = False
    ) -> None:
        super().__init__()
        if style not in STYLES:
            raise ValueError(f"DySample style must be one of {STYLES}, got {style!r}")
        if scale < 1 or in_channels % groups:
            raise ValueError(
                f"DySample needs scale >= 1 and in_channels divisible by groups "
                f"(in_channels={in_channels}, scale={scale}, groups={groups})"
            )
        if style == "pl" and (in_channels < scale**2 or in_channels % scale**2):
            raise ValueError(
                f"DySample style 'pl' needs in_channels >= scale^2 and divisible by it "
                f"(in_channels={in_channels}, scale^2={scale**2}); use style 'lp'"
            )
        self.scale = scale
        self.style = style
        self.groups = groups
        conv_in, conv_out = (in_channels // scale**2, 2 * groups) if style == "pl" else (
            in_channels, 2 * groups * scale**2)
        self.offset = nn.Conv2d(conv_in, conv_out, 1)
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        if dyscope:
            self.scope = nn.Conv2d(conv_in, conv_out, 1, bias=False)
            nn.init.zeros_(self.scope.weight)
        else:
            self.scope = None
        self.register_buffer("init_pos", self._initial_positions())

    def _initial_positions(self) -> torch.Tensor:
        """(1, 2*G*s^2, 1, 1): sub-pixel offsets of each output pixel inside its s x s block.

        channel = c*(G*s^2) + g*s^2 + i*s + j, c=0 holds x (= h_j), c=1 holds y (= h_i),
        with h_k = (k - (s-1)/2) / s.
        """
        s, g = self.scale, self.groups
        h = (torch.arange(s, dtype=torch.float32) - (s - 1) / 2) / s
        x_block = h.view(1, s).expand(s, s)  # [i, j] = h_j
        y_block = h.view(s, 1).expand(s, s)  # [i, j] = h_i
        pos = torch.stack([x_block, y_block]).unsqueeze(1).expand(2, g, s, s)
        return pos.reshape(1, -1, 1, 1).clone()

    def reset_to_bilinear(self) -> None:
        """Zero the offset conv: the module becomes a fixed bilinear upsampler that still trains."""
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        if self.scope is not None:
            nn.init.zeros_(self.scope.weight)

    def start_as_nearest(self) -> None:
        """Style 'lp': make the module nearest upsampling (what HRNet's fuse layers do) that still trains.

        Offset weight 0 and bias -init_pos / 0.25 cancel the sub-pixel positions, so every output pixel
        samples the centre of its source pixel; a zero scope conv gives the dynamic scope the same factor
        0.5 * sigmoid(0) = 0.25. The offset conv still gets gradients (bilinear sampling has a slope at a
        pixel centre). Style 'pl' predicts the offsets of an output pixel from its pixel-shuffled channels
        alone: no bias can tell the sub-pixel positions of an s x s block apart, so 'pl' cannot be nearest
        and starts as the bilinear upsampler (`reset_to_bilinear`) instead.
        """
        self.reset_to_bilinear()
        if self.style == "lp":
            with torch.no_grad():
                self.offset.bias.copy_(-self.init_pos.flatten() / 0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale
        if self.style == "pl":
            x_shuffled = F.pixel_shuffle(x, s)
            raw = self.offset(x_shuffled)
            if self.scope is not None:
                raw = raw * self.scope(x_shuffled).sigmoid()
            raw = F.pixel_unshuffle(raw, s)
        else:
            raw = self.offset(x)
            if self.scope is not None:
                raw = raw * self.scope(x).sigmoid()
        offset = raw * (0.5 if self.scope is not None else 0.25) + self.init_pos
        return self._sample(x, offset)

    def _sample(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Sample x at base pixel centres + offset (input-pixel units) and pixel-shuffle to sH x sW."""
        b, c, h, w = x.shape
        s, g = self.scale, self.groups
        offset = offset.view(b, 2, g * s * s, h, w)
        # group g owns the contiguous channel block [g*C/G, (g+1)*C/G)
        grouped = x.reshape(b * g, c // g, h, w)
        if self.sampler == "gather":
            xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
            ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
            pos = torch.stack([xs + offset[:, 0], ys + offset[:, 1]], dim=1).view(b, 2 * g * s * s, h, w)
            pos = F.pixel_shuffle(pos, s).view(b, 2, g, s * h, s * w).transpose(0, 1).reshape(2, b * g, s * h, s * w)
            return bilinear_sample_border(grouped, pos[0], pos[1]).reshape(b, c, s * h, s * w)
        # The grid and the sampling run in float32 whatever x's dtype (a no-op for float32 and in the fp32 ONNX
        # export): in bf16 the sum centre + offset, up to the image size, is rounded to 1/8 pixel and more, and
        # torch's bf16 grid_sample on the CPU took 3x the time of converting to float32 and back
        xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w) + 0.5
        ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1) + 0.5
        grid_x = 2 * (xs + offset[:, 0].float()) / w - 1  # align_corners=False normalisation
        grid_y = 2 * (ys + offset[:, 1].float()) / h - 1
        grid = torch.stack([grid_x, grid_y], dim=1).view(b, 2 * g * s * s, h, w)
        grid = F.pixel_shuffle(grid, s).view(b, 2, g, s * h, s * w)
        grid = grid.permute(0, 2, 3, 4, 1).reshape(b * g, s * h, s * w, 2)
        out = F.grid_sample(grouped.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.to(x.dtype).view(b, c, s * h, s * w)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, style={self.style!r}, groups={self.groups}, dyscope={self.scope is not None}"
