"""DE-HRNet / HRNet pose networks: build, load, save. Imports torch and nothing of dehrnet_cli.

Stable API: create_model, load_model, list_models, save_checkpoint, DySample, PoseNetConfig.
Names load lazily (PEP 562) so that `models.errors` and `models.keypoints` import without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CheckpointInfo": "checkpoint", "convert_checkpoint": "checkpoint", "load_model": "checkpoint",
    "read_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "DySample": "dysample",
    "DehrnetError": "errors",
    "VARIANTS": "configs", "PoseHRNet": "hrnet", "PoseNetConfig": "configs",
    "COCO17": "keypoints", "KEYPOINT_SPECS": "keypoints", "MPII16": "keypoints", "KeypointSpec": "keypoints",
    "keypoint_set": "keypoints",
    "create_model": "registry", "get_config": "registry", "list_models": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
