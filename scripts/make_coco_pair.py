"""Write a seeded synthetic COCO keypoint ground truth shaped like person_keypoints_val2017 and two results
files for it, A and B, shaped like two top-down runs with detector boxes (about 20 results per image).

    python scripts/make_coco_pair.py OUT_DIR [--images 5000] [--seed 0]

Writes OUT_DIR/gt.json, OUT_DIR/results_a.json and OUT_DIR/results_b.json. The ground truth: 5,000
640 x 480 images, about 45 % without people, 1 to 8 people in the others (a few crowded images up to 15),
about 40 % of them without labelled keypoints, 1 % crowd regions. Each labelled person is a fixed upright
pose placed in its box (so left and right joints are apart), with about 75 % of its joints labelled.

A results file holds, for each labelled person, a detection with Gaussian noise sized by each joint's OKS
sigma and the person's scale, where some joints are replaced by the left/right twin (inversion), by the same
joint of another person of the image (swap) or by a random point of the box (miss); a noisier duplicate for
some people; and low-score false positives. B is A's generator with less noise on wrists and ankles and
fewer inversions, so `dehrnet eval --compare A B` has a real difference to find.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models.keypoints import COCO17

# an upright person in its box, (x, y) in [0, 1]: nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles (left is the person's left, drawn on the image's right)
POSE = np.array([[.50, .08], [.54, .06], [.46, .06], [.58, .08], [.42, .08], [.68, .22], [.32, .22],
                 [.78, .38], [.22, .38], [.82, .52], [.18, .52], [.62, .55], [.38, .55], [.64, .75],
                 [.36, .75], [.65, .95], [.35, .95]])
SIGMAS = np.asarray(COCO17.sigmas) / 10
TWIN = np.asarray(COCO17.flip_index())
LIMB_ENDS = [9, 10, 15, 16]  # wrists and ankles


def ground_truth(rng: np.random.Generator, num_images: int) -> dict:
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 640, "height": 480})
        people = 0 if rng.random() < 0.45 else int(rng.integers(9, 16) if rng.random() < 0.02 else rng.integers(1, 9))
        for _ in range(people):
            h = float(np.exp(rng.uniform(np.log(40), np.log(470))))
            w = h * rng.uniform(0.35, 0.7)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            area = w * h * 0.55
            crowd = int(rng.random() < 0.01)
            labelled = not crowd and rng.random() > 0.4 and area > 16**2
            visible = np.where(rng.random(17) < 0.75, 2, 0) if labelled else np.zeros(17, int)
            xy = np.column_stack([x + POSE[:, 0] * w, y + POSE[:, 1] * h]) + rng.normal(0, 0.02 * h, (17, 2))
            keypoints = np.column_stack([xy * (visible[:, None] > 0), visible])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "iscrowd": crowd, "bbox": [round(v, 2) for v in (x, y, w, h)],
                                "area": round(area, 2), "num_keypoints": int((visible > 0).sum()),
                                "keypoints": keypoints.ravel().round(2).tolist(), "segmentation": []})
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.names),
                "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}
    return {"images": images, "annotations": annotations, "categories": [category]}


def results(rng: np.random.Generator, doc: dict, limb_noise: float, p_inversion: float) -> list[dict]:
    """A results list for `doc`: see the module docstring."""
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    noise_scale = np.ones(17)
    noise_scale[LIMB_ENDS] = limb_noise
    out = []
    for image in doc["images"]:
        people = [a for a in by_image.get(image["id"], []) if a["num_keypoints"] > 0]
        for ann in people:
            for copy in range(1 + int(rng.random() < 0.3)):
                x, y, w, h = ann["bbox"]
                truth = np.column_stack([x + POSE[:, 0] * w, y + POSE[:, 1] * h])
                labelled = np.asarray(ann["keypoints"]).reshape(17, 3)
                truth[labelled[:, 2] > 0] = labelled[labelled[:, 2] > 0, :2]
                quality = rng.uniform(0.1, 0.7) * (2.0 if copy else 1.0)
                spread = 2 * SIGMAS[:, None] * np.sqrt(ann["area"]) * quality * noise_scale[:, None]
                guess = truth + rng.normal(0, 1, (17, 2)) * spread
                flips = rng.random(17) < p_inversion
                guess[flips] = truth[TWIN[flips]]
                others = [a for a in people if a is not ann]
                swaps = (rng.random(17) < 0.03) & bool(others)
                for k in np.flatnonzero(swaps):
                    other = np.asarray(others[int(rng.integers(len(others)))]["keypoints"]).reshape(17, 3)
                    if other[k, 2] > 0:
                        guess[k] = other[k, :2]
                misses = rng.random(17) < 0.04
                count = int(misses.sum())
                guess[misses] = np.column_stack([rng.uniform(x, x + w, count), rng.uniform(y, y + h, count)])
                score = float(np.clip(1.1 - 0.4 * quality + rng.normal(0, 0.15), 0.05, 1.0))
                out.append(_result(image["id"], guess, rng, score))
        for _ in range(int(rng.poisson(26 if people else 12))):  # low-score boxes: ~20 results per image in all
            fake = np.column_stack([rng.uniform(0, 640, 17), rng.uniform(0, 480, 17)])
            out.append(_result(image["id"], fake, rng, float(rng.uniform(0.0, 0.5))))
    return out


def _result(image_id: int, xy: np.ndarray, rng: np.random.Generator, score: float) -> dict:
    keypoints = np.column_stack([xy, rng.uniform(0.05, 1.0, 17)])
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints.ravel().round(2).tolist(),
            "score": round(score, 5)}


def make_pair(out_dir: Path, num_images: int = 5000, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write gt.json, results_a.json and results_b.json into `out_dir`; their paths."""
    rng = np.random.default_rng(seed)
    doc = ground_truth(rng, num_images)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "gt.json", out_dir / "results_a.json", out_dir / "results_b.json"
    paths[0].write_text(json.dumps(doc))
    paths[1].write_text(json.dumps(results(np.random.default_rng(seed + 1), doc, limb_noise=1.0, p_inversion=0.03)))
    paths[2].write_text(json.dumps(results(np.random.default_rng(seed + 2), doc, limb_noise=0.7, p_inversion=0.015)))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in make_pair(args.out_dir, args.images, args.seed):
        doc = json.loads(path.read_text())
        size = f"{len(doc['images'])} images, {len(doc['annotations'])} people" if isinstance(doc, dict) \
            else f"{len(doc)} results"
        print(f"wrote {path} ({size})")


if __name__ == "__main__":
    main()
