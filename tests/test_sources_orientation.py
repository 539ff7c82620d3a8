"""Pictures as the user sees them: a video whose container carries a display matrix (a portrait phone video) is
decoded upright, with its size in displayed pixels, and predict's JSON and annotated video follow; images are
read as stored or with their EXIF orientation, as asked."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from dehrnet_cli.cli.app import app
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.sources.open import open_source

# the picture as it is meant to be seen: 96 wide, 128 tall; white top-left quarter, gray bottom-right
UPRIGHT = np.zeros((128, 96, 3), np.uint8)
UPRIGHT[:64, :48] = 255
UPRIGHT[64:, 48:] = 100


def stored_for(upright: np.ndarray, degrees: int, hflip: bool, vflip: bool) -> np.ndarray:
    """The stored frame that a player shows as `upright` under PyAV's `set_display_rotation(degrees, hflip,
    vflip)`: displayed = mirror(rotate `degrees` counter-clockwise(stored)), so undo the mirror, then the turn."""
    mirrored = upright[:, ::-1] if hflip else upright
    mirrored = mirrored[::-1] if vflip else mirrored
    return np.ascontiguousarray(np.rot90(mirrored, -degrees // 90))


def tagged_video(path: Path, stored: np.ndarray, degrees: float, hflip: bool = False, vflip: bool = False,
                 frames: int = 3) -> Path:
    """An H.264 file of `stored` frames whose container says: show them rotated (and mirrored)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv444p"
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for _ in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("degrees, hflip, vflip", [
    (-90, False, False),  # a portrait phone video: stored sideways, shown turned clockwise
    (90, False, False), (180, False, False), (0, True, False), (0, False, True), (90, True, False),
    (-90, True, False), (180, True, False)])
def test_a_video_with_a_display_matrix_is_decoded_upright(tmp_path, degrees, hflip, vflip) -> None:
    stored = stored_for(UPRIGHT, degrees, hflip, vflip)
    path = tagged_video(tmp_path / "clip.mp4", stored, degrees, hflip, vflip)
    with open_source(str(path)) as source:
        images = [frame.image for frame in source]
    assert source.size == (96, 128)  # displayed pixels: (w, h)
    assert len(images) == 3
    for image in images:
        assert image.shape == UPRIGHT.shape
        assert np.abs(image.astype(int) - UPRIGHT).max() <= 3  # H.264 at 4:4:4 keeps flat blocks nearly exact


def test_a_display_matrix_that_is_not_a_right_angle_is_not_applied_with_a_warning(tmp_path, capsys) -> None:
    path = tagged_video(tmp_path / "tilted.mp4", UPRIGHT, 45)
    with open_source(str(path)) as source:
        image = next(iter(source)).image
    assert image.shape == UPRIGHT.shape and source.size == (96, 128)
    assert "not a rotation by a multiple of 90 degrees" in capsys.readouterr().err


def test_predict_writes_a_phone_video_upright(tmp_path) -> None:
    """The JSON's width and height and the annotated video are those of the displayed picture; the annotated
    copy carries no rotation of its own, so every player shows it upright."""
    path = tagged_video(tmp_path / "phone.mp4", stored_for(UPRIGHT, -90, False, False), -90, frames=4)
    out, results = tmp_path / "annotated.mp4", tmp_path / "r.json"
    result = CliRunner().invoke(app, ["predict", str(path), "--model", "dehrnet_w8_128x96", "--untrained",
                                      "--no-flip", "--detector", "none", "--out", str(out), "--json", str(results)])
    assert result.exit_code == 0, result.output
    images = json.loads(results.read_text())["images"]
    assert {(im["width"], im["height"]) for im in images} == {(96, 128)} and len(images) == 4
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert not [sd for sd in frame.side_data if sd.type == av.sidedata.sidedata.Type.DISPLAYMATRIX]
        annotated = frame.to_ndarray(format="bgr24")
    assert annotated.shape == UPRIGHT.shape
    # the drawing covers little: the white quarter is still top-left, the gray one bottom-right
    assert annotated[:64, :48].mean() > 200 and 60 < annotated[64:, 48:].mean() < 140
    assert annotated[:64, 48:].mean() < 60 and annotated[64:, :48].mean() < 60


def _exif_rotated_jpeg(path: Path) -> Path:
    """A 40x20 stored JPEG (left half white) whose EXIF says: turn it 90 degrees clockwise to display."""
    pil = pytest.importorskip("PIL.Image")
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255
    image = pil.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif, quality=95)
    return path


def test_images_are_read_as_stored_or_as_shown_as_asked(tmp_path) -> None:
    path = _exif_rotated_jpeg(tmp_path / "rotated.jpg")
    stored = next(iter(ImageSource([path], "one", orientation="stored"))).image
    shown = next(iter(open_source(str(tmp_path), orientation="exif"))).image
    assert stored.shape == (20, 40, 3) and shown.shape == (40, 20, 3)
    assert shown[5, 10].min() > 200 and shown[35, 10].max() < 50  # the stored left half is on top
    with pytest.raises(DehrnetError, match="image orientation 'upright': use 'exif'"):
        open_source(str(path), orientation="upright")
