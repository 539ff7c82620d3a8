"""The keypoint error taxonomy of Ronchi & Perona, "Benchmarking and Error Diagnosis in Multi-Instance Pose
Estimation" (ICCV 2017): each labelled joint of a result matched to a person is good, jitter, inversion, swap
or miss, and where it would move if that error were corrected.

For a result matched to person p, joint k is compared (keypoint similarity ks, COCO's per-joint OKS term,
normalised by each candidate's own area) with every labelled joint that it could have meant, in this order:
p's joint k, the same joint of every other person of the image (annotation order), p's left/right twin of k,
every other person's twin of k. The highest ks wins, the first one on ties. Then:
  - ks < .5 ("not close to any joint"): miss;
  - the winner is p's joint k: good when ks >= .85, else jitter;
  - p's twin of k: inversion; another person's joint or twin: swap.
Corrections move the joint onto p's joint k at a chosen similarity: a jitter to ks .85, a miss to .5, an
inversion or a swap to the ks it had with the joint it was close to. The moved joint keeps p's y and is
shifted along +x (ks depends on the distance only). Rows are image pixels; written here because no library
gives the taxonomy (the authors' COCO-analyze ships its own modified pycocotools, Python 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dehrnet_cli.eval.image_eval import COCO_SIGMAS, COCO_VARIANCES, GroundTruth, ResultSet
from dehrnet_cli.postprocess.oks import oks_terms

LABELS = ("good", "jitter", "inversion", "swap", "miss")
CORRECTION_ORDER = ("miss", "swap", "inversion", "jitter")  # the paper's order of corrections
NEAR_KS, GOOD_KS = 0.5, 0.85  # ks >= .5: close to a joint; >= .85 on the right one: good
UNLABELLED = -1


@dataclass(frozen=True)
class KeypointErrors:
    """The classified joints of the analysed results.

    result (M,) ResultSet index of each analysed result; person (M,) the GroundTruth row it is matched to;
    label (M, K) int8 index into LABELS (UNLABELLED where the person's joint is not labelled); corrected_xy
    (M, K, 2) where each labelled joint goes when its error is corrected (its own position for a good joint).
    """

    result: np.ndarray
    person: np.ndarray
    label: np.ndarray
    corrected_xy: np.ndarray

    def counts(self, names: list[str]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """({label: count}, {joint name: {label: count}}) over every labelled analysed joint."""
        per_joint = {name: {label: int((self.label[:, k] == n).sum()) for n, label in enumerate(LABELS)}
                     for k, name in enumerate(names)}
        total = {label: int((self.label == n).sum()) for n, label in enumerate(LABELS)}
        return total, per_joint

    def corrected(self, keypoints: np.ndarray, error: str) -> np.ndarray:
        """A copy of all results' keypoints (N, K, 3) with the joints of type `error` moved."""
        out = keypoints.copy()
        rows, joints = np.nonzero(self.label == LABELS.index(error))
        out[self.result[rows], joints, :2] = self.corrected_xy[rows, joints]
        return out


def classify_keypoints(gt: GroundTruth, results: ResultSet, result: np.ndarray, person: np.ndarray,
                       twin: np.ndarray) -> KeypointErrors:
    """Classify the joints of results `result` (M,) matched to GroundTruth rows `person` (M,); `twin` (K,) the
    left/right twin of each joint (itself for the nose). Pairs whose person has no labelled keypoint
    (num_keypoints 0) are left out."""
    keep = gt.num_keypoints[person] > 0
    result, person = np.asarray(result)[keep], np.asarray(person)[keep]
    num_joints = gt.keypoints.shape[1]
    label = np.full((len(result), num_joints), UNLABELLED, np.int8)
    corrected_xy = results.keypoints[result, :, :2].copy()
    for image in np.unique(gt.image[person]):
        pairs = np.flatnonzero(gt.image[person] == image)
        people = np.arange(gt.starts[image], gt.starts[image + 1])
        label[pairs], corrected_xy[pairs] = _classify_image(
            gt, results.keypoints[result[pairs]], person[pairs] - people[0], people, twin)
    return KeypointErrors(result=result, person=person, label=label, corrected_xy=corrected_xy)


def _classify_image(gt: GroundTruth, pred: np.ndarray, matched: np.ndarray, people: np.ndarray,
                    twin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """label (M, K) and corrected xy (M, K, 2) of the results `pred` (M, K, 3) of one image,
    matched to its people `people` (G,) at local positions `matched` (M,)."""
    persons = gt.keypoints[people]
    areas = gt.areas[people]
    direct = np.where(persons[None, :, :, 2] > 0, oks_terms(pred, persons, areas[None, :], COCO_SIGMAS), -1.0)
    flipped = persons[:, twin]
    mirrored = np.where(flipped[None, :, :, 2] > 0, oks_terms(pred, flipped, areas[None, :], COCO_SIGMAS), -1.0)
    num_people = len(people)
    # candidate rows per result: its person first, then the others in annotation order; twins after
    order = np.argsort(np.arange(num_people)[None, :] != matched[:, None], axis=1, kind="mergesort")  # (M, G)
    candidates = np.concatenate([np.take_along_axis(direct, order[:, :, None], axis=1),
                                 np.take_along_axis(mirrored, order[:, :, None], axis=1)], axis=1)  # (M, 2G, K)
    best = candidates.max(axis=1)
    winner = candidates.argmax(axis=1)
    label = np.select([best < NEAR_KS, (winner == 0) & (best >= GOOD_KS), winner == 0, winner == num_people],
                      [LABELS.index("miss"), LABELS.index("good"), LABELS.index("jitter"), LABELS.index("inversion")],
                      LABELS.index("swap")).astype(np.int8)
    own = persons[matched]  # (M, K, 3)
    label[own[:, :, 2] <= 0] = UNLABELLED
    target_ks = np.select([label == LABELS.index("jitter"), label == LABELS.index("miss")], [GOOD_KS, NEAR_KS],
                          np.clip(best, NEAR_KS, 1.0))
    shift = np.sqrt(-np.log(target_ks) * 2 * COCO_VARIANCES[None, :] * (areas[matched][:, None] + np.spacing(1)))
    moved = np.stack([own[:, :, 0] + shift, own[:, :, 1]], axis=-1)
    corrected = np.where(((label != LABELS.index("good")) & (label != UNLABELLED))[..., None], moved, pred[:, :, :2])
    return label, corrected
