"""What a pose network costs: parameters and FLOPs (torch's FlopCounterMode), sizes and keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from models import PoseHRNet


@dataclass(frozen=True)
class ModelSummary:
    """Costs of one forward pass of one crop (batch 1)."""

    name: str
    params: int
    flops: int  # FlopCounterMode's count: 2 x multiply-adds for conv and matmul
    input_size: tuple[int, int]  # (w, h)
    heatmap_size: tuple[int, int]
    keypoints: tuple[str, ...]
    upsample: str
    dem_stages: tuple[int, ...]

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        """Multiply-adds in billions: the number the HRNet paper calls 'GFLOPs' (16.0 for W32 384x288)."""
        return self.flops / 2e9


def count_flops(model: torch.nn.Module, input_size: tuple[int, int], batch: int = 1) -> int:
    """FLOPs of one forward at `batch` crops of (w, h). FlopCounterMode counts convolutions and matmuls
    (2 per multiply-add); BN, ReLU, pooling and grid_sample are not counted (a small share here)."""
    w, h = input_size
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(batch, 3, h, w))
    return int(counter.get_total_flops())


def summarize(model: PoseHRNet) -> ModelSummary:
    cfg = model.config
    was_training = model.training
    model.eval()
    try:
        flops = count_flops(model, cfg.input_size)
    finally:
        model.train(was_training)
    return ModelSummary(
        name=cfg.name,
        params=sum(p.numel() for p in model.parameters()),
        flops=flops,
        input_size=cfg.input_size,
        heatmap_size=cfg.heatmap_size,
        keypoints=cfg.keypoints.names,
        upsample=cfg.upsample,
        dem_stages=cfg.dem_stages,
    )
