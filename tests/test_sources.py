"""Input sources: every kind that runs without a camera, their errors, and the reader thread."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
from seeded_images import save_image

import dehrnet_cli.sources.video as sources
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.video_writer import VideoWriter, write_image
from dehrnet_cli.sources.images import read_image
from dehrnet_cli.sources.open import open_source
from dehrnet_cli.sources.orientation import AS_STORED
from dehrnet_cli.sources.threaded import ThreadedSource

W, H = 64, 48


def _image(value: int) -> np.ndarray:
    """A (H, W, 3) BGR test image: flat `value` with a distinct blue channel."""
    image = np.full((H, W, 3), value, np.uint8)
    image[:, :, 0] = 255 - value
    return image


def _make_video(path: Path, num_frames: int = 30, fps: float = 30000 / 1001) -> Path:
    with VideoWriter(path, fps, (W, H)) as writer:
        for i in range(num_frames):
            writer.write(np.full((H, W, 3), 8 * i, np.uint8))
    return path


# ------------------------------------------------------------------------------------ images


def test_single_image_file(tmp_path: Path) -> None:
    path = save_image(tmp_path / "one.png", _image(40))
    with open_source(str(path)) as source:
        frames = list(source)
    assert (source.kind, source.is_live, source.num_frames, source.fps, source.size) == (
        "images", False, 1, None, None)
    assert len(frames) == 1
    assert frames[0].index == 0 and frames[0].path == path
    np.testing.assert_array_equal(frames[0].image, _image(40))


def test_folder_is_sorted_and_skips_a_corrupt_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "frames"
    save_image(folder / "c.png", _image(30))
    save_image(folder / "a.png", _image(10))
    (folder / "b.jpg").write_bytes(b"not a jpeg at all")
    save_image(folder / ".hidden.png", _image(99))  # e.g. a partial output: left out
    (folder / "notes.md").write_text("not an image")
    (folder / "sub").mkdir()
    save_image(folder / "sub" / "d.png", _image(50))  # not recursive
    source = open_source(str(folder))
    assert source.num_frames == 3
    frames = list(source)
    assert [(f.index, f.path.name) for f in frames] == [(0, "a.png"), (2, "c.png")]
    assert [int(f.image[0, 0, 1]) for f in frames] == [10, 30]
    assert len(source.skipped) == 1 and source.skipped[0][0] == folder / "b.jpg"
    assert "cannot decode" in source.skipped[0][1]
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 2 and "1 subfolder(s) left out" in err_lines[0]  # said when the folder is opened
    assert "b.jpg" in err_lines[1] and "warning" in err_lines[1]


def _dead_links(folder: Path) -> list[Path]:
    """A dangling link and two looping ones, named like images."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dangling.jpg").symlink_to("nowhere.jpg")
    (folder / "self.png").symlink_to("self.png")
    (folder / "ping.jpg").symlink_to("pong.jpg")
    (folder / "pong.jpg").symlink_to("ping.jpg")
    return [folder / name for name in ("dangling.jpg", "ping.jpg", "pong.jpg", "self.png")]


@pytest.mark.parametrize("spec", ["{d}", "{d}/*"])
def test_dead_symbolic_links_are_skipped_each_with_a_warning_and_counted(tmp_path, capsys, spec) -> None:
    dead = _dead_links(tmp_path / "shots")
    write_image(tmp_path / "shots" / "real.png", _image(40))
    source = open_source(spec.format(d=tmp_path / "shots"))
    assert [frame.path.name for frame in source] == ["real.png"]
    assert [path for path, _ in source.skipped] == dead
    reasons = dict(source.skipped)
    assert reasons[dead[0]] == "a broken symbolic link (to nowhere.jpg, which does not exist)"
    assert {reasons[path] for path in dead[1:]} == {"a symbolic link loop"}
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("dehrnet: warning:")]
    assert len(warnings) == 4 and all(str(path) in line for path, line in zip(dead, warnings))


