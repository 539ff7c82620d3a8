"""COCOeval's keypoint evaluation taken apart image by image: the OKS of every result with every person of its
image, and COCOeval's greedy matching per image, OKS threshold and area range, as plain arrays.

`eval --analyze` needs the matches themselves (which person each result was matched to, at OKS 0.1 as well as
at 0.5), and `eval --compare` needs AP as a sum over images so that a bootstrap can re-weight images without
running COCOeval again. Neither pycocotools' `evalImgs` (one Python dict per image and area, built by a
triple loop) nor faster-coco-eval (which keeps them in C++) gives that at COCO-val size, so the matching is
written here: every image at once, one step per detection rank. It follows `COCOeval.evaluateImg` to the
letter (ties, crowd regions, ignored people, maxDets) and the tests check it against pycocotools' own
matches; `eval.accumulate` turns the arrays into COCOeval's precision and recall.

Shape letters: I images, G people of one image, D results of one image (best score first), T OKS thresholds,
K keypoints. Keypoints are image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from pycocotools.coco import COCO

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.keypoint_breakdown import COCO_SIGMAS
from dehrnet_cli.postprocess.oks import mean_oks, oks_terms

COCO_VARIANCES = (COCO_SIGMAS / 10.0 * 2) ** 2
"""(2 sigma)^2 per joint, computed as COCOeval computes it (its kpt_oks_sigmas are COCO_SIGMAS / 10)."""

OKS_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
OFFICIAL_AREAS = {"all": (0.0**2, 1e5**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
MAX_DETS = 20


@dataclass(frozen=True)
class GroundTruth:
    """The people of the evaluated images (the keypoint category), grouped by image in COCOeval's order.

    image_ids (I,) sorted; people of image i are rows starts[i]:starts[i + 1], in annotation-file order.
    ann_ids, image (index into image_ids), areas, crowd, num_keypoints: (P,); boxes (P, 4) xywh;
    keypoints (P, K, 3).
    """

    image_ids: np.ndarray
    starts: np.ndarray
    ann_ids: np.ndarray
    image: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray
    crowd: np.ndarray
    num_keypoints: np.ndarray
    category_id: int

    @classmethod
    def from_coco(cls, gt: COCO, image_ids: list[int], source: str = "--ann") -> GroundTruth:
        """The people of `image_ids`; DehrnetError naming `source` when one has no [x, y, v] * K keypoints."""
        category = next(c["id"] for c in gt.dataset["categories"] if "keypoints" in c)
        num_joints = len(next(c["keypoints"] for c in gt.dataset["categories"] if "keypoints" in c))
        ids = np.unique(np.asarray(image_ids, np.int64))
        anns = [a for i in ids.tolist() for a in gt.imgToAnns.get(i, []) if a["category_id"] == category]
        bad = next((a for a in anns if len(a.get("keypoints") or ()) != 3 * num_joints), None)
        if bad is not None:
            raise DehrnetError(f"{source}: person annotation {bad.get('id')} has no keypoints list of {3 * num_joints} "
                               "numbers (x, y, v per joint): not a COCO person-keypoints file")
        position = {image_id: n for n, image_id in enumerate(ids.tolist())}
        image = np.asarray([position[a["image_id"]] for a in anns], np.int64)
        return cls(image_ids=ids, starts=np.searchsorted(image, np.arange(len(ids) + 1)),
                   ann_ids=np.asarray([a["id"] for a in anns], np.int64), image=image,
                   keypoints=np.asarray([a["keypoints"] for a in anns], np.float64).reshape(len(anns), num_joints, 3),
                   areas=np.asarray([a["area"] for a in anns], np.float64),
                   boxes=np.asarray([a["bbox"] for a in anns], np.float64).reshape(len(anns), 4),
                   crowd=np.asarray([bool(a.get("iscrowd", 0)) for a in anns], bool),
                   num_keypoints=np.asarray([a.get("num_keypoints", 0) for a in anns], np.int64),
                   category_id=category)

    def ignored(self, area_range: tuple[float, float]) -> np.ndarray:
        """(P,) COCOeval's gt ignore flag in one area range: crowd, no labelled keypoint, or area outside."""
        lo, hi = area_range
        return self.crowd | (self.num_keypoints == 0) | (self.areas < lo) | (self.areas > hi)


