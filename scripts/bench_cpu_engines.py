"""ms per crop of HRNet-W32 and DE-HRNet-W32 on every CPU engine and precision, against the CPU's measured matrix
rate (docs/benchmarks.md, "CPU engines").

Paths: torch fp32 and bf16 (eager, channels_last), ONNX Runtime fp32 (the default export: DySample as gathers),
OpenVINO fp32 and bf16 (the export with DySample as GridSample), and with --int8 OpenVINO int8 (NNCF,
calibrated on crops of the images bundled with ultralytics). It also prints how long an OpenVinoBackend takes
to start with an empty model cache and from it. Random weights (speed only), one process, every
path of every model timed once per round in turn, median over the rounds. A 2048 x 2048 matrix product (torch.mm
and the same as a 1x1 convolution, the faster counts) gives the fp32 and bf16 matrix rate of the same threads;
each path's rate is its model's FLOPs per crop (convolutions, FlopCounterMode) times crops per second (int8 is
set against the bf16 rate).

    python scripts/bench_cpu_engines.py --rounds 5 --threads 2 --batch 8 [--int8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dehrnet_cli.bench.machine import matrix_gflops
from dehrnet_cli.bench.model_cost import count_flops
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.backends import OnnxBackend, TorchBackend, set_cpu_threads
from dehrnet_cli.pose.openvino_backend import OpenVinoBackend
from dehrnet_cli.precision.cpu import cpu_info, cpu_units
from models import create_model

MODELS = ("hrnet_w32_384x288", "dehrnet_w32_384x288")


def _seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def paths_of(name: str, folder: Path, threads: int, int8: bool) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The runners of model `name`: path name -> backend (normalised crops in, heatmaps out)."""
    model = create_model(name).eval()
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "torch fp32": TorchBackend(create_model(name), "cpu", precision="fp32"),
        "torch bf16": TorchBackend(create_model(name), "cpu", precision="bf16"),
    }
    ort_onnx = export_onnx(model, folder / f"{name}.onnx", check=False).path  # the gather sampler: ORT's
    runners["onnxruntime fp32"] = OnnxBackend(ort_onnx, "cpu")
    ov_onnx = export_onnx(model, folder / f"{name}.grid_sample.onnx", check=False, sampler="grid_sample").path
    for precision in ("fp32", "bf16"):
        runners[f"openvino {precision}"] = OpenVinoBackend(ov_onnx, precision, threads, cache=False)
    starts = [_seconds(lambda: OpenVinoBackend(ov_onnx, "bf16", threads)) for _ in range(2)]  # empty cache, then full
    print(f"{name}: OpenVINO bf16 start {starts[0]:.2f} s with an empty cache, {starts[1]:.2f} s from it")
    if int8:
        from dehrnet_cli.export.calibration import calibration_crops
        from dehrnet_cli.export.openvino_int8 import quantize_openvino

        xml = quantize_openvino(ov_onnx, folder / f"{name}.int8.xml", calibration_crops(None, model.config, 32))
        runners["openvino int8"] = OpenVinoBackend(xml, "int8", threads, cache=False)
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help=f"repeatable (default: {' and '.join(MODELS)})")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also OpenVINO int8 (NNCF: a minute or two per model)")
    args = parser.parse_args()
    set_cpu_threads(args.threads)  # torch, OpenCV and the ONNX Runtime sessions; OpenVINO gets it per model
    names = args.model or list(MODELS)
    info = cpu_info()
    print(f"CPU {info.model} ({cpu_units(info)}), {args.threads} threads, batch {args.batch}, {args.rounds} rounds")
    probes = {precision: matrix_gflops(precision) for precision in ("fp32", "bf16")}
    for unit, probe in probes.items():
        print(f"{unit} 2048x2048 product: torch.mm {probe['mm']:.0f} GFLOP/s, 1x1 convolution {probe['conv1x1']:.0f}")
    rates = {unit: max(probe.values()) for unit, probe in probes.items()}  # the matrix rate: the faster of the two
    with tempfile.TemporaryDirectory() as folder:
        runners = {name: paths_of(name, Path(folder), args.threads, args.int8) for name in names}
        crops = {}
        for name in names:
            w, h = create_model(name).config.input_size
            crops[name] = np.random.default_rng(0).standard_normal((args.batch, 3, h, w)).astype(np.float32)
            for run in runners[name].values():
                run(crops[name])  # warm-up: first-call allocations, kernel choice
        ms: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name in names:
                for path, run in runners[name].items():
                    seconds = _seconds(lambda: run(crops[name]))  # noqa: B023 (called at once)
                    ms.setdefault((name, path), []).append(1000 * seconds / args.batch)
    paths = list(runners[names[0]])
    print("| ms per crop | " + " | ".join(paths) + " |")
    print("|---" * (len(paths) + 1) + "|")
    for name in names:
        cells = [f"{np.median(ms[name, p]):.0f} ({min(ms[name, p]):.0f}-{max(ms[name, p]):.0f})" for p in paths]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if len(names) == 2:
        ratios = [np.median(ms[names[1], p]) / np.median(ms[names[0], p]) for p in paths]
        print(f"| {names[1]} / {names[0]} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    for name in names:
        gflop = count_flops(create_model(name), create_model(name).config.input_size) / 1e9
        parts = []
        for p in paths:
            rate = gflop / (np.median(ms[name, p]) / 1000)
            unit = "bf16" if p.endswith(("bf16", "int8")) else "fp32"
            parts.append(f"{p} {rate:.0f} GFLOP/s ({100 * rate / rates[unit]:.0f} % of the {unit} matrix rate)")
        print(f"{name} ({gflop:.1f} GFLOP/crop): " + "; ".join(parts))


if __name__ == "__main__":
    main()
