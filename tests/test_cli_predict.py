"""`dehrnet predict` on bad input and faults (issue 4): exit codes, one-line errors, odd images and
boxes, outputs created or left intact, Ctrl-C mid-video, torch vs onnx, and one run of the real script.

Everything runs on CPU with the tiny `dehrnet_w8_128x96` architecture and detectors that need no
download (`--detector none`, `--boxes FILE`, `--detector hog`). typer's CliRunner (0.29) keeps
stdout and stderr apart, so `result.stderr` is what a user sees on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from cli_errors import ERROR_PREFIX, error_line, only_error  # noqa: F401 (the sink tests import them here)
from conftest import calibrate_bn, randomize
from PIL import Image
from seeded_images import H, W, save_image, scene
from typer.testing import CliRunner, Result

from dehrnet_cli import __version__
from dehrnet_cli.cli.app import app
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.sinks.keypoints_csv import read_pose_csv
from dehrnet_cli.sinks.video_writer import VideoWriter
from dehrnet_cli.stage_data import Frame, Poses
from models import create_model, load_model
from models.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_NAME = "dehrnet_w8_128x96"
TINY = ["--model", TINY_NAME, "--untrained", "--no-flip"]  # the flip test is off where it does not matter
VIDEO_FRAMES = 20


# ------------------------------------------------------------------------------------ helpers


def predict(*args: object, env: dict[str, str] | None = None) -> Result:
    """Run `dehrnet predict ARGS` in-process; typer's CliRunner keeps stdout and stderr apart."""
    return CliRunner().invoke(app, ["predict", *map(str, args)], env=env)


def write_video(path: Path, num_frames: int = VIDEO_FRAMES, fps: float = 10.0) -> Path:
    with VideoWriter(path, fps, (W, H)) as writer:
        for i in range(num_frames):
            writer.write(scene(i))
    return path


def decoded_frames(path: Path) -> int:
    """How many frames PyAV decodes from a video file (fails on a corrupt file)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def boxes_file(path: Path, boxes_by_image: dict[int, list[list[float]]]) -> Path:
    """A COCO detections list: image id -> boxes [x, y, w, h]."""
    entries = [{"image_id": image_id, "category_id": 1, "bbox": box, "score": 0.9}
               for image_id, boxes in boxes_by_image.items() for box in boxes]
    path.write_text(json.dumps(entries))
    return path


def annotations_by_file(doc: dict) -> dict[str, list[dict]]:
    """file_name -> its annotations, from a COCO-format document."""
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    out: dict[str, list[dict]] = {name: [] for name in names.values()}
    for ann in doc["annotations"]:
        out[names[ann["image_id"]]].append(ann)
    return out


def keypoints_xy(ann: dict) -> np.ndarray:
    return np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)[:, :2]


def temp_leftovers(folder: Path) -> list[Path]:
    """Hidden `.NAME.partial-XXXX.ext` temp files of atomic writes left in a folder tree."""
    return [p for p in folder.rglob(".*") if ".partial-" in p.name]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dehrnet checkpoint of the tiny architecture with weights of order one (seeded): the same
    keypoints on every load, and heatmaps with clear maxima. One module per stage, one block per
    branch and nearest-neighbour fuse upsampling keep its ONNX export quick (0.5 s instead of 4 s;
    test_export.py covers DySample's); the checkpoint carries this config."""
    torch.manual_seed(0)
    model = create_model(TINY_NAME, upsample="nearest", stage_modules=(1, 1, 1), num_blocks=1)
    model = calibrate_bn(randomize(model, seed=0), (128, 96))
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    """Two small images with COCO-style numeric names (image ids 1 and 2)."""
    folder = tmp_path / "images"
    save_image(folder / "000001.png", scene(1))
    save_image(folder / "000002.png", scene(2, 50, 70))
    return folder


# ------------------------------------------------------------------------------- bad sources


def test_missing_path_fails_before_any_model_loads(tmp_path: Path, model_loads: list[str]) -> None:
    missing = tmp_path / "nowhere" / "photo.jpg"
    result = predict(missing, *TINY, "--detector", "none", "--json", tmp_path / "r.json")
    only_error(result, 2, str(missing), "no such file")
    assert model_loads == []
    assert not (tmp_path / "r.json").exists()


