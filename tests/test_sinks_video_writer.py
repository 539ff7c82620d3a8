"""The H.264 writer: playable files, exact frame rates, odd sizes, partial files on failure; image outputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import dehrnet_cli.sinks.video_writer as video_writer
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.video_writer import VideoWriter, exact_rate, write_image

W, H = 64, 48


def _frame(i: int, size: tuple[int, int] = (W, H)) -> np.ndarray:
    return np.full((size[1], size[0], 3), 8 * i, np.uint8)


def _probe(path: Path) -> tuple[str, Fraction, tuple[int, int], list[np.ndarray]]:
    """(codec, rate, (w, h), frames) as PyAV reads them back: the file plays."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        return stream.codec_context.name, stream.average_rate, (stream.width, stream.height), frames


def test_h264_round_trip_with_exact_ntsc_rate(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 29.97, (W, H)) as writer:
        for i in range(30):
            writer.write(_frame(i))
        assert not path.exists()  # only the hidden temp file while encoding
    assert writer.frames_written == 30 and writer.partial_path is None
    codec, rate, size, frames = _probe(path)
    assert (codec, rate, size, len(frames)) == ("h264", Fraction(30000, 1001), (W, H), 30)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: browsers can stream it
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.mark.parametrize("fps, rate", [
    (29.97, Fraction(30000, 1001)), (30000 / 1001, Fraction(30000, 1001)), (23.976, Fraction(24000, 1001)),
    (59.94, Fraction(60000, 1001)), (25.0, Fraction(25)), (30.0000001, Fraction(30)), (12.5, Fraction(25, 2)),
])  # fmt: skip
def test_exact_rate(fps: float, rate: Fraction) -> None:
    assert exact_rate(fps) == rate


@pytest.mark.parametrize("fps", [0.0, -5.0, float("nan"), float("inf")])
def test_bad_fps_is_a_user_error(tmp_path: Path, fps: float) -> None:
    with pytest.raises(DehrnetError, match="fps must be a positive number"):
        VideoWriter(tmp_path / "out.mp4", fps, (W, H))
    assert list(tmp_path.iterdir()) == []


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    image = np.zeros((47, 63, 3), np.uint8)
    image[:, -1] = 200  # the last column, replicated into the padding
    with VideoWriter(path, 25, (63, 47)) as writer:
        assert writer.video_size == (64, 48)
        for _ in range(5):
            writer.write(image)
    _, _, size, frames = _probe(path)
    assert size == (64, 48) and len(frames) == 5
    assert frames[0][:, -1].mean() > 180 and frames[0][-1, :40].mean() < 20  # replicated, not black


def test_a_frame_of_another_size_is_resized(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 25, (W, H)) as writer:
        writer.write(_frame(10, size=(128, 96)))
    _, _, size, frames = _probe(path)
    assert size == (W, H) and abs(frames[0].mean() - 80) < 4


@pytest.mark.parametrize("error", [RuntimeError("model crashed"), KeyboardInterrupt()])
def test_failure_keeps_a_playable_partial_and_the_old_output(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous run")
    with pytest.raises(type(error)):
        with VideoWriter(path, 25, (W, H)) as writer:
            for i in range(10):
                writer.write(_frame(i))
            raise error
    assert path.read_bytes() == b"previous run"
    assert writer.partial_path == tmp_path / "out.partial.mp4"
    assert len(_probe(writer.partial_path)[3]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "out.partial.mp4"]


def test_failure_before_any_frame_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "out.mp4", 25, (W, H)) as writer:
            raise ValueError("no frames")
    assert writer.partial_path is None and list(tmp_path.iterdir()) == []


def test_fallback_to_opencv_when_pyav_has_no_h264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(video_writer, "has_encoder", lambda codec: False)
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 25, (W, H)) as writer:
        for i in range(11):
            writer.write(_frame(i))
        writer.write(_frame(11, size=(2 * W, 2 * H)))  # resized (OpenCV would drop it silently)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OpenCV" in err[0]
    codec, rate, size, frames = _probe(path)
    assert (codec, rate, size, len(frames)) == ("mpeg4", Fraction(25), (W, H), 12)


def test_unsupported_video_extension(tmp_path: Path) -> None:
    with pytest.raises(DehrnetError, match=r"out\.gif: a video output must end in \.mp4"):
        VideoWriter(tmp_path / "out.gif", 25, (W, H))


def test_other_containers(tmp_path: Path) -> None:
    for name in ("out.mkv", "out.avi", "out.mov"):
        with VideoWriter(tmp_path / name, 10, (W, H)) as writer:
            for i in range(3):
                writer.write(_frame(i))
        assert len(_probe(tmp_path / name)[3]) == 3


def test_write_image_round_trip_and_errors(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    png = write_image(tmp_path / "sous dossier" / "été 1.png", image)
    decoded = cv2.imdecode(np.fromfile(png, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, image)
    jpg = write_image(tmp_path / "a.JPG", image)
    assert jpg.read_bytes()[:2] == b"\xff\xd8"
    with pytest.raises(DehrnetError, match=r"b\.xyz: cannot write an image"):
        write_image(tmp_path / "b.xyz", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.JPG", "sous dossier"]
