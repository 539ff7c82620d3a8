"""Time COCO keypoint scoring on a synthetic val2017-sized file: pycocotools vs faster-coco-eval.

    python scripts/bench_coco_scoring.py [--images 5000] [--seed 0] [--repeat 3]

Builds a seeded synthetic ground truth shaped like person_keypoints_val2017 (5,000 images, about
11,000 people of whom about 40% have no keypoints, a few crowd regions) and a results file like an
HRNet run with the 56.4-AP detection boxes (about 20 results per image: a noisy copy of each labelled
person plus false positives), writes both to a temporary folder, then times load + loadRes + evaluate +
accumulate + summarize with pycocotools and, when installed, with faster-coco-eval (COCOeval_faster),
and compares the ten stats; then times dehrnet's per-keypoint breakdown, which runs after either.
Wall and CPU seconds are both given (CPU time is steadier on a busy machine).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from dehrnet_cli.eval.coco import cocoeval_stats, load_coco_gt
from dehrnet_cli.eval.keypoint_breakdown import keypoint_breakdown
from models.keypoints import COCO17


def synthetic_coco(num_images: int, seed: int) -> tuple[dict, list[dict]]:
    """(ground-truth document, results list) of `num_images` 640 x 480 images."""
    rng = np.random.default_rng(seed)
    sigmas = np.asarray(COCO17.sigmas) / 10
    images, annotations, results = [], [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 640, "height": 480})
        people = 0 if rng.random() < 0.45 else int(rng.integers(1, 9))
        for _ in range(people):
            w, h = rng.uniform(15, 300), rng.uniform(30, 420)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            labelled = rng.random() > 0.4 and w * h > 32**2
            visible = np.where(rng.random(17) < 0.75, 2, 0) if labelled else np.zeros(17)
            kx, ky = x + rng.uniform(0, w, 17), y + rng.uniform(0, h, 17)
            keypoints = np.column_stack([kx * (visible > 0), ky * (visible > 0), visible])
            crowd = int(rng.random() < 0.01)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": crowd,
                                "bbox": [x, y, w, h], "area": w * h * 0.6, "num_keypoints": int((visible > 0).sum()),
                                "keypoints": keypoints.ravel().round(2).tolist(), "segmentation": []})
            if labelled and not crowd:  # a detection of this person with OKS-sized noise
                noise = rng.normal(0, 1, (17, 2)) * (2 * sigmas[:, None]) * np.sqrt(w * h * 0.6) * rng.uniform(0.2, 1.5)
                guess = np.column_stack([kx + noise[:, 0], ky + noise[:, 1], rng.uniform(0.05, 1, 17)])
                results.append({"image_id": image_id, "category_id": 1, "keypoints": guess.ravel().round(3).tolist(),
                                "score": float(rng.uniform(0.3, 1.0))})
        for _ in range(int(rng.poisson(25 if people else 10))):  # low-score boxes: ~20 results per image in all
            fake = np.column_stack([rng.uniform(0, 640, 17), rng.uniform(0, 480, 17), rng.uniform(0.05, 0.5, 17)])
            results.append({"image_id": image_id, "category_id": 1, "keypoints": fake.ravel().round(3).tolist(),
                            "score": float(rng.uniform(0.0, 0.6))})
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17.names),
                "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton]}
    return {"images": images, "annotations": annotations, "categories": [category]}, results


def score(library: str, ann_file: Path, results_file: Path) -> tuple[np.ndarray, dict[str, float]]:
    """The ten stats and the seconds per step of one library."""
    if library == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator
    seconds: dict[str, float] = {}
    cpu_start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        gt = COCO(str(ann_file))
        seconds["load"] = time.perf_counter() - start
        start = time.perf_counter()
        dt = gt.loadRes(str(results_file))
        seconds["loadRes"] = time.perf_counter() - start
        evaluator = Evaluator(gt, dt, "keypoints")
        if library == "pycocotools":
            evaluator.params.useSegm = None
        for step in ("evaluate", "accumulate", "summarize"):
            start = time.perf_counter()
            getattr(evaluator, step)()
            seconds[step] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    seconds["cpu"] = time.process_time() - cpu_start
    return np.asarray(evaluator.stats[:10], np.float64), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="Runs per library; the fastest total is reported.")
    args = parser.parse_args()
    doc, results = synthetic_coco(args.images, args.seed)
    labelled = sum(a["num_keypoints"] > 0 for a in doc["annotations"])
    print(f"synthetic: {len(doc['images'])} images, {len(doc['annotations'])} people ({labelled} with keypoints), "
          f"{len(results)} results")
    libraries = ["pycocotools"]
    try:
        import faster_coco_eval

        libraries.append("faster-coco-eval")
        print(f"faster-coco-eval {faster_coco_eval.__version__}")
    except ImportError:
        print("faster-coco-eval is not installed: timing pycocotools only")
    with tempfile.TemporaryDirectory() as tmp:
        ann_file, results_file = Path(tmp) / "gt.json", Path(tmp) / "results.json"
        ann_file.write_text(json.dumps(doc))
        results_file.write_text(json.dumps(results))
        stats = {}
        for library in libraries:
            runs = [score(library, ann_file, results_file) for _ in range(args.repeat)]
            stats[library], best = min(runs, key=lambda run: run[1]["total"])
            steps = ", ".join(f"{k} {v:.2f}" for k, v in best.items() if k not in ("total", "cpu"))
            timing = f"{best['total']:.2f} s wall, {best['cpu']:.2f} s CPU"
            print(f"{library:>17}: {timing} (best of {args.repeat}; {steps})")
            print(f"{'':>17}  AP {stats[library][0]:.6f}, AR {stats[library][5]:.6f}")
        gt = load_coco_gt(ann_file)
        for library in libraries:  # dehrnet's path: results already in memory, no json parsing
            start = time.perf_counter()
            cocoeval_stats(gt, results, gt.getImgIds(), library)
            print(f"dehrnet cocoeval_stats({library}), results in memory: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        keypoint_breakdown(gt, results, gt.getImgIds())
        print(f"dehrnet per-keypoint breakdown (own matching, either library): {time.perf_counter() - start:.2f} s")
    if len(stats) == 2:
        diff = np.abs(stats["pycocotools"] - stats["faster-coco-eval"]).max()
        print(f"max |stat difference| = {diff:.3g} ({'identical' if diff <= 1e-12 else 'NOT identical'} to 1e-12)")


if __name__ == "__main__":
    main()
