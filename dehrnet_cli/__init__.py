"""dehrnet: DE-HRNet top-down human pose estimation (CLI and Python API).

`PoseEstimator`, `PoseResult` and the specs load lazily so that `dehrnet --help` does not import torch.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["DetectorSpec", "ModelSpec", "PoseEstimator", "PoseResult", "RuntimeSpec", "TopDownSettings",
           "__version__"]

_LAZY = {"PoseEstimator": "dehrnet_cli.estimator", "PoseResult": "dehrnet_cli.sinks.result",
         "ModelSpec": "dehrnet_cli.weights.model_choice", "RuntimeSpec": "dehrnet_cli.precision.runtime",
         "DetectorSpec": "dehrnet_cli.detect.spec", "TopDownSettings": "dehrnet_cli.pose.settings"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dehrnet_cli' has no attribute {name!r}")
