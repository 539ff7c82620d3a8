"""What every input source is: an iterable of `Frame`s with what a progress bar and a video writer need to
know; the file suffixes and URL schemes dehrnet recognises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from dehrnet_cli.stage_data import Frame

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm"}
)  # fmt: skip

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")


class Source(ABC):
    """An iterable of `Frame`s with what a progress bar and a video writer need to know.

    kind: "images", "video", "camera" or "stream"; is_live: frames arrive in real time (stale ones
    are dropped); fps, size (w, h) and num_frames: None when unknown; skipped: (path, reason) of
    unreadable images that were left out; name: the source as shown in messages.
    """

    kind: str
    is_live: bool = False
    fps: float | None = None
    size: tuple[int, int] | None = None
    num_frames: int | None = None

    def __init__(self, name: str):
        self.name = name
        self.skipped: list[tuple[Path, str]] = []

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files, threads and devices; safe to call twice. Image sources hold nothing open."""
        return None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
