"""Time `dehrnet eval --analyze` and `dehrnet eval --compare` on a synthetic COCO-val-sized pair.

    python scripts/bench_eval_analyze.py [--images 5000] [--seed 0] [--resamples 1000] [--keep DIR]

Writes the ground truth and two results files of `make_coco_pair.py` (5,000 images, about 105,000 results
each) to a temporary folder (or --keep DIR), then runs, as a user would, each command once in a subprocess:
  dehrnet eval --coco-results A --ann GT --analyze --report R --quiet
  dehrnet eval --compare A B --ann GT --resamples N --report C --quiet
and prints wall and CPU seconds (the child's user + system time) with the headline numbers of each report.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from make_coco_pair import make_pair


def timed(command: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one subprocess run; stops with its output if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="Write the files here and keep them.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        gt, a, b = make_pair(folder, args.images, args.seed)
        sizes = [len(json.loads(p.read_text())) for p in (a, b)]
        print(f"synthetic pair: {args.images} images, {sizes[0]} and {sizes[1]} results")
        dehrnet = [sys.executable, "-m", "dehrnet_cli", "eval"]
        wall, cpu = timed([*dehrnet, "--coco-results", str(a), "--ann", str(gt), "--analyze", "--report",
                           str(folder / "analyze.json"), "--quiet"])
        steps = json.loads((folder / "analyze.json").read_text())["analyze"]["ap_steps"]["all"]
        print(f"--analyze: {wall:.1f} s wall, {cpu:.1f} s CPU; AP (all) "
              + ", ".join(f"{step} {value:.3f}" for step, value in steps.items()))
        wall, cpu = timed([*dehrnet, "--compare", str(a), str(b), "--ann", str(gt), "--resamples",
                           str(args.resamples), "--report", str(folder / "compare.json"), "--quiet"])
        rows = {row["metric"]: row for row in json.loads((folder / "compare.json").read_text())["compare"]["rows"]}
        ap = rows["AP"]
        print(f"--compare ({args.resamples} resamples): {wall:.1f} s wall, {cpu:.1f} s CPU; AP {ap['a']:.4f} -> "
              f"{ap['b']:.4f}, 95% interval of the difference [{ap['ci95'][0]:+.4f}, {ap['ci95'][1]:+.4f}], "
              f"verdict {ap['verdict']}")


if __name__ == "__main__":
    main()
