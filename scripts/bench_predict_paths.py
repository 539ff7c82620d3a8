"""Whole `dehrnet predict` processes on a 1280x720 clip, `--detector none`, flip on: the CPU paths against each
other, alternated in one run (docs/benchmarks.md, "CPU engines: whole predict runs").

1. Paths: HRNet-W32 and DE-HRNet-W32 384x288 exported once from seeded random weights (`dehrnet export`: the
   gather graph for ONNX Runtime, the GridSample graph for OpenVINO), each run as `--weights FILE --backend B
   --precision P`. The files say they are untrained, so no precision check runs: this times the engines.
2. The default on a long clip (`--long-frames`, 600): a checkpoint (`--long-weights`, default seeded random
   HRNet-W32 weights, which the check refuses: the fallback) with no flags (the precision check's cached
   verdict deleted first, so the check is part of the run) against the default before OpenVINO, `--backend
   onnx --precision fp32`. Both exports are made beforehand (once per checkpoint, as in use). The start lines
   say which path ran and the check's verdict.

3. The detector (`--detector-frames`, 0 skips it): yolo26n saved from its yaml (random weights, so `--conf 0
   --max-people 1` keeps one box a frame) with the pose network on OpenVINO bf16 (HRNet-W32, GridSample
   export), `--det-engine auto` (the detector follows it onto OpenVINO) against `--det-engine torch`. The
   first run of each, which makes the detector's export, is timed apart.

    python scripts/bench_predict_paths.py --frames 120 --rounds 2 --long-frames 600 --detector-frames 240
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

MODELS = ("hrnet_w32_384x288", "dehrnet_w32_384x288")
PATHS = (("onnx", "fp32", "gather"), ("openvino", "fp32", "grid_sample"), ("openvino", "bf16", "grid_sample"))
DEHRNET = [sys.executable, "-m", "dehrnet_cli"]


def write_clip(path: Path, frames: int) -> Path:
    """A 1280x720 mp4 of `frames` frames: a textured background and a moving bright figure-sized block."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 9)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (1280, 720))
    for i in range(frames):
        frame = background.copy()
        x = 200 + (i * 7) % 800
        cv2.rectangle(frame, (x, 150), (x + 180, 650), (200, 180, 160), -1)
        writer.write(frame)
    writer.release()
    return path


