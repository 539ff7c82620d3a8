"""Regenerate the bad-input table of docs/reliability.md from real runs of `python -m dehrnet_cli predict`.

    python scripts/reliability_table.py [--doc docs/reliability.md]

Each case runs in a fresh copy of a temporary folder holding small inputs (images, a video, a boxes file) with the tiny
untrained model on CPU; the table records what dehrnet printed (the error or warning line), the exit code, and
which files the run left there (inputs excluded). The table replaces the text between the two
`<!-- bad-input-table -->` markers of the document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dehrnet_cli.sinks.video_writer import VideoWriter

MARKER = "<!-- bad-input-table -->"
TINY = ["--model", "dehrnet_w8_128x96", "--untrained", "--no-flip", "--precision", "fp32", "--detector", "none"]


def _image(n: int, w: int = 64, h: int = 48) -> np.ndarray:
    image = np.full((h, w, 3), 60 + 20 * n, np.uint8)
    cv2.circle(image, (w // 2, h // 2), 12, (200, 120, 40), -1)
    return image


def _inputs(root: Path) -> None:
    """The inputs every case may use."""
    for n, name in enumerate(("000001.png", "000002.png")):
        (root / "images").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "images" / name), _image(n))
    for sub in ("a", "b"):
        (root / "shots" / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "shots" / sub / "bus.png"), _image(3))
    (root / "mixed").mkdir()
    cv2.imwrite(str(root / "mixed" / "x.png"), _image(4))
    cv2.imwrite(str(root / "mixed" / "x.pgm"), _image(5)[:, :, 0])
    (root / "broken").mkdir()
    (root / "broken" / "a.jpg").write_bytes(b"not a jpeg" * 10)
    (root / "broken" / "b.png").write_bytes(b"")
    (root / "some").mkdir()
    cv2.imwrite(str(root / "some" / "000001.png"), _image(6))
    (root / "some" / "000002.jpg").write_bytes(b"truncated")
    (root / "empty").mkdir()
    (root / "list.txt").write_text("images/000001.png\nimages/000009.png\n")
    (root / "twice.txt").write_text("images/000001.png\n./images/000001.png\n")
    (root / "results").mkdir()
    (root / "a_file").write_text("not a folder\n")
    (root / "poses.csv").mkdir()
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (root / "weights.pth").write_bytes(bytes(range(256)) * 16)
    boxes = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 0.9}
             for b in ([10, 5, 30, 40], [float("nan"), 1, 5, 5], [5, 5, 0, 0], [500, 500, 10, 10])]
    (root / "dets.json").write_text(json.dumps(boxes))
    (root / "other_dets.json").write_text(json.dumps([{"image_id": 785, "bbox": [1, 1, 9, 9], "score": 1}]))
    with VideoWriter(root / "walk.mp4", 25.0, (64, 48)) as writer:
        for n in range(3000):
            writer.write(_image(n % 8))
    for n in range(400):
        (root / "many").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "many" / f"{n + 1:06d}.png"), _image(n % 8))


@dataclass(frozen=True)
class Case:
    what: str  # the input, as the table shows it
    args: list[str]  # after `dehrnet predict`
    tiny: bool = True  # add the tiny-model flags
    signal_when: Callable[[Path], bool] | None = None  # send SIGINT/SIGTERM once this holds
    signum: int = signal.SIGINT


def _hidden(root: Path) -> bool:
    return any(".partial-" in p.name for p in root.rglob(".*"))


CASES = [
    Case("missing image", ["nowhere.jpg", "--json", "r.json"]),
    Case("folder without images", ["empty", "--json", "r.json"]),
    Case("folder whose every file is unreadable", ["broken", "--out", "annotated", "--json", "r.json"]),
    Case("folder with one unreadable file", ["some", "--json", "r.json"]),
    Case("glob matching nothing", ["shots/**/*.jpg", "--json", "r.json"]),
    Case(".txt list naming a missing file", ["list.txt", "--json", "r.json"]),
    Case(".txt list naming one image twice", ["twice.txt", "--json", "r.json"]),
    Case("unreadable video", ["clip.mp4", "--out", "annotated.mp4"]),
    Case("`shots/**/*.png` (a/bus.png, b/bus.png) into one --out", ["shots/**/*.png", "--out", "annotated"]),
    Case("x.pgm and x.png (both annotated as x.png)", ["mixed", "--out", "annotated"]),
    Case("one image, `--out result.jpg`", ["images/000001.png", "--out", "result.jpg"]),
    Case("a folder, `--out result.jpg`", ["images", "--out", "result.jpg"]),
    Case("`--out` the input folder", ["images", "--out", "images"]),
    Case("`--json` naming a folder", ["images", "--json", "results"]),
    Case("`--json` under a file", ["images", "--json", "a_file/r.json"]),
    Case("`--json` in a folder no one may write (sysfs)", ["images", "--json", "/sys/r.json"]),
    Case("`--csv` naming a folder", ["images", "--csv", "poses.csv"]),
    Case("`--json same.csv --csv same.csv`", ["images", "--json", "same.csv", "--csv", "same.csv"]),
    Case("`--json` naming the `--boxes` file", ["images", "--boxes", "dets.json", "--json", "dets.json"]),
    Case("`--boxes` with NaN, empty and outside boxes", ["images", "--boxes", "dets.json", "--json", "r.json"]),
    Case("`--boxes` for other images", ["images", "--boxes", "other_dets.json", "--json", "r.json"]),
    Case("`--conf 1.5`", ["images", "--conf", "1.5", "--json", "r.json"]),
    Case("`--batch abc`", ["images", "--batch", "abc", "--json", "r.json"]),
    Case("unknown flag `--jsn`", ["images", "--jsn", "r.json"]),
    Case("no source", [], tiny=False),
    Case("`--device 0` without a GPU", ["images", "--device", "0", "--json", "r.json"]),
    Case("unknown `--model`", ["images", "--model", "hrnet_w32.coco_384x28", "--detector", "none", "--json",
                               "r.json"], tiny=False),
    Case("corrupt `--weights`", ["images", "--weights", "weights.pth", "--detector", "none", "--json", "r.json"],
         tiny=False),
    Case("Ctrl-C (SIGINT) mid-video", ["walk.mp4", "--out", "annotated.mp4", "--json", "r.json", "--csv", "p.csv"],
         signal_when=_hidden),
    Case("SIGTERM mid-folder", ["many", "--out", "annotated", "--json", "r.json", "--save-results", "res.json"],
         signal_when=lambda root: any((root / "annotated").glob("*.png")), signum=signal.SIGTERM),
]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _left(before: set[str], after: set[str]) -> str:
    """The new files, folders of many collapsed to `folder/ (N files)`."""
    new = sorted(after - before)
    by_folder: dict[str, list[str]] = {}
    for path in new:
        by_folder.setdefault(path.split("/")[0] if "/" in path else "", []).append(path)
    parts = []
    for folder, paths in by_folder.items():
        if folder and len(paths) > 2:
            parts.append(f"`{folder}/` ({len(paths)} files)")
        else:
            parts.extend(f"`{p}`" for p in paths)
    return ", ".join(parts) or "nothing"


def _said(stderr: str, root: Path) -> str:
    """The error line, else the warnings, with the temp folder left out."""
    lines = [line for line in stderr.splitlines() if line.startswith(("dehrnet: error", "dehrnet: warning"))]
    lines += [line for line in stderr.splitlines() if "kept the partial" in line]
    text = " / ".join(lines) or "(no error or warning)"
    text = text.replace(str(root) + "/", "").replace(str(root), ".")
    return re.sub(r"\|", r"\\|", text)


def run_case(case: Case, root: Path) -> tuple[str, int, str]:
    env = {**os.environ, "DEHRNET_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DEHRNET_HOME": str(root / ".home"),
           "COLUMNS": "200"}
    command = [sys.executable, "-m", "dehrnet_cli", "predict", *case.args, *(TINY if case.tiny else [])]
    before = _files(root)
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if case.signal_when is not None:
        while proc.poll() is None and not case.signal_when(root):
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(case.signum)
    _, stderr = proc.communicate(timeout=300)
    after = {p for p in _files(root) if not p.startswith(".home/")}
    return _said(stderr, root), proc.returncode, _left(before, after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "reliability.md")
    args = parser.parse_args()
    rows = ["| input | what dehrnet says | exit | left on disk |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="dehrnet-bad-input-") as folder:
        base = Path(folder) / "inputs"
        base.mkdir()
        _inputs(base)
        for n, case in enumerate(CASES):
            root = Path(folder) / f"case{n}"
            shutil.copytree(base, root)
            said, code, left = run_case(case, root)
            shutil.rmtree(root)
            rows.append(f"| {case.what} | {said} | {code} | {left} |")
            print(rows[-1], flush=True)
    text = args.doc.read_text()
    head, _, rest = text.partition(MARKER)
    _, _, tail = rest.partition(MARKER)
    args.doc.write_text(f"{head}{MARKER}\n" + "\n".join(rows) + f"\n{MARKER}{tail}")


if __name__ == "__main__":
    main()
