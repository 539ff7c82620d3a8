"""COCO keypoint training data: the keypoint category of an annotation file (its keypoint set), its people as
the official loader takes them, and the folder layout of a COCO download.

A COCO-format file defines its keypoint set in a category: `keypoints` (names), `skeleton` (1-based pairs) and,
where given, `kpt_oks_sigmas` (one per keypoint, on COCOeval's scale: 0.026 for the COCO nose, as ultralytics'
data.yaml key of the same name). A file with the COCO person category gives exactly the COCO-17 set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.datasets.records import DataPaths, PersonRecord
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import (
    center_scale_from_xywh,
    clean_gt_box,
)
from models import KeypointSpec, PoseNetConfig, keypoint_set

SIGMA_SCALE = 10.0  # KeypointSpec sigmas = kpt_oks_sigmas (COCOeval's scale) x 10


def keypoint_categories(categories: list) -> list[dict]:
    """The categories that define keypoints (a non-empty `keypoints` list)."""
    return [c for c in categories if isinstance(c, dict) and isinstance(c.get("keypoints"), list) and c["keypoints"]]


def choose_category(categories: list, source: str, name: str | None = None,
                    names: Sequence[str] | None = None) -> dict:
    """The keypoint category of a COCO file: the one called `name` (--category); else the only one; else the
    one whose keypoint names are `names` (a model's). Otherwise one DehrnetError listing them."""
    found = keypoint_categories(categories)
    listing = ", ".join(f"{c.get('name')!r} ({len(c['keypoints'])} keypoints)" for c in found)
    if not found:
        raise DehrnetError(f"{source}: no category defines keypoints (a category needs a 'keypoints' list of "
                           "names, like the person category of person_keypoints_val2017.json)")
    if name is not None:
        chosen = [c for c in found if c.get("name") == name]
        if len(chosen) != 1:
            what = "no" if not chosen else "more than one"
            raise DehrnetError(f"--category {name}: {what} keypoint category of that name in {source}; it has "
                               f"{listing}")
        return chosen[0]
    if len(found) == 1:
        return found[0]
    if names is not None:
        matching = [c for c in found if tuple(c["keypoints"]) == tuple(names)]
        if len(matching) == 1:
            return matching[0]
    raise DehrnetError(f"{source} has {len(found)} keypoint categories: {listing}; choose one with --category NAME")


def category_keypoint_set(category: dict, source: str, sigmas: Sequence[float] | None = None,
                          flip_pairs: Sequence[tuple[str, str]] | None = None) -> KeypointSpec:
    """The KeypointSpec of a COCO keypoint category: its names, its 1-based skeleton, its `kpt_oks_sigmas` or
    `sigmas` (both on COCOeval's scale; `sigmas` wins: --sigmas) and flip pairs of names (`flip_pairs`:
    --flip-pairs; default: found by name)."""
    where = f"{source}: category {category.get('name')!r}"
    names = category["keypoints"]
    skeleton = category.get("skeleton") or []
    if not isinstance(skeleton, list) or not all(isinstance(p, list) and len(p) == 2 for p in skeleton):
        raise DehrnetError(f"{where}: 'skeleton' must be a list of [a, b] pairs of 1-based keypoint numbers")
    bones = [[v - 1 if isinstance(v, int) and not isinstance(v, bool) else v for v in pair] for pair in skeleton]
    given = category.get("kpt_oks_sigmas") if sigmas is None else sigmas
    if given is not None and not (isinstance(given, (list, tuple))
                                  and all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in given)):
        raise DehrnetError(f"{where}: 'kpt_oks_sigmas' must be a list of numbers, one per keypoint")
    pairs = None if flip_pairs is None else pairs_of_names(flip_pairs, names, where)
    return keypoint_set(str(category.get("name", "custom")), names, bones,
                        [SIGMA_SCALE * float(s) for s in given or ()], pairs, source=where)


