"""What a predict run leaves when writing fails or the process dies: a full disk gives one line naming the file
and the cause (exit 1, not an "internal error"), partial outputs that all hold the same frames and no temp file;
a run killed with SIGKILL leaves temp files that the next run in that folder removes; an output that would
replace another output's planned per-frame file is refused before any work."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from seeded_images import save_image, scene
from test_cli_predict import TINY, error_line, only_error, predict, temp_leftovers

from dehrnet_cli.sinks import atomic
from dehrnet_cli.sinks.keypoints_csv import read_pose_csv

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NO_DETECTOR = ["--detector", "none"]


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for n in range(1, 7):
        save_image(tmp_path / "images" / f"{n:06d}.png", scene(n))
    return tmp_path / "images"


def _check_full_disk_run(result, out: Path, frames_done: int, json_path: Path, csv_path: Path) -> None:
    """One line naming the file and the cause, exit 1; the kept partial outputs hold the same frames."""
    line = error_line(result, 1, "no space left on the device")
    assert "internal error" not in line and "Traceback" not in result.output
    assert not json_path.exists() and not csv_path.exists()
    doc = json.loads(json_path.with_name(json_path.stem + ".partial.json").read_text())
    table = read_pose_csv(csv_path.with_name(csv_path.stem + ".partial.csv"))
    frames = sorted({im["id"] for im in doc["images"]})
    assert len(frames) == frames_done
    assert sorted(set(table["frame"].tolist())) == [i - 1 for i in frames]
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}.png" for i in frames]
    assert temp_leftovers(out.parent) == []


def test_a_full_disk_names_the_file_and_keeps_the_same_frames_in_every_output(
        tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third annotated image hits ENOSPC: the JSON and CSV partials hold the two frames the images do."""
    real = atomic.StagedFile.write_bytes

    def filling(self, data: bytes) -> None:
        if self.final.name == "000003.png":
            self.discard()
            raise atomic.write_error(self.what, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        real(self, data)

    monkeypatch.setattr(atomic.StagedFile, "write_bytes", filling)
    out, json_path, csv_path = tmp_path / "ann", tmp_path / "r.json", tmp_path / "p.csv"
    result = predict(images, *TINY, *NO_DETECTOR, "--out", out, "--json", json_path, "--csv", csv_path)
    _check_full_disk_run(result, out, 2, json_path, csv_path)
    assert str(out / "000003.png") in result.stderr


def _small_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_a_really_full_disk_too(tmp_path: Path) -> None:
    """The same on a real 1 MiB file system (where this process may mount one: root with CAP_SYS_ADMIN), with
    noisy 400x300 images whose annotated copies take about 360 kB each."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    for n in range(1, 7):
        save_image(images / f"{n:06d}.png", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    disk = tmp_path / "disk"
    if not _small_tmpfs(disk, "1m"):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        out, json_path, csv_path = disk / "ann", disk / "r.json", disk / "p.csv"
        result = predict(images, *TINY, *NO_DETECTOR, "--out", out, "--json", json_path, "--csv", csv_path)
        assert result.exit_code == 1, result.output
        line = error_line(result, 1, "no space left on the device")
        assert "internal error" not in line
        kept = {p.name for p in disk.iterdir()}
        assert temp_leftovers(disk) == [] and not {"r.json", "p.csv"} & kept
        counts = []  # every partial output that could be kept holds the same frames
        if "r.partial.json" in kept:
            counts.append(len(json.loads((disk / "r.partial.json").read_text())["images"]))
        if "p.partial.csv" in kept:
            counts.append(len(set(read_pose_csv(disk / "p.partial.csv")["frame"].tolist())))
        if out.exists():
            counts.append(len(list(out.iterdir())))
        assert len(set(counts)) <= 1, counts
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_temp_files_of_a_killed_run_are_removed_by_the_next_run_there(tmp_path: Path, images: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    template = atomic.temp_path_for(tmp_path / "r.json").name  # this machine's tag, this process's PID
    host = template.split(".partial-")[1].split("-")[0]
    orphan = tmp_path / f".r.partial-{host}-{dead.pid}-0badc0de.json"
    alive = tmp_path / f".r.partial-{host}-{os.getpid()}-0badc0de.json"  # a writer still at work: left alone
    for path in (orphan, alive):
        path.write_text("{")
    atomic._swept_folders.clear()  # as in a new process
    assert predict(images, *TINY, *NO_DETECTOR, "--json", tmp_path / "r.json").exit_code == 0
    assert not orphan.exists() and alive.exists()


def test_an_output_on_another_output_s_planned_image_is_refused(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "ann"
    clash = out / "000002.png"
    result = predict(images, *TINY, *NO_DETECTOR, "--out", out, "--json", clash)
    only_error(result, 2, f"--json {clash}", f"--out {out}", "same path")
    assert not out.exists()


def test_the_plan_of_a_folder_holding_a_link_loop_runs(tmp_path: Path, images: Path) -> None:
    """Checking the outputs against every source file resolves each path: a link that loops must not end the run
    (the source skips it with a warning)."""
    (images / "loop.png").symlink_to("loop.png")
    result = predict(images, *TINY, *NO_DETECTOR, "--json", tmp_path / "r.json", "--out", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    assert "symbolic link loop" in result.stderr and len(json.loads((tmp_path / "r.json").read_text())["images"]) == 6
