"""Synthetic people: stick figures with known COCO-17 keypoints on noisy backgrounds.

For tests and demos of training: a model that learns these has learned to find keypoints, on a CPU, in
minutes. Every figure faces the camera (the person's left is on the image's right, as in COCO), so
mirroring an image and swapping the left/right labels gives another valid scene: flip augmentation and
the flip test stay consistent. Joints are dots coloured by joint type (the same colour on both sides);
left and right differ only by their place in the body. A scene is a pure function of (seed, index).

Coordinates are 0-based image pixels; canvas sizes are (w, h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dehrnet_cli.datasets.augment import AugmentSettings
from dehrnet_cli.datasets.records import PersonRecord
from dehrnet_cli.datasets.topdown_dataset import TopDownDataset
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import center_scale_from_xywh, clean_gt_box
from dehrnet_cli.sinks.atomic import atomic_path, write_json_atomic
from models import COCO17, PoseNetConfig

CANVAS = (320, 256)

# BGR dot colour per COCO joint: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
_TYPE_COLOURS = ((0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
                 (0, 128, 255), (128, 0, 255), (255, 255, 255))

JOINT_COLOURS = tuple(_TYPE_COLOURS[0 if k == 0 else (k + 1) // 2] for k in range(17))

_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16))


@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A generated image (H, W, 3) uint8 BGR and its P people: keypoints_xy (P, 17, 2) (0, 0 when not
    labelled), visible (P, 17) COCO flags (2 inside the image, 0 outside), boxes_xywh (P, 4)."""

    image: np.ndarray
    keypoints_xy: np.ndarray
    visible: np.ndarray
    boxes_xywh: np.ndarray