@dataclass(frozen=True)
class ResultSet:
    """Keypoint results of the evaluated images (the keypoint category only), in the order of the file.

    image (N,) index into GroundTruth.image_ids; keypoints (N, K, 3); scores (N,); areas (N,) as COCO's
    loadRes gives them (the box's w * h when the first result has a box: `boxed`; else the keypoints' extent);
    source (N,) the position of each in the results list.
    """

    image: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    areas: np.ndarray
    source: np.ndarray
    boxed: bool = False

    @classmethod
    def from_results(cls, results: list[dict], gt: GroundTruth) -> ResultSet:
        position = {int(image_id): n for n, image_id in enumerate(gt.image_ids.tolist())}
        source = np.asarray([n for n, r in enumerate(results) if r["category_id"] == gt.category_id
                             and r["image_id"] in position], np.int64)
        kept = [results[n] for n in source.tolist()]
        num_joints = gt.keypoints.shape[1]
        keypoints = np.asarray([r["keypoints"] for r in kept], np.float64).reshape(len(kept), num_joints, 3)
        boxed = bool(results) and bool(results[0].get("bbox"))  # loadRes looks at the first entry only
        if boxed:
            boxes = np.asarray([r["bbox"] for r in kept], np.float64).reshape(len(kept), 4)
            areas = boxes[:, 2] * boxes[:, 3]
        else:
            areas = keypoint_extent_areas(keypoints)
        return cls(image=np.asarray([position[r["image_id"]] for r in kept], np.int64), keypoints=keypoints,
                   scores=np.asarray([r["score"] for r in kept], np.float64), areas=areas, source=source,
                   boxed=boxed)

    def with_keypoints(self, keypoints: np.ndarray) -> ResultSet:
        """The same results with other keypoints (areas follow them, as loadRes would recompute them, unless
        they come from boxes)."""
        return replace(self, keypoints=keypoints, areas=self.areas if self.boxed else keypoint_extent_areas(keypoints))

    def with_scores(self, scores: np.ndarray) -> ResultSet:
        return replace(self, scores=np.asarray(scores, np.float64))


def keypoint_extent_areas(keypoints: np.ndarray) -> np.ndarray:
    """(N,) loadRes' area of keypoint results (N, K, 3): (max x - min x) * (max y - min y) over every joint."""
    if not len(keypoints):
        return np.zeros(0)
    x, y = keypoints[..., 0], keypoints[..., 1]
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))


@dataclass(frozen=True)
class ImageOks:
    """OKS of the results of every image with its people, padded to (I, D, G).

    dt (I, D) index into the ResultSet (-1: padding), best score first (stable, as COCOeval), at most the
    `max_dets` asked for; gt (I, G) index into GroundTruth rows (-1: padding), annotation order;
    oks (I, D, G) (0 at padding).
    """

    dt: np.ndarray
    gt: np.ndarray
    oks: np.ndarray


def ranked_results(results: ResultSet, num_images: int, max_dets: int | None) -> np.ndarray:
    """(I, D) indices of each image's results, best score first (stable in file order), the first `max_dets`
    (None: all); -1 pads."""
    by_score = np.argsort(-results.scores, kind="mergesort")
    order = by_score[np.argsort(results.image[by_score], kind="mergesort")]
    counts = np.bincount(results.image, minlength=num_images)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[results.image[order]]
    width = int(counts.max(initial=0)) if max_dets is None else min(max_dets, int(counts.max(initial=0)))
    keep = rank < width
    table = np.full((num_images, width), -1, np.int64)
    table[results.image[order][keep], rank[keep]] = order[keep]
    return table


def image_oks(gt: GroundTruth, results: ResultSet, max_dets: int | None = MAX_DETS) -> ImageOks:
    """COCOeval.computeOks for every image: per person, the mean OKS term over its labelled joints, or for a
    person without labelled joints the distance to a box twice its own around it (all K joints)."""
    dt = ranked_results(results, len(gt.image_ids), max_dets)
    counts = np.diff(gt.starts)
    width = int(counts.max(initial=0))
    gt_rows = np.full((len(gt.image_ids), width), -1, np.int64)
    rank = np.arange(len(gt.image)) - gt.starts[gt.image]
    gt_rows[gt.image, rank] = np.arange(len(gt.image))
    oks = np.zeros((*dt.shape, width))
    for i in np.flatnonzero((counts > 0) & (dt[:, 0] >= 0) if dt.shape[1] else np.zeros(0, bool)):
        dts = dt[i][dt[i] >= 0]
        pred = results.keypoints[dts]
        for j, row in enumerate(range(gt.starts[i], gt.starts[i + 1])):
            labelled = gt.keypoints[row, :, 2] > 0
            if labelled.any():
                terms = oks_terms(pred, gt.keypoints[row:row + 1], gt.areas[row], COCO_SIGMAS)[:, 0]
                oks[i, :len(dts), j] = mean_oks(terms, labelled)
            else:
                oks[i, :len(dts), j] = _box_oks(pred, gt.boxes[row], gt.areas[row], COCO_VARIANCES)
    return ImageOks(dt=dt, gt=gt_rows, oks=oks)


