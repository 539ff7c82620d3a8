"""Per-person exports for analysis: a keypoint CSV and optional person crops.

CSV: one row per frame x person x keypoint, columns `CSV_COLUMNS`:
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

from models import KeypointSpec

from .atomic import prepare_output, temp_path_for
from .errors import DehrnetError
from .types import Frame, Poses
from .video_stage import frame_time_s
from .video_writer import write_image

CSV_COLUMNS = ("frame", "time", "track_id", "person", "keypoint", "x", "y", "score")
CROP_PAD = 1.1  # person crops are the box grown by this factor about its centre


def check_export_paths(csv_path: Path | None, crops_dir: Path | None) -> None:
    """Refuse a --csv or --save-crops that cannot be written, before any work."""
    if csv_path is not None:
        if Path(csv_path).suffix.lower() != ".csv":
            raise DehrnetError(f"--csv {csv_path}: give a file name ending in .csv")
        if Path(csv_path).is_dir():
            raise DehrnetError(f"--csv {csv_path}: is a folder; give a file name, e.g. {Path(csv_path) / 'poses.csv'}")
    if crops_dir is not None and Path(crops_dir).exists() and not Path(crops_dir).is_dir():
        raise DehrnetError(f"--save-crops {crops_dir}: exists and is not a folder; give a folder")


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
            self.partial_path = self.path.with_name(f"{self.path.stem}.partial{self.path.suffix}")
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


def crop_box(box_xyxy: np.ndarray, image_size: tuple[int, int], pad: float = CROP_PAD) -> tuple[int, int, int, int]:
    """Integer crop window (x1, y1, x2, y2) of a person box grown by `pad`, clipped to the image (w, h)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * pad / 2, (y2 - y1) * pad / 2
    width, height = image_size
    left, top = int(np.clip(np.floor(cx - half_w), 0, width)), int(np.clip(np.floor(cy - half_h), 0, height))
    right, bottom = int(np.clip(np.ceil(cx + half_w), 0, width)), int(np.clip(np.ceil(cy + half_h), 0, height))
    return left, top, right, bottom


class CropSaver:
    """Writes each person's box (grown by CROP_PAD) as an image: `DIR/track_0007/<frame>.jpg` with track
    ids, else `DIR/<frame>_p<person>.jpg`; <frame> is the image's stem or the 6-digit frame index."""

    def __init__(self, folder: Path, suffix: str = ".jpg") -> None:
        self.folder = Path(folder).expanduser()
        check_export_paths(None, self.folder)
        self.suffix = suffix
        self.count = 0

    def add(self, frame: Frame, poses: Poses) -> None:
        stem = frame.path.stem if frame.path is not None else f"{frame.index:06d}"
        for n in range(len(poses)):
            left, top, right, bottom = crop_box(poses.boxes_xyxy[n], frame.size)
            if right - left < 1 or bottom - top < 1:
                continue
            if poses.track_ids is None:
                path = self.folder / f"{stem}_p{n}{self.suffix}"
            else:
                path = self.folder / f"track_{int(poses.track_ids[n]):04d}" / f"{stem}{self.suffix}"
            write_image(path, np.ascontiguousarray(frame.image[top:bottom, left:right]))
            self.count += 1


class PoseExports:
    """The exports a predict run asked for (--csv, --save-crops), fed frame by frame from the writer
    thread. `timed`: frames have times (video, camera, stream; not still images)."""

    def __init__(self, spec: KeypointSpec, csv_path: Path | None = None, crops_dir: Path | None = None,
                 fps: float | None = None, timed: bool = True) -> None:
        self.crops = CropSaver(crops_dir) if crops_dir is not None else None
        self.csv = PoseCsvWriter(csv_path, spec) if csv_path is not None else None  # last: it opens a file
        self.fps, self.timed = fps, timed

    def add(self, frame: Frame, poses: Poses) -> None:
        if self.csv is not None:
            self.csv.add(frame.index, frame_time_s(frame, self.fps) if self.timed else None, poses)
        if self.crops is not None:
            self.crops.add(frame, poses)

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
