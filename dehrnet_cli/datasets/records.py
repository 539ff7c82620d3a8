"""One annotated person (`PersonRecord`), the four paths of a dataset (`DataPaths`), and grouping people
by image. Coordinates are 0-based image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError


@dataclass(frozen=True, eq=False)
class PersonRecord:
    """One annotated person.

    image: the image file (or a generator key, see datasets/synthetic.py); box_xywh (4,) the cleaned person box;
    center (2,) and scale (2,) (200 px units, padded) define the un-augmented crop; keypoints_xy (K, 2);
    visible (K,) 1 for labelled joints, 0 otherwise (COCO v=1 and v=2 both count, as the official loader).
    """

    image: str
    image_id: int
    box_xywh: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    keypoints_xy: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True)
class DataPaths:
    """The four pieces of a dataset: training/validation annotation files and image folders."""

    train_ann: Path
    train_images: Path
    val_ann: Path
    val_images: Path

    def check(self, what: str) -> None:
        """One DehrnetError naming every missing piece."""
        missing = [f"{p} ({name})" for name, p, ok in (
            ("training annotations", self.train_ann, self.train_ann.is_file()),
            ("training images", self.train_images, self.train_images.is_dir()),
            ("validation annotations", self.val_ann, self.val_ann.is_file()),
            ("validation images", self.val_images, self.val_images.is_dir())) if not ok]
        if missing:
            raise DehrnetError(f"{what} is incomplete, missing: {'; '.join(map(str, missing))}")


def rows_by_image(images: list[str]) -> dict[str, list[int]]:
    """Positions of `images` (one entry per person) grouped by image, in first-seen order: what lets the people of
    one image share its decode and its crops."""
    rows: dict[str, list[int]] = {}
    for n, image in enumerate(images):
        rows.setdefault(image, []).append(n)
    return rows
