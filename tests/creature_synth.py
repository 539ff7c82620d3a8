"""A generated 6-keypoint creature (not a test module), seen from above, written as a COCO-format data set and
as an ultralytics pose data set: what the tests of custom keypoint sets train, predict and evaluate on.

The creature: a head and a tail joined by a thick body, one paw on each side at each end. Seen from above with
the head up, its left side is on the image's left, so a mirrored image shows a creature whose left paws are on
the image's right: left and right stay learnable under the flip augmentation. Its keypoint names mix the two
naming rules (left_*/right_* and l_*/r_*) so that flip pairs by name are exercised. Coordinates are 0-based
image pixels; canvas sizes (w, h).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from seeded_images import save_image

NAMES = ("head", "tail", "left_front_paw", "right_front_paw", "l_hind_paw", "r_hind_paw")
SKELETON = ((0, 1), (0, 2), (0, 3), (1, 4), (1, 5))  # 0-based
FLIP_PAIRS = ((2, 3), (4, 5))
FLIP_IDX = (0, 1, 3, 2, 5, 4)
CANVAS = (128, 128)
CATEGORY_ID = 3  # not 1: results must carry the file's category id, not the person's
DOT_BGR = ((0, 0, 255), (255, 0, 0), (0, 220, 0), (0, 220, 0), (0, 220, 220), (0, 220, 220))


def creature(seed: int, index: int, canvas: tuple[int, int] = CANVAS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image (h, w, 3) uint8 BGR, keypoints (6, 2) and box xywh (4,) of scene `index` of series `seed`: one
    creature, turned up to 30 degrees, on a noisy background."""
    rng = np.random.default_rng([seed, index])
    w, h = canvas
    length = rng.uniform(0.45, 0.6) * h
    angle = np.deg2rad(rng.uniform(-30, 30))
    up = np.array([np.sin(angle), -np.cos(angle)])
    left = np.array([up[1], -up[0]])  # the creature's left: the image's left when the head is up
    center = np.array([rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h])
    head, tail = center + 0.5 * length * up, center - 0.5 * length * up
    spread = rng.uniform(0.3, 0.45, 4) * length
    points = np.stack([head, tail, head - 0.2 * length * up + spread[0] * left,
                       head - 0.2 * length * up - spread[1] * left, tail + 0.15 * length * up + spread[2] * left,
                       tail + 0.15 * length * up - spread[3] * left])
    image = np.clip(rng.normal(110, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    pixels = [tuple(int(v) for v in np.round(p)) for p in points]
    cv2.line(image, pixels[0], pixels[1], (60, 60, 60), 9, cv2.LINE_AA)
    for a, b in SKELETON[1:]:
        cv2.line(image, pixels[a], pixels[b], (200, 200, 200), 3, cv2.LINE_AA)
    for p, colour in zip(pixels, DOT_BGR):
        cv2.circle(image, p, 5, colour, -1, cv2.LINE_AA)
    x1, y1 = points.min(axis=0) - 8
    x2, y2 = points.max(axis=0) + 8
    return image, points, np.array([x1, y1, x2 - x1, y2 - y1])


def creature_category(category_id: int = CATEGORY_ID) -> dict:
    return {"id": category_id, "name": "creature", "supercategory": "animal", "keypoints": list(NAMES),
            "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}


def write_creature_coco(out_dir: Path, num_images: int, seed: int = 0, extra_categories: list[dict] = ()
                        ) -> tuple[Path, Path]:
    """`out_dir/images/*.jpg` and `out_dir/annotations.json` (the creature category, id CATEGORY_ID, plus
    `extra_categories`). Returns (images folder, annotation file)."""
    images_dir = Path(out_dir) / "images"
    images, annotations = [], []
    for index in range(num_images):
        image, points, box = creature(seed, index)
        name = f"{index + 1:06d}.jpg"
        save_image(images_dir / name, image)
        images.append({"id": index + 1, "file_name": name, "width": CANVAS[0], "height": CANVAS[1]})
        triples = np.concatenate([points, np.full((len(NAMES), 1), 2.0)], axis=1)
        annotations.append({"id": index + 1, "image_id": index + 1, "category_id": CATEGORY_ID, "iscrowd": 0,
                            "bbox": box.round(2).tolist(), "area": float(box[2] * box[3] * 0.5),
                            "keypoints": triples.round(2).ravel().tolist(), "num_keypoints": len(NAMES)})
    doc = {"images": images, "annotations": annotations, "categories": [creature_category(), *extra_categories]}
    ann_file = Path(out_dir) / "annotations.json"
    ann_file.write_text(json.dumps(doc))
    return images_dir, ann_file


def label_line(points: np.ndarray, box_xywh: np.ndarray, canvas: tuple[int, int] = CANVAS) -> str:
    """An ultralytics pose label line `0 cx cy w h x1 y1 v1 ...`, normalised."""
    w, h = canvas
    x, y, bw, bh = box_xywh
    values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
    for px, py in points:
        values += [px / w, py / h, 2]
    return "0 " + " ".join(f"{v:.6f}" if not isinstance(v, int) else str(v) for v in values)


def write_creature_yolo(out_dir: Path, num_train: int, num_val: int, seed: int = 0) -> Path:
    """An ultralytics pose data set: images/{train,val}/*.jpg, labels/{train,val}/*.txt and data.yaml (kpt_shape
    [6, 3], flip_idx, names, kpt_names, and the skeleton extension). Returns the data.yaml."""
    root = Path(out_dir)
    for split, count, offset in (("train", num_train, 0), ("val", num_val, 10_000)):
        for index in range(offset, offset + count):
            image, points, box = creature(seed, index)
            save_image(root / "images" / split / f"{index:06d}.jpg", image)
            label = root / "labels" / split / f"{index:06d}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(label_line(points, box) + "\n")
    yaml_lines = [f"path: {root}", "train: images/train", "val: images/val", f"kpt_shape: [{len(NAMES)}, 3]",
                  f"flip_idx: {list(FLIP_IDX)}", "names:", "  0: creature", "kpt_names:", "  0:",
                  *[f"    - {n}" for n in NAMES], f"skeleton: {[list(p) for p in SKELETON]}"]
    data_yaml = root / "data.yaml"
    data_yaml.write_text("\n".join(yaml_lines) + "\n")
    return data_yaml
