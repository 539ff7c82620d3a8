"""scripts/gpu_check.sh on a machine without CUDA (as CI runs it), and the one-screen summary it ends with
(dehrnet_cli.bench.gpu_summary) on a folder of made-up results."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from conftest import REPO

from dehrnet_cli.bench.gpu_summary import summarize
from dehrnet_cli.bench.results import PIPELINE, Measurement, compute_ratios
from dehrnet_cli.bench.run import BenchReport


def test_gpu_check_without_cuda_says_so_and_exits_0_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PATH": "/usr/bin:/bin", "OUT": str(out)}  # no nvidia-smi on this PATH
    begin = time.perf_counter()
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stdout
    assert time.perf_counter() - begin < 10 and not out.exists()


def _network(model: str, crops_per_s: float, compiled: bool = False) -> Measurement:
    config = {"model": model, "backend": "torch", "precision": "fp16", "batch": 64, "flip": False, "device": "cuda",
              **({"compile": True} if compiled else {})}
    return Measurement("gpu_pose", config, 256, 256, [256 / crops_per_s])


def _report(measurements: list[Measurement]) -> dict:
    machine = {"gpu": "NVIDIA H200", "cpu": "x", "cpu_cores": 16, "torch_threads": 16, "os": "Linux", "python": "3.12",
               "versions": {}}
    return BenchReport(machine, "dehrnet bench --gpu", "today", {"gpu": True}, measurements,
                       compute_ratios(measurements, device="cuda")).to_dict()


def test_summary_shows_tests_rows_and_targets(tmp_path: Path) -> None:
    (tmp_path / "pytest.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_gpu_precision" name="test_guard"><properties>'
        '<property name="guard_model_fp16_within_0.1px" value="0.995"/></properties></testcase>'
        '<testcase classname="tests.test_gpu_train" name="test_ddp"><failure message="assert 0.1 &lt;= 1e-06">'
        'trace</failure></testcase>'
        '<testcase classname="tests.test_gpu_onnx" name="test_cuda"><skipped message="no CUDA provider"/></testcase>'
        '</testsuite></testsuites>')
    pipeline = Measurement(PIPELINE, {"size": "1920x1080", "people": 5, "model": "dehrnet_w32_384x288",
                                      "backend": "torch", "precision": "fp16", "batch": 32, "flip": True},
                           256, 1280, [1.0])
    eager = [_network("hrnet_w32_384x288", 3000.0), _network("dehrnet_w32_384x288", 2500.0), pipeline]
    compiled = [_network("hrnet_w32_384x288", 2900.0), _network("hrnet_w32_384x288", 5000.0, compiled=True),
                _network("dehrnet_w32_384x288", 4500.0, compiled=True)]
    (tmp_path / "bench.json").write_text(json.dumps(_report(eager)))
    (tmp_path / "bench_compile.json").write_text(json.dumps(_report(compiled)))
    text = summarize(tmp_path)
    lines = text.splitlines()
    assert lines[0] == "gpu_check on NVIDIA H200" and len(lines) < 50
    assert "tests: 1 passed, 1 failed, 1 skipped" in text
    assert "FAILED  test_gpu_train::test_ddp: assert 0.1 <= 1e-06" in text and "no CUDA provider" in text
    assert "hrnet_w32_384x288      fp16  b64 3,000  b64 compiled 5,000" in text  # the compile run's eager row dropped
    assert "NOT MET      HRNet-W32 fp16 batch 64: crops/s (H100 target): 3000" in text
    assert "met          HRNet-W32 fp16 batch 64, compiled: crops/s (H100 target): 5000" in text
    assert "NOT MET      DE-HRNet / HRNet time per crop, fp16 batch 64: 1.2" in text
    assert "met          1080p, 5 people, flip: pipeline frames/s (H100 target): 256" in text
    assert "met          fp16 keypoints within 0.1 px of fp32 (trained guard model), fraction: 0.995" in text
    assert text.count("crops/s (H100 target)") == 2  # each ratio once
    xml = (tmp_path / "pytest.xml").read_text().replace('value="0.995"', 'value="0.95"')
    (tmp_path / "pytest.xml").write_text(xml)
    missed = "NOT MET      fp16 keypoints within 0.1 px of fp32 (trained guard model), fraction: 0.95"
    assert missed in summarize(tmp_path)
