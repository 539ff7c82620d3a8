"""How torch and onnxruntime behave with 1 and 2 intra-op threads, alone and beside a busy process (issue 14:
predict with 2 threads took 10x longer than with 1 while other jobs ran on the same cores). The numbers behind
the default of `--threads` (docs/reliability.md).

    python scripts/bench_threads.py [--model dehrnet_w32_256x192] [--reps 8] [--json out.json]

Every setting runs in a fresh process (OpenMP reads OMP_WAIT_POLICY once, at start-up): it times `--reps`
forward passes of one flip-test batch (2 crops) after one warm-up, and reports the median. "hog" runs one
busy-looping process beside it for the whole measurement: one core's worth of someone else's work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _worker(args: argparse.Namespace) -> None:
    """One setting: print the median seconds per forward pass as JSON."""
    import numpy as np
    import torch

    from models import create_model

    torch.set_num_threads(args.threads)
    net = create_model(args.model).eval()
    w, h = net.config.input_size
    batch = np.random.default_rng(0).standard_normal((2, 3, h, w)).astype(np.float32)
    if args.engine == "torch":
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        net = net.to(memory_format=torch.channels_last)

        def forward() -> None:
            with torch.inference_mode():
                net(x)
    else:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if args.spin else "0")
        session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])

        def forward() -> None:
            session.run(None, {"input": batch})
    forward()  # warm-up
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times)}))


def _hog() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _run(setting: dict, model: str, reps: int, onnx: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(setting["threads"])}
    if setting.get("passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    command = [sys.executable, __file__, "--worker", setting["engine"], "--threads", str(setting["threads"]),
               "--model", model, "--reps", str(reps), "--onnx", onnx] + (["--spin"] if setting.get("spin") else [])
    hog = _hog() if setting["hog"] else None
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return {**setting, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dehrnet_w32_256x192")
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=("torch", "onnx"), help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--onnx", default="", help=argparse.SUPPRESS)
    parser.add_argument("--spin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.engine = args.worker
        _worker(args)
        return
    import tempfile

    from dehrnet_cli.export.onnx import export_onnx
    from models import create_model

    with tempfile.TemporaryDirectory() as folder:
        onnx = str(export_onnx(create_model(args.model), Path(folder) / "m.onnx", check=False).path)
        settings = [{"engine": "torch", "threads": t, "hog": hog, "passive": passive}
                    for hog in (False, True) for passive in (False, True) for t in (1, 2)]
        settings += [{"engine": "onnx", "threads": t, "hog": hog, "spin": spin}
                     for hog in (False, True) for spin in (True, False) for t in (1, 2)]
        rows = []
        for setting in settings:
            row = _run(setting, args.model, args.reps, onnx)
            row["load_1min"] = os.getloadavg()[0]
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "cores": len(os.sched_getaffinity(0)), "rows": rows},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
