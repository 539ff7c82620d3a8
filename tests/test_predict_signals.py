"""A real `python -m dehrnet_cli predict` process sent SIGINT (Ctrl-C) or SIGTERM (`timeout`, schedulers,
`docker stop`) mid-video and mid-folder (issue 14): it exits 130 / 143 with one error line, every output is kept
as a valid NAME.partial.* holding the same frames (the video plays, the JSON files parse, the CSV reads), earlier
files under the final names are untouched, and no hidden temp file is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from dehrnet_cli.sinks.keypoints_csv import read_pose_csv
from dehrnet_cli.sinks.video_writer import VideoWriter

TINY = ["--model", "dehrnet_w8_128x96", "--untrained", "--no-flip", "--precision", "fp32", "--detector", "none"]
W, H = 64, 48
FRAMES = 3000  # far more than a run gets through before the signal: the signal always lands mid-run
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _scene(n: int) -> np.ndarray:
    image = np.full((H, W, 3), 60 + n % 150, np.uint8)
    cv2.circle(image, (W // 2 + n % 9, H // 2), 12, (200, 120, 40), -1)
    return image


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "long.mp4"
    with VideoWriter(path, 25.0, (W, H)) as writer:
        for n in range(FRAMES):
            writer.write(_scene(n))
    return path


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("folder") / "images"
    folder.mkdir()
    for n in range(400):
        cv2.imwrite(str(folder / f"{n + 1:06d}.png"), _scene(n))
    return folder


def _hidden_temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".partial-" in p.name]


def _run_and_signal(args: list[str], out: Path, started: callable, signum: int) -> subprocess.CompletedProcess:
    """Start predict with `args`, wait until `started()` (frames are being written), send `signum`, wait."""
    env = {**os.environ, "DEHRNET_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DEHRNET_HOME": str(out / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "dehrnet_cli", "predict", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not started() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"predict ended before the signal: {proc.communicate()}"
    time.sleep(0.5)  # a few more frames
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _one_error_line(done: subprocess.CompletedProcess, signum: int) -> None:
    assert done.returncode == EXIT_CODES[signum], done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dehrnet: error:")]
    assert errors == ["dehrnet: error: interrupted" if signum == signal.SIGINT else
                      "dehrnet: error: terminated (SIGTERM)"], done.stderr
    assert "Traceback" not in done.stderr


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_video_keeps_every_output_as_a_valid_partial(tmp_path: Path, long_video: Path,
                                                                  signum: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "annotated.mp4").write_bytes(b"an earlier video")  # an earlier run's output stays as it was
    args = [str(long_video), *TINY, "--out", str(out / "annotated.mp4"), "--json", str(out / "r.json"),
            "--save-results", str(out / "res.json"), "--csv", str(out / "p.csv")]
    done = _run_and_signal(args, out, lambda: bool(_hidden_temps(out)), signum)
    _one_error_line(done, signum)
    assert (out / "annotated.mp4").read_bytes() == b"an earlier video"
    assert not (out / "r.json").exists() and not (out / "res.json").exists() and not (out / "p.csv").exists()
    frames = _decoded_frames(out / "annotated.partial.mp4")  # finalised: it plays
    assert 0 < frames < FRAMES
    doc = json.loads((out / "r.partial.json").read_text())
    assert [im["id"] for im in doc["images"]] == list(range(1, frames + 1))
    assert len(doc["annotations"]) == frames  # one whole-image person per frame
    assert {r["image_id"] for r in json.loads((out / "res.partial.json").read_text())} == set(range(1, frames + 1))
    assert sorted(set(read_pose_csv(out / "p.partial.csv")["frame"].tolist())) == list(range(frames))
    for name in ("annotated.partial.mp4", "r.partial.json", "res.partial.json", "p.partial.csv"):
        assert name in done.stderr  # the message lists every partial output
    assert _hidden_temps(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_folder_keeps_the_images_done_and_partial_files(tmp_path: Path, big_folder: Path,
                                                                     signum: int) -> None:
    out = tmp_path / "out"
    annotated = out / "annotated"
    args = [str(big_folder), *TINY, "--out", str(annotated), "--json", str(out / "r.json"),
            "--save-results", str(out / "res.json"), "--csv", str(out / "p.csv")]
    done = _run_and_signal(args, out, lambda: annotated.is_dir() and any(annotated.glob("*.png")), signum)
    _one_error_line(done, signum)
    written = sorted(p.name for p in annotated.iterdir())
    assert 0 < len(written) < 400
    for name in written:  # each annotated copy is a whole image
        assert cv2.imread(str(annotated / name)).shape == (H, W, 3), name
    doc = json.loads((out / "r.partial.json").read_text())
    assert sorted(im["file_name"] for im in doc["images"]) == written
    assert {r["image_id"] for r in json.loads((out / "res.partial.json").read_text())} == {
        int(name[:-4]) for name in written}
    assert len(set(read_pose_csv(out / "p.partial.csv")["frame"].tolist())) == len(written)
    assert not (out / "r.json").exists()
    assert _hidden_temps(tmp_path) == []
