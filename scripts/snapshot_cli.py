"""Snapshot what the CLI writes, to show that a refactor changes no behaviour: predict's COCO file, results list
and CSV (images and a short video with tracking), eval's report, train's losses, and bench's report keys.

    python scripts/snapshot_cli.py OUT_DIR        # then: diff -r BEFORE_DIR AFTER_DIR

Run before and after a change on the same machine; every file under OUT_DIR must be identical. Numbers that
change from run to run (seconds, frames/s, dates, temp paths) are dropped before writing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

VOLATILE = {"seconds", "fps", "timings", "date", "time_s", "elapsed", "per_s", "wall_s", "data_wait", "epoch_s",
            "samples_per_s", "val_s"}


def _dehrnet(*args: str, env: dict) -> None:
    done = subprocess.run([sys.executable, "-m", "dehrnet_cli", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dehrnet {' '.join(args)} failed ({done.returncode}): {done.stderr[-800:]}")


def _scrub(value, tmp: str):
    """Drop volatile keys and temp paths (which differ between runs)."""
    if isinstance(value, dict):
        return {k: _scrub(v, tmp) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(tmp, "<tmp>")
    return value


def _keys(value, prefix: str = "") -> list[str]:
    """Every key path of a JSON document (list items collapsed to [])."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in [f"{prefix}{k}", *_keys(v, f"{prefix}{k}.")]]
    if isinstance(value, list) and value:
        return _keys(value[0], f"{prefix}[].")
    return []


def _sliding_video(image_path: Path, out: Path, frames: int) -> Path:
    """A short video panning across a sample image (deterministic)."""
    import cv2

    from dehrnet_cli.sinks.video_writer import VideoWriter

    image = cv2.imread(str(image_path))
    h, w = image.shape[:2]
    size = (w * 3 // 4 // 2 * 2, h * 3 // 4 // 2 * 2)
    with VideoWriter(out, 10.0, size) as writer:
        for t in range(frames):
            x = (w - size[0]) * t // max(frames - 1, 1)
            writer.write(image[: size[1], x: x + size[0]])
    return out


def main(out: Path) -> None:
    import torch
    from conftest import save_seeded_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    data = Path(os.environ.get("DEHRNET_TEST_DATA") or REPO.parent / "shared" / "data") / "coco_sample"
    with tempfile.TemporaryDirectory(prefix="dehrnet-snapshot-") as tmp_dir:
        tmp = Path(tmp_dir)
        env = {**os.environ, "DEHRNET_OFFLINE": "1", "YOLO_OFFLINE": "1", "DEHRNET_HOME": str(tmp / "home"),
               "YOLO_CONFIG_DIR": str(tmp / "yolo"), "OMP_NUM_THREADS": "1"}
        torch.manual_seed(0)  # calibrate_bn runs the network in train mode: DEM dropout draws from the global RNG
        ckpt = save_seeded_checkpoint(tmp / "tiny.pt")
        common = ["--weights", str(ckpt), "--backend", "torch", "--threads", "1", "--quiet"]
        _dehrnet("predict", str(data), *common, "--detector", "hog", "--json", str(tmp / "images.json"),
                 "--save-results", str(tmp / "images_results.json"), "--csv", str(tmp / "images.csv"), env=env)
        _dehrnet("predict", str(data), *common, "--detector", "none", "--ann", str(data / "test_coco.json"),
                 "--json", str(tmp / "images_ann.json"), env=env)
        video = _sliding_video(data / "000000000785.jpg", tmp / "walk.mp4", frames=12)
        _dehrnet("predict", str(video), *common, "--detector", "none", "--track", "--smooth",
                 "--json", str(tmp / "video.json"), "--csv", str(tmp / "video.csv"), env=env)
        _dehrnet("eval", "--coco", str(data), "--ann", str(data / "test_coco.json"), *common, "--gt-boxes",
                 "--report", str(tmp / "eval_report.json"), "--save-results", str(tmp / "eval_results.json"), env=env)
        _dehrnet("eval", "--coco-results", str(tmp / "images_results.json"), "--ann", str(data / "test_coco.json"),
                 "--report", str(tmp / "eval_file_report.json"), "--quiet", env=env)
        _dehrnet("train", "--synthetic", "16", "--config", "dehrnet_w8_128x96", "--batch", "4", "--epochs", "2",
                 "--device", "cpu", "--workers", "0", "--out", str(tmp / "run"), "--quiet", env=env)
        for name in ("images.json", "images_results.json", "images_ann.json", "video.json", "eval_report.json",
                     "eval_results.json", "eval_file_report.json"):
            doc = _scrub(json.loads((tmp / name).read_text()), str(tmp))
            (out / name).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        for name in ("images.csv", "video.csv"):
            (out / name).write_text((tmp / name).read_text())
        losses = sorted((tmp / "run").rglob("*.jsonl")) + sorted((tmp / "run").rglob("*.csv"))
        lines = [_scrub(json.loads(line), str(tmp)) for path in losses if path.suffix == ".jsonl"
                 for line in path.read_text().splitlines() if line.strip()]
        (out / "train_log.json").write_text(json.dumps(lines, indent=1, sort_keys=True) + "\n")
        if "--bench" in sys.argv:
            _dehrnet("bench", "--quick", "--json", str(tmp / "bench.json"), env=env)
            keys = sorted(set(_keys(json.loads((tmp / "bench.json").read_text()))))
            (out / "bench_keys.txt").write_text("\n".join(keys) + "\n")
    print(f"snapshot in {out}: {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
