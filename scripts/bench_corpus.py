"""Time corpus mode (`dehrnet predict CORPUS --out-dir OUT`) on this machine: the local engine against the Ray
engine with 1..N workers, each run the real CLI in a fresh process (imports, model load, Ray start-up).

    python scripts/bench_corpus.py [--images 40] [--model dehrnet_w32_256x192] [--workers 1 2] [--repeat 1]
                                   [--omp-threads 1]

Each configuration runs twice: on a 1-image corpus (the fixed cost: start-up, model load, one item) and on
the N-image corpus; the difference over N - 1 items is the marginal cost of an item, whose inverse is the
steady throughput. Images are seeded 640x480 JPEG scenes, people boxes the whole image (--detector none),
random weights (--untrained), fp32. OMP_NUM_THREADS is pinned (default 1): on a busy 2-core machine two
spinning OpenMP threads run the model several times slower than one. Prints a Markdown table (docs/scale.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def scene(seed: int, width: int = 640, height: int = 480) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.ellipse(image, (width // 2, height // 2), (width // 6, height // 3), 0, 0, 360, (40, 160, 220), -1)
    noise = rng.integers(-20, 20, image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def make_corpus(folder: Path, images: int) -> Path:
    for i in range(images):
        path = folder / f"part{i % 4}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), scene(i), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def run(corpus: Path, out: Path, model: str, engine_flags: list[str]) -> float:
    """Wall seconds of one `dehrnet predict CORPUS --out-dir OUT` in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "dehrnet_cli", "predict", str(corpus), "--model", model, "--untrained",
               "--detector", "none", "--precision", "fp32", "--out-dir", str(out), "--quiet", *engine_flags]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--model", default="dehrnet_w32_256x192")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (the best is kept)")
    parser.add_argument("--omp-threads", default="1", help="OMP_NUM_THREADS of the runs ('' leaves it unset)")
    args = parser.parse_args()
    os.environ.setdefault("DEHRNET_OFFLINE", "1")
    if args.omp_threads:
        os.environ["OMP_NUM_THREADS"] = args.omp_threads
    configs = [("local", [])] + [(f"ray, {w} worker(s)", ["--engine", "ray", "--workers", str(w)])
                                 for w in args.workers]
    with tempfile.TemporaryDirectory(prefix="dehrnet-bench-corpus-") as tmp:
        root = Path(tmp)
        big = make_corpus(root / "corpus", args.images)
        one = make_corpus(root / "one", 1)
        print(f"{args.images} images 640x480, {args.model} --untrained --detector none --precision fp32, "
              f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average "
              f"{os.getloadavg()[0]:.1f} at start\n")
        print(f"| engine | 1 image (s) | {args.images} images (s) | per item (s) | items/s |")
        print("|---|---:|---:|---:|---:|")
        for name, flags in configs:
            fixed = min(run(one, root / "out1", args.model, flags) for _ in range(args.repeat))
            total = min(run(big, root / "out", args.model, flags) for _ in range(args.repeat))
            per_item = (total - fixed) / (args.images - 1)
            print(f"| {name} | {fixed:.1f} | {total:.1f} | {per_item:.3f} | {1 / per_item:.2f} |", flush=True)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
