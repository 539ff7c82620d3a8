"""Person crops for analysis (--save-crops): each person's box, grown by CROP_PAD, written as an image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.sinks.video_writer import write_image

CROP_PAD = 1.1  # person crops are the box grown by this factor about its centre


def crop_box(box_xyxy: np.ndarray, image_size: tuple[int, int], pad: float = CROP_PAD) -> tuple[int, int, int, int]:
    """Integer crop window (x1, y1, x2, y2) of a person box grown by `pad`, clipped to the image (w, h)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy, half_w, half_h = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * pad / 2, (y2 - y1) * pad / 2
    width, height = image_size
    left, top = int(np.clip(np.floor(cx - half_w), 0, width)), int(np.clip(np.floor(cy - half_h), 0, height))
    right, bottom = int(np.clip(np.ceil(cx + half_w), 0, width)), int(np.clip(np.ceil(cy + half_h), 0, height))
    return left, top, right, bottom


class CropsSink:
    """Writes each person's box (grown by CROP_PAD) as an image, a sink (sinks.sink_set):
    `DIR/track_0007/<frame>.jpg` with track ids, else `DIR/<frame>_p<person>.jpg`; <frame> is the image's
    relative name without its suffix (`a/bus` for `shots/a/bus.jpg`: two images called bus.jpg in different
    folders keep apart) or the 6-digit frame index. Each crop is written atomically as it comes; `abort(frames)`
    removes the crops of frames after the first `frames`."""

    def __init__(self, folder: Path, suffix: str = ".jpg") -> None:
        self.folder = Path(folder).expanduser()
        self.suffix = suffix
        self.written: list[list[Path]] = []  # per frame

    @property
    def count(self) -> int:
        return sum(len(files) for files in self.written)

    def add(self, result: PoseResult) -> None:
        """Crops of one frame."""
        if result.path is None:
            stem = f"{result.index:06d}"
        else:
            stem = Path(result.name or result.path.name).with_suffix("").as_posix()
        poses, files = result.poses, []
        self.written.append(files)
        for n in range(len(poses)):
            left, top, right, bottom = crop_box(poses.boxes_xyxy[n], result.size)
            if right - left < 1 or bottom - top < 1:
                continue
            if poses.track_ids is None:
                path = self.folder / f"{stem}_p{n}{self.suffix}"
            else:
                path = self.folder / f"track_{int(poses.track_ids[n]):04d}" / f"{stem}{self.suffix}"
            files.append(write_image(path, np.ascontiguousarray(result.image[top:bottom, left:right]),
                                     what=f"--save-crops {path}"))

    def finish(self) -> list[Path]:
        return [self.folder] if self.count else []

    def abort(self, frames: int) -> list[Path]:
        for files in self.written[frames:]:
            for path in files:
                path.unlink(missing_ok=True)
        del self.written[frames:]
        return [self.folder] if self.count else []


def may_write_crop(relative_name: str) -> bool:
    """Whether a crops folder may write a file of this name (relative to the folder): `*_pN.EXT` or
    `track_NNNN/...` (the run plan checks it against the files a run reads)."""
    return bool(re.fullmatch(r"track_\d{4,}/.+|.+_p\d+\.[^./]+", relative_name))
