"""Regenerate the bad-input table of docs/reliability.md from real runs of `python -m dehrnet_cli` (predict, and
eval and weights where a case needs them).

    python scripts/reliability_table.py [--doc docs/reliability.md]

Each case runs in a fresh copy of a temporary folder holding small inputs (images, videos, boxes and results
files, hostile pickles) with the tiny untrained model on CPU; the table records what dehrnet printed (the error or
warning lines), the exit code, which files the run left there (inputs excluded), and what a case checks in its
outputs (a marker file a hostile pickle would create, the size of a phone video's frames). A case run `twice` runs
two copies of the command at once (two downloads of one file from a slow local server). The table replaces the
text between the two `<!-- bad-input-table -->` markers of the document.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from dehrnet_cli.sinks.video_writer import VideoWriter
from models import create_model, save_checkpoint

MARKER = "<!-- bad-input-table -->"
TINY_MODEL = ["--model", "dehrnet_w8_128x96", "--untrained", "--no-flip", "--precision", "fp32"]
TINY = [*TINY_MODEL, "--detector", "none"]


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
    _safety_inputs(root)


class _Payload:
    """Unpickling this creates the file PAYLOAD_RAN in the working folder: what a hostile checkpoint would do
    instead (run any command)."""

    def __reduce__(self) -> tuple:
        return open, ("PAYLOAD_RAN", "w")


def _phone_video(path: Path) -> None:
    """A portrait phone video: 64x48 landscape frames stored, shown turned 90 degrees clockwise (48x64)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(-90)
        for n in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_image(n), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _coco_files(root: Path) -> None:
    """ann.json: one large person on image 1; results lists: its keypoints, with a NaN score, with a NaN keypoint."""
    names = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
             "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
             "left_ankle", "right_ankle"]
    keypoints = [v for n in range(17) for v in (100 + 10 * n, 50 + 20 * n, 2)]
    ann = {"images": [{"id": 1, "file_name": "000001.png", "width": 640, "height": 480}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": keypoints, "num_keypoints": 17,
                            "area": 120000.0, "bbox": [90, 40, 300, 400], "iscrowd": 0}],
           "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}
    (root / "ann.json").write_text(json.dumps(ann))
    good = {"image_id": 1, "category_id": 1, "keypoints": keypoints, "score": 1.0}
    (root / "res.json").write_text(json.dumps([good]))
    (root / "nan_score.json").write_text(json.dumps([good, {**good, "score": float("nan")}]))
    (root / "nan_kpt.json").write_text(json.dumps([{**good, "keypoints": [float("nan"), *keypoints[1:]]}]))


def _safety_inputs(root: Path) -> None:
    """Hostile pickles, a phone video, dead links, subfolders, a tiny checkpoint, COCO files, a file to download."""
    torch.save({"model": _Payload(), "train_args": {}}, root / "evil.pt")
    _phone_video(root / "phone.mp4")
    (root / "links").mkdir()
    cv2.imwrite(str(root / "links" / "real.png"), _image(1))
    (root / "links" / "dangling.jpg").symlink_to("nowhere.jpg")
    (root / "links" / "loop.png").symlink_to("loop.png")
    for sub in ("", "a", "b"):
        (root / "nested" / sub).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "nested" / sub / f"top{sub}.png"), _image(2))
    save_checkpoint(create_model("dehrnet_w8_128x96"), root / "tiny.pt")
    INPUT_SHAS["tiny.pt"] = _sha(root / "tiny.pt")
    _coco_files(root)
    (root / "served").mkdir()
    (root / "served" / "w.bin").write_bytes(np.random.default_rng(0).bytes(SERVED_BYTES))


INPUT_SHAS: dict[str, str] = {}  # sha256 prefixes of the inputs a case must not change, by relative path