def test_empty_folder(tmp_path: Path, model_loads: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    result = predict(empty, *TINY, "--detector", "none", "--json", tmp_path / "r.json")
    only_error(result, 2, str(empty), "no images")
    assert model_loads == []


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8],
                         ids=["empty", "garbage"])
def test_unreadable_video(tmp_path: Path, content: bytes, model_loads: list[str]) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(content)
    result = predict(video, *TINY, "--detector", "none", "--out", tmp_path / "out.mp4")
    only_error(result, 2, str(video), "cannot read the video")
    assert model_loads == []
    assert not (tmp_path / "out.mp4").exists()


def test_corrupt_images_in_folder_are_skipped_and_listed(tmp_path: Path, images_dir: Path) -> None:
    garbage = images_dir / "000003.jpg"
    garbage.write_bytes(b"not a jpeg at all" * 10)
    empty = images_dir / "000004.png"
    empty.write_bytes(b"")
    json_path = tmp_path / "r.json"
    result = predict(images_dir, *TINY, "--detector", "none", "--json", json_path, "--out", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for path in (garbage, empty):
        assert f"dehrnet: warning: skipping {path}" in result.stderr  # when it happens
        assert result.stderr.count(str(path)) == 1  # and only then (issue 14: each skipped file reported once)
    assert "skipped 2 unreadable file(s)" in result.stderr
    doc = json.loads(json_path.read_text())
    assert [im["file_name"] for im in doc["images"]] == ["000001.png", "000002.png"]
    assert [im["id"] for im in doc["images"]] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["000001.png", "000002.png"]


# ------------------------------------------------------------------------- odd images and boxes


def test_image_without_people_is_listed_without_annotations(tmp_path: Path, images_dir: Path) -> None:
    boxes = boxes_file(tmp_path / "dets.json", {1: [[10, 5, 30, 40]]})  # nothing for image 2
    json_path = tmp_path / "r.json"
    result = predict(images_dir, *TINY, "--boxes", boxes, "--json", json_path, "--out", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    doc = json.loads(json_path.read_text())
    assert [(im["id"], im["width"], im["height"]) for im in doc["images"]] == [(1, W, H), (2, 50, 70)]
    assert [ann["image_id"] for ann in doc["annotations"]] == [1]
    assert (tmp_path / "ann" / "000002.png").is_file()  # its annotated copy is still written


def _odd_images(folder: Path) -> dict[str, str]:
    """Write images of unusual formats beside 8-bit BGR files with the pixels OpenCV should decode
    them to; returns {odd file: its reference file}."""
    rng = np.random.default_rng(7)
    base = scene(3)
    gray = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)
    pairs: dict[str, str] = {}

    save_image(folder / "gray8.png", gray)
    save_image(folder / "gray8_ref.png", cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    pairs["gray8.png"] = "gray8_ref.png"

    deep = rng.integers(0, 65536, (H, W, 3), dtype=np.uint16)  # not a multiple of 257: catches a bad cast
    save_image(folder / "bgr16.png", deep)
    save_image(folder / "bgr16_ref.png", ((deep.astype(np.uint32) + 128) // 257).astype(np.uint8))
    pairs["bgr16.png"] = "bgr16_ref.png"

    gray_deep = deep[:, :, 1]
    save_image(folder / "gray16.png", gray_deep)
    gray_ref = ((gray_deep.astype(np.uint32) + 128) // 257).astype(np.uint8)
    save_image(folder / "gray16_ref.png", cv2.cvtColor(gray_ref, cv2.COLOR_GRAY2BGR))
    pairs["gray16.png"] = "gray16_ref.png"

    alpha = rng.integers(0, 256, (H, W, 1), dtype=np.uint8)  # alpha is dropped, not composited
    save_image(folder / "bgra.png", np.concatenate([base, alpha], axis=2))
    save_image(folder / "bgra_ref.png", base)
    pairs["bgra.png"] = "bgra_ref.png"

    Image.fromarray(np.concatenate([gray[:, :, None], alpha], axis=2), "LA").save(folder / "gray_alpha.png")
    pairs["gray_alpha.png"] = "gray8_ref.png"

    Image.fromarray(base[:, :, ::-1]).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    return pairs


def test_grayscale_16bit_alpha_and_cmyk_images(tmp_path: Path, tiny_checkpoint: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    pairs = _odd_images(folder)
    assert Image.open(folder / "cmyk.jpg").mode == "CMYK"
    json_path = tmp_path / "r.json"
    result = predict(folder, "--weights", tiny_checkpoint, "--no-flip", "--detector", "none", "--json", json_path,
                     "--out", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    assert "skipped" not in result.stderr
    doc = json.loads(json_path.read_text())
    assert all((im["width"], im["height"]) == (W, H) for im in doc["images"])
    by_file = annotations_by_file(doc)
    assert set(by_file) == {p.name for p in folder.iterdir()}
    assert all(len(anns) == 1 for anns in by_file.values())
    for odd, ref in pairs.items():  # decoded as the reference pixels -> the same keypoints
        np.testing.assert_allclose(keypoints_xy(by_file[odd][0]), keypoints_xy(by_file[ref][0]), atol=1e-3,
                                   err_msg=odd)
    assert np.isfinite(keypoints_xy(by_file["cmyk.jpg"][0])).all()
    for name in by_file:  # annotated copies are 8-bit BGR of the same size
        copy = cv2.imread(str(tmp_path / "ann" / name), cv2.IMREAD_UNCHANGED)
        assert copy.shape == (H, W, 3) and copy.dtype == np.uint8, name


@pytest.mark.parametrize(("flags", "exif"), [([], True), (["--no-exif"], False), (["--exif"], True),
                                              (["--ann", "ANN"], False), (["--ann", "ANN", "--exif"], True)])
def test_images_are_read_as_shown_unless_scored_against_annotations(tmp_path: Path, flags: list[str],
                                                                    exif: bool) -> None:
    """Predict reads images as the user sees them (EXIF orientation applied), but as stored where the results are
    scored against annotations made on the stored pixels (--ann, --boxes: COCO and HRNet use the stored pixels);
    --exif / --no-exif decide by hand."""
    folder = tmp_path / "photos"
    folder.mkdir()
    tags = Image.Exif()
    tags[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(scene(4)[:, :, ::-1]).save(folder / "000007.jpg", exif=tags.tobytes(), quality=95)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": 7, "file_name": "000007.jpg"}]}))
    json_path = tmp_path / "r.json"
    args = [folder, *TINY, "--detector", "none", "--json", json_path, "--out", tmp_path / "ann"]
    result = predict(*args, *[str(ann) if flag == "ANN" else flag for flag in flags])
    assert result.exit_code == 0, result.output
    image = json.loads(json_path.read_text())["images"][0]
    assert (image["id"], image["width"], image["height"]) == ((7, H, W) if exif else (7, W, H))
    assert cv2.imread(str(tmp_path / "ann" / "000007.jpg"), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR
                      ).shape[:2] == ((W, H) if exif else (H, W))


def test_tiny_outside_and_non_finite_boxes(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Boxes no pose can come from are skipped with one warning per kind that counts them, boxes partly outside
    are clipped to the image, and no NaN reaches the JSON (issue 14)."""
    save_image(tmp_path / "images" / "000001.png", scene(5))
    boxes = [[20, 20, 1, 1],  # 1 x 1 px: kept
             [W - 10, H - 10, 40, 30],  # partly outside: clipped to the image
             [30, 10, 0, 0],  # zero size
             [30, 10, -5, 10],  # negative width
             [float("nan"), 10, 20, 20],  # NaN
             [10, 10, float("inf"), 20],  # infinite
             [-100, -80, 30, 40],  # fully outside, top left
             [W + 500, H + 500, 30, 40]]  # fully outside, bottom right
    dets = boxes_file(tmp_path / "dets.json", {1: boxes})
    assert "NaN" in dets.read_text()  # Python's json writes (and reads) the bare NaN a detector file may hold
    json_path = tmp_path / "r.json"
    result = predict(tmp_path / "images", "--weights", tiny_checkpoint, "--no-flip", "--boxes", dets, "--oks-nms", "1",
                     "--json", json_path, "--save-results", tmp_path / "res.json", "--out", tmp_path / "ann")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("dehrnet: warning:")]
    assert len(warnings) == 2, result.stderr
    assert "skipped 4 of 8 entries with a NaN or infinite number or no area" in warnings[0]
    assert "skipped 2 box(es) lying entirely outside their image" in warnings[1]
    for path in (json_path, tmp_path / "res.json"):
        text = path.read_text()
        assert "NaN" not in text and "Infinity" not in text and "-0.0" not in text
        json.loads(text, parse_constant=pytest.fail)  # strict JSON: a NaN or Infinity literal fails
    anns = sorted(json.loads(json_path.read_text())["annotations"], key=lambda a: a["id"])
    assert [a["bbox"] for a in anns] == [[20, 20, 1, 1], [W - 10, H - 10, 10, 10]]  # the second clipped
    for ann in anns:
        x, y, w, h = ann["bbox"]
        kpts = keypoints_xy(ann)
        assert np.isfinite(kpts).all() and np.isfinite(ann["score"])
        assert ann["num_keypoints"] == 17  # every keypoint has v > 0
        # keypoints lie in the enlarged crop around their box (3:4 aspect, x1.25)
        side = 1.25 * max(w, h * 0.75) / 0.75 + 1
        assert (np.abs(kpts - [x + w / 2, y + h / 2]) <= side).all(), (ann["bbox"], kpts)


def test_ann_gives_the_image_ids_of_non_numeric_file_names(tmp_path: Path) -> None:
    """With --ann, every image gets the id its file name has there (not 1..N in source order), and the
    --boxes detections are looked up by those ids."""
    ids = {"alpha.png": 1001, "beta.png": 7, "gamma.png": 42}  # source order alpha, beta, gamma
    for n, name in enumerate(ids):
        save_image(tmp_path / "images" / name, scene(n))
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"id": i, "file_name": f"val/{name}", "width": W, "height": H}
                                          for name, i in reversed(ids.items())], "annotations": [],
                               "categories": [{"id": 1, "name": "person"}]}))
    dets = boxes_file(tmp_path / "dets.json", {1001: [[0, 0, 30, 40], [34, 4, 28, 40]], 7: [[10, 5, 30, 40]]})
    result = predict(tmp_path / "images", *TINY, "--ann", ann, "--boxes", dets, "--oks-nms", "1",
                     "--json", tmp_path / "out.json", "--save-results", tmp_path / "results.json")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out.json").read_text())
    assert {im["file_name"]: im["id"] for im in doc["images"]} == ids
    saved = json.loads((tmp_path / "results.json").read_text())
    assert sorted(r["image_id"] for r in saved) == [7, 1001, 1001]
    assert sorted(a["image_id"] for a in doc["annotations"]) == [7, 1001, 1001]


def test_boxes_of_other_images_are_one_clear_error(tmp_path: Path, images_dir: Path, model_loads: list[str]) -> None:
    dets = boxes_file(tmp_path / "dets.json", {785: [[10, 5, 30, 40]], 40083: [[1, 1, 9, 9]]})
    json_path = tmp_path / "r.json"
    result = predict(images_dir, *TINY, "--boxes", dets, "--json", json_path, "--out", tmp_path / "ann")
    error_line(result, 2, f"--boxes {dets}", "785..40083", "match none", "1..2")
    assert model_loads == ["detector", "pose model"]  # found before the first frame
    assert not json_path.exists() and not (tmp_path / "ann").exists()


def test_huge_image(tmp_path: Path) -> None:
    width, height = 6000, 4000
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (width // 2, height // 2), 900, (200, 180, 160), -1)
    ok, encoded = cv2.imencode(".jpg", image)  # JPEG: 6x quicker to encode and decode than PNG here
    assert ok
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "000001.jpg").write_bytes(encoded.tobytes())
    json_path = tmp_path / "r.json"
    result = predict(tmp_path / "big", *TINY, "--detector", "none", "--json", json_path)
    assert result.exit_code == 0, result.output
    doc = json.loads(json_path.read_text())
    assert (doc["images"][0]["width"], doc["images"][0]["height"]) == (width, height)
    kpts = keypoints_xy(doc["annotations"][0])
    assert np.isfinite(kpts).all()
    # the whole-image box padded to 3:4 and x1.25: 7500 x 10000 around the centre
    assert (np.abs(kpts - [width / 2, height / 2]) <= [3750, 5000]).all()


# ------------------------------------------------------------------------------------ outputs


def test_missing_output_folders_are_created(tmp_path: Path, images_dir: Path) -> None:
    out = tmp_path / "a" / "b" / "annotated"
    json_path = tmp_path / "c" / "d" / "e" / "r.json"
    results_path = tmp_path / "f" / "results.json"
    result = predict(images_dir, *TINY, "--detector", "none", "--out", out, "--json", json_path,
                     "--save-results", results_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["000001.png", "000002.png"]
    assert len(json.loads(json_path.read_text())["images"]) == 2
    assert {r["image_id"] for r in json.loads(results_path.read_text())} == {1, 2}
    assert temp_leftovers(tmp_path) == []


def test_video_out_for_images_fails_before_any_work(tmp_path: Path, images_dir: Path,
                                                    model_loads: list[str]) -> None:
    out = tmp_path / "x.mp4"
    result = predict(images_dir, *TINY, "--detector", "none", "--out", out, "--json", tmp_path / "r.json")
    only_error(result, 2, str(out), "folder")
    assert model_loads == []
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_out_never_overwrites_the_inputs(tmp_path: Path, images_dir: Path, model_loads: list[str]) -> None:
    originals = {p: p.read_bytes() for p in images_dir.iterdir()}
    result = predict(images_dir, *TINY, "--detector", "none", "--out", images_dir)
    only_error(result, 2, str(images_dir), "is the source image", "which this run reads")
    video = write_video(tmp_path / "clip.mp4", num_frames=2)
    video_bytes = video.read_bytes()
    result = predict(video, *TINY, "--detector", "none", "--out", video)
    only_error(result, 2, str(video), "is the source", "which this run reads")
    assert model_loads == []
    assert {p: p.read_bytes() for p in images_dir.iterdir()} == originals
    assert video.read_bytes() == video_bytes


def test_json_into_a_folder_fails_before_any_work(tmp_path: Path, images_dir: Path,
                                                  model_loads: list[str]) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    result = predict(images_dir, *TINY, "--detector", "none", "--json", folder)
    only_error(result, 2, "--json", str(folder), "is a folder")
    assert model_loads == []


# ------------------------------------------------------------------------------ models and detector


def test_offline_detector_fails_before_the_pose_model(tmp_path: Path, images_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      model_loads: list[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no ./yolo11n.pt here, nor in the weights cache
    env = {"DEHRNET_OFFLINE": "1", "DEHRNET_HOME": str(tmp_path / "home")}
    result = predict(images_dir, *TINY, "--detector", "yolo", "--det-model", "yolo11n.pt",
                     "--json", tmp_path / "r.json", env=env)
    only_error(result, 2, "yolo11n.pt", "--boxes", "--detector none")
    assert model_loads == []  # refused before the detector or the pose model was built
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("kind", ["corrupt", "text", "missing", "folder"])
def test_bad_weights_file(tmp_path: Path, images_dir: Path, kind: str) -> None:
    weights = tmp_path / "pose.pth"
    if kind == "corrupt":
        weights.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "text":
        weights.write_text("these are not weights\n")
    elif kind == "folder":
        weights.mkdir()
    result = predict(images_dir, "--weights", weights, "--detector", "none", "--json", tmp_path / "r.json")
    only_error(result, 2, str(weights))
    assert not (tmp_path / "r.json").exists()


def test_unknown_model_suggests_names(tmp_path: Path, images_dir: Path) -> None:
    result = predict(images_dir, "--model", "hrnet_w32.coco_384x28", "--detector", "none", "--json",
                     tmp_path / "r.json")
    only_error(result, 2, "hrnet_w32.coco_384x28", "did you mean", "hrnet_w32.coco_384x288")


def test_architecture_without_untrained_explains_how_to_get_weights(tmp_path: Path, images_dir: Path) -> None:
    result = predict(images_dir, "--model", TINY_NAME, "--detector", "none", "--json", tmp_path / "r.json")
    only_error(result, 2, TINY_NAME, "without weights", "dehrnet train", "--untrained")


def test_onnx_backend_matches_torch(tmp_path: Path, images_dir: Path, tiny_checkpoint: Path) -> None:
    env = {"DEHRNET_HOME": str(tmp_path / "home")}  # the onnx export is cached there
    keypoints = {}
    for backend in ("torch", "onnx"):
        json_path = tmp_path / f"{backend}.json"
        result = predict(images_dir, "--weights", tiny_checkpoint, "--backend", backend, "--device", "cpu",
                         "--precision", "fp32", "--detector", "none", "--json", json_path, env=env)
        assert result.exit_code == 0, result.output
        assert f"({backend} fp32 on cpu)" in result.stderr
        anns = json.loads(json_path.read_text())["annotations"]
        assert len(anns) == 2
        keypoints[backend] = np.stack([keypoints_xy(a) for a in anns])
    # the JSON rounds to 1e-3 px, so two equal values can differ by one last digit
    np.testing.assert_allclose(keypoints["onnx"], keypoints["torch"], rtol=0, atol=1e-3 + 1e-6)
    assert np.ptp(keypoints["torch"]) > 1  # real, spread-out keypoints, not one constant


def test_onnx_files_need_no_backend_flag_and_untrained_exports_show_the_banner(tmp_path: Path, images_dir: Path,
                                                                                tiny_checkpoint: Path) -> None:
    """--weights FILE.onnx picks an ONNX engine by itself (a .onnx name or ONNX content: OpenVINO on a CPU, the
    default dependency, else onnxruntime), and a model exported from random weights says so in its metadata, so
    that predict shows the UNTRAINED banner."""
    net = create_model(TINY_NAME, upsample="nearest", stage_modules=(1, 1, 1), num_blocks=1)
    untrained = export_onnx(net, tmp_path / "untrained.onnx", check=False, untrained=True).path
    trained = export_onnx(load_model(tiny_checkpoint), tmp_path / "trained.model", check=False).path  # no .onnx
    for path, is_untrained in ((untrained, True), (trained, False)):
        result = predict(images_dir, "--weights", path, "--detector", "none", "--json", tmp_path / "r.json",
                         "--out", tmp_path / path.stem)
        assert result.exit_code == 0, result.output
        assert "(openvino " in result.stderr and f"auto: an fp32 ONNX model; {path.name}" in result.stderr
        assert ("UNTRAINED WEIGHTS" in result.stderr) == is_untrained, result.stderr
    with_banner, without = (cv2.imread(str(tmp_path / stem / "000001.png")) for stem in ("untrained", "trained"))
    assert (with_banner[:10] != without[:10]).any()  # the banner is drawn across the top of the image


# --------------------------------------------------------------------------- faults mid-video


def _fail_at_frame(monkeypatch: pytest.MonkeyPatch, frame_index: int, error: BaseException) -> list[int]:
    """Make PoseEstimator.estimate_frames raise `error` on the batch holding `frame_index`; returns the
    indices of the frames estimated before that."""
    done: list[int] = []
    real = PoseEstimator.estimate_frames

    def estimate_frames(self: PoseEstimator, frames: list[Frame]) -> list[Poses]:
        if any(f.index >= frame_index for f in frames):
            raise error
        done.extend(f.index for f in frames)
        return real(self, frames)

    monkeypatch.setattr(PoseEstimator, "estimate_frames", estimate_frames)
    return done


def test_video_runs_to_completion(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4")
    out_dir = tmp_path / "out"
    result = predict(video, *TINY, "--detector", "none", "--out", out_dir, "--json", out_dir / "r.json")
    assert result.exit_code == 0, result.output
    annotated = out_dir / "clip_pose.mp4"  # --out FOLDER for a video: NAME_pose.mp4 inside
    assert decoded_frames(annotated) == VIDEO_FRAMES
    assert len(json.loads((out_dir / "r.json").read_text())["images"]) == VIDEO_FRAMES
    assert temp_leftovers(tmp_path) == []


@pytest.mark.parametrize("earlier_outputs", [False, True])
def test_ctrl_c_mid_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier_outputs: bool) -> None:
    video = write_video(tmp_path / "clip.mp4")
    out_dir = tmp_path / "out"
    annotated, json_path = out_dir / "annotated.mp4", out_dir / "r.json"
    if earlier_outputs:
        out_dir.mkdir()
        annotated.write_bytes(b"an earlier video")
        json_path.write_text('{"earlier": true}')
    done = _fail_at_frame(monkeypatch, 5, KeyboardInterrupt())
    result = predict(video, *TINY, "--detector", "none", "--out", annotated, "--json", json_path,
                     "--save-results", out_dir / "res.json", "--csv", out_dir / "p.csv")
    error_line(result, 130, "interrupted")
    assert done and max(done) < 5
    if earlier_outputs:
        assert annotated.read_bytes() == b"an earlier video"
        assert json_path.read_text() == '{"earlier": true}'
    else:
        assert not annotated.exists() and not json_path.exists()
    partial = out_dir / "annotated.partial.mp4"
    assert partial.is_file()  # the frames before Ctrl-C, finalised: PyAV plays all of them
    assert decoded_frames(partial) == len(done)
    # every other output keeps the same frames, as a valid file (issue 14)
    assert len(json.loads((out_dir / "r.partial.json").read_text())["images"]) == len(done)
    assert {r["image_id"] for r in json.loads((out_dir / "res.partial.json").read_text())} == {i + 1 for i in done}
    assert set(read_pose_csv(out_dir / "p.partial.csv")["frame"].tolist()) == set(done)
    for name in ("annotated.partial.mp4", "r.partial.json", "res.partial.json", "p.partial.csv"):
        assert name in result.stderr
    assert temp_leftovers(tmp_path) == []


def test_internal_error_mid_video_leaves_earlier_outputs_intact(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    video = write_video(tmp_path / "clip.mp4")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    annotated, json_path, results_path = out_dir / "a.mp4", out_dir / "r.json", out_dir / "res.json"
    for path in (annotated, json_path, results_path):
        path.write_bytes(b"earlier " + path.name.encode())
    _fail_at_frame(monkeypatch, 9, RuntimeError("boom in frame 9"))
    result = predict(video, *TINY, "--detector", "none", "--out", annotated, "--json", json_path,
                     "--save-results", results_path)
    error_line(result, 1, "internal error", "boom in frame 9")
    for path in (annotated, json_path, results_path):
        assert path.read_bytes() == b"earlier " + path.name.encode()
    assert temp_leftovers(tmp_path) == []


# ------------------------------------------------------------------------ help, version, script


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(app, ["predict", "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout
    assert "dehrnet predict video.mp4 --weights best.pt --out annotated.mp4" in result.stdout


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dehrnet {__version__}"


def test_console_script_with_spaces_in_paths_and_hog(tmp_path: Path) -> None:
    """The real `dehrnet` script, with spaces in every path and the HOG detector on an image smaller
    than its 64x128 window (which crashes OpenCV's detectMultiScale: run in a child process)."""
    folder = tmp_path / "my photos"
    save_image(folder / "a b.png", scene(6))
    save_image(folder / "c d.png", scene(7, 100, 160))
    json_path = tmp_path / "out dir" / "my results.json"
    script = Path(sys.executable).with_name("dehrnet")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "dehrnet_cli"]
    env = {**os.environ, "DEHRNET_OFFLINE": "1", "DEHRNET_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*command, "predict", str(folder), *TINY, "--detector", "hog", "--json", str(json_path),
                           "--out", str(tmp_path / "out dir" / "annotated")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {json_path}" in proc.stdout
    doc = json.loads(json_path.read_text())
    assert [(im["file_name"], im["width"], im["height"]) for im in doc["images"]] == [
        ("a b.png", W, H), ("c d.png", 100, 160)]
    assert doc["annotations"] == []  # HOG finds nobody in these drawings
    assert sorted(p.name for p in (tmp_path / "out dir" / "annotated").iterdir()) == ["a b.png", "c d.png"]
