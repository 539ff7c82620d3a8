"""Does onnxslim change ONNX Runtime's time per crop? One random network exported twice (traced, and simplified by
onnxslim), one session each, the two timed in alternation on the same crops (docs/benchmarks.md, "Default path").

    python scripts/bench_onnxslim.py --model dehrnet_w32_384x288 --batch 8 --rounds 5 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.onnx_session import INPUT_NAME
from models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dehrnet_w32_384x288")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    ort.set_default_logger_severity(3)
    net = create_model(args.model).eval()
    w, h = net.config.input_size
    crops = np.random.default_rng(0).standard_normal((args.batch, 3, h, w)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        sessions = {}
        for slim in (False, True):
            path = export_onnx(net, Path(folder) / f"{slim}.onnx", check=False, slim=slim).path
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            sessions[slim] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            sessions[slim].run(None, {INPUT_NAME: crops})  # warm-up
        ms_per_crop: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for slim, session in sessions.items():
                start = time.perf_counter()
                session.run(None, {INPUT_NAME: crops})
                ms_per_crop[slim].append((time.perf_counter() - start) / args.batch * 1000)
    for slim, times in ms_per_crop.items():
        print(f"{'simplified' if slim else 'traced':>10}: median {np.median(times):.0f} ms/crop, min {min(times):.0f}")


if __name__ == "__main__":
    main()