SERVED_BYTES = 1_000_000  # sent in 20 KB chunks 0.05 s apart: 2.5 s, so that two downloads of it overlap
SERVED_SHA256 = hashlib.sha256(np.random.default_rng(0).bytes(SERVED_BYTES)).hexdigest()


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile) -> None:  # noqa: ANN001 (http.server's signature)
        while chunk := source.read(20_000):
            outputfile.write(chunk)
            time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def _slow_server(folder: Path) -> Iterator[str]:
    """A local HTTP server of `folder`, slow on purpose; yields its URL."""
    handler = functools.partial(_SlowHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass(frozen=True)
class Case:
    what: str  # the input, as the table shows it
    args: list[str]  # after `dehrnet COMMAND`; "{url}" is the slow local server
    tiny: bool = True  # add the tiny-model flags
    signal_when: Callable[[Path], bool] | None = None  # send SIGINT/SIGTERM once this holds
    signum: int = signal.SIGINT
    command: tuple[str, ...] = ("predict",)
    signal_after_s: float = 0.5  # how long after signal_when holds the signal is sent
    env: tuple[tuple[str, str | None], ...] = ()  # changes to the environment (None: unset)
    setup: Callable[[Path], None] | None = None  # prepares the case's folder
    check: Callable[[Path, str], str] | None = None  # (folder, stdout) -> what the outputs show
    twice: bool = False  # two runs of the command at once


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _unchanged(*names: str) -> Callable[[Path, str], str]:
    """A check: the named input files still hold what they held before the run."""
    def check(root: Path, stdout: str) -> str:
        changed = [name for name in names if _sha(root / name) != INPUT_SHAS[name]]
        return f"changed: {', '.join(changed)}" if changed else f"{', '.join(names)} unchanged"
    return check


def _coco_layout(root: Path) -> None:
    """coco/val2017/000001.png and the annotations eval finds by itself: coco/annotations/person_keypoints_val2017."""
    (root / "coco" / "val2017").mkdir(parents=True)
    (root / "coco" / "annotations").mkdir()
    shutil.copy(root / "images" / "000001.png", root / "coco" / "val2017" / "000001.png")
    shutil.copy(root / "ann.json", root / "coco" / "annotations" / "person_keypoints_val2017.json")
    INPUT_SHAS["coco/annotations/person_keypoints_val2017.json"] = _sha(root / "ann.json")


def _corpus_over_a_picture(root: Path) -> None:
    """X/b/p.png, and the user's own X/a/b/p.png where the annotated copy of X/b/p.png would go under OUT = X/a."""
    for rel, n in (("X/b/p.png", 1), ("X/a/b/p.png", 2)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), _image(n))
    INPUT_SHAS["X/a/b/p.png"] = _sha(root / "X/a/b/p.png")


def _mount_small_disk(root: Path) -> None:
    (root / "disk").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root / "disk")], check=True)
    rng = np.random.default_rng(0)
    for n in range(6):  # noisy 400x300 images: about 360 kB each annotated
        (root / "noisy").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "noisy" / f"{n + 1:06d}.png"), rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))


def _full_disk_outputs(root: Path, stdout: str) -> str:
    disk = root / "disk"
    kept = sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*") if p.is_file())
    frames = [len(json.loads((disk / "r.partial.json").read_text())["images"])] if "r.partial.json" in kept else []
    if "p.partial.csv" in kept:
        frames.append(len({line.split(",")[0] for line in (disk / "p.partial.csv").read_text().splitlines()[1:]}))
    frames.append(len(list((disk / "annotated").glob("*"))) if (disk / "annotated").is_dir() else 0)
    hidden = sum(1 for p in disk.rglob(".*") if ".partial-" in p.name)
    for path in kept:  # the listing below must not count what was on the small disk
        (disk / path).unlink()
    subprocess.run(["umount", str(disk)], check=False)
    return f"frames in each kept output: {frames}; hidden temp files: {hidden}"


def _manifest_rows(root: Path) -> int:
    path = root / "out" / "manifest.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _finished_items(root: Path, stdout: str) -> str:
    rows = [json.loads(line) for line in (root / "out" / "manifest.jsonl").read_text().splitlines() if line.strip()]
    done = [row for row in rows if row["status"] == "ok"]
    complete = sum((root / "out" / (Path(row["path"]).name + ".json")).is_file() for row in done)
    return f"manifest rows of finished items: {len(done)}, each with its complete JSON: {complete == len(done)}"


def _temps_swept_by_the_next_run(root: Path, stdout: str) -> str:
    def hidden() -> int:
        return sum(1 for p in root.glob(".*") if ".partial-" in p.name)

    after_kill = hidden()
    subprocess.run([sys.executable, "-m", "dehrnet_cli", "predict", "images", "--json", "r.json", *TINY],
                   cwd=root, capture_output=True, env={**os.environ, "DEHRNET_OFFLINE": "1"}, check=True)
    return f"hidden temp files: {after_kill} after the kill, {hidden()} after the next run writing there"


def _hidden(root: Path) -> bool:
    return any(".partial-" in p.name for p in root.rglob(".*"))


