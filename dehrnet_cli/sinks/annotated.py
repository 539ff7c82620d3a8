"""Annotated media as sinks (sinks.sink_set): the skeletons drawn on every frame (`PoseResult.plot`) and written
as one H.264 video, or as image files at the paths the run plan decided.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.sinks.video_writer import VideoWriter, write_image


class AnnotatedVideoSink:
    """Every frame, drawn, into the video at `path` (`fps` frames per second, the first frame's size);
    `abort(frames)` finalises the frames so far as a playable NAME.partial.EXT."""

    def __init__(self, path: Path, fps: float | None, plot_options: dict[str, Any], what: str = "--out") -> None:
        self.path, self.fps, self.plot_options, self.what = Path(path), fps or 30.0, plot_options, what
        self.writer: VideoWriter | None = None

    def add(self, result: PoseResult) -> None:
        if self.writer is None:
            self.writer = VideoWriter(self.path, self.fps, result.size, what=f"{self.what} {self.path}")
        self.writer.write(result.plot(**self.plot_options))

    def finish(self) -> list[Path]:
        if self.writer is None:
            return []
        self.writer.close()
        return [self.writer.path]

    def abort(self, frames: int) -> list[Path]:
        if self.writer is None:
            return []
        self.writer.abort()  # the frames it holds are the done ones: this sink comes last in its set
        return [self.writer.partial_path] if self.writer.partial_path is not None else []


class AnnotatedImagesSink:
    """Every frame, drawn, as an image file: `paths[index]` (decided by the run plan); `folder` is what the
    outputs list names (the --out folder, or the one image file)."""

    def __init__(self, paths: dict[int, Path], folder: Path, plot_options: dict[str, Any],
                 what: str = "--out") -> None:
        self.paths, self.folder, self.plot_options, self.what = paths, Path(folder), plot_options, what
        self.written: list[Path] = []

    def add(self, result: PoseResult) -> None:
        path = self.paths[result.index]
        self.written.append(write_image(path, result.plot(**self.plot_options), what=f"{self.what} {path}"))

    def finish(self) -> list[Path]:
        return [self.folder] if self.written else []

    def abort(self, frames: int) -> list[Path]:
        for path in self.written[frames:]:
            path.unlink(missing_ok=True)
        del self.written[frames:]
        return [self.folder] if self.written else []