def test_a_folder_of_dead_links_reads_nothing_and_counts_them(tmp_path) -> None:
    dead = _dead_links(tmp_path / "links")
    source = open_source(str(tmp_path / "links"))
    assert list(source) == [] and len(source.skipped) == len(dead)


def test_subfolders_left_out_are_counted_with_the_glob_that_reads_them(tmp_path, capsys) -> None:
    write_image(tmp_path / "shots" / "top.png", _image(10))
    for sub in ("a", "b", ".cache"):  # a hidden folder is not counted
        write_image(tmp_path / "shots" / sub / "deep.png", _image(20))
    top_only = [frame.path.name for frame in open_source(str(tmp_path / "shots"))]
    err = capsys.readouterr().err
    recursive = str(tmp_path / "shots" / "**" / "*")
    assert top_only == ["top.png"]
    assert err.count("dehrnet: warning:") == 1 and "2 subfolder(s) left out" in err and f"'{recursive}'" in err
    everything = sorted(frame.path.relative_to(tmp_path / "shots").as_posix() for frame in open_source(recursive))
    assert everything == ["a/deep.png", "b/deep.png", "top.png"]
    (tmp_path / "shots" / "top.png").unlink()
    with pytest.raises(DehrnetError, match=r"has no images .*its 2 subfolder\(s\) may hold some: give a recursive"):
        open_source(str(tmp_path / "shots"))


def test_glob_pattern(tmp_path: Path) -> None:
    for name in ("x2.png", "x1.png", "y1.png"):
        save_image(tmp_path / name, _image(20))
    source = open_source(str(tmp_path / "x*.png"))
    assert [f.path.name for f in source] == ["x1.png", "x2.png"]


def test_txt_list_is_relative_to_its_folder(tmp_path: Path) -> None:
    save_image(tmp_path / "imgs" / "p.png", _image(1))
    save_image(tmp_path / "q.png", _image(2))
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text(f"# two images\n../imgs/p.png\n\n{tmp_path / 'q.png'}\n", encoding="utf-8")
    frames = list(open_source(str(listing)))
    assert [int(f.image[0, 0, 1]) for f in frames] == [1, 2]


def test_txt_list_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    save_image(tmp_path / "p.png", _image(1))
    listing = tmp_path / "list.txt"
    listing.write_text("p.png\ngone.png\n")
    with pytest.raises(DehrnetError, match=r"line 2 names .*gone\.png"):
        open_source(str(listing))


def test_path_with_spaces_and_non_ascii_characters(tmp_path: Path) -> None:
    path = write_image(tmp_path / "dossier à espaces" / "ïmage 画像 1.png", _image(77))
    frames = list(open_source(str(path)))
    np.testing.assert_array_equal(frames[0].image, _image(77))
    frames = list(open_source(str(path.parent)))
    assert frames[0].path == path


def test_grayscale_16bit_and_alpha_become_bgr8(tmp_path: Path) -> None:
    gray = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    deep = np.full((H, W), 20000, np.uint16)  # 20000 / 257 = 77.8
    deep[0, 0], deep[0, 1] = 65535, 65280  # 65280 / 257 = 254.0 (a shift by 8 bits would give 255)
    bgra = np.dstack([_image(60), np.full((H, W), 7, np.uint8)])
    for name, image in (("gray", gray), ("deep", deep), ("bgra", bgra)):
        save_image(tmp_path / f"{name}.png", image)
    out = {p.stem: read_image(p) for p in tmp_path.glob("*.png")}
    for image in out.values():
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(out["gray"], np.dstack([gray] * 3))
    assert [out["deep"][0, x, 0] for x in range(3)] == [255, 254, 78]
    np.testing.assert_array_equal(out["bgra"], _image(60))  # alpha dropped, colours kept
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png", "exif"), out["deep"])


