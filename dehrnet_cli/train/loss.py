"""The official JointsMSELoss with target weights."""

from __future__ import annotations

import torch
from torch import nn


class JointsMSELoss(nn.Module):
    """Official JointsMSELoss with target weights: mean over joints of 0.5 x MSE(pred x w, target x w).

    output, target: (N, K, H, W); target_weight: (N, K). A joint of weight 0 adds no loss and no gradient.
    """

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        w = target_weight[:, :, None, None]
        return 0.5 * ((output * w - target * w) ** 2).mean()
