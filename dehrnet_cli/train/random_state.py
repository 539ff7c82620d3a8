"""Random generator states (python, numpy, torch CPU and CUDA) as weights_only-loadable values, so that a
resumed run draws exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(device: str) -> dict:
    """This process's python, numpy and torch (CPU, CUDA) generator states as weights_only-loadable values."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None}


def set_rng_state(state: dict, device: str) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.startswith("cuda") and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
