"""Video exports and the predict wiring of tracking/smoothing: the keypoint CSV (round trip, atomic,
partial on Ctrl-C), person crops, live sources fed by a fake camera, and the CLI flags."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import tiny_estimator
from typer.testing import CliRunner

from dehrnet_cli.cli.app import app
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.predict import PredictJob, run_predict
from dehrnet_cli.sinks.crops import CropsSink, crop_box
from dehrnet_cli.sinks.keypoints_csv import CSV_COLUMNS, CsvSink, read_pose_csv
from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.sinks.video_writer import VideoWriter
from dehrnet_cli.sources.threaded import ThreadedSource
from dehrnet_cli.stage_data import Frame, Poses
from dehrnet_cli.video.settings import VideoSettings, video_settings
from dehrnet_cli.video.stage import VideoStage
from models import COCO17

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


def _poses(rng: np.random.Generator, n: int, ids: list[int] | None) -> Poses:
    kpts = rng.uniform(0, 300, (n, 17, 2)).astype(np.float32)
    boxes = np.concatenate([kpts.min(axis=1), kpts.max(axis=1)], axis=1)
    scores = rng.uniform(0, 1, (n, 17)).astype(np.float32)
    return Poses(boxes, np.ones(n, np.float32), kpts, scores, np.ones(n, np.float32), np.ones(n, np.float32),
                 None if ids is None else np.asarray(ids, np.int64))


def _hidden_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") and ".partial-" in p.name]


# ----------------------------------------------------------------------------------------- CSV


def _result(index: int, time_s: float | None, poses: Poses, image: np.ndarray | None = None,
            path: Path | None = None) -> PoseResult:
    image = np.zeros((300, 300, 3), np.uint8) if image is None else image
    return PoseResult.of_frame(Frame(index, image, path, time_s), poses, COCO17)


def test_csv_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [(0, 0.0, _poses(rng, 2, [4, 9])), (1, 1 / 30, _poses(rng, 0, [])), (2, 2 / 30, _poses(rng, 1, [9]))]
    path = tmp_path / "out" / "poses.csv"
    sink = CsvSink(path, COCO17)
    for index, time_s, poses in frames:
        sink.add(_result(index, time_s, poses))
    assert not path.exists()  # nothing under the final name until the run ends
    assert sink.finish() == [path] and _hidden_leftovers(tmp_path) == []
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)

    table = read_pose_csv(path)
    assert len(table["frame"]) == (2 + 0 + 1) * 17 == sink.rows
    for index, time_s, poses in frames:
        rows = table["frame"] == index
        if not len(poses):
            assert not rows.any()
            continue
        np.testing.assert_allclose(table["time"][rows], time_s, atol=1e-4)
        np.testing.assert_array_equal(table["track_id"][rows], np.repeat(poses.track_ids, 17))
        np.testing.assert_array_equal(table["person"][rows], np.repeat(np.arange(len(poses)), 17))
        assert table["keypoint"][rows].tolist() == list(COCO17.names) * len(poses)
        xy = np.stack([table["x"][rows], table["y"][rows]], axis=1).reshape(-1, 17, 2)
        np.testing.assert_allclose(xy, poses.keypoints_xy, atol=0.005)
        np.testing.assert_allclose(table["score"][rows].reshape(-1, 17), poses.kpt_scores, atol=5e-5)


def test_csv_without_tracking_or_times_leaves_those_cells_empty(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "p.csv", COCO17, timed=False)
    sink.add(_result(0, None, _poses(np.random.default_rng(1), 1, None)))
    table = read_pose_csv(sink.finish()[0])
    assert np.isnan(table["time"]).all() and (table["track_id"] == -1).all()
    assert (tmp_path / "p.csv").read_text().splitlines()[1].startswith("0,,,0,nose,")


def test_csv_abort_keeps_the_done_frames_as_a_partial_file_or_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    sink = CsvSink(tmp_path / "p.csv", COCO17)
    for index in range(3):
        sink.add(_result(index, index / 30, _poses(rng, 1, [1])))
    assert sink.abort(2) == [tmp_path / "p.partial.csv"]  # the third frame was not done by every sink
    assert read_pose_csv(tmp_path / "p.partial.csv")["frame"].tolist() == [0] * 17 + [1] * 17
    empty = CsvSink(tmp_path / "q.csv", COCO17)
    empty.add(_result(0, 0.0, _poses(rng, 1, [1])))
    assert empty.abort(0) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.partial.csv"]


@pytest.mark.parametrize("name, message", [("p.txt", "ending in .csv"), ("folder.csv", "is a folder")])
def test_csv_bad_paths(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DehrnetError, match=message):
        CsvSink(tmp_path / name, COCO17)


def test_read_pose_csv_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DehrnetError, match="not a dehrnet pose CSV"):
        read_pose_csv(tmp_path / "other.csv")


# --------------------------------------------------------------------------------------- crops


def test_crops_per_track_and_per_person(tmp_path: Path) -> None:
    image = np.random.default_rng(3).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 50, 100], [140, 100, 200, 150]], np.float32)  # the second runs off the image
    poses = Poses(boxes, np.ones(2, np.float32), np.zeros((2, 17, 2), np.float32), np.ones((2, 17), np.float32),
                  np.ones(2, np.float32), np.ones(2, np.float32), np.array([3, 12]))
    sink = CropsSink(tmp_path / "crops", suffix=".png")
    sink.add(_result(7, None, poses, image))
    sink.add(_result(8, None, replace(poses, track_ids=None), image, tmp_path / "shot.jpg"))
    first = cv2.imread(str(tmp_path / "crops" / "track_0003" / "000007.png"))
    left, top, right, bottom = crop_box(boxes[0], (160, 120))
    assert (left, top, right, bottom) == (8, 16, 52, 104)  # grown by 10 % about the centre
    np.testing.assert_array_equal(first, image[top:bottom, left:right])
    assert cv2.imread(str(tmp_path / "crops" / "track_0012" / "000007.png")).shape == (23, 23, 3)  # clipped
    assert sorted(p.name for p in (tmp_path / "crops").glob("shot_p*.png")) == ["shot_p0.png", "shot_p1.png"]
    assert sink.count == 4
    assert sink.abort(1) == [tmp_path / "crops"] and sink.count == 2  # the crops of frame 8 go
    assert not list((tmp_path / "crops").glob("shot_p*.png"))


# ---------------------------------------------------------------------------- predict wiring


def _estimator() -> PoseEstimator:
    return tiny_estimator(flip=False)


def _video(path: Path, frames: int = 10, fps: float = 25.0) -> Path:
    rng = np.random.default_rng(4)
    with VideoWriter(path, fps, (96, 128)) as writer:
        for _ in range(frames):
            writer.write(rng.integers(0, 255, (128, 96, 3), dtype=np.uint8))
    return path


def test_predict_writes_track_ids_smoothed_csv_and_crops(tmp_path: Path) -> None:
    video = _video(tmp_path / "in.mp4")
    job = PredictJob(str(video), json_path=tmp_path / "p.json", csv_path=tmp_path / "p.csv",
                     crops_dir=tmp_path / "crops", quiet=True, video=video_settings(smooth=True))
    summary = run_predict(_estimator(), job)
    assert summary.frames == 10 and set(summary.outputs) == {tmp_path / "p.json", tmp_path / "p.csv",
                                                             tmp_path / "crops"}
    doc = json.loads((tmp_path / "p.json").read_text())
    table = read_pose_csv(tmp_path / "p.csv")
    assert len(table["frame"]) == 10 * 17
    json_ids = [a["track_id"] for a in sorted(doc["annotations"], key=lambda a: a["image_id"])]
    assert table["track_id"][::17].tolist() == json_ids and min(json_ids) >= 1
    np.testing.assert_allclose(table["time"][::17], np.arange(10) / 25.0, atol=1e-3)  # PyAV frame times
    first = np.array(doc["annotations"][0]["keypoints"]).reshape(17, 3)[:, :2]
    np.testing.assert_allclose(first, np.stack([table["x"][:17], table["y"][:17]], axis=1), atol=0.01)
    assert len(list((tmp_path / "crops").rglob("*.jpg"))) == 10
    assert _hidden_leftovers(tmp_path) == []


def _fake_camera(num_frames: int, period_s: float, stop: threading.Event):
    """A live producer: frames every period_s with their capture time, until told to stop."""
    rng = np.random.default_rng(5)
    start = time.monotonic()
    for _ in range(num_frames):
        if stop.is_set():
            return
        time.sleep(period_s)
        yield rng.integers(0, 255, (128, 96, 3), dtype=np.uint8), time.monotonic() - start


def test_live_source_drops_stale_frames_and_keeps_times_for_smoothing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    estimator = _estimator()  # first: the camera starts producing as soon as it is opened
    stop = threading.Event()
    camera = ThreadedSource("camera", "fake camera", _fake_camera(60, 0.002, stop), is_live=True, fps=500.0)
    seen: list[tuple[int, float]] = []
    real = VideoStage.estimate

    def slow_estimate(self: VideoStage, frames: list[Frame]) -> list[Poses]:
        assert len(frames) == 1  # live: one frame at a time, latency first
        seen.append((frames[0].index, frames[0].time_s))
        time.sleep(0.02)  # a model ten times slower than the camera
        return real(self, frames)

    monkeypatch.setattr(VideoStage, "estimate", slow_estimate)
    job = PredictJob("camera", csv_path=tmp_path / "live.csv", quiet=True, video=video_settings(smooth=True))
    try:
        summary = run_predict(estimator, job, camera)
    finally:
        stop.set()
    indices = [i for i, _ in seen]
    assert summary.frames == len(seen) < 60 and camera.reader.dropped > 0
    assert indices == sorted(indices) and max(np.diff(indices)) > 1  # stale frames were skipped
    table = read_pose_csv(tmp_path / "live.csv")
    np.testing.assert_allclose(table["time"][::17], [t for _, t in seen], atol=1e-4)  # capture times, not index/fps
    assert not camera.reader.thread.is_alive()


def test_ctrl_c_ends_a_tracked_live_run_and_writes_the_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    estimator = _estimator()
    stop = threading.Event()
    camera = ThreadedSource("camera", "fake camera", _fake_camera(1000, 0.005, stop), is_live=True)
    calls = []
    real = VideoStage.estimate

    def interrupted(self: VideoStage, frames: list[Frame]) -> list[Poses]:
        calls.append(frames[0].index)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(VideoStage, "estimate", interrupted)
    job = PredictJob("camera", csv_path=tmp_path / "live.csv", quiet=True, video=VideoSettings(track=True))
    summary = run_predict(estimator, job, camera)  # Ctrl-C is how a live run ends: no exception
    stop.set()
    assert summary.interrupted and not (tmp_path / "live.partial.csv").exists()
    table = read_pose_csv(tmp_path / "live.csv")
    assert table["frame"][::17].tolist() == calls[:3]  # every frame finished before Ctrl-C, complete
    camera.reader.thread.join(2)
    assert not camera.reader.thread.is_alive() and _hidden_leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------- flags


def test_video_settings_from_flags() -> None:
    assert video_settings(tracker="botsort.yaml").track
    settings = video_settings(smooth=True, beta=2.0, kpt_thr=0.4)
    assert settings.tracking and settings.smooth.beta == 2.0 and settings.smooth.score_thr == 0.4
    with pytest.raises(DehrnetError, match="--smooth-beta .* add --smooth"):
        video_settings(beta=2.0)


@pytest.mark.parametrize("flags, needle", [
    (["--csv", "{tmp}/p.txt"], "ending in .csv"),
    (["--json", "{tmp}/p.json", "--det-every", "0"], "--det-every 0"),
    (["--json", "{tmp}/p.json", "--smooth-min-cutoff", "2"], "add --smooth"),
])
def test_cli_flag_errors_fail_before_any_model_loads(tmp_path: Path, flags: list[str], needle: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    loads = []
    monkeypatch.setattr(PoseEstimator, "_setup", lambda *a, **k: loads.append(1))
    video = _video(tmp_path / "in.mp4", frames=2)
    args = ["predict", str(video), "--model", TINY, "--untrained", "--detector", "none"]
    result = CliRunner().invoke(app, args + [f.format(tmp=tmp_path) for f in flags])
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and "Traceback" not in result.output
    assert loads == []


def test_cli_track_smooth_csv_end_to_end(tmp_path: Path) -> None:
    video = _video(tmp_path / "in.mp4", frames=6)
    result = CliRunner().invoke(app, ["predict", str(video), "--model", TINY, "--untrained", "--no-flip",
                                      "--detector", "none", "--smooth", "--csv", str(tmp_path / "p.csv"),
                                      "--out", str(tmp_path / "out.mp4"), "--quiet"])
    assert result.exit_code == 0, result.output
    table = read_pose_csv(tmp_path / "p.csv")
    assert len(table["frame"]) == 6 * 17 and (table["track_id"] >= 1).all()
    assert (tmp_path / "out.mp4").is_file()
