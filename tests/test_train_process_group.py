"""A process group started by the caller, of one process: training joins it and runs through DDP (gloo on the
CPU here; tests/test_gpu_train.py runs the same worker over NCCL), with the weights of a plain run."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gpu_train import run_worker


@pytest.mark.slow  # a fresh process and two short runs: about 40 s here
def test_a_group_of_one_trains_through_ddp_like_a_plain_run(tmp_path: Path) -> None:
    result = run_worker("ddp", tmp_path, "cpu")
    assert result["backend"] == "gloo" and result["ddp_device_ids"] == [None] and result["steps"] == 3
    assert result["weights_equal"], result
