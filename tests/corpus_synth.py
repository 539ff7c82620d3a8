"""A small corpus for the corpus-mode tests (test_corpus*.py), and helpers to read a job's outputs. Not a
test module itself.

The corpus: images in nested folders (one with a COCO-style numeric name), one corrupt image, one short
video, and what a listing must leave out (a hidden image, a text file). The checkpoint is the tiny
architecture with seeded weights of order one, saved with its config, so that every process that loads
it (the test, the local engine, each Ray actor) computes the same keypoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import save_seeded_checkpoint
from seeded_images import H, W, save_image, scene
from typer.testing import CliRunner, Result

from dehrnet_cli.cli.app import app
from dehrnet_cli.corpus.lock import HOLDER_NAME, LOCK_NAME
from dehrnet_cli.sinks.video_writer import VideoWriter

TINY_NAME = "dehrnet_w8_128x96"
VIDEO_FRAMES = 12
IMAGES = {"top.png": 1, "a/000007.png": 2, "a/b/person.jpg": 3, "a/b/c/deep.png": 4}
BROKEN = "a/broken.jpg"
VIDEO = "clips/walk.mp4"
GOOD = [*IMAGES, VIDEO]
ITEMS = sorted([*GOOD, BROKEN])
# fp32: equal on AVX2 and AVX512-BF16 machines alike; torch: --backend auto would weigh each job (a corpus is long:
# ONNX Runtime; one item is short: torch), and the two backends agree only to float rounding
MODEL_FLAGS = ["--detector", "none", "--precision", "fp32", "--backend", "torch"]


def write_video(path: Path, num_frames: int, seed: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 10.0, (W, H)) as writer:
        for i in range(num_frames):
            writer.write(scene(seed + i))
    return path


def build_corpus(root: Path, video_frames: int = VIDEO_FRAMES) -> Path:
    """The test corpus under `root` (see the module docstring); returns `root`."""
    for rel, seed in IMAGES.items():
        save_image(root / rel, scene(seed, W + 4 * seed, H + 2 * seed))
    (root / BROKEN).write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    write_video(root / VIDEO, video_frames)
    save_image(root / "a" / ".hidden.png", scene(9))
    (root / "a" / "notes.txt").write_text("not an item\n")
    return root


def save_tiny_checkpoint(path: Path) -> Path:
    return save_seeded_checkpoint(path, TINY_NAME, upsample="nearest", stage_modules=(1, 1, 1), num_blocks=1)


def dehrnet(*args: object) -> Result:
    """`dehrnet ARGS` in-process (typer's CliRunner keeps stdout and stderr apart)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def predict_corpus(corpus: Path | str, out_dir: Path, checkpoint: Path, *flags: object) -> Result:
    return dehrnet("predict", corpus, "--weights", checkpoint, *MODEL_FLAGS, "--out-dir", out_dir, *flags)


def single_item_json(item: Path | str, checkpoint: Path, json_path: Path, *flags: object) -> bytes:
    """What plain `dehrnet predict ITEM --json` writes for one item."""
    result = dehrnet("predict", item, "--weights", checkpoint, *MODEL_FLAGS, "--json", json_path, "--quiet", *flags)
    assert result.exit_code == 0, result.output
    return json_path.read_bytes()


def json_outputs(out_dir: Path) -> dict[str, bytes]:
    """rel -> the bytes of OUT/<rel>.json, for every item output under `out_dir`."""
    return {p.relative_to(out_dir).as_posix().removesuffix(".json"): p.read_bytes()
            for p in sorted(out_dir.rglob("*.json")) if not p.name.startswith(".")}


def manifest_rows(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "manifest.jsonl").read_text().splitlines()]


def rows_by_rel(out_dir: Path, corpus: Path) -> dict[str, dict]:
    """Manifest rows by the item's path relative to the corpus."""
    return {Path(row["path"]).relative_to(corpus).as_posix(): row for row in manifest_rows(out_dir)}


def file_identities(folder: Path) -> dict[str, tuple[int, int]]:
    """rel -> (inode, mtime_ns) of every file under `folder` but OUT's lock: an atomic rewrite changes the inode."""
    return {p.relative_to(folder).as_posix(): (os.stat(p).st_ino, os.stat(p).st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in (LOCK_NAME, HOLDER_NAME)}


def temp_leftovers(folder: Path) -> list[Path]:
    """Hidden `.NAME.partial-XXXX.ext` temp files of atomic writes left in a folder tree."""
    return [p for p in folder.rglob(".*") if ".partial-" in p.name]