def run(args: list, env: dict) -> tuple[float, str]:
    """Wall seconds of one `dehrnet` process and its stderr; a failed run stops the script."""
    start = time.perf_counter()
    done = subprocess.run([*DEHRNET, *map(str, args)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dehrnet {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, done.stderr


def path_lines(stderr: str) -> list[str]:
    """The start lines that say which path ran and the precision check's verdict."""
    return [line for line in stderr.splitlines()
            if re.match(r"(torch|onnx|openvino) precision|precision check|running ", line)]


def measure_paths(folder: Path, env: dict, frames: int, rounds: int) -> None:
    clip = write_clip(folder / "clip.mp4", frames)
    files = {}
    for model in MODELS:
        for sampler in {s for _, _, s in PATHS}:
            files[model, sampler] = folder / f"{model}.{sampler}.onnx"
            run(["export", "--model", model, "--out", files[model, sampler], "--sampler", sampler, "--no-check"], env)
    seconds: dict[tuple[str, str, str], list[float]] = {}
    warm = write_clip(folder / "warm.mp4", 4)
    for model in MODELS:  # warm-up: OpenVINO's compiled-model cache, the page cache
        for backend, precision, sampler in PATHS:
            run(["predict", warm, "--weights", files[model, sampler], "--backend", backend, "--precision", precision,
                 "--detector", "none", "--json", folder / "warm.json", "-q"], env)
    for _ in range(rounds):
        for model in MODELS:
            for backend, precision, sampler in PATHS:
                took, _ = run(["predict", clip, "--weights", files[model, sampler], "--backend", backend,
                               "--precision", precision, "--detector", "none", "--json", folder / "out.json", "-q"],
                              env)
                seconds.setdefault((model, backend, precision), []).append(took)
    print(f"\n## Whole predict runs: {frames} frames 1280x720, --detector none, flip on ({2 * frames} crops), "
          f"{rounds} alternated rounds, wall seconds per process (median, all)")
    print("| model | path | seconds | ms per crop (whole run) | vs ONNX Runtime fp32 |")
    print("|---|---|---|---|---|")
    for model in MODELS:
        base = float(np.median(seconds[model, "onnx", "fp32"]))
        for backend, precision, _ in PATHS:
            values = seconds[model, backend, precision]
            median = float(np.median(values))
            print(f"| {model} | {backend} {precision} | {median:.1f} ({', '.join(f'{v:.1f}' for v in values)}) | "
                  f"{1000 * median / (2 * frames):.0f} | {base / median:.2f}x |")
    for backend, precision, _ in PATHS:
        ratio = np.median(seconds[MODELS[1], backend, precision]) / np.median(seconds[MODELS[0], backend, precision])
        print(f"DE-HRNet-W32 / HRNet-W32 whole-run time, {backend} {precision}: {ratio:.2f}")


def measure_default(folder: Path, env: dict, frames: int, rounds: int, checkpoint: Path | None) -> None:
    import torch

    from models import create_model, load_model, save_checkpoint

    clip = write_clip(folder / "long.mp4", frames)
    if checkpoint is None:
        torch.manual_seed(0)
        checkpoint = folder / "hrnet_w32_seeded.pt"
        save_checkpoint(create_model("hrnet_w32_384x288"), checkpoint)
        what = "HRNet-W32 384x288, seeded random weights"
    else:
        what = f"{load_model(checkpoint).config.name}, {checkpoint}"
    checks = Path(env["DEHRNET_HOME"]) / "weights" / "precision" / "checks.json"
    paths = {"today's default (onnx fp32)": ["--backend", "onnx", "--precision", "fp32"], "no flags": []}
    warm = write_clip(folder / "warm.mp4", 4)
    for backend in ("onnx", "openvino"):  # both exports made once, as any checkpoint's first long run makes them
        run(["predict", warm, "--weights", checkpoint, "--backend", backend, "--precision", "fp32", "--detector",
             "none", "--json", folder / "w.json", "-q"], env)
    seconds: dict[str, list[float]] = {}
    lines: dict[str, list[str]] = {}
    for _ in range(rounds):
        for name, flags in paths.items():
            checks.unlink(missing_ok=True)  # the check runs inside the timed process
            took, stderr = run(["predict", clip, "--weights", checkpoint, *flags, "--detector", "none", "--json",
                                folder / "long.json"], env)
            seconds.setdefault(name, []).append(took)
            lines[name] = path_lines(stderr)
    print(f"\n## The default on a long clip: a checkpoint ({what}), {frames} frames 1280x720, --detector none, flip "
          f"on, {rounds} alternated round(s), check included")
    for name, values in seconds.items():
        print(f"- {name}: {np.median(values):.1f} s ({', '.join(f'{v:.1f}' for v in values)})")
        for line in lines[name]:
            print(f"    {line}")


def measure_detector(folder: Path, env: dict, frames: int, rounds: int) -> None:
    from ultralytics import YOLO

    clip = write_clip(folder / "det.mp4", frames)
    pose = folder / "hrnet_w32_384x288.grid_sample.onnx"
    if not pose.exists():
        run(["export", "--model", "hrnet_w32_384x288", "--out", pose, "--sampler", "grid_sample", "--no-check"], env)
    yolo = folder / "yolo26n_seeded.pt"
    YOLO("yolo26n.yaml").save(str(yolo))
    common = ["--weights", pose, "--backend", "openvino", "--precision", "bf16", "--det-model", yolo, "--conf", "0",
              "--max-people", "1", "--json", folder / "det.json"]
    engines = ("torch", "auto")
    first = {engine: run(["predict", write_clip(folder / "warm.mp4", 4), *common, "--det-engine", engine], env)
             for engine in engines}
    seconds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for engine in engines:
            took, stderr = run(["predict", clip, *common, "--det-engine", engine, "-q"], env)
            seconds.setdefault(engine, []).append(took)
    print(f"\n## The detector: yolo26n (random weights, one box a frame) + HRNet-W32 on OpenVINO bf16, {frames} "
          f"frames 1280x720, flip on, {rounds} alternated round(s)")
    for engine in engines:
        values = seconds[engine]
        notes = [line for line in first[engine][1].splitlines() if line.startswith("detector:")]
        print(f"- --det-engine {engine}: {np.median(values):.1f} s ({', '.join(f'{v:.1f}' for v in values)}); "
              f"first run of 4 frames {first[engine][0]:.1f} s {notes}")
    print(f"- torch / auto: {np.median(seconds['torch']) / np.median(seconds['auto']):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="frames of the clip of part 1 (0: skip part 1)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--long-frames", type=int, default=600, help="frames of part 2's clip (0: skip part 2)")
    parser.add_argument("--long-rounds", type=int, default=1)
    parser.add_argument("--long-weights", type=Path, help="part 2's checkpoint (default: seeded random HRNet-W32)")
    parser.add_argument("--detector-frames", type=int, default=0, help="frames of part 3's clip (0: skip part 3)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dehrnet-predict-paths-"))
    env = {**os.environ, "DEHRNET_HOME": str(folder / "home"), "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false",
           "YOLO_CONFIG_DIR": str(folder / "yolo")}
    from dehrnet_cli.precision.cpu import cpu_info, cpu_units

    info = cpu_info()
    print(f"CPU: {info.model} ({cpu_units(info)}), {os.cpu_count()} logical CPUs; {time.strftime('%Y-%m-%d')}")
    if args.frames:
        measure_paths(folder, env, args.frames, args.rounds)
    if args.long_frames:
        measure_default(folder, env, args.long_frames, args.long_rounds, args.long_weights)
    if args.detector_frames:
        measure_detector(folder, env, args.detector_frames, args.rounds)


if __name__ == "__main__":
    main()
