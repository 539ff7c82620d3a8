"""Person crops for analysis (--save-crops): each person's box, grown by CROP_PAD, written as an image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.sinks.outputs import check_export_paths
from dehrnet_cli.sinks.video_writer import write_image
from dehrnet_cli.stage_data import Frame, Poses

CROP_PAD = 1.1  # person crops are the box grown by this factor about its centre


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
    ids, else `DIR/<frame>_p<person>.jpg`; <frame> is the image's relative name without its suffix
    (`a/bus` for `shots/a/bus.jpg`: two images called bus.jpg in different folders keep apart) or the 6-digit
    frame index."""

    def __init__(self, folder: Path, suffix: str = ".jpg") -> None:
        self.folder = Path(folder).expanduser()
        check_export_paths(None, self.folder)
        self.suffix = suffix
        self.count = 0

    def add(self, frame: Frame, poses: Poses, name: str | None = None) -> None:
        """Crops of one frame; `name`: its relative image name (default: the file name, or none for video)."""
        if frame.path is None:
            stem = f"{frame.index:06d}"
        else:
            stem = Path(name or frame.path.name).with_suffix("").as_posix()
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
