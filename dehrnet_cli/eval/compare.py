"""`eval --compare A B`: two results files for the same images, side by side (the ten COCO numbers, the mean
OKS term of each joint, the share of each keypoint error type), each difference B - A with a paired bootstrap
95 % interval over images, and a verdict only where the interval excludes zero.

The bootstrap draws `resamples` multisets of the evaluated images (seeded; the same draw for A and B, hence
"paired") and recomputes every number on each. Nothing is re-run per draw: each file is decomposed once per
image (`image_eval`: COCOeval's matches, per-keypoint OKS sums, error counts), a draw is a vector of image
counts, and `accumulate.weighted_precision_recall` gives COCOeval's precision for it (all draws of a chunk
at once). The decomposition must reproduce the official COCOeval numbers of each whole file exactly before
any draw is made (an InternalError otherwise). Interval: the 2.5th and 97.5th percentiles of the B - A
differences (percentile bootstrap). The draws are made here (numpy's multinomial) rather than by
scipy.stats.bootstrap, which resamples sample arrays and calls a statistic per metric: one draw here serves
every row of both files at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError, InternalError
from dehrnet_cli.eval.accumulate import (
    LIBRARY_TOLERANCE,
    STAT_NAMES,
    Decomposition,
    decompose,
    precision_recall,
    summary_stats,
    weighted_precision_recall,
)
from dehrnet_cli.eval.analyze import keypoint_errors_of, require_labelled_keypoints
from dehrnet_cli.eval.coco import check_results, cocoeval_stats, load_coco_gt, read_coco_results
from dehrnet_cli.eval.image_eval import (
    COCO_SIGMAS,
    OFFICIAL_AREAS,
    GroundTruth,
    ResultSet,
    image_oks,
    match_images,
)
from dehrnet_cli.eval.keypoint_errors import LABELS
from dehrnet_cli.postprocess.oks import paired_oks_terms
from dehrnet_cli.progress import job_progress_bar

RESAMPLES, SEED = 1000, 0
CHUNK = 25  # draws evaluated together (memory: CHUNK x results x 8 bytes per array)
LOWER_IS_BETTER = {f"errors/{label}" for label in LABELS if label != "good"}


@dataclass(frozen=True)
class PerImage:
    """One results file, image by image: decompositions {official area: Decomposition}; joint_oks_sum and
    joint_count (I, K): OKS terms of the labelled joints of people matched at OKS .5 (area all, as the
    per-keypoint table); error_counts (I, 5): labelled joints of each LABELS type (analysis area all)."""

    decompositions: dict[str, Decomposition]
    joint_oks_sum: np.ndarray
    joint_count: np.ndarray
    error_counts: np.ndarray

    def metrics(self, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{metric: value} for the whole set (weights None) or {metric: (B,)} for image weights (B, I)."""
        if weights is None:
            per_area = {area: precision_recall(dec) for area, dec in self.decompositions.items()}
            weights_ = np.ones((1, self.joint_count.shape[0]))
        else:
            per_area = {area: weighted_precision_recall(dec, weights) for area, dec in self.decompositions.items()}
            weights_ = weights
        out = dict(summary_stats(per_area))
        oks = (weights_ @ self.joint_oks_sum) / np.maximum(weights_ @ self.joint_count, 1e-300)
        errors = weights_ @ self.error_counts
        shares = errors / np.maximum(errors.sum(axis=1, keepdims=True), 1e-300)
        for k in range(oks.shape[1]):
            out[f"oks/{k}"] = oks[:, k] if weights is not None else oks[0, k]
        for n, label in enumerate(LABELS):
            out[f"errors/{label}"] = shares[:, n] if weights is not None else shares[0, n]
        return out


def per_image_eval(gt: GroundTruth, results: list[dict], names: list[str]) -> PerImage:
    subset = ResultSet.from_results(results, gt)
    table = image_oks(gt, subset)
    decompositions, at_half = {}, None
    for area, area_range in OFFICIAL_AREAS.items():
        matches = match_images(gt, subset, table, area_range)
        decompositions[area] = decompose(matches, subset, gt)
        if area == "all":
            at_half = matches
    num_images, num_joints = len(gt.image_ids), gt.keypoints.shape[1]
    person = at_half.matched_gt[:, 0, :]
    counted = (person >= 0) & ~at_half.dt_ignored[:, 0, :]
    result, person, image = at_half.dt[counted], person[counted], np.nonzero(counted)[0]
    own = gt.keypoints[person]
    terms = paired_oks_terms(subset.keypoints[result], own, gt.areas[person], COCO_SIGMAS)
    labelled = own[:, :, 2] > 0
    joint_oks_sum, joint_count = np.zeros((num_images, num_joints)), np.zeros((num_images, num_joints))
    np.add.at(joint_oks_sum, image, np.where(labelled, terms, 0.0))
    np.add.at(joint_count, image, labelled.astype(np.float64))
    errors = keypoint_errors_of(gt, subset, names, table=table)
    error_counts = np.zeros((num_images, len(LABELS)))
    for n in range(len(LABELS)):
        np.add.at(error_counts[:, n], gt.image[errors.person], (errors.label == n).sum(axis=1))
    return PerImage(decompositions, joint_oks_sum, joint_count, error_counts)


