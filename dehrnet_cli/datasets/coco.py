"""COCO keypoint training data: the people of an annotation file as the official loader takes them, and
the folder layout of a COCO download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.datasets.records import DataPaths, PersonRecord
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import (
    center_scale_from_xywh,
    clean_gt_box,
)
from models import PoseNetConfig


def coco_records(ann_file: Path, images_dir: Path, config: PoseNetConfig, flag: str = "--train-ann"
                 ) -> list[PersonRecord]:
    """Training people of a COCO keypoint file, as the official loader: category 1, not crowd, box cleaned
    (`clean_gt_box`, area > 0), at least one labelled keypoint; center/scale by `_xywh2cs`."""
    doc = read_json(ann_file, flag)
    if not (isinstance(doc, dict) and isinstance(doc.get("images"), list)
            and isinstance(doc.get("annotations"), list)):
        raise DehrnetError(f"{flag} {ann_file}: not a COCO annotation file (needs 'images' and 'annotations' lists, "
                           "like person_keypoints_train2017.json)")
    num_k = config.num_keypoints
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    records = []
    try:
        for image in doc["images"]:
            for ann in by_image.get(image["id"], []):
                if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0) or max(ann["keypoints"]) == 0:
                    continue
                box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
                if box is None:
                    continue
                kpts = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
                if len(kpts) != num_k:
                    raise DehrnetError(f"{flag} {ann_file}: annotation {ann.get('id')} has {len(kpts)} keypoints; "
                                       f"the model {config.name} predicts {num_k}")
                center, scale = center_scale_from_xywh(box[None], config.input_size)
                records.append(PersonRecord(str(Path(images_dir) / image["file_name"]), int(image["id"]), box,
                                            center[0], scale[0], kpts[:, :2].copy(),
                                            np.minimum(kpts[:, 2], 1).astype(np.float32)))
    except (KeyError, TypeError, ValueError) as e:
        raise DehrnetError(f"{flag} {ann_file}: malformed COCO annotation ({type(e).__name__}: {e})") from None
    return records


def coco_paths(root: Path | None, train_ann: Path | None = None, train_images: Path | None = None,
               val_ann: Path | None = None, val_images: Path | None = None) -> DataPaths:
    """COCO layout `root/{train2017,val2017}/` + `root/annotations/person_keypoints_{train,val}2017.json`
    (the official `root/images/train2017` also works); explicit paths override the parts. Checked."""
    if root is None and None in (train_ann, train_images, val_ann, val_images):
        raise DehrnetError("give --coco DIR, or all four of --train-ann, --train-images, --val-ann, --val-images")

    def images(split: str) -> Path:
        official = Path(root) / "images" / split
        return official if not (Path(root) / split).exists() and official.is_dir() else Path(root) / split

    paths = DataPaths(
        Path(train_ann or Path(root) / "annotations" / "person_keypoints_train2017.json"),
        Path(train_images or images("train2017")),
        Path(val_ann or Path(root) / "annotations" / "person_keypoints_val2017.json"),
        Path(val_images or images("val2017")))
    paths.check(f"COCO folder {root}" if root is not None else "the COCO data given")
    return paths
