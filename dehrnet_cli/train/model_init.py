"""The network a run starts from: a resumed run's weights, a warm start from a pose checkpoint (--init), an
ImageNet backbone (--init-backbone, the official PRETRAINED_LAYERS), or the official random init.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.train.config import TrainConfig
from dehrnet_cli.train.random_state import seed_all
from models import PoseHRNet, PoseNetConfig, create_model, load_model
from models.checkpoint import read_checkpoint

# the official PRETRAINED_LAYERS: what an ImageNet HRNet gives a pose network
BACKBONE_LAYERS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
                   "transition3", "stage4")


def load_backbone(model: PoseHRNet, path: Path) -> int:
    """Copy an ImageNet HRNet's BACKBONE_LAYERS tensors of matching shape into `model`; returns how many."""
    obj = read_checkpoint(Path(path))
    state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if isinstance(v, torch.Tensor) and k.split(".")[0] in BACKBONE_LAYERS
             and k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not taken:
        raise DehrnetError(f"--init-backbone {path}: no backbone tensor fits {model.config.name} (expected an "
                           "ImageNet HRNet of the same width, e.g. hrnet_w32-36af842e.pth)")
    model.load_state_dict(taken, strict=False)
    return len(taken)


def build_model(config: TrainConfig, net: PoseNetConfig, resume_obj: dict | None, log: Callable[[str], None]
                ) -> PoseHRNet:
    """The network of config `net` (the architecture with the data's keypoint set) to train: the resumed run's
    weights, a warm start from --init (a file of another keypoint set gives every weight but the final layer,
    which starts new), an ImageNet backbone (--init-backbone), or the official random init."""
    seed_all(config.seed)  # the same initial weights on every rank
    if resume_obj is not None:
        model = create_model(net)
        model.load_state_dict(resume_obj["state_dict"])
        return model
    if config.init is not None and config.init_backbone is not None:
        raise DehrnetError("give --init (a pose checkpoint) or --init-backbone (an ImageNet HRNet), not both")
    if config.init is not None:
        model = load_model(config.init, net, new_head=True)
        info = model.checkpoint_info
        warm = ", a warm start of the new DE-HRNet parts" if info.warm_start else ""
        head = "" if info.replaced_head is None else \
            f"; final layer made new for {net.num_keypoints} keypoints ({net.keypoints.name}), the file's has " \
            f"{info.replaced_head.num_keypoints} ({info.replaced_head.name})"
        log(f"initialised from {config.init} ({info.kind} checkpoint{warm}){head}")
        return model
    model = create_model(net)
    if config.init_backbone is not None:
        log(f"backbone from {config.init_backbone}: {load_backbone(model, config.init_backbone)} tensors")
    return model
