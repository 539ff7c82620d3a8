"""DE-HRNet / HRNet pose networks: build, load, save. Imports torch and nothing of dehrnet_cli.

Stable API: create_model, load_model, list_models, save_checkpoint, DySample, PoseNetConfig.
"""

from .checkpoint import CheckpointInfo, convert_checkpoint, load_model, read_checkpoint, save_checkpoint
from .dysample import DySample
from .errors import DehrnetError
from .hrnet import VARIANTS, PoseHRNet, PoseNetConfig
from .keypoints import COCO17, KEYPOINT_SPECS, MPII16, KeypointSpec
from .registry import create_model, get_config, list_models

__all__ = [
    "COCO17", "KEYPOINT_SPECS", "MPII16", "VARIANTS", "CheckpointInfo", "DehrnetError", "DySample",
    "KeypointSpec", "PoseHRNet", "PoseNetConfig", "convert_checkpoint", "create_model", "get_config",
    "list_models", "load_model", "read_checkpoint", "save_checkpoint",
]
