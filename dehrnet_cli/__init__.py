"""dehrnet: DE-HRNet top-down human pose estimation (CLI and Python API).

`PoseEstimator` loads lazily so that `dehrnet --help` does not import torch.
"""

__version__ = "0.1.0"
__all__ = ["PoseEstimator", "__version__"]


def __getattr__(name: str):
    if name == "PoseEstimator":
        from .estimator import PoseEstimator

        return PoseEstimator
    raise AttributeError(f"module 'dehrnet_cli' has no attribute {name!r}")