def test_gray_alpha_and_cmyk_images(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    pil.new("LA", (W, H), (90, 20)).save(tmp_path / "la.png")
    pil.new("CMYK", (W, H), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)  # pure red
    assert read_image(tmp_path / "la.png")[5, 5].tolist() == [90, 90, 90]
    b, g, r = read_image(tmp_path / "cmyk.jpg")[5, 5].tolist()
    assert r > 240 and b < 15 and g < 15


def test_sources_read_stored_pixels_unless_asked_for_exif(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # left half white
    image = pil.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    raw = next(iter(open_source(str(path)))).image
    upright = next(iter(open_source(str(path), orientation="exif"))).image
    assert raw.shape == (20, 40, 3) and raw[10, 5].min() > 200  # the stored pixel array
    assert upright.shape == (40, 20, 3)
    assert upright[5, 10].min() > 200 and upright[35, 10].max() < 50  # the left half is now on top


def test_corrupt_single_image_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DehrnetError, match="bad.png: cannot decode"):
        list(open_source(str(path)))


@pytest.mark.parametrize("make, spec, message", [
    (lambda d: None, "{d}/missing.jpg", "no such file or folder"),
    (lambda d: (d / "empty").mkdir(), "{d}/empty", "has no images"),
    (lambda d: None, "{d}/*.png", "matched nothing"),
    (lambda d: (d / "clip.mp4").write_bytes(b"\x00" * 100), "{d}/clip.mp4", "cannot read the video"),
    (lambda d: (d / "notes.xyz").write_text("x"), "{d}/notes.xyz", "unknown file type"),
    (lambda d: None, "  ", "empty source"),
])  # fmt: skip
def test_bad_sources_raise_one_line_errors(tmp_path: Path, make, spec: str, message: str) -> None:
    make(tmp_path)
    with pytest.raises(DehrnetError, match=message) as info:
        open_source(spec.format(d=tmp_path))
    assert "\n" not in str(info.value)
    if spec.strip():
        assert str(tmp_path) in str(info.value)


def test_folder_of_videos_says_to_pass_a_video(tmp_path: Path) -> None:
    _make_video(tmp_path / "clip.mp4", num_frames=2)
    with pytest.raises(DehrnetError, match="pass one of them directly"):
        open_source(str(tmp_path))


# ------------------------------------------------------------------------------------- video


def test_video_round_trip(tmp_path: Path) -> None:
    path = _make_video(tmp_path / "clip.mp4")
    with open_source(str(path)) as source:
        assert (source.kind, source.is_live, source.size, source.num_frames) == ("video", False, (W, H), 30)
        assert source.fps == pytest.approx(30000 / 1001)
        frames = list(source)
    assert [f.index for f in frames] == list(range(30))
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.time_s for f in frames] == pytest.approx([i * 1001 / 30000 for i in range(30)])
    levels = [float(f.image.mean()) for f in frames]
    assert levels == pytest.approx([8 * i for i in range(30)], abs=6)  # in order (steps of 8), lossy


def test_a_truncated_video_ends_early_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _make_video(tmp_path / "clip.mp4")  # +faststart: the index comes first
    with av.open(str(path)) as container:
        cut_at = [packet.pos for packet in container.demux(video=0) if packet.size][20]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:cut_at])  # the 21st packet onwards is missing
    with open_source(str(cut)) as source:
        assert source.num_frames == 30
        count = len(list(source))
    assert 10 <= count < 30
    assert f"ended after {count} of its 30 frames" in capsys.readouterr().err


def test_breaking_out_of_a_video_stops_the_reader_thread(tmp_path: Path) -> None:
    path = _make_video(tmp_path / "clip.mp4")
    source = open_source(str(path))
    for frame in source:
        assert frame.index == 0
        break
    assert not source.reader.thread.is_alive()
    with open_source(str(path)) as unread:  # closing without iterating stops it too
        pass
    assert not unread.reader.thread.is_alive()


