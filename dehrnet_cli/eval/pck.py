"""PCK of a model on a dataset's annotated people, each cropped by its own (un-augmented) center and scale:
the validation metric of training on synthetic people and MPII without head boxes, and the accuracy guard's.

Shape letters: P people (record order), K keypoints. Keypoints are image pixels.
"""

from __future__ import annotations

import numpy as np

from dehrnet_cli.datasets.records import PersonRecord, rows_by_image
from dehrnet_cli.datasets.topdown_dataset import TopDownDataset
from dehrnet_cli.pose.topdown import TopDownEstimator


def dataset_keypoints(topdown: TopDownEstimator, dataset: TopDownDataset) -> tuple[np.ndarray, np.ndarray]:
    """(coords_hm (P, K, 2) heatmap pixels, keypoints_xy (P, K, 2) float32 image pixels) of the dataset's people,
    decoded by `topdown` (flip test per its settings) from crops at each record's center and scale."""
    records = dataset.records
    num_k = dataset.config.num_keypoints
    coords_hm = np.zeros((len(records), num_k, 2), np.float32)
    keypoints_xy = np.zeros((len(records), num_k, 2), np.float32)
    for rows in rows_by_image([r.image for r in records]).values():
        image = dataset.load_image(records[rows[0]])
        centers = np.stack([records[n].center for n in rows]).astype(np.float32)
        scales = np.stack([records[n].scale for n in rows]).astype(np.float32)
        coords_hm[rows], keypoints_xy[rows], _ = topdown.keypoints_at(image, centers, scales)
    return coords_hm, keypoints_xy


def pck(keypoints_xy: np.ndarray, records: list[PersonRecord], thr: float = 0.1) -> float:
    """PCK@thr of keypoints (P, K, 2): the fraction of labelled joints within thr x max(box w, box h) of the truth."""
    truth = np.stack([r.keypoints_xy for r in records])
    labelled = np.stack([r.visible for r in records]) > 0
    sizes = np.array([max(r.box_xywh[2], r.box_xywh[3]) for r in records])
    errors = np.linalg.norm(keypoints_xy.astype(np.float64) - truth, axis=2)
    return int(((errors <= thr * sizes[:, None]) & labelled).sum()) / max(int(labelled.sum()), 1)


def evaluate_pck(topdown: TopDownEstimator, dataset: TopDownDataset, thr: float = 0.1) -> float:
    """PCK@thr of `topdown` on the dataset's people (see `dataset_keypoints` and `pck`)."""
    return pck(dataset_keypoints(topdown, dataset)[1], dataset.records, thr)
