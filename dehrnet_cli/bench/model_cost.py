"""What a pose network costs: parameters and FLOPs (torch's FlopCounterMode), sizes and keypoints.

FLOPs are counted on the meta device (tensors with shapes and no values): a count runs no real forward pass
and allocates no weights (`dehrnet info dehrnet_w32_384x288`: 6-8 s on 2 cores, most of it torch's imports).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from models import PoseHRNet, create_model

PAPER_GFLOP = 2**30  # the HRNet paper's "GFLOPs" are multiply-adds in units of 2**30


@dataclass(frozen=True)
class ModelSummary:
    """Costs of one forward pass of one crop (batch 1)."""

    name: str
    params: int
    flops: int  # FlopCounterMode's count: 2 per multiply-add of convolutions and matrix products
    input_size: tuple[int, int]  # (w, h)
    heatmap_size: tuple[int, int]
    keypoints: tuple[str, ...]
    upsample: str
    dem_stages: tuple[int, ...]

    @property
    def gflops(self) -> float:
        """Decimal GFLOPs, 2 per multiply-add."""
        return self.flops / 1e9

    @property
    def gmacs(self) -> float:
        """Multiply-adds in decimal billions (HRNet-W32 384x288: 17.20)."""
        return self.flops / 2e9

    @property
    def paper_gflops(self) -> float:
        """The number the HRNet paper calls "GFLOPs": multiply-adds / 2**30, as the official
        `get_model_summary` prints it (HRNet-W32 384x288: 17.20e9 / 2**30 = 16.0)."""
        return self.flops / 2 / PAPER_GFLOP


def shape_only_model(name: str, **overrides) -> PoseHRNet:
    """The named network on the meta device: its parameter shapes, no memory for weights; enough to count
    parameters and FLOPs. Not faster to build than real weights: the first meta op imports torch._dynamo
    (about 1.5 s on 2 cores), after which building and counting take about 1 s."""
    with torch.device("meta"):
        return create_model(name, **overrides)


def count_flops(model: PoseHRNet, input_size: tuple[int, int], batch: int = 1) -> int:
    """FLOPs of one forward at `batch` crops of (w, h), run on a meta-device copy of `model` (built from its
    config; `model` itself is not run). FlopCounterMode counts convolutions and matmuls, 2 per multiply-add,
    exactly the operations of the official `get_model_summary`; BN, ReLU, upsampling, additions and
    DySample's grid_sample are not counted (a small share here)."""
    on_meta = all(p.is_meta for p in model.parameters())
    if not on_meta:
        with torch.device("meta"):
            model = PoseHRNet(model.config)
    was_training = model.training
    model.eval()
    w, h = input_size
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(batch, 3, h, w, device="meta"))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def summarize(model: PoseHRNet) -> ModelSummary:
    """Parameters and FLOPs (batch 1) of a network, real or `shape_only_model`."""
    cfg = model.config
    return ModelSummary(
        name=cfg.name,
        params=sum(p.numel() for p in model.parameters()),
        flops=count_flops(model, cfg.input_size),
        input_size=cfg.input_size,
        heatmap_size=cfg.heatmap_size,
        keypoints=cfg.keypoints.names,
        upsample=cfg.upsample,
        dem_stages=cfg.dem_stages,
    )
