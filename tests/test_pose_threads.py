"""CPU threads (issue 14): --threads sets torch, OpenCV and onnxruntime alike; the default is $OMP_NUM_THREADS or
the cores this process may use; onnxruntime threads sleep instead of spinning (docs/reliability.md, "Threads")."""

from __future__ import annotations

import os

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from dehrnet_cli.env import default_threads
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose import onnx_session
from dehrnet_cli.pose.backends import set_cpu_threads


@pytest.fixture(autouse=True)
def threads_kept():
    """Every test here changes process-wide thread settings: put them back."""
    torch_threads, cv2_threads, ort_threads = torch.get_num_threads(), cv2.getNumThreads(), \
        onnx_session._intra_op_threads
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    onnx_session.set_ort_threads(ort_threads)


def test_default_is_omp_num_threads_else_the_affinity_mask(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 5, 7}, raising=False)  # e.g. taskset -c 0,5,7
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert default_threads() == 3


def test_set_cpu_threads_sets_torch_opencv_and_the_next_onnx_sessions(tmp_path) -> None:
    assert set_cpu_threads(1) == 1
    assert (torch.get_num_threads(), cv2.getNumThreads(), onnx_session._intra_op_threads) == (1, 1, 1)
    set_cpu_threads(2)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["heatmaps"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
              str(tmp_path / "m.onnx"))
    options = onnx_session.ort_session(tmp_path / "m.onnx").get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(DehrnetError, match="--threads 0"):
        set_cpu_threads(0)
    assert np.isfinite(torch.ones(3).sum().item())


def test_more_threads_than_usable_cores_are_set_with_one_warning(monkeypatch, capsys) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)  # e.g. taskset -c 0,1
    assert set_cpu_threads(2) == 2
    assert capsys.readouterr().err == ""
    assert set_cpu_threads(3) == 3 and torch.get_num_threads() == 3  # as asked: the user may know better
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("dehrnet: warning: --threads 3: more threads than the 2 core")
    assert "--threads 2 or fewer" in warning[0]
