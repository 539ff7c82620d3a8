"""DySample against the official module's facts (shared/REFERENCE.md Part 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import DySample


@pytest.mark.parametrize(
    "channels,scale,style,groups,dyscope",
    [(64, 2, "lp", 4, False), (32, 4, "lp", 4, False), (32, 8, "lp", 4, True), (16, 2, "pl", 4, False),
     (32, 4, "pl", 4, True), (8, 2, "lp", 2, True)],
)
def test_zero_offsets_are_bilinear_upsampling(channels, scale, style, groups, dyscope):
    torch.manual_seed(0)
    up = DySample(channels, scale, style, groups, dyscope)
    up.reset_to_bilinear()
    x = torch.randn(2, channels, 5, 7)
    expected = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up(x), expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize("sampler", ["grid_sample", "gather"])
@pytest.mark.parametrize("dyscope", [False, True])
@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("channels", [8, 32])  # the highest-resolution widths of W8 and W32
def test_nearest_start_is_nearest_upsampling(channels, scale, dyscope, sampler, monkeypatch):
    """The warm start's DySample ('lp'): offset weight 0, bias -init_pos / 0.25, and the module is HRNet's
    nearest fuse upsample to float rounding, with either sampler, static or dynamic scope."""
    monkeypatch.setattr(DySample, "sampler", sampler)
    torch.manual_seed(0)
    up = DySample(channels, scale, "lp", 4, dyscope)
    up.start_as_nearest()
    assert torch.all(up.offset.weight == 0)
    torch.testing.assert_close(up.offset.bias, -up.init_pos.flatten() / 0.25, atol=0, rtol=0)
    x = torch.randn(2, channels, 5, 7) * 10
    expected = F.interpolate(x, scale_factor=scale, mode="nearest")
    assert (F.interpolate(x, scale_factor=scale, mode="bilinear") - expected).abs().max() > 1  # not bilinear
    torch.testing.assert_close(up(x), expected, atol=1e-5, rtol=1e-6)


def test_pl_style_cannot_start_as_nearest_and_starts_bilinear():
    """'pl' predicts an output pixel's offsets from its shuffled channels only: no bias separates the
    sub-pixel positions, so the nearest start falls back to zero offsets (bilinear)."""
    up = DySample(32, 2, "pl", 4)
    up.start_as_nearest()
    x = torch.randn(2, 32, 5, 7)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up(x), expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize("kwargs,count", [
    (dict(in_channels=64, scale=2), 2080), (dict(in_channels=64, scale=4), 8320),
    (dict(in_channels=64, scale=8), 33280), (dict(in_channels=32, scale=2, style="pl"), 72),
])
def test_parameter_counts_of_the_official_module(kwargs, count):
    assert sum(p.numel() for p in DySample(**kwargs).parameters()) == count


def test_state_dict_keys_shapes_and_init_pos_layout():
    up = DySample(16, scale=4, groups=2, dyscope=True)
    sd = up.state_dict()
    assert set(sd) == {"offset.weight", "offset.bias", "scope.weight", "init_pos"}
    assert sd["offset.weight"].shape == (2 * 2 * 16, 16, 1, 1) and sd["scope.weight"].shape == (64, 16, 1, 1)
    assert sd["init_pos"].shape == (1, 64, 1, 1)
    assert torch.all(sd["scope.weight"] == 0) and torch.all(sd["offset.bias"] == 0)
    assert 0 < sd["offset.weight"].std() < 0.002  # official init N(0, 0.001)
    h = [-0.375, -0.125, 0.125, 0.375]
    pos = sd["init_pos"].flatten()
    s, g_count = 4, 2
    for c in range(2):
        for g in range(g_count):
            for i in range(s):
                for j in range(s):
                    channel = c * (g_count * s * s) + g * s * s + i * s + j
                    assert pos[channel].item() == pytest.approx(h[j] if c == 0 else h[i])
    assert DySample(8, 2).init_pos.flatten()[:4].tolist() == [-0.25, 0.25, -0.25, 0.25]


def test_pl_style_needs_enough_channels_for_its_scale():
    with pytest.raises(ValueError, match="'pl' needs"):
        DySample(32, scale=8, style="pl")
    with pytest.raises(ValueError, match="divisible by groups"):
        DySample(30, scale=2, groups=4)


def _reference_sample(x: np.ndarray, offset: np.ndarray, s: int, groups: int) -> np.ndarray:
    """Direct per-pixel reading of REFERENCE.md: output (s*h+i, s*w+j) of group g samples the input
    at pixel centre (w+0.5, h+0.5) + offset, bilinear, border padding."""
    b, c, h, w = x.shape
    out = np.zeros((b, c, s * h, s * w))
    per = c // groups
    for n in range(b):
        for g in range(groups):
            img = x[n, g * per:(g + 1) * per]
            for oy in range(s * h):
                for ox in range(s * w):
                    hh, i, ww, j = oy // s, oy % s, ox // s, ox % s
                    ch = g * s * s + i * s + j
                    px = np.clip(ww + 0.5 + offset[n, ch, hh, ww] - 0.5, 0, w - 1)
                    py = np.clip(hh + 0.5 + offset[n, groups * s * s + ch, hh, ww] - 0.5, 0, h - 1)
                    x0, y0 = int(np.floor(px)), int(np.floor(py))
                    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
                    fx, fy = px - x0, py - y0
                    out[n, g * per:(g + 1) * per, oy, ox] = (
                        img[:, y0, x0] * (1 - fx) * (1 - fy) + img[:, y0, x1] * fx * (1 - fy)
                        + img[:, y1, x0] * (1 - fx) * fy + img[:, y1, x1] * fx * fy)
    return out


@pytest.mark.parametrize("style,dyscope", [("lp", False), ("lp", True), ("pl", False)])
def test_nonzero_offsets_match_a_direct_reading_of_the_reference(style, dyscope):
    torch.manual_seed(1)
    s, groups, c = 2, 2, 8
    up = DySample(c, s, style, groups, dyscope)
    with torch.no_grad():
        up.offset.weight.normal_(0, 1.0)
        up.offset.bias.normal_(0, 1.0)
        if dyscope:
            up.scope.weight.normal_(0, 1.0)
    x = torch.randn(2, c, 4, 5)
    with torch.no_grad():
        if style == "pl":
            raw = F.pixel_unshuffle(up.offset(F.pixel_shuffle(x, s)), s)
        else:
            raw = up.offset(x) * (up.scope(x).sigmoid() if dyscope else 1)
        offset = raw * (0.5 if dyscope else 0.25) + up.init_pos
        ours = up(x)
    assert offset.abs().max() > 0.5  # offsets reach well beyond the fixed sub-pixel positions
    expected = _reference_sample(x.double().numpy(), offset.double().numpy(), s, groups)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)


def test_x_and_y_halves_and_contiguous_group_blocks():
    """A +1 px x-offset on group 1 only shifts channels [C/2, C) left by one pixel, nothing else."""
    up = DySample(4, scale=2, groups=2)
    up.reset_to_bilinear()
    with torch.no_grad():
        up.offset.bias[4:8] = 4.0  # x half, group 1: 4.0 * 0.25 = +1 input pixel
    x = torch.arange(2 * 4 * 3 * 6, dtype=torch.float32).view(2, 4, 3, 6)
    base = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    shifted = F.interpolate(torch.cat([x[..., 1:], x[..., -1:]], -1), scale_factor=2, mode="bilinear",
                            align_corners=False)
    out = up(x)
    torch.testing.assert_close(out[:, :2], base[:, :2])
    # away from the borders, where F.interpolate clamps before the shift and DySample after it
    torch.testing.assert_close(out[:, 2:, :, 2:-2], shifted[:, 2:, :, 2:-2])
    assert not torch.allclose(out[:, 2:], base[:, 2:])