def test_http_video_is_read_whole_not_as_live(tmp_path: Path) -> None:
    _make_video(tmp_path / "clip.mp4", num_frames=12)

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with open_source(f"http://127.0.0.1:{server.server_port}/clip.mp4") as source:
            assert (source.kind, source.is_live, source.size) == ("stream", False, (W, H))
            assert len(list(source)) == 12
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_stream_is_an_error_without_the_password() -> None:
    with pytest.raises(DehrnetError, match=r"rtsp://user:\*\*\*@127\.0\.0\.1:9/") as info:
        open_source("rtsp://user:secret@127.0.0.1:9/cam")
    assert "secret" not in str(info.value)


# ---------------------------------------------------------------------------- reader thread


def _numbered_frames(count: int, delay_s: float = 0.0) -> Iterator[np.ndarray]:
    for i in range(count):
        if delay_s:
            time.sleep(delay_s)
        yield np.full((4, 4, 3), i % 256, np.uint8)


def test_live_source_drops_stale_frames_for_a_slow_consumer() -> None:
    source = ThreadedSource("camera", "fake", _numbered_frames(200, delay_s=0.0005), is_live=True)
    seen = []
    for frame in source:
        seen.append(frame.index)
        time.sleep(0.02)  # a slow model
    assert seen[-1] == 199  # the newest frame is delivered
    assert len(seen) < 100 and source.reader.dropped == 200 - len(seen)
    assert seen == sorted(set(seen))
    assert not source.reader.thread.is_alive()


def test_file_source_keeps_every_frame_for_a_slow_consumer() -> None:
    source = ThreadedSource("video", "fake", _numbered_frames(40), is_live=False, queue_size=4)
    seen = []
    for frame in source:
        seen.append(frame.index)
        time.sleep(0.002)
    assert seen == list(range(40)) and source.reader.dropped == 0


def test_a_producer_error_reaches_the_consumer_after_the_frames_before_it() -> None:
    def failing() -> Iterator[np.ndarray]:
        yield from _numbered_frames(3)
        raise DehrnetError("fake.mp4: cannot decode frame 3")

    source = ThreadedSource("video", "fake", failing(), is_live=False)
    seen = []
    with pytest.raises(DehrnetError, match="frame 3"):
        for frame in source:
            seen.append(frame.index)
    assert seen == [0, 1, 2]
    assert not source.reader.thread.is_alive()


def test_a_decoding_error_names_the_file_and_frame() -> None:
    class FakeFrame:
        time = 0.0

        def to_ndarray(self, format: str) -> np.ndarray:
            return np.zeros((4, 4, 3), np.uint8)

    def decoded() -> Iterator[FakeFrame]:
        yield FakeFrame()
        yield FakeFrame()
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    frames = sources._decode_video(decoded(), SimpleNamespace(frames=0), "broken.mp4", AS_STORED)
    assert len([next(frames), next(frames)]) == 2
    with pytest.raises(DehrnetError, match=r"broken\.mp4: cannot decode frame 2 \(.*Invalid data"):
        next(frames)


def test_camera_index_opens_a_live_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    released = []

    class FakeCapture:
        def __init__(self, index: int):
            self.index, self.count = index, 0

        def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
            return True

        def get(self, prop: int) -> float:
            return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: W, cv2.CAP_PROP_FRAME_HEIGHT: H}[prop]

        def read(self) -> tuple[bool, np.ndarray | None]:
            self.count += 1
            return (self.count <= 5), np.full((H, W, 3), self.count, np.uint8)

        def release(self) -> None:
            released.append(self.index)

    monkeypatch.setattr(sources.cv2, "VideoCapture", FakeCapture)
    with open_source("3") as source:
        assert (source.kind, source.is_live, source.fps, source.size, source.name) == (
            "camera", True, 30.0, (W, H), "camera 3")
        frames = list(source)
    assert frames[-1].index == 4 and int(frames[-1].image[0, 0, 0]) == 5
    assert released == [3]