def _verdict(low: float, high: float, metric: str) -> str | None:
    if low > 0:
        return "a better" if metric in LOWER_IS_BETTER else "b better"
    if high < 0:
        return "b better" if metric in LOWER_IS_BETTER else "a better"
    return None


def compare_results(gt_coco, a: list[dict], b: list[dict], image_ids: list[int], names: list[str],
                    resamples: int = RESAMPLES, seed: int = SEED, progress: bool = True,
                    library: str = "auto") -> list[dict]:
    """The compare rows (see the module docstring) of results lists `a` and `b` on `image_ids`."""
    gt = GroundTruth.from_coco(gt_coco, image_ids)
    files = []
    for label, results in (("A", a), ("B", b)):
        per_image = per_image_eval(gt, results, names)
        own = per_image.metrics()
        official = cocoeval_stats(gt_coco, results, gt.image_ids.tolist(), library) if results else np.zeros(10)
        if results and np.abs(np.asarray([own[name] for name in STAT_NAMES]) - official).max() > LIBRARY_TOLERANCE:
            raise InternalError(f"--compare: the per-image decomposition of {label} does not reproduce COCOeval's "
                                "numbers; the intervals would be wrong")
        files.append((per_image, own))
    (file_a, full_a), (file_b, full_b) = files
    differences: dict[str, list[np.ndarray]] = {name: [] for name in full_a}
    rng = np.random.default_rng(seed)
    num_images = len(gt.image_ids)
    with job_progress_bar("compare (bootstrap)", enabled=progress) as bar:
        task = bar.add_task("compare", total=resamples)
        for start in range(0, resamples, CHUNK):
            draws = min(CHUNK, resamples - start)
            weights = rng.multinomial(num_images, np.full(num_images, 1.0 / num_images), size=draws).astype(float)
            drawn_a, drawn_b = file_a.metrics(weights), file_b.metrics(weights)
            for name in differences:
                differences[name].append(drawn_b[name] - drawn_a[name])
            bar.advance(task, draws)
    rows = []
    for name in full_a:
        value_a, value_b = float(full_a[name]), float(full_b[name])
        defined = value_a > -1 and value_b > -1
        low, high = np.percentile(np.concatenate(differences[name]), [2.5, 97.5]).tolist() if defined else (None, None)
        metric = f"oks/{names[int(name[4:])]}" if name.startswith("oks/") else name
        rows.append({"metric": metric, "a": value_a, "b": value_b, "diff": value_b - value_a if defined else None,
                     "ci95": [low, high] if defined else None,
                     "verdict": _verdict(low, high, metric) if defined else None})
    return rows


def run_compare(a_path: Path, b_path: Path, ann_file: Path, limit: int | None = None, resamples: int = RESAMPLES,
                seed: int = SEED, progress: bool = True) -> dict:
    """`eval --compare A B`: read and check both results files, then the report section {"a", "b", "resamples",
    "seed", "images", "rows"} (compare_sections)."""
    return compare_sections([(str(a_path), a_path), (str(b_path), b_path)], ann_file, limit, resamples, seed,
                            progress)


def compare_sections(runs: list[tuple[str, Path | list[dict]]], ann_file: Path, limit: int | None = None,
                     resamples: int = RESAMPLES, seed: int = SEED, progress: bool = True) -> dict:
    """The report section of two runs A and B, each (label, a results file or the results themselves): checked
    against the annotations of `ann_file` (its first `limit` images), then compared over the same images."""
    if resamples < 1:
        raise DehrnetError(f"--resamples {resamples}: give a positive number of bootstrap resamples")
    gt_coco = load_coco_gt(ann_file)
    image_ids = gt_coco.getImgIds()[:limit] if limit else gt_coco.getImgIds()
    names = next(c["keypoints"] for c in gt_coco.dataset["categories"] if "keypoints" in c)
    require_labelled_keypoints(gt_coco, image_ids, ann_file)
    loaded = []
    for label, run in runs:
        results = read_coco_results(run) if isinstance(run, Path) else run
        check_results(results, gt_coco, f"--compare {label}")
        loaded.append(results)
    (label_a, _), (label_b, _) = runs
    seen_a, seen_b = ({r["image_id"] for r in results} for results in loaded)
    if seen_a != seen_b:
        only_a, only_b = sorted(seen_a - seen_b, key=str), sorted(seen_b - seen_a, key=str)
        raise DehrnetError(f"--compare {label_a} {label_b}: the two runs cover different images ({len(only_a)} only "
                           f"in A such as {only_a[:3]}, {len(only_b)} only in B such as {only_b[:3]}); compare runs on "
                           "the same images")
    rows = compare_results(gt_coco, *loaded, image_ids, names, resamples, seed, progress)
    return {"a": label_a, "b": label_b, "resamples": resamples, "seed": seed, "images": len(image_ids),
            "rows": rows}
