"""Keypoints as CSV for analysis: one row per frame x person x keypoint, columns `CSV_COLUMNS`:
    frame     0-based frame index in the source
    time      seconds (the frame's presentation time, else index / fps); empty for still images
    track_id  the person's track id; empty without tracking
    person    the person's position among the frame's people (as in the COCO JSON)
    keypoint  the keypoint name (e.g. left_wrist)
    x, y      image pixels
    score     the keypoint's heatmap score (low: occluded or unsure)
The file is written to a hidden temp file beside the final name as frames come, and moved into place
when the run ends; a run that fails or is interrupted keeps what it has as `<stem>.partial.csv`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import partial_path_for, prepare_output, temp_path_for
from dehrnet_cli.sinks.outputs import check_export_paths
from dehrnet_cli.stage_data import Poses
from models import KeypointSpec

CSV_COLUMNS = ("frame", "time", "track_id", "person", "keypoint", "x", "y", "score")


class PoseCsvWriter:
    """Streams poses to a CSV (see the module docstring); close() publishes it atomically."""

    def __init__(self, path: Path, spec: KeypointSpec) -> None:
        check_export_paths(Path(path), None)
        self.path = prepare_output(Path(path))
        self.names = list(spec.names)
        self.tmp = temp_path_for(self.path)
        self.partial_path: Path | None = None
        self.rows = 0
        self._file = open(self.tmp, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS)

    def add(self, frame_index: int, time_s: float | None, poses: Poses) -> None:
        """The rows of one frame: poses.keypoints_xy (N, K, 2) image pixels, kpt_scores (N, K)."""
        time_text = "" if time_s is None else f"{time_s:.4f}"
        for n in range(len(poses)):
            track = "" if poses.track_ids is None else str(int(poses.track_ids[n]))
            for k, name in enumerate(self.names):
                x, y = poses.keypoints_xy[n, k]
                self._csv.writerow((frame_index, time_text, track, n, name, f"{x:.2f}", f"{y:.2f}",
                                    f"{poses.kpt_scores[n, k]:.4f}"))
            self.rows += len(self.names)

    def _close_file(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def close(self) -> Path:
        """Move the complete file onto its final name; returns it."""
        self._close_file()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> Path | None:
        """Keep the rows written so far as `<stem>.partial.csv` (set in partial_path) and return it;
        with no rows yet, leave nothing behind and return None."""
        try:
            self._close_file()
            if self.rows == 0:
                self.tmp.unlink(missing_ok=True)
                return None
            self.partial_path = partial_path_for(self.path)
            os.replace(self.tmp, self.partial_path)
        except OSError:
            self.tmp.unlink(missing_ok=True)
            self.partial_path = None
        return self.partial_path


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