def _no_payload(root: Path, stdout: str) -> str:
    return "the payload ran (PAYLOAD_RAN exists)" if (root / "PAYLOAD_RAN").exists() else "the payload did not run"


def _plant_in_cache(root: Path) -> None:
    (root / ".home" / "weights").mkdir(parents=True)
    shutil.copy(root / "evil.pt", root / ".home" / "weights" / "yolo26n.pt")


def _displayed(root: Path, stdout: str) -> str:
    sizes = {(im["width"], im["height"]) for im in json.loads((root / "r.json").read_text())["images"]}
    with av.open(str(root / "annotated.mp4")) as container:
        frame = next(container.decode(video=0))
        tagged = any(sd.type == av.sidedata.sidedata.Type.DISPLAYMATRIX for sd in frame.side_data)
    return (f"JSON frames {', '.join(f'{w}x{h}' for w, h in sorted(sizes))}; annotated video {frame.width}x"
            f"{frame.height}, {'with' if tagged else 'no'} rotation tag")


def _table_cells(root: Path, stdout: str) -> str:
    row = next((line for line in stdout.splitlines() if "-1." in line), "")
    return f"stdout table row: `{' '.join(row.split())}`"


def _downloaded(root: Path, stdout: str) -> str:
    ok = (root / "w.bin").is_file() and hashlib.sha256((root / "w.bin").read_bytes()).hexdigest() == SERVED_SHA256
    return "w.bin complete and verified" if ok else "w.bin missing or wrong"


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
    Case("`--det-model evil.pt` (a pickle that creates a file when loaded)",
         ["images", "--det-model", "evil.pt", "--json", "r.json", *TINY_MODEL], tiny=False, check=_no_payload),
    Case("a hostile `./yolo26n.pt`, no `--det-model`", ["images", "--json", "r.json", *TINY_MODEL], tiny=False,
         setup=lambda root: shutil.copy(root / "evil.pt", root / "yolo26n.pt"), check=_no_payload),
    Case("a hostile `yolo26n.pt` in the weights cache, no `--det-model`", ["images", "--json", "r.json", *TINY_MODEL],
         tiny=False, setup=_plant_in_cache, check=_no_payload),
    Case("hostile `--weights evil.pt`", ["images", "--weights", "evil.pt", "--detector", "none", "--json", "r.json"],
         tiny=False, check=_no_payload),
    Case("phone video (stored 64x48, display rotation 90 degrees)", ["phone.mp4", "--out", "annotated.mp4", "--json",
                                                                     "r.json"], check=_displayed),
    Case("folder with a dangling and a looping symbolic link", ["links", "--json", "r.json"]),
    Case("folder with subfolders", ["nested", "--json", "r.json"]),
    Case("`--input-size 7x7`", ["images", "--weights", "tiny.pt", "--detector", "none", "--input-size", "7x7",
                                "--json", "r.json"], tiny=False),
    Case("`--threads 999`", ["images", "--threads", "999", "--json", "r.json"]),
    Case("`eval --coco-results` with a NaN score", ["--coco-results", "nan_score.json", "--ann", "ann.json"],
         tiny=False, command=("eval",)),
    Case("`eval --coco-results` with a NaN keypoint", ["--coco-results", "nan_kpt.json", "--ann", "ann.json"],
         tiny=False, command=("eval",)),
    Case("`eval` results table in a pipe (APm, ARm = -1)", ["--coco-results", "res.json", "--ann", "ann.json"],
         tiny=False, command=("eval",), env=(("COLUMNS", None),), check=_table_cells),
    Case("two `weights download` of one file at once", ["{url}/w.bin", "--sha256", SERVED_SHA256, "--out", "w.bin",
                                                        "--quiet"],
         tiny=False, command=("weights", "download"), env=(("DEHRNET_OFFLINE", None),), twice=True,
         check=_downloaded),
    Case("`--out ann --json ann/000001.png` (an output on another's planned image)",
         ["images", "--out", "ann", "--json", "ann/000001.png"]),
    Case("`export --weights tiny.pt --out tiny.pt`", ["--weights", "tiny.pt", "--out", "tiny.pt"], tiny=False,
         command=("export",), check=_unchanged("tiny.pt")),
    Case("`weights convert tiny.pt tiny.pt`", ["tiny.pt", "tiny.pt"], tiny=False, command=("weights", "convert"),
         check=_unchanged("tiny.pt")),
    Case("`eval --coco coco/val2017 --report` naming the annotation file eval finds by itself",
         ["--coco", "coco/val2017", "--gt-boxes", "--weights", "tiny.pt", "--report",
          "coco/annotations/person_keypoints_val2017.json"], tiny=False, command=("eval",), setup=_coco_layout,
         check=_unchanged("coco/annotations/person_keypoints_val2017.json")),
    Case("corpus `X --out-dir X/a --save-media`, the user's X/a/b/p.png where X/b/p.png's copy would go",
         ["X", "--out-dir", "X/a", "--save-media"], setup=_corpus_over_a_picture, check=_unchanged("X/a/b/p.png")),
    Case("corpus of x.pgm and x.png with `--save-media` (both annotated as x.png)",
         ["mixed", "--out-dir", "out", "--save-media"]),
    Case("corpus killed with SIGKILL mid-job", ["many", "--out-dir", "out"], signum=signal.SIGKILL,
         signal_when=lambda root: _manifest_rows(root) >= 5, signal_after_s=0.0, check=_finished_items),
    Case("two corpus jobs on one `--out-dir` at once", ["many", "--out-dir", "out"], twice=True),
    Case("disk full (a 1 MiB file system) under `--out`, `--json` and `--csv`",
         ["noisy", "--out", "disk/annotated", "--json", "disk/r.json", "--csv", "disk/p.csv"],
         setup=_mount_small_disk, check=_full_disk_outputs),
    Case("SIGKILL mid-folder (its CSV being written), then another run writing there", ["many", "--csv", "p.csv"],
         signum=signal.SIGKILL, signal_when=_hidden, signal_after_s=0.5, check=_temps_swept_by_the_next_run),
    Case("Ctrl-C (SIGINT) 0.25 s after the start (while dehrnet is imported)", ["walk.mp4", "--json", "r.json"],
         signal_when=lambda root: True, signal_after_s=0.25),
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
    lines += [line for line in stderr.splitlines() if "kept the partial" in line or "waiting for another" in line]
    text = " / ".join(lines) or "(no error or warning)"
    text = text.replace(str(root) + "/", "").replace(str(root), ".")
    return re.sub(r"\|", r"\\|", text)


