"""Hand-built COCO keypoint scenes for the --analyze and --compare tests: people standing side by side and
results with keypoint errors injected at known joints (each placed at a chosen keypoint similarity)."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO

from models.keypoints import COCO17

SIGMAS = np.asarray(COCO17.sigmas) / 10  # COCOeval's
# an upright person in a 150 x 300 box, (x, y) as a share of the box
POSE = np.array([[.50, .08], [.54, .06], [.46, .06], [.58, .08], [.42, .08], [.68, .22], [.32, .22],
                 [.78, .38], [.22, .38], [.82, .52], [.18, .52], [.62, .55], [.38, .55], [.64, .75],
                 [.36, .75], [.65, .95], [.35, .95]])
NAMES = list(COCO17.names)
J = {name: k for k, name in enumerate(COCO17.names)}
CATEGORY = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.names),
            "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}


def person(ann_id: int, image_id: int, x: float, y: float, scale: float = 1.0, unlabelled: tuple[int, ...] = (),
           crowd: bool = False) -> dict:
    """A person whose box is (x, y, 150 * scale, 300 * scale); area 0.9 of it; `unlabelled` joints have v 0."""
    w, h = 150 * scale, 300 * scale
    xy = np.column_stack([x + POSE[:, 0] * w, y + POSE[:, 1] * h])
    visible = np.full(17, 2)
    visible[list(unlabelled)] = 0
    if crowd:
        visible[:] = 0
    keypoints = np.column_stack([xy * (visible[:, None] > 0), visible])
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": int(crowd), "bbox": [x, y, w, h],
            "area": 0.9 * w * h, "num_keypoints": int((visible > 0).sum()), "keypoints": keypoints.ravel().tolist()}


def document(images: list[int], annotations: list[dict]) -> dict:
    return {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 1000, "height": 800} for i in images],
            "annotations": annotations, "categories": [CATEGORY]}


def joints(ann: dict) -> np.ndarray:
    return np.asarray(ann["keypoints"], np.float64).reshape(17, 3)


def distance_for(ks: float, k: int, area: float) -> float:
    """The distance (pixels) at which joint k of a person of `area` has keypoint similarity `ks`."""
    return float(np.sqrt(-np.log(ks) * 2 * (2 * SIGMAS[k]) ** 2 * (area + np.spacing(1))))


def result(image_id: int, xy: np.ndarray, score: float) -> dict:
    keypoints = np.column_stack([xy, np.ones(17)])
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints.ravel().tolist(), "score": score}


def with_errors(own: dict, other: dict | None, errors: dict[str, str], jitter_ks: float = 0.7) -> np.ndarray:
    """(17, 2) the joints of `own` with errors {joint name: "jitter" | "inversion" | "swap" | "miss" | "good"}:
    jitter at `jitter_ks` from the joint; inversion onto own twin; swap onto `other`'s same joint; miss 400 px
    below the person; "good" at keypoint similarity 0.9."""
    xy = joints(own)[:, :2].copy()
    twin = COCO17.flip_index()
    for name, error in errors.items():
        k = J[name]
        if error == "jitter":
            xy[k, 0] += distance_for(jitter_ks, k, own["area"])
        elif error == "good":
            xy[k, 1] += distance_for(0.9, k, own["area"])
        elif error == "inversion":
            xy[k] = joints(own)[twin[k], :2]
        elif error == "swap":
            xy[k] = joints(other)[k, :2]
        elif error == "miss":
            xy[k, 1] += 400
    return xy


def pycoco(doc: dict) -> COCO:
    """A pycocotools COCO index of the document `doc` (a deep copy; its print silenced)."""
    gt = COCO()
    gt.dataset = copy.deepcopy(doc)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def random_scene(seed: int) -> tuple[dict, list[dict]]:
    """Crowded images with crowd regions, keypoint-less and tiny people, duplicate and tied scores."""
    rng = np.random.default_rng(seed)
    annotations, results = [], []
    for image_id in range(1, 31):
        for _ in range(int(rng.integers(0, 6))):
            x, y, scale = rng.uniform(0, 700), rng.uniform(0, 400), rng.uniform(0.1, 1.2)
            kind = rng.random()
            ann = person(len(annotations) + 1, image_id, x, y, scale, crowd=kind < 0.08,
                         unlabelled=tuple(np.flatnonzero(rng.random(17) < (1.0 if kind < 0.2 else 0.25))))
            annotations.append(ann)
            for _ in range(int(rng.integers(0, 3))):
                xy = np.column_stack([x + 150 * scale * (0.5 + 0.3 * rng.normal(size=17)),
                                      y + 300 * scale * (0.5 + 0.3 * rng.normal(size=17))])
                if rng.random() < 0.6:
                    xy = joints(ann)[:, :2] * (joints(ann)[:, 2:] > 0) + xy * (joints(ann)[:, 2:] == 0)
                    xy += rng.normal(0, 4 * scale, (17, 2))
                results.append(result(image_id, xy, float(rng.choice([0.5, 0.7, rng.uniform()]))))
        for _ in range(int(rng.integers(0, 25))):
            xy = np.column_stack([rng.uniform(0, 1000, 17), rng.uniform(0, 800, 17)])
            results.append(result(image_id, xy, float(rng.uniform(0, 0.6))))
    return document(list(range(1, 31)), annotations), results