def _box_oks(pred: np.ndarray, box_xywh: np.ndarray, area: float, variances: np.ndarray) -> np.ndarray:
    """(D,) COCOeval's OKS with a person without labelled joints: each joint's distance outside the box
    (x - w, y - h, 3w, 3h), all K joints averaged."""
    x, y, w, h = box_xywh
    zero = np.zeros(pred.shape[1])
    dx = np.maximum(zero, (x - w) - pred[:, :, 0]) + np.maximum(zero, pred[:, :, 0] - (x + w * 2))
    dy = np.maximum(zero, (y - h) - pred[:, :, 1]) + np.maximum(zero, pred[:, :, 1] - (y + h * 2))
    e = (dx ** 2 + dy ** 2) / variances / (area + np.spacing(1)) / 2
    return np.sum(np.exp(-e), axis=1) / e.shape[1]


@dataclass(frozen=True)
class ImageMatches:
    """COCOeval.evaluateImg of every image in one area range, padded to (I, ., D) like `ImageOks`.

    dt (I, D) result indices; matched_gt (I, T, D) GroundTruth row matched at each threshold (-1: none);
    dt_ignored (I, T, D); gt_ignored (P,) per GroundTruth row; thresholds (T,).
    """

    dt: np.ndarray
    matched_gt: np.ndarray
    dt_ignored: np.ndarray
    gt_ignored: np.ndarray
    thresholds: np.ndarray


def match_images(gt: GroundTruth, results: ResultSet, table: ImageOks, area_range: tuple[float, float],
                 thresholds: np.ndarray = OKS_THRESHOLDS) -> ImageMatches:
    """COCOeval's greedy matching of every image at every threshold, one result rank at a time over all images.

    Each result (best score first) takes, among the people not yet taken (crowd regions may be taken again)
    with OKS >= the threshold, the one of highest OKS, the later one on ties, looking at the people the
    area range does not ignore first and at the ignored ones only when none of those qualifies. A result
    matched to an ignored person is ignored; an unmatched result whose area is outside the range is ignored.
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, np.float64))
    ignored_rows = gt.ignored(area_range)
    valid = table.gt >= 0
    ignored = np.where(valid, ignored_rows[table.gt], True)
    order = np.argsort(np.where(valid, ignored.astype(np.int64), 2), axis=1, kind="mergesort")  # ignored last
    oks = np.take_along_axis(table.oks, order[:, None, :], axis=2)
    ignored = np.take_along_axis(ignored, order, axis=1)
    valid = np.take_along_axis(valid, order, axis=1)
    crowd = np.take_along_axis(np.where(table.gt >= 0, gt.crowd[table.gt], False), order, axis=1)
    num_images, num_dets, width = oks.shape
    limits = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    taken = np.zeros((num_images, len(thresholds), width), bool)
    slot = np.full((num_images, len(thresholds), num_dets), -1, np.int64)
    rows, thr = np.indices((num_images, len(thresholds)))
    for r in range(num_dets):
        present = (table.dt[:, r] >= 0)[:, None, None]
        scores = oks[:, r, None, :]
        allowed = present & valid[:, None, :] & (~taken | crowd[:, None, :]) & (scores >= limits)
        chosen = np.full((num_images, len(thresholds)), -1, np.int64)
        for group in (ignored, ~ignored):  # the second pass (people not ignored) wins wherever it finds one
            candidates = allowed & group[:, None, :]
            last_best = width - 1 - np.argmax(np.where(candidates, scores, -np.inf)[..., ::-1], axis=-1)
            chosen = np.where(candidates.any(axis=-1), last_best, chosen)
        slot[:, :, r] = chosen
        hit = chosen >= 0
        taken[rows[hit], thr[hit], chosen[hit]] = True
    has_match = slot >= 0
    gt_slot = np.take_along_axis(order, np.maximum(slot, 0).reshape(num_images, -1), axis=1).reshape(slot.shape)
    matched_gt = np.where(has_match, np.take_along_axis(table.gt, gt_slot.reshape(num_images, -1), axis=1)
                          .reshape(slot.shape), -1)
    matched_ignored = np.where(has_match, ignored_rows[np.maximum(matched_gt, 0)], False)
    lo, hi = area_range
    dt_area = np.where(table.dt >= 0, results.areas[np.maximum(table.dt, 0)], 0.0)
    outside = ((dt_area < lo) | (dt_area > hi))[:, None, :]
    return ImageMatches(dt=table.dt, matched_gt=matched_gt, dt_ignored=matched_ignored | (~has_match & outside),
                        gt_ignored=ignored_rows, thresholds=thresholds)


def best_unignored_oks(gt: GroundTruth, results: ResultSet, area_range: tuple[float, float]) -> np.ndarray:
    """(N,) each result's highest OKS with a person of its image that the area range does not ignore (0 if
    none): the oracle score of the scoring analysis."""
    table = image_oks(gt, results, max_dets=None)
    usable = (table.gt >= 0) & ~np.where(table.gt >= 0, gt.ignored(area_range)[np.maximum(table.gt, 0)], True)
    best = np.where(usable[:, None, :], table.oks, 0.0).max(axis=2, initial=0.0)
    out = np.zeros(len(results.scores))
    out[table.dt[table.dt >= 0]] = best[table.dt >= 0]
    return out