def pairs_of_names(pairs: Sequence[tuple[str, str]], names: Sequence[str], source: str) -> list[list[int]]:
    """Flip pairs of keypoint names -> 0-based index pairs; an unknown name is a DehrnetError."""
    index = {name: k for k, name in enumerate(names)}
    unknown = [n for pair in pairs for n in pair if n not in index]
    if unknown:
        raise DehrnetError(f"--flip-pairs: {', '.join(unknown)} not among the keypoints of {source} "
                           f"({', '.join(names)})")
    return [[index[a], index[b]] for a, b in pairs]


class CocoKeypointFile:
    """A COCO keypoint document, read once: its keypoint categories and their people. `source` names it in
    messages (e.g. "--train-ann FILE")."""

    def __init__(self, doc: dict, source: str) -> None:
        self.doc, self.source = doc, source

    @classmethod
    def read(cls, ann_file: Path, flag: str = "--train-ann") -> CocoKeypointFile:
        doc = read_json(ann_file, flag)
        if not (isinstance(doc, dict) and isinstance(doc.get("images"), list)
                and isinstance(doc.get("annotations"), list)):
            raise DehrnetError(f"{flag} {ann_file}: not a COCO annotation file (needs 'images' and 'annotations' "
                               "lists, like person_keypoints_train2017.json)")
        return cls(doc, f"{flag} {ann_file}")

    def category(self, name: str | None = None, names: Sequence[str] | None = None) -> dict:
        """The keypoint category to train on (`choose_category`)."""
        categories = self.doc.get("categories")
        return choose_category(categories if isinstance(categories, list) else [], self.source, name, names)

    def keypoint_set(self, category: dict, sigmas: Sequence[float] | None = None,
                     flip_pairs: Sequence[tuple[str, str]] | None = None) -> KeypointSpec:
        return category_keypoint_set(category, self.source, sigmas, flip_pairs)

    def records(self, images_dir: Path, config: PoseNetConfig, category: dict) -> list[PersonRecord]:
        """Training people of `category`, as the official loader: not crowd, box cleaned (`clean_gt_box`, area
        > 0), at least one labelled keypoint; center/scale by `_xywh2cs`."""
        num_k, category_id = config.num_keypoints, category.get("id")
        by_image: dict[int, list[dict]] = {}
        for ann in self.doc["annotations"]:
            by_image.setdefault(ann.get("image_id"), []).append(ann)
        records = []
        try:
            for image in self.doc["images"]:
                for ann in by_image.get(image["id"], []):
                    if ann.get("category_id", category_id) != category_id or ann.get("iscrowd", 0) \
                            or max(ann["keypoints"]) == 0:
                        continue
                    box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
                    if box is None:
                        continue
                    kpts = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
                    if len(kpts) != num_k:
                        raise DehrnetError(f"{self.source}: annotation {ann.get('id')} has {len(kpts)} keypoints; "
                                           f"the model {config.name} predicts {num_k}")
                    center, scale = center_scale_from_xywh(box[None], config.input_size)
                    records.append(PersonRecord(str(Path(images_dir) / image["file_name"]), int(image["id"]), box,
                                                center[0], scale[0], kpts[:, :2].copy(),
                                                np.minimum(kpts[:, 2], 1).astype(np.float32)))
        except (KeyError, TypeError, ValueError) as e:
            raise DehrnetError(f"{self.source}: malformed COCO annotation ({type(e).__name__}: {e})") from None
        return records


def coco_records(ann_file: Path, images_dir: Path, config: PoseNetConfig, flag: str = "--train-ann",
                 category: str | None = None) -> list[PersonRecord]:
    """Training people of a COCO keypoint file (`CocoKeypointFile.records`) of the category called `category`,
    else of its only keypoint category, else of the one with the model's keypoint names."""
    file = CocoKeypointFile.read(ann_file, flag)
    return file.records(images_dir, config, file.category(category, config.keypoints.names))


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
