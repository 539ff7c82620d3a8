"""HRNet (Sun et al., 2019) pose network and its DE-HRNet variants, one class, configured by data.

Module and parameter names follow the official HRNet code (conv1, bn1, layer1, transition1, stage2,
..., final_layer) so official checkpoints load strictly with no renaming; the forward pass follows it
operation for operation (shared/REFERENCE.md Part 1). DE-HRNet adds DySample at index 2 of every
upsampling fuse path (`stageN.M.fuse_layers.i.j.2.*`) and DEM modules after stages (`dem2`, `dem3`,
`dem4`), per shared/DESIGN.md section 3. The configs (PoseNetConfig, the named VARIANTS) are in
`models.configs`, which needs no torch.
"""

from __future__ import annotations

import torch
from torch import nn

from .configs import UPSAMPLERS, VARIANTS, PoseNetConfig
from .dem import DEM
from .dysample import DySample

BN_MOMENTUM = 0.1


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_mid: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(c_in, c_mid, stride)
        self.bn1 = nn.BatchNorm2d(c_mid, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(c_mid, c_mid)
        self.bn2 = nn.BatchNorm2d(c_mid, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c_mid: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid, momentum=BN_MOMENTUM)
        self.conv2 = conv3x3(c_mid, c_mid, stride)
        self.bn2 = nn.BatchNorm2d(c_mid, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(c_mid, c_mid * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_mid * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def make_blocks(block: type, c_in: int, c_mid: int, count: int) -> nn.Sequential:
    """`count` blocks; the first gets a 1x1 conv + BN downsample when the width changes."""
    downsample = None
    if c_in != c_mid * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(c_in, c_mid * block.expansion, 1, bias=False),
            nn.BatchNorm2d(c_mid * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(c_in, c_mid, 1, downsample)]
    layers += [block(c_mid * block.expansion, c_mid) for _ in range(1, count)]
    return nn.Sequential(*layers)


def conv_bn_relu(c_in: int, c_out: int, stride: int, relu: bool = True) -> nn.Sequential:
    layers = [conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all fuse (official layout and order)."""

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool, cfg: PoseNetConfig) -> None:
        super().__init__()
        self.channels = list(channels)
        self.branches = nn.ModuleList(make_blocks(BasicBlock, c, c, num_blocks) for c in channels)
        outputs = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse_path(i, j, cfg) for j in range(len(channels))) for i in range(outputs)
        )
        self.relu = nn.ReLU(inplace=True)

    def _fuse_path(self, i: int, j: int, cfg: PoseNetConfig) -> nn.Module | None:
        c_i, c_j = self.channels[i], self.channels[j]
        if j == i:
            return None
        if j > i:
            s = 2 ** (j - i)
            if cfg.upsample == "dysample":
                up = DySample(c_i, s, cfg.dysample_style, cfg.dysample_groups, cfg.dysample_dyscope)
            else:
                up = nn.Upsample(scale_factor=s, mode="nearest")
            return nn.Sequential(nn.Conv2d(c_j, c_i, 1, bias=False), nn.BatchNorm2d(c_i, momentum=BN_MOMENTUM), up)
        steps = [conv_bn_relu(c_j, c_j, 2) for _ in range(i - j - 1)]
        steps.append(conv_bn_relu(c_j, c_i, 2, relu=False))
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for i, paths in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else paths[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else paths[j](xs[j]))
            fused.append(self.relu(y))
        return fused


def make_transition(c_prev: list[int], c_next: list[int]) -> nn.ModuleList:
    """Existing branches: 3x3 conv+BN+ReLU where the width changes, else None; a new branch: stride-2
    conv+BN+ReLU steps from the last previous branch."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(c_next):
        if i < len(c_prev):
            layers.append(conv_bn_relu(c_prev[i], c, 1) if c_prev[i] != c else None)
        else:
            steps = [conv_bn_relu(c_prev[-1], c_prev[-1], 2) for _ in range(i - len(c_prev))]
            steps.append(conv_bn_relu(c_prev[-1], c, 2))
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class PoseHRNet(nn.Module):
    """Top-down pose network: (B, 3, H, W) normalised RGB crops -> (B, K, H/4, W/4) heatmaps."""

    def __init__(self, config: PoseNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config.width
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, 64, 64, 4)

        widths = [c, 2 * c, 4 * c, 8 * c]
        previous = [64 * Bottleneck.expansion]
        for stage, modules in zip((2, 3, 4), config.stage_modules):
            current = widths[:stage]
            setattr(self, f"transition{stage - 1}", make_transition(previous, current))
            last_multi_scale = stage < 4
            setattr(self, f"stage{stage}", nn.Sequential(*(
                HighResolutionModule(current, config.num_blocks, last_multi_scale or m < modules - 1, config)
                for m in range(modules)
            )))
            if stage in config.dem_stages:
                setattr(self, f"dem{stage}", DEM(current if stage < 4 else current[:1], config.attention,
                                                  config.attention_reduction, config.dem_dropout,
                                                  config.dem_scale_init))
            previous = current
        self.final_layer = nn.Conv2d(c, config.num_keypoints, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """Official HRNet init: conv N(0, 0.001), bias 0, BN 1/0 (DySample's own init is the same)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # after the loop above, which also reached the scope convs
            if isinstance(m, DySample) and m.scope is not None:
                nn.init.zeros_(m.scope.weight)  # official DySample: scope starts at 0

    def prepare_warm_start(self) -> None:
        """Set every DE-HRNet-only parameter so the network computes its HRNet baseline (eval mode, to float
        rounding): DEM the identity, DySample nearest upsampling as HRNet's fuse layers (style 'lp'; style
        'pl' cannot be nearest and starts bilinear, see `DySample.start_as_nearest`). All of them still
        train: DySample and the DEM scale g get gradients at once, the SE layers and D's conv from the
        second step on (g = 0 and D's BN gamma = 0 block their first gradient)."""
        for m in self.modules():
            if isinstance(m, DEM):
                m.reset_to_identity()
            elif isinstance(m, DySample):
                m.start_as_nearest()

    def _dem(self, stage: int, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return getattr(self, f"dem{stage}")(xs) if stage in self.config.dem_stages else xs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [ys[i] if t is None else t(ys[min(i, len(ys) - 1)]) for i, t in enumerate(transition)]
            ys = self._dem(stage, getattr(self, f"stage{stage}")(xs))
        return self.final_layer(ys[0])


__all__ = ["UPSAMPLERS", "VARIANTS", "PoseHRNet", "PoseNetConfig"]
