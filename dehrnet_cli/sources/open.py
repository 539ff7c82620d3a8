"""`open_source(spec)`: the one entry point from a user's source argument (image, folder, glob, .txt list,
video, camera index, stream URL) to a `Source`, with one-line errors naming the source.
"""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sources.base import IMAGE_SUFFIXES, STREAM_SCHEMES, VIDEO_SUFFIXES, Source
from dehrnet_cli.sources.images import ImageSource, open_folder, open_glob, open_list
from dehrnet_cli.sources.orientation import check_orientation
from dehrnet_cli.sources.video import open_camera, open_stream, open_video

_HELP = "give an image, a folder, a glob, a .txt list of images, a video, a camera index or a stream URL"


def open_source(spec: str, *, orientation: str = "stored") -> Source:
    """Open what `spec` names: a camera index ("0"), an rtsp/rtmp/http(s) URL, a video file, an
    image file, a folder of images, a glob of images or a .txt list of images.

    Videos always come out as displayed (their display matrix applied). Images: `orientation` "stored" (the
    stored pixels, as COCO annotations were made) or "exif" (as viewers show them). Raises DehrnetError with one
    line naming the source and the problem when it cannot be opened.
    """
    orientation = check_orientation(orientation)
    text = str(spec).strip()
    if not text:
        raise DehrnetError(f"empty source; {_HELP}")
    if text.isdigit():
        return open_camera(int(text))
    if text.lower().startswith(STREAM_SCHEMES):
        return open_stream(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return open_folder(path, orientation)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return open_video(path)
        if suffix == ".txt":
            return open_list(path, orientation)
        if suffix in IMAGE_SUFFIXES:
            return ImageSource([path], str(path), orientation=orientation, skip_unreadable=False, single_file=True)
        raise DehrnetError(f"{path}: unknown file type '{path.suffix}'; {_HELP} (videos: "
                           f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    if path.exists():
        raise DehrnetError(f"{path}: not a regular file or folder; {_HELP}")
    if any(c in text for c in "*?["):
        return open_glob(text, orientation)
    raise DehrnetError(f"{path}: no such file or folder; {_HELP}")
