"""Keypoints as CSV for analysis: one row per frame x person x keypoint, columns `CSV_COLUMNS`:
    frame     0-based frame index in the source
    time      seconds (the frame's presentation time, else index / fps); empty for still images
    track_id  the person's track id; empty without tracking
    person    the person's position among the frame's people (as in the COCO JSON)
    keypoint  the keypoint name (e.g. left_wrist)
    x, y      image pixels
    score     the keypoint's heatmap score (low: occluded or unsure)
The file is written to a hidden temp file beside the final name as frames come, and moved into place
when the run ends; a run that fails or is interrupted keeps the rows of its done frames as `<stem>.partial.csv`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import StagedFile, write_error
from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.stage_data import frame_time_s
from models import KeypointSpec

CSV_COLUMNS = ("frame", "time", "track_id", "person", "keypoint", "x", "y", "score")


class CsvSink:
    """Streams poses to a CSV (see the module docstring), a sink (sinks.sink_set): `finish()` publishes it
    atomically, `abort(frames)` keeps the rows of the first `frames` frames as NAME.partial.csv. `timed`:
    frames have times (video, camera, stream; not still images), from their presentation time or `fps`."""

    def __init__(self, path: Path, spec: KeypointSpec, fps: float | None = None, timed: bool = True) -> None:
        if Path(path).suffix.lower() != ".csv":
            raise DehrnetError(f"--csv {path}: give a file name ending in .csv")
        self.staged = StagedFile(Path(path), f"--csv {path}")
        self.names = list(spec.names)
        self.fps, self.timed = fps, timed
        self.rows = 0
        self.frame_ends: list[int] = []  # the file's size after each frame's rows
        try:
            self._file = open(self.staged.temp, "w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._file)
            self._csv.writerow(CSV_COLUMNS)
        except OSError as e:
            self.staged.discard()
            raise write_error(self.staged.what, e) from None
        self._header_end = self._file.tell()

    def add(self, result: PoseResult) -> None:
        """The rows of one frame: keypoints_xy (N, K, 2) image pixels, kpt_scores (N, K)."""
        frame_time = frame_time_s(result, self.fps) if self.timed else None
        time_text = "" if frame_time is None else f"{frame_time:.4f}"
        poses = result.poses
        try:
            for n in range(len(poses)):
                track = "" if poses.track_ids is None else str(int(poses.track_ids[n]))
                for k, name in enumerate(self.names):
                    x, y = poses.keypoints_xy[n, k]
                    self._csv.writerow((result.index, time_text, track, n, name, f"{x:.2f}", f"{y:.2f}",
                                        f"{poses.kpt_scores[n, k]:.4f}"))
            self._file.flush()
        except OSError as e:
            raise write_error(self.staged.what, e) from None
        self.rows += len(poses) * len(self.names)
        self.frame_ends.append(self._file.tell())

    def _close_file(self, frames: int | None = None) -> None:
        """Close the temp file, cut after the rows of the first `frames` frames when given."""
        if not self._file.closed:
            try:
                self._file.flush()
            except OSError:
                pass  # a full disk: the size below still cuts off what did not make it
            self._file.close()
        if frames is not None:
            os.truncate(self.staged.temp, self.frame_ends[frames - 1] if frames else self._header_end)

    def finish(self) -> list[Path]:
        """Move the complete file onto its final name."""
        try:
            self._close_file()
        except OSError as e:
            self.staged.discard()
            raise write_error(self.staged.what, e) from None
        return [self.staged.publish()]

    def abort(self, frames: int) -> list[Path]:
        """Keep the rows of the first `frames` frames as NAME.partial.csv; nothing when `frames` is 0."""
        try:
            self._close_file(frames)
        except OSError:
            self.staged.discard()
            raise
        if frames == 0:
            self.staged.discard()
            return []
        kept = self.staged.keep_partial()
        return [kept] if kept is not None else []


def read_pose_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a pose CSV as arrays: frame, person (int64), track_id (int64, -1 when empty),
    time, x, y, score (float64, time NaN when empty) and keypoint (str)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = list(reader)
    except OSError as e:
        raise DehrnetError(f"{path}: cannot read the CSV ({e.strerror or e})") from None
    if header is None or tuple(header) != CSV_COLUMNS:
        raise DehrnetError(f"{path}: not a dehrnet pose CSV (expected the header {','.join(CSV_COLUMNS)})")
    cols = list(zip(*rows)) if rows else [()] * len(CSV_COLUMNS)
    table = dict(zip(CSV_COLUMNS, cols))
    number = {"frame": np.int64, "person": np.int64, "x": np.float64, "y": np.float64, "score": np.float64}
    out: dict[str, np.ndarray] = {name: np.asarray(table[name], dtype=kind) for name, kind in number.items()}
    out["time"] = np.asarray([float(t) if t else np.nan for t in table["time"]], np.float64)
    out["track_id"] = np.asarray([int(t) if t else -1 for t in table["track_id"]], np.int64)
    out["keypoint"] = np.asarray(table["keypoint"], dtype=str)
    return out
