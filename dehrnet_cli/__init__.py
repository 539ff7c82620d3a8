"""dehrnet: DE-HRNet top-down human pose estimation (CLI and Python API)."""

__version__ = "0.1.0"