def _unit(angle_deg: float, down: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Direction `angle_deg` from `down` towards `outward` (0: down, 90: outward, 180: up)."""
    a = np.deg2rad(angle_deg)
    return np.cos(a) * down + np.sin(a) * outward


def _figure(rng: np.random.Generator, height: float, pelvis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (17, 2) of one front-facing stick figure of `height` px, and its head center (2,)."""
    lean = np.deg2rad(rng.uniform(-15, 15))
    up = np.array([-np.sin(lean), -np.cos(lean)])
    right_of_image = np.array([-up[1], up[0]])  # the person's left side
    neck = pelvis + 0.30 * height * up
    head = neck + 0.10 * height * _unit(180 + rng.uniform(-15, 15), -up, right_of_image)
    yaw = rng.uniform(-0.02, 0.02) * height * right_of_image
    k = np.zeros((17, 2))
    k[0] = head - 0.01 * height * up + yaw
    for side, (eye, ear, shoulder, hip) in ((1, (1, 3, 5, 11)), (-1, (2, 4, 6, 12))):
        k[eye] = head + 0.025 * height * up + side * 0.025 * height * right_of_image + yaw
        k[ear] = head + 0.005 * height * up + side * 0.06 * height * right_of_image + 0.5 * yaw
        k[shoulder] = neck + side * 0.11 * height * right_of_image
        k[hip] = pelvis + side * 0.08 * height * right_of_image
        outward = side * right_of_image
        upper = rng.uniform(-20, 160)
        k[shoulder + 2] = k[shoulder] + 0.16 * height * _unit(upper, -up, outward)
        k[shoulder + 4] = k[shoulder + 2] + 0.14 * height * _unit(upper + rng.uniform(-40, 130), -up, outward)
        thigh = rng.uniform(-15, 50)
        k[hip + 2] = k[hip] + 0.23 * height * _unit(thigh, -up, outward)
        k[hip + 4] = k[hip + 2] + 0.23 * height * _unit(thigh + rng.uniform(-45, 15), -up, outward)
    return k, head


def _scene_people(seed: int, index: int, canvas: tuple[int, int]) -> list[dict]:
    """The people of scene `index`: keypoints, head center and radius, colours, line widths."""
    rng = np.random.default_rng([seed, index, 0])
    w, h = canvas
    count = 1 if rng.random() < 0.7 else 2
    people = []
    for slot in range(count):
        height = rng.uniform(0.45, 0.85) * h
        pelvis = np.array([(slot + rng.uniform(0.3, 0.7)) * w / count, rng.uniform(0.45, 0.62) * h])
        keypoints, head = _figure(rng, height, pelvis)
        people.append({"keypoints": keypoints, "head": head, "head_radius": 0.065 * height,
                       "limb_colour": tuple(int(c) for c in rng.integers(40, 200, 3)),
                       "body_colour": tuple(int(c) for c in rng.integers(40, 200, 3)),
                       "thickness": max(2, round(0.035 * height)), "dot": max(2, round(0.018 * height))})
    return people


def _background(rng: np.random.Generator, canvas: tuple[int, int]) -> np.ndarray:
    """A smooth random colour field with noise and a few distracting lines and circles."""
    w, h = canvas
    field = cv2.resize(rng.integers(0, 256, (3, 4, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    image = np.clip(field.astype(np.float32) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        p1, p2 = rng.integers(0, w, 2), rng.integers(0, h, 2)
        if rng.random() < 0.5:
            cv2.line(image, (int(p1[0]), int(p2[0])), (int(p1[1]), int(p2[1])), colour, int(rng.integers(1, 5)))
        else:
            cv2.circle(image, (int(p1[0]), int(p2[0])), int(rng.integers(3, 20)), colour, int(rng.integers(1, 4)))
    return image


def _labels(people: list[dict], canvas: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCO-style keypoints (P, 17, 2), visibility (P, 17) and cleaned boxes (P, 4) of the people."""
    w, h = canvas
    keypoints = np.stack([p["keypoints"] for p in people])
    inside = (keypoints[..., 0] >= 0) & (keypoints[..., 0] <= w - 1) & (keypoints[..., 1] >= 0) & \
        (keypoints[..., 1] <= h - 1)
    boxes = []
    for person in people:
        margin = person["head_radius"]
        x1, y1 = person["keypoints"].min(axis=0) - margin
        x2, y2 = person["keypoints"].max(axis=0) + margin
        box = clean_gt_box([x1, y1, x2 - x1, y2 - y1], w, h)
        boxes.append(box if box is not None else np.zeros(4))
    return np.where(inside[..., None], keypoints, 0.0), np.where(inside, 2, 0).astype(np.int64), np.stack(boxes)


def make_scene(seed: int, index: int, canvas: tuple[int, int] = CANVAS) -> SyntheticScene:
    """Scene `index` of the series `seed`: 1 person (70 %) or 2, drawn over a noisy background."""
    people = _scene_people(seed, index, canvas)
    image = _background(np.random.default_rng([seed, index, 1]), canvas)
    for person in people:
        k = person["keypoints"]
        points = np.round(k).astype(np.int32)
        torso = points[[5, 6, 12, 11]]
        cv2.fillConvexPoly(image, torso, person["body_colour"], cv2.LINE_AA)
        for a, b in _LIMBS:
            cv2.line(image, tuple(map(int, points[a])), tuple(map(int, points[b])), person["limb_colour"],
                     person["thickness"], cv2.LINE_AA)
        head = tuple(int(v) for v in np.round(person["head"]))
        cv2.circle(image, head, int(round(person["head_radius"])), person["body_colour"], -1, cv2.LINE_AA)
        for j in range(17):
            cv2.circle(image, tuple(map(int, points[j])), person["dot"], JOINT_COLOURS[j], -1, cv2.LINE_AA)
    keypoints, visible, boxes = _labels(people, canvas)
    return SyntheticScene(image, keypoints, visible, boxes)


class SyntheticPeople(TopDownDataset):
    """`num_images` generated scenes as a training dataset (the TopDownDataset interface): one sample per
    labelled person; images are re-drawn on demand from (seed, image index)."""

    def __init__(self, num_images: int, config: PoseNetConfig, augment: AugmentSettings | None = None,
                 seed: int = 0, canvas: tuple[int, int] = CANVAS) -> None:
        if config.keypoints != COCO17:
            raise DehrnetError(f"synthetic people have the 17 COCO keypoints; {config.name} predicts "
                               f"{config.num_keypoints} ({config.keypoints.name}): use a COCO config")
        if num_images < 1:
            raise DehrnetError(f"--synthetic {num_images}: give the number of images to generate (>= 1)")
        self.canvas = canvas
        records = []
        for index in range(num_images):
            keypoints, visible, boxes = _labels(_scene_people(seed, index, canvas), canvas)
            for p in range(len(boxes)):
                if visible[p].max() == 0 or boxes[p, 2] <= 0 or boxes[p, 3] <= 0:
                    continue
                center, scale = center_scale_from_xywh(boxes[p][None], config.input_size)
                records.append(PersonRecord(f"synthetic:{seed}:{index}", index, boxes[p], center[0], scale[0],
                                            keypoints[p], np.minimum(visible[p], 1).astype(np.float32)))
        super().__init__(records, config, augment, seed)
        self.scene_seed = seed

    def load_image(self, record: PersonRecord) -> np.ndarray:
        return make_scene(self.scene_seed, record.image_id, self.canvas).image


def write_coco_folder(out_dir: Path, num_images: int, seed: int = 0, canvas: tuple[int, int] = CANVAS
                      ) -> tuple[Path, Path]:
    """Write `num_images` scenes as a COCO keypoint dataset (`out_dir/images/*.jpg` at JPEG quality 95,
    `out_dir/annotations.json`) for `dehrnet eval` and demos. Returns (images folder, annotation file)."""
    images_dir = Path(out_dir) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(num_images):
        scene = make_scene(seed, index, canvas)
        name = f"{index + 1:012d}.jpg"
        with atomic_path(images_dir / name) as tmp:
            cv2.imwrite(str(tmp), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": index + 1, "file_name": name, "width": canvas[0], "height": canvas[1]})
        for p in range(len(scene.boxes_xywh)):
            triples = np.concatenate([scene.keypoints_xy[p], scene.visible[p][:, None]], axis=1)
            box = scene.boxes_xywh[p]
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": 1, "iscrowd": 0,
                                "bbox": box.round(2).tolist(), "area": float(box[2] * box[3]),
                                "keypoints": triples.round(2).ravel().tolist(),
                                "num_keypoints": int((scene.visible[p] > 0).sum())})
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.names),
                   "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}]
    ann_file = write_json_atomic(Path(out_dir) / "annotations.json",
                                 {"images": images, "annotations": annotations, "categories": categories})
    return images_dir, ann_file
