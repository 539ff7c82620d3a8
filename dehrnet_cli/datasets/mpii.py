"""MPII Human Pose data in the per-person json of the official HRNet code (annot/train.json, valid.json):
its people, their official crop, and the folder layout. MPII files use 1-based (Matlab) pixels; records
are 0-based.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.datasets.records import DataPaths, PersonRecord
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import (
    PIXEL_STD,
)
from models import PoseNetConfig


def load_mpii_annotations(ann_file: Path) -> list[dict]:
    """The per-person MPII json (official HRNet / mmpose layout): image, center, scale, joints (16 x [x, y],
    1-based pixels), joints_vis (16 flags)."""
    people = read_json(ann_file, "--ann", "MPII annotation")
    for n, person in enumerate(people if isinstance(people, list) else [None]):
        ok = isinstance(person, dict) and {"image", "center", "scale", "joints", "joints_vis"} <= person.keys()
        if not ok or np.shape(person["joints"]) != (16, 2) or np.shape(person["joints_vis"]) != (16,):
            raise DehrnetError(f"--ann {ann_file}: entry {n} is not an MPII person (image, center, scale, 16 joints "
                               "and 16 joints_vis, as annot/valid.json)")
    return people


def mpii_center_scale(person: dict) -> tuple[np.ndarray, np.ndarray]:
    """The official MPII test crop of one annotated person: center moved down 15 x scale px, scale x1.25
    (unless center x is -1), then 1-based -> 0-based. Returns center (2,) image pixels, scale (2,) (200 px)."""
    center = np.asarray(person["center"], np.float64).copy()
    scale = np.asarray([person["scale"], person["scale"]], np.float64)
    if center[0] != -1:
        center[1] += 15 * scale[1]
        scale = scale * 1.25
    return center - 1, scale


def mpii_records(ann_file: Path, images_dir: Path, config: PoseNetConfig) -> list[PersonRecord]:
    """People of an MPII per-person json (annot/train.json): the official crop (center moved down 15 x scale,
    scale x1.25, 1-based -> 0-based, `mpii_center_scale`) and 0-based joints."""
    from dehrnet_cli.datasets.mpii import load_mpii_annotations, mpii_center_scale

    if config.num_keypoints != 16:
        raise DehrnetError(f"MPII has 16 keypoints; the model {config.name} predicts {config.num_keypoints}: "
                           "use an MPII config such as dehrnet_w32_mpii_256x256")
    records = []
    for n, person in enumerate(load_mpii_annotations(ann_file)):
        center, scale = mpii_center_scale(person)
        side = scale[0] / 1.25 * PIXEL_STD  # the annotated person size, as a square box around the crop center
        box = np.array([center[0] - side / 2, center[1] - side / 2, side, side])
        records.append(PersonRecord(str(Path(images_dir) / person["image"]), n, box, center.astype(np.float32),
                                    scale.astype(np.float32), np.asarray(person["joints"], np.float64) - 1.0,
                                    (np.asarray(person["joints_vis"]) > 0).astype(np.float32)))
    return records


def mpii_paths(root: Path | None, train_ann: Path | None = None, train_images: Path | None = None,
               val_ann: Path | None = None, val_images: Path | None = None) -> DataPaths:
    """MPII layout of the official code: `root/images/`, `root/annot/{train,valid}.json`. Checked."""
    if root is None and None in (train_ann, train_images, val_ann, val_images):
        raise DehrnetError("give --mpii DIR, or all four of --train-ann, --train-images, --val-ann, --val-images")
    paths = DataPaths(Path(train_ann or Path(root) / "annot" / "train.json"),
                      Path(train_images or Path(root) / "images"),
                      Path(val_ann or Path(root) / "annot" / "valid.json"),
                      Path(val_images or Path(root) / "images"))
    paths.check(f"MPII folder {root}" if root is not None else "the MPII data given")
    return paths
