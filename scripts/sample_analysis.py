"""The figures of docs/evaluation.md: `eval --analyze` and `eval --compare` on the 4-image COCO sample, with
results made by perturbing its ground truth (seeded; no model).

    python scripts/sample_analysis.py [--data $DEHRNET_TEST_DATA/coco_sample] [--out docs] [--work DIR]

Results "A": every labelled person of test_coco.json found, each joint moved by Gaussian noise of 0.6 OKS
sigma (scaled by the person's size), then in turn: a knee put on the other knee (inversion), a wrist put on
the nearest other person's same wrist (swap), an ankle moved 3 sigma-scaled widths away (miss); a second,
noisier result for two people (duplicates); one false positive; the smallest labelled person left out; scores
uniform in [0.3, 1]. Results "B": the same with half the noise and no inversions. Writes both files and the
--analyze outputs into --work (a temporary folder by default), copies the two PNGs to --out as
evaluation_pr_curves.png and evaluation_keypoint_errors.png, and prints the numbers that the page quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dehrnet_cli.eval.analyze import run_analysis
from dehrnet_cli.eval.compare import run_compare
from models.keypoints import COCO17

SIGMAS = np.asarray(COCO17.sigmas) / 10
J = {name: k for k, name in enumerate(COCO17.names)}


def perturbed(doc: dict, seed: int, noise: float, inversions: bool) -> list[dict]:
    rng = np.random.default_rng(seed)
    people = [a for a in doc["annotations"] if a["num_keypoints"] > 0]
    left_out = min(people, key=lambda a: a["area"])
    results = []
    for n, ann in enumerate(people):
        if ann is left_out:
            continue
        truth = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)[:, :2]
        scale = 2 * SIGMAS[:, None] * np.sqrt(ann["area"])
        xy = truth + rng.normal(0, noise, (17, 2)) * scale
        if inversions and n % 3 == 0:
            xy[J["left_knee"]] = truth[J["right_knee"]]
        others = [a for a in people if a["image_id"] == ann["image_id"] and a is not ann]
        if n % 3 == 1 and others:
            other = np.asarray(others[0]["keypoints"], np.float64).reshape(17, 3)
            if other[J["right_wrist"], 2] > 0:
                xy[J["right_wrist"]] = other[J["right_wrist"], :2]
        if n % 3 == 2:
            xy[J["left_ankle"]] += 3 * scale[J["left_ankle"]] * 10
        results.append(_result(ann["image_id"], xy, rng.uniform(0.3, 1.0)))
        if n in (1, 4):
            results.append(_result(ann["image_id"], truth + rng.normal(0, 3 * noise, (17, 2)) * scale,
                                   rng.uniform(0.2, 0.6)))
    fake = np.asarray(people[0]["keypoints"], np.float64).reshape(17, 3)[:, :2] + [250, 40]
    results.append(_result(people[0]["image_id"], fake, 0.8))
    return results


def _result(image_id: int, xy: np.ndarray, score: float) -> dict:
    keypoints = np.column_stack([xy, np.ones(17)]).round(2)
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints.ravel().tolist(), "score": round(score, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("DEHRNET_TEST_DATA", "/work/shared/data")) / "coco_sample"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    ann_file = args.data / "test_coco.json"
    doc = json.loads(ann_file.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, seed, noise, inversions in (("a", 0, 0.6, True), ("b", 1, 0.3, False)):
            files[name] = work / f"results_{name}.json"
            files[name].write_text(json.dumps(perturbed(doc, seed, noise, inversions)))
        section = run_analysis(json.loads(files["a"].read_text()), ann_file, None, work / "analysis", progress=False)
        for png, target in (("pr_curves.png", "evaluation_pr_curves.png"),
                            ("keypoint_errors.png", "evaluation_keypoint_errors.png")):
            shutil.copyfile(work / "analysis" / png, args.out / target)
            print(f"wrote {args.out / target} ({(args.out / target).stat().st_size // 1024} KB)")
        print(json.dumps({k: section[k] for k in ("counts", "ap_steps")}, indent=1))
        compared = run_compare(files["a"], files["b"], ann_file, progress=False)
        for row in compared["rows"]:
            if row["metric"] in ("AP", "AP50", "oks/left_knee", "oks/right_wrist", "errors/inversion"):
                print(row)


if __name__ == "__main__":
    main()
