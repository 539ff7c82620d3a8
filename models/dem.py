"""Detail Enhancement Module (DEM) of DE-HRNet, as read in shared/DESIGN.md section 3.

Channel attention SEA(x) in (0, 1)^C gates a residual enhancement: out = x + g * SEA(x) * x, with g a
learnable per-channel scale. g = 1 is the paper's (1 + SEA(x)) * x; g = 0 makes the module the
identity while every parameter stays trainable (used for warm starts from HRNet).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .configs import ATTENTIONS


class SEAttention(nn.Module):
    """Squeeze-and-excitation gate: sigmoid(FC(ReLU(FC(GAP(x))))) of shape (B, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled))))
        return gate[:, :, None, None]


class ECAAttention(nn.Module):
    """ECA gate: a 1-D convolution across channels of GAP(x), kernel size adapted to C."""

    def __init__(self, channels: int, gamma: int = 2, beta: int = 1) -> None:
        super().__init__()
        k = int(abs((math.log2(channels) + beta) / gamma))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)  # (B, 1, C)
        return torch.sigmoid(self.conv(pooled)).squeeze(1)[:, :, None, None]


def make_attention(kind: str, channels: int, reduction: int) -> nn.Module:
    if kind == "se":
        return SEAttention(channels, reduction)
    if kind == "eca":
        return ECAAttention(channels)
    raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")


class DetailEnhancement(nn.Module):
    """One branch of a DEM.

    Highest-resolution branch (Fig. 3a, no `down`): out = x + g * SEA(x) * x.
    Lower branch i >= 1 (Fig. 3b): a = x_i + D(x_{i-1}), out = Dropout(a + g * SEA(a) * a), where D is a
    3x3 stride-2 conv C_{i-1} -> C_i + BN.
    """

    def __init__(
        self,
        channels: int,
        higher_channels: int | None,
        attention: str = "se",
        reduction: int = 16,
        dropout: float = 0.1,
        scale_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.down = None
        if higher_channels is not None:
            self.down = nn.Sequential(
                nn.Conv2d(higher_channels, channels, 3, 2, 1, bias=False),
                nn.BatchNorm2d(channels, momentum=0.1),
            )
        self.attention = make_attention(attention, channels, reduction)
        self.scale = nn.Parameter(torch.full((channels,), float(scale_init)))
        self.dropout = nn.Dropout(dropout) if higher_channels is not None and dropout > 0 else nn.Identity()

    def reset_to_identity(self) -> None:
        """g = 0 and D's BN gamma = beta = 0: the branch returns its input exactly, yet trains."""
        nn.init.zeros_(self.scale)
        if self.down is not None:
            nn.init.zeros_(self.down[1].weight)
            nn.init.zeros_(self.down[1].bias)

    def forward(self, x: torch.Tensor, higher: torch.Tensor | None = None) -> torch.Tensor:
        a = x if self.down is None else x + self.down(higher)
        # a + g * SEA(a) * a with one pass over the feature map: the per-channel factor 1 + g * SEA(a) is (B, C, 1, 1)
        out = a * (1 + self.scale[None, :, None, None] * self.attention(a))
        return self.dropout(out)


class DEM(nn.Module):
    """DEM over all branches of a stage output; branch i >= 1 also sees branch i-1's input."""

    def __init__(self, channels: list[int], attention: str, reduction: int, dropout: float,
                 scale_init: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            DetailEnhancement(c, channels[i - 1] if i else None, attention, reduction, dropout, scale_init)
            for i, c in enumerate(channels)
        )

    def reset_to_identity(self) -> None:
        for branch in self.branches:
            branch.reset_to_identity()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [branch(x, xs[i - 1] if i else None) for i, (branch, x) in enumerate(zip(self.branches, xs))]
