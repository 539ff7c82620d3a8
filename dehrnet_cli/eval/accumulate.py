"""COCOeval.accumulate over per-image matches: precision at the 101 recall thresholds and recall, for the whole
set or for many re-weightings of its images at once (the bootstrap of `eval --compare`).

A `Decomposition` holds what accumulate reads, result by result in COCOeval's order: its score, its image,
and per OKS threshold whether it is a true positive and whether it counts at all (not ignored); and per image
the number of people that count. `precision_recall` gives COCOeval's numbers bit for bit (the tests compare
them with pycocotools and faster-coco-eval). `weighted_precision_recall` gives them for image weights
(R, I): a resample of the images is their counts, so no COCOeval runs per resample. Written here because
pycocotools' accumulate reads per-image dicts and faster-coco-eval's runs in C++ on its own structures; neither
takes image weights.

Shape letters: N results, T OKS thresholds, R recall thresholds (101), I images, B resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dehrnet_cli.eval.coco import STAT_NAMES
from dehrnet_cli.eval.image_eval import OKS_THRESHOLDS, RECALL_THRESHOLDS, GroundTruth, ImageMatches, ResultSet

LIBRARY_TOLERANCE = 1e-12
"""How far faster-coco-eval's accumulate may be from pycocotools' (which this module reproduces bit for bit): it
rounds tp / (tp + fp + eps) differently when tp + fp is 1 (1.0 instead of 1 - 2^-52)."""


@dataclass(frozen=True)
class Decomposition:
    """One area range's evaluation as COCOeval.accumulate sees it.

    scores (N,) and image (N,) of the evaluated results, sorted as accumulate sorts them (score, highest first,
    stable over images in id order and each image's results by score); result (N,) their ResultSet index;
    true_positive and counted (T, N); people_counted (I,) people that the area range does not ignore.
    """

    scores: np.ndarray
    image: np.ndarray
    result: np.ndarray
    true_positive: np.ndarray
    counted: np.ndarray
    people_counted: np.ndarray

    def ignoring(self, results: np.ndarray | None = None, people_per_image: np.ndarray | None = None) -> Decomposition:
        """The same evaluation with the results of mask `results` (N,) ignored at every threshold and
        `people_per_image` (I,) fewer people counted (the background corrections of `--analyze`)."""
        counted, true_positive = self.counted, self.true_positive
        if results is not None:
            counted = counted & ~results[None, :]
            true_positive = true_positive & counted
        people = self.people_counted if people_per_image is None else self.people_counted - people_per_image
        return replace(self, counted=counted, true_positive=true_positive, people_counted=people)


def decompose(matches: ImageMatches, results: ResultSet, gt: GroundTruth) -> Decomposition:
    """The Decomposition of one area's matches of `results`."""
    present = matches.dt >= 0
    result = matches.dt[present]  # image order, then rank: COCOeval's concatenation
    image = np.nonzero(present)[0]
    matched = np.moveaxis(matches.matched_gt, 1, 0)[:, present] >= 0  # (T, N)
    counted = ~np.moveaxis(matches.dt_ignored, 1, 0)[:, present]
    order = np.argsort(-results.scores[result], kind="mergesort")
    return Decomposition(scores=results.scores[result][order], image=image[order], result=result[order],
                         true_positive=(matched & counted)[:, order], counted=counted[:, order],
                         people_counted=np.bincount(gt.image[~matches.gt_ignored], minlength=len(gt.image_ids)))


def precision_recall(dec: Decomposition) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's precision (T, R) and recall (T,) of one area (-1 where no person counts)."""
    num_thresholds = dec.true_positive.shape[0]
    precision = -np.ones((num_thresholds, len(RECALL_THRESHOLDS)))
    recall = -np.ones(num_thresholds)
    people = int(dec.people_counted.sum())
    if people == 0:
        return precision, recall
    tp_sum = np.cumsum(dec.true_positive, axis=1).astype(float)
    fp_sum = np.cumsum(dec.counted & ~dec.true_positive, axis=1).astype(float)
    for t in range(num_thresholds):
        tp, fp = tp_sum[t], fp_sum[t]
        rc = tp / people
        pr = tp / (fp + tp + np.spacing(1))
        recall[t] = rc[-1] if len(tp) else 0
        envelope = np.maximum.accumulate(pr[::-1])[::-1]
        index = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        inside = index < len(tp)
        precision[t] = np.where(inside, envelope[np.minimum(index, max(len(tp) - 1, 0))] if len(tp) else 0.0, 0.0)
    return precision, recall


def weighted_precision_recall(dec: Decomposition, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """precision (B, T, R) and recall (B, T) with image i counted weights[b, i] times in resample b.

    Equal to `precision_recall` of the resampled set whose copies of one result sit next to each other: the
    precision envelope at a recall threshold is the highest precision at or after the first true positive
    reaching it, so only the true positives' precisions are needed (the running count of counted results at
    each of them, and the running true-positive count).
    """
    weights = np.asarray(weights, np.float64)
    batch, num_thresholds = weights.shape[0], dec.true_positive.shape[0]
    people = weights @ dec.people_counted.astype(np.float64)  # (B,)
    precision = np.zeros((batch, num_thresholds, len(RECALL_THRESHOLDS)))
    recall = np.zeros((batch, num_thresholds))
    used = dec.counted.any(axis=0)  # results ignored at every threshold change no running count: drop them
    counted, true_positive = dec.counted[:, used], dec.true_positive[:, used]
    per_result = weights[:, dec.image[used]]  # (B, N used)
    running_used = np.cumsum(per_result, axis=1)  # counted at some threshold; each threshold subtracts its few others
    for t in range(num_thresholds):
        positives = np.flatnonzero(true_positive[t])
        if not len(positives):
            continue
        skipped = np.flatnonzero(~counted[t])
        running_skipped = np.cumsum(per_result[:, skipped], axis=1)
        before = np.searchsorted(skipped, positives, side="right")  # skipped results up to each true positive
        running_counted = running_used[:, positives] - np.where(
            before > 0, running_skipped[:, np.maximum(before - 1, 0)] if len(skipped) else 0.0, 0.0)
        tp = np.cumsum(per_result[:, positives], axis=1)
        pr = tp / (running_counted + np.spacing(1))
        rc = tp / np.maximum(people, 1e-300)[:, None]
        envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        offset = 4.0 * np.arange(batch)[:, None]
        index = np.searchsorted((rc + offset).ravel(), (RECALL_THRESHOLDS[None, :] + offset).ravel(), side="left")
        index = index.reshape(batch, -1) - len(positives) * np.arange(batch)[:, None]
        inside = index < len(positives)
        precision[:, t] = np.where(inside, np.take_along_axis(envelope, np.minimum(index, len(positives) - 1), 1), 0)
        recall[:, t] = rc[:, -1]
    precision[people == 0] = -1
    recall[people == 0] = -1
    return precision, recall


def summary_stats(per_area: dict[str, tuple[np.ndarray, np.ndarray]],
                  thresholds: np.ndarray = OKS_THRESHOLDS) -> dict[str, np.ndarray]:
    """COCOeval's ten keypoint numbers from {"all" | "medium" | "large": (precision, recall)}, each the mean of
    the entries > -1 (-1 when none is) as COCOeval.summarize computes it. precision (T, R) and recall (T,) give
    one number per name; precision (B, T, R) and recall (B, T) give B."""
    batched = per_area["all"][0].ndim == 3
    at = {"50": int(np.where(thresholds == .5)[0][0]), "75": int(np.where(thresholds == .75)[0][0])}
    out = {}
    for name in STAT_NAMES:
        kind, suffix = name[:2], name[2:]
        values = per_area[{"m": "medium", "l": "large"}.get(suffix, "all")][0 if kind == "AP" else 1]
        values = values if batched else values[None]
        if suffix in at:
            values = values[:, at[suffix]]
        means = np.asarray([np.mean(v[v > -1]) if (v > -1).any() else -1.0 for v in values])
        out[name] = means if batched else means[0]
    return out
