"""DySample in bf16 samples where fp32 does: its grid is computed in float32, not rounded to bf16."""

from __future__ import annotations

import torch

from models import DySample


def test_bf16_sampling_positions_are_not_rounded():
    """On a ramp along the width (value = column - 60), the output is the sampled x position minus 60. In bf16
    a position such as 60.38 rounds to 60.5 (bf16 keeps 8 bits); the float32 grid keeps it, so bf16 and fp32
    agree to the rounding of the output values themselves (about 0.002 near zero)."""
    width = 64
    up = DySample(4, scale=2, groups=1)
    up.reset_to_bilinear()
    with torch.no_grad():
        up.offset.bias[:4] = 0.13 / 0.25  # every x offset +0.13 input pixel
    ramp = (torch.arange(width, dtype=torch.float32) - 60).expand(1, 4, 3, width).contiguous()
    fp32 = up(ramp)
    bf16 = up.to(torch.bfloat16)(ramp.to(torch.bfloat16)).float()
    right = slice(2 * 56, 2 * 62)  # output columns sampling input columns 56-61, positions 55.9 to 61.4
    assert (fp32[..., right] - (torch.arange(2 * 56, 2 * 62) / 2 - 0.25 + 0.13 - 60)).abs().max() < 1e-4
    assert (bf16[..., right] - fp32[..., right]).abs().max() < 0.01  # a bf16 grid: up to 0.12