def run_case(case: Case, root: Path, url: str) -> tuple[str, str, str, str]:
    """(what dehrnet said, the exit code(s), what it left on disk, what `case.check` saw) of one real run."""
    if case.setup is not None:
        case.setup(root)
    env = {**os.environ, "DEHRNET_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DEHRNET_HOME": str(root / ".home"),
           "COLUMNS": "200"}
    for key, value in case.env:
        env.pop(key) if value is None else env.update({key: value})
    args = [arg.replace("{url}", url) for arg in case.args]
    command = [sys.executable, "-m", "dehrnet_cli", *case.command, *args, *(TINY if case.tiny else [])]
    before = _files(root)
    procs = [subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2 if case.twice else 1)]
    if case.signal_when is not None:
        while procs[0].poll() is None and not case.signal_when(root):
            time.sleep(0.05)
        time.sleep(case.signal_after_s)
        procs[0].send_signal(case.signum)
    outputs = [proc.communicate(timeout=300) for proc in procs]
    checked = case.check(root, outputs[0][0]) if case.check is not None else ""
    after = {p for p in _files(root) if not p.startswith(".home/") and not p.startswith("served/")}
    said = " / ".join(_said(stderr, root) for _, stderr in outputs)
    codes = ", ".join(str(proc.returncode) for proc in procs)
    return said, codes, _left(before, after), checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "reliability.md")
    args = parser.parse_args()
    rows = ["| input | what dehrnet says | exit | left on disk | checked |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="dehrnet-bad-input-") as folder:
        base = Path(folder) / "inputs"
        base.mkdir()
        _inputs(base)
        with _slow_server(base / "served") as url:
            for n, case in enumerate(CASES):
                root = Path(folder) / f"case{n}"
                shutil.copytree(base, root, symlinks=True)
                said, code, left, checked = run_case(case, root, url)
                shutil.rmtree(root)
                rows.append(f"| {case.what} | {said} | {code} | {left} | {checked} |")
                print(rows[-1], flush=True)
    text = args.doc.read_text()
    head, _, rest = text.partition(MARKER)
    _, _, tail = rest.partition(MARKER)
    args.doc.write_text(f"{head}{MARKER}\n" + "\n".join(rows) + f"\n{MARKER}{tail}")


if __name__ == "__main__":
    main()
