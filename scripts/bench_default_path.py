"""What `--backend auto` weighs, measured on this machine (docs/benchmarks.md, "Default path"):

- per crop, at the flip test's batch of one person (2 crops): torch fp32, torch bf16 (where the CPU has native
  bf16), ONNX Runtime fp32, one process, interleaved rounds, `--threads` threads;
- the one-time costs of the ONNX path: export, onnxslim simplification, and the session, with and without it;
- the two YOLO person detectors, from their yamls (random weights: speed only), on 1280x720 frames.

    OMP_NUM_THREADS=1 python scripts/bench_default_path.py --model dehrnet_w32_384x288 --model hrnet_w32_384x288
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _interleaved(runs: dict, x: np.ndarray, rounds: int) -> dict[str, list[float]]:
    """Seconds per crop of each callable over `rounds` alternated rounds (after one warm-up call each)."""
    for run in runs.values():
        run(x)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - start) / len(x))
    return times


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    start = time.perf_counter()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, time.perf_counter() - start


def measure_model(name: str, threads: int, rounds: int) -> None:
    import onnx
    import onnxruntime as ort
    import onnxslim

    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.pose.backends import TorchBackend
    from dehrnet_cli.precision.cpu import native_bf16
    from models import create_model

    ort.set_default_logger_severity(3)
    folder = Path(tempfile.mkdtemp(prefix="dehrnet-default-path-"))
    start = time.perf_counter()
    traced = export_onnx(create_model(name).eval(), folder / "traced.onnx", check=False, slim=False).path
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    slimmed = onnxslim.slim(onnx.load(str(traced)))
    slim_s = time.perf_counter() - start
    onnx.save(slimmed, str(folder / "slim.onnx"))
    session, session_s = _session(folder / "slim.onnx", threads)
    _, traced_session_s = _session(traced, threads)
    print(f"{name}: export {export_s:.1f} s, onnxslim {slim_s:.1f} s "
          f"({len(onnx.load(str(traced)).graph.node)} -> {len(slimmed.graph.node)} nodes); session "
          f"{traced_session_s:.2f} s traced, {session_s:.2f} s simplified")
    w, h = create_model(name).config.input_size
    crops = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
    runs = {"torch fp32": TorchBackend(create_model(name).eval(), "cpu"),
            "onnx fp32": lambda x: session.run(None, {"input": x})[0]}
    if native_bf16():
        runs["torch bf16"] = TorchBackend(create_model(name).eval(), "cpu", precision="bf16")
    for label, seconds in _interleaved(runs, crops, rounds).items():
        print(f"  {label:11s} median {1000 * np.median(seconds):5.0f} ms/crop, min {1000 * min(seconds):5.0f} "
              f"({rounds} rounds, {threads} thread(s))")


def measure_detectors(threads: int, rounds: int) -> None:
    import torch

    from dehrnet_cli.detect.yolo import YoloPersonDetector
    from dehrnet_cli.stage_data import Frame

    rng = np.random.default_rng(0)
    frames = [Frame(i, rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)) for i in range(4)]
    detectors = {name: YoloPersonDetector(name, device="cpu") for name in ("yolo11n.yaml", "yolo26n.yaml")}
    torch.set_num_threads(threads)
    seconds = _interleaved({n: (lambda _, d=d: d(frames)) for n, d in detectors.items()},
                           np.zeros(len(frames)), rounds)
    for name, values in seconds.items():
        print(f"{name}: median {1000 * np.median(values):.0f} ms/frame, min {1000 * min(values):.0f} "
              f"(1280x720, {len(frames)} frames a call, {rounds} rounds, {threads} thread(s))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="named config (repeatable); default dehrnet_w32_384x288")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-detectors", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="false")
    for name in args.model or ["dehrnet_w32_384x288"]:
        measure_model(name, args.threads, args.rounds)
    if not args.no_detectors:
        measure_detectors(args.threads, args.rounds)


if __name__ == "__main__":
    main()
