"""Per-keypoint quality of COCO results: the people COCOeval matches at OKS 0.5, and the OKS term of
each of their labelled joints.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from pycocotools.coco import COCO

from dehrnet_cli.postprocess.oks import mean_oks, oks_terms
from models.keypoints import COCO17

KEYPOINT_OK_TERM = 0.5  # per_keypoint "accuracy": a matched joint counts as correct when its OKS term >= this

OKS_MATCH_THR = 0.5  # per_keypoint matching: COCOeval's first OKS threshold

COCO_SIGMAS = np.asarray(COCO17.sigmas, np.float64)  # COCO scale: COCOeval's kpt_oks_sigmas are these / 10


def _match_people(gts: list[dict], dts: list[dict], sigmas: np.ndarray) -> Iterator[tuple[dict, np.ndarray]]:
    """(ground truth, OKS terms (K,)) of each person matched as COCOeval matches at OKS 0.5.

    gts: the image's non-ignored people (not crowd, num_keypoints > 0) in annotation order; dts: its
    results, best score first (stable), at most maxDets. Each result in turn takes the still unmatched
    person of highest OKS >= 0.5 (the last one on ties), as `COCOeval.evaluateImg`; ignored ground
    truth never takes a result that a non-ignored person could, so it can be left out here.
    """
    points = np.asarray([d["keypoints"] for d in dts], np.float64).reshape(len(dts), -1, 3)
    oks = np.zeros((len(dts), len(gts)))
    terms = []
    for j, gt in enumerate(gts):
        g = np.asarray(gt["keypoints"], np.float64).reshape(1, -1, 3)
        joint_terms = oks_terms(points, g, gt["area"], sigmas)[:, 0]  # (dts, K)
        terms.append(joint_terms)
        oks[:, j] = mean_oks(joint_terms, g[0, :, 2] > 0)
    taken = np.zeros(len(gts), bool)
    for i in range(len(dts)):
        best, match = OKS_MATCH_THR, -1
        for j in np.flatnonzero(~taken):
            if oks[i, j] >= best:
                best, match = oks[i, j], j
        if match >= 0:
            taken[match] = True
            yield gts[match], terms[match][i]


def keypoint_breakdown(gt: COCO, results: list[dict], image_ids: list[int], sigmas: np.ndarray = COCO_SIGMAS,
                       max_dets: int = 20, category_id: int | None = None) -> dict[str, dict[str, float]]:
    """Per-joint quality on the people matched as COCOeval matches them at OKS 0.5, area range "all".

    For each matched pair and each joint labelled in the ground truth (v > 0), the OKS term is
    exp(-d^2 / (2 * area * (2 sigma)^2)) (d: distance in image pixels, area: the ground truth's area,
    sigma: COCO sigma / 10; `sigmas` are on the COCO scale), exactly the terms that COCOeval averages into
    OKS (`postprocess.oks`), for the keypoint category `category_id` (default: the file's first). Returns
    {joint name:
    {"oks": mean term, "accuracy": fraction of terms >= 0.5, "count": labelled matched joints}}.
    """
    person = next(c["id"] for c in gt.dataset["categories"] if "keypoints" in c) if category_id is None else category_id
    names = keypoint_names(gt, person)
    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r["category_id"] == person:
            by_image.setdefault(r["image_id"], []).append(r)
    terms: list[list[float]] = [[] for _ in names]
    for image_id in image_ids:
        gts = [a for a in gt.imgToAnns.get(image_id, []) if a["category_id"] == person and not a.get("iscrowd")
               and a.get("num_keypoints", 0) > 0]
        dts = sorted(by_image.get(image_id, []), key=lambda r: -r["score"])[:max_dets]
        for gt_ann, joint_terms in _match_people(gts, dts, sigmas) if gts and dts else ():
            for k in np.flatnonzero(np.asarray(gt_ann["keypoints"]).reshape(-1, 3)[:, 2] > 0):
                terms[k].append(float(joint_terms[k]))
    return {name: {"oks": float(np.mean(t)) if t else 0.0,
                   "accuracy": float(np.mean(np.asarray(t) >= KEYPOINT_OK_TERM)) if t else 0.0,
                   "count": len(t)} for name, t in zip(names, terms)}


def keypoint_names(gt: COCO, category_id: int | None = None) -> list[str]:
    """The keypoint names of category `category_id` (default: the first category with keypoints)."""
    return next(c["keypoints"] for c in gt.dataset["categories"]
                if "keypoints" in c and category_id in (None, c["id"]))
