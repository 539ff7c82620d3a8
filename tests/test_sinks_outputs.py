"""Where predict's outputs go (issue 14): annotated copies mirror the sources' folders and never collide, one
image writes one file, every output location is checked before any work, two outputs never share a path,
a folder of unreadable files writes nothing, and an interrupted image run keeps its partial COCO files.

Runs through the CLI in-process (typer's CliRunner) with the tiny untrained model, like test_cli_predict.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import pytest
from seeded_images import save_image, scene
from test_cli_predict import (
    TINY,
    _fail_at_frame,
    error_line,
    only_error,
    predict,
    temp_leftovers,
)

from dehrnet_cli.sinks.plan import RunPlan
from dehrnet_cli.sources.images import relative_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NO_DETECTOR = ["--detector", "none"]


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    """Two small images with COCO-style numeric names (image ids 1 and 2)."""
    save_image(tmp_path / "images" / "000001.png", scene(1))
    save_image(tmp_path / "images" / "000002.png", scene(2, 50, 70))
    return tmp_path / "images"


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """shots/a/bus.png, shots/b/bus.png and shots/b/deep/car.png: two images with one file name."""
    shots = tmp_path / "shots"
    save_image(shots / "a" / "bus.png", scene(1))
    save_image(shots / "b" / "bus.png", scene(2, 50, 70))
    save_image(shots / "b" / "deep" / "car.png", scene(3))
    return shots


def test_relative_names_keep_the_folders_below_the_common_one(tmp_path: Path) -> None:
    paths = [tmp_path / "x" / "a" / "bus.jpg", tmp_path / "x" / "b" / "bus.jpg", tmp_path / "x" / "b" / "c.png"]
    assert relative_names(paths) == ["a/bus.jpg", "b/bus.jpg", "b/c.png"]
    assert relative_names([tmp_path / "one.jpg"]) == ["one.jpg"]
    assert relative_names([tmp_path / "f" / "1.jpg", tmp_path / "f" / "2.jpg"]) == ["1.jpg", "2.jpg"]


@pytest.mark.parametrize("kind", ["glob", "list"])
def test_nested_sources_mirror_their_folders_under_out_and_in_file_name(tmp_path: Path, nested: Path,
                                                                        kind: str) -> None:
    if kind == "glob":
        source = str(nested / "**" / "*.png")
    else:
        source = tmp_path / "images.txt"
        source.write_text("shots/a/bus.png\nshots/b/bus.png\n# a comment\nshots/b/deep/car.png\n")
    out, json_path, crops = tmp_path / "annotated", tmp_path / "r.json", tmp_path / "crops"
    result = predict(source, *TINY, *NO_DETECTOR, "--out", out, "--json", json_path, "--save-crops", crops)
    assert result.exit_code == 0, result.output
    names = ["a/bus.png", "b/bus.png", "b/deep/car.png"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == names
    assert cv2.imread(str(out / "b" / "bus.png")).shape == (70, 50, 3)  # b's copy, not a's written twice
    assert [im["file_name"] for im in json.loads(json_path.read_text())["images"]] == names
    assert sorted(p.relative_to(crops).as_posix() for p in crops.rglob("*.jpg")) == [
        "a/bus_p0.jpg", "b/bus_p0.jpg", "b/deep/car_p0.jpg"]
    assert temp_leftovers(tmp_path) == []


def test_two_images_with_one_annotated_name_are_refused_with_both_paths(tmp_path: Path,
                                                                        model_loads: list[str]) -> None:
    folder = tmp_path / "mixed"
    save_image(folder / "x.png", scene(1))
    cv2.imwrite(str(folder / "x.pgm"), cv2.cvtColor(scene(2), cv2.COLOR_BGR2GRAY))  # annotated as x.png too
    out = tmp_path / "annotated"
    result = predict(folder, *TINY, *NO_DETECTOR, "--out", out, "--json", tmp_path / "r.json")
    only_error(result, 2, "--out", str(folder / "x.pgm"), str(folder / "x.png"), "both be written")
    assert model_loads == []
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_a_list_naming_one_image_twice_is_refused(tmp_path: Path, model_loads: list[str]) -> None:
    save_image(tmp_path / "a" / "bus.png", scene(1))
    listing = tmp_path / "list.txt"
    listing.write_text("a/bus.png\n./a/bus.png\n")
    result = predict(listing, *TINY, *NO_DETECTOR, "--json", tmp_path / "r.json")
    only_error(result, 2, str(listing), "lines 1 and 2")
    assert model_loads == []


def test_one_image_with_an_image_out_writes_that_file(tmp_path: Path) -> None:
    image = save_image(tmp_path / "bus.png", scene(1))
    out = tmp_path / "result.jpg"
    result = predict(image, *TINY, *NO_DETECTOR, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and cv2.imread(str(out)).shape == (48, 64, 3)
    assert f"wrote {out}" in result.stdout
    result = predict(image, *TINY, *NO_DETECTOR, "--out", image)
    only_error(result, 2, str(image), "which this run reads")


def test_a_folder_source_with_an_image_file_out_is_refused(tmp_path: Path, images_dir: Path,
                                                           model_loads: list[str]) -> None:
    out = tmp_path / "result.jpg"
    result = predict(images_dir, *TINY, *NO_DETECTOR, "--out", out)
    only_error(result, 2, f"--out {out}", "2 images", "folder")
    assert model_loads == [] and not out.exists()


def _blocked_parent(tmp_path: Path) -> Path:
    """A path whose parent is a file: no folder can be created there."""
    (tmp_path / "a_file").write_text("not a folder")
    return tmp_path / "a_file" / "sub"


@pytest.mark.parametrize("flag", ["--json", "--save-results", "--csv", "--out", "--save-crops"])
def test_an_output_under_a_file_fails_before_any_work(tmp_path: Path, images_dir: Path, model_loads: list[str],
                                                      flag: str) -> None:
    target = _blocked_parent(tmp_path) / ("poses.csv" if flag == "--csv" else "poses.json" if flag in (
        "--json", "--save-results") else "annotated")
    result = predict(images_dir, *TINY, *NO_DETECTOR, flag, target)
    only_error(result, 2, f"{flag} {target}", "is a file")
    assert model_loads == []


def test_csv_naming_a_folder_fails_before_any_work(tmp_path: Path, images_dir: Path,
                                                   model_loads: list[str]) -> None:
    folder = tmp_path / "poses.csv"
    folder.mkdir()
    only_error(predict(images_dir, *TINY, *NO_DETECTOR, "--csv", folder), 2, f"--csv {folder}", "is a folder")
    assert model_loads == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_fails_before_any_work(tmp_path: Path, images_dir: Path, model_loads: list[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for flag, target in (("--json", locked / "r.json"), ("--out", locked), ("--csv", locked / "deep" / "p.csv")):
            only_error(predict(images_dir, *TINY, *NO_DETECTOR, flag, target), 2, f"{flag} {target}", "cannot write")
    finally:
        locked.chmod(0o755)
    assert model_loads == [] and list(locked.iterdir()) == []


def _sysfs_refuses_files() -> bool:
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return False
    except OSError:
        return Path("/sys").is_dir()


@pytest.mark.skipif(not _sysfs_refuses_files(), reason="needs /sys, which even root cannot create files in")
def test_an_unwritable_folder_fails_before_any_work_even_for_root(tmp_path: Path, images_dir: Path,
                                                                  model_loads: list[str]) -> None:
    """sysfs refuses new files to everyone: the check really tries to write, it does not read mode bits."""
    target = Path("/sys/dehrnet-test-output.json")
    only_error(predict(images_dir, *TINY, *NO_DETECTOR, "--json", target), 2, f"--json {target}", "cannot write")
    assert model_loads == []


@pytest.mark.parametrize(("first", "second"), [("--json", "--csv"), ("--json", "--save-results"),
                                               ("--save-results", "--json")])
def test_two_outputs_naming_one_file_are_refused(tmp_path: Path, images_dir: Path, model_loads: list[str],
                                                first: str, second: str) -> None:
    same = tmp_path / "same.csv"
    result = predict(images_dir, *TINY, *NO_DETECTOR, first, same, second, tmp_path / "." / "same.csv")
    only_error(result, 2, first, second, "same path")
    assert model_loads == [] and not same.exists()


def test_an_output_naming_an_input_is_refused(tmp_path: Path, images_dir: Path, model_loads: list[str]) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text("[]")
    only_error(predict(images_dir, *TINY, "--boxes", dets, "--json", dets), 2, f"--json {dets}", "--boxes")
    assert dets.read_text() == "[]" and model_loads == []


def test_the_run_plan_accepts_separate_outputs(tmp_path: Path) -> None:
    plan = RunPlan()
    plan.read("--boxes", tmp_path / "dets.json")
    plan.write("--json", tmp_path / "new" / "r.json")
    plan.write("--out", tmp_path / "new", folder=True, files=[tmp_path / "new" / "a.png"])
    plan.write("--csv", tmp_path / "p.csv")
    plan.check()
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_a_folder_of_unreadable_files_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a jpeg" * 10)
    (folder / "b.png").write_bytes(b"")
    out, json_path = tmp_path / "annotated", tmp_path / "r.json"
    result = predict(folder, *TINY, *NO_DETECTOR, "--out", out, "--json", json_path, "--csv", tmp_path / "p.csv")
    error_line(result, 2, f"no readable images in {folder} (2 skipped)")
    assert "wrote" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]  # no folder, no JSON, no CSV, no temp file


def test_ctrl_c_mid_folder_keeps_partial_coco_files_of_the_images_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       ) -> None:
    folder = tmp_path / "images"
    for n in range(1, 13):
        save_image(folder / f"{n:06d}.png", scene(n))
    done = _fail_at_frame(monkeypatch, 8, KeyboardInterrupt())
    out, json_path, results_path = tmp_path / "ann", tmp_path / "r.json", tmp_path / "res.json"
    result = predict(folder, *TINY, *NO_DETECTOR, "--out", out, "--json", json_path, "--save-results", results_path)
    error_line(result, 130, "interrupted")
    assert done == list(range(8))  # four frames per batch: the batch holding frame 8 never ran
    assert not json_path.exists() and not results_path.exists()
    doc = json.loads((tmp_path / "r.partial.json").read_text())
    assert [im["id"] for im in doc["images"]] == [n + 1 for n in done]
    assert {r["image_id"] for r in json.loads((tmp_path / "res.partial.json").read_text())} == {n + 1 for n in done}
    assert sorted(p.name for p in out.iterdir()) == [f"{n + 1:06d}.png" for n in done]
    for kept in ("r.partial.json", "res.partial.json", str(out)):
        assert kept in result.stderr  # the message lists every partial output
    assert temp_leftovers(tmp_path) == []
