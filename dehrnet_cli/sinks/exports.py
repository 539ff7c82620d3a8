"""The per-person exports a predict run asked for (--csv, --save-crops), fed frame by frame and published
(or kept as partial) together when the run ends.
"""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.sinks.crops import CropSaver
from dehrnet_cli.sinks.keypoints_csv import PoseCsvWriter
from dehrnet_cli.stage_data import Frame, Poses, frame_time_s
from models import KeypointSpec


class PoseExports:
    """The exports a predict run asked for (--csv, --save-crops), fed frame by frame from the writer
    thread. `timed`: frames have times (video, camera, stream; not still images)."""

    def __init__(self, spec: KeypointSpec, csv_path: Path | None = None, crops_dir: Path | None = None,
                 fps: float | None = None, timed: bool = True) -> None:
        self.crops = CropSaver(crops_dir) if crops_dir is not None else None
        self.csv = PoseCsvWriter(csv_path, spec) if csv_path is not None else None  # last: it opens a file
        self.fps, self.timed = fps, timed

    def add(self, frame: Frame, poses: Poses, name: str | None = None) -> None:
        """One frame's poses; `name`: the frame's relative image name (crops mirror its folders)."""
        if self.csv is not None:
            self.csv.add(frame.index, frame_time_s(frame, self.fps) if self.timed else None, poses)
        if self.crops is not None:
            self.crops.add(frame, poses, name)

    def finish(self, ok: bool) -> tuple[list[Path], list[Path]]:
        """(outputs written, partial outputs kept): on success the CSV is published, else kept as partial."""
        outputs: list[Path] = []
        partial: list[Path] = []
        if self.csv is not None:
            if ok:
                outputs.append(self.csv.close())
            elif (kept := self.csv.abort()) is not None:
                partial.append(kept)
        if self.crops is not None and self.crops.count:
            (outputs if ok else partial).append(self.crops.folder)
        return outputs, partial
