"""MPII PCKh as the official HRNet `MPIIDataset.evaluate`: head boxes, the per-joint and grouped PCKh, and
reading a predictions file. Predictions passed to `score_mpii` are 0-based image pixels; MPII files are 1-based.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.errors import DehrnetError

MPII_GROUPS = {"Head": (9,), "Shoulder": (12, 13), "Elbow": (11, 14), "Wrist": (10, 15), "Hip": (2, 3),
               "Knee": (1, 4), "Ankle": (0, 5)}  # MPII joint indices; Head is head_top only, as the official code

MPII_MEAN_EXCLUDED = (6, 7)  # pelvis and thorax do not count in Mean

MPII_HEAD_FACTOR = 0.6  # head size = 0.6 x head-box diagonal (official SC_BIAS)

MPII_OFFICIAL_LOW_THR = float(np.arange(0, 0.5 + 0.01, 0.01)[11])  # the official "Mean@0.1" reads rng[11] = 0.11


def load_headboxes(path: Path, annotations: list[dict]) -> np.ndarray:
    """Head boxes (N, 2, 2) [[x1, y1], [x2, y2]] in annotation order.

    Supported: the official `gt_valid.mat` (its `headboxes_src`, 2 x 2 x N; needs scipy), a json list of
    N boxes in annotation order, or a json dict {image name: box} (one person per image) or {image name:
    [box, box, ...]} (that image's people in annotation order).
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        if not path.is_file():
            raise DehrnetError(f"--headboxes {path}: no such file")
        try:
            from scipy.io import loadmat
        except ImportError:
            raise DehrnetError(f"--headboxes {path}: reading .mat files needs scipy (pip install scipy), or give the "
                               "head boxes as json") from None
        try:
            boxes = np.transpose(np.asarray(loadmat(str(path))["headboxes_src"], np.float64), (2, 0, 1))
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise DehrnetError(f"--headboxes {path}: not an MPII gt_valid.mat with headboxes_src ({e})") from None
    else:
        doc = read_json(path, "--headboxes", "head-box")
        try:
            boxes = _headboxes_by_image(doc, annotations) if isinstance(doc, dict) else np.asarray(doc, np.float64)
        except (ValueError, TypeError):
            boxes = np.zeros(0)
    if boxes.shape != (len(annotations), 2, 2) or not np.isfinite(boxes).all():
        raise DehrnetError(f"--headboxes {path}: expected one head box [[x1, y1], [x2, y2]] per annotated person "
                           f"({len(annotations)}); got shape {boxes.shape} or missing people")
    return boxes


def _headboxes_by_image(doc: dict, annotations: list[dict]) -> np.ndarray:
    """(N, 2, 2) from {image: box} or {image: [box, ...]}; NaN where a person has no box."""
    taken: dict[str, int] = {}
    rows = []
    for person in annotations:
        name = person["image"]
        n = taken[name] = taken.get(name, -1) + 1
        entry = np.asarray(doc.get(name, np.nan), np.float64)
        entry = entry[None] if entry.shape == (2, 2) else entry
        ok = entry.ndim == 3 and entry.shape[1:] == (2, 2) and n < len(entry)
        rows.append(entry[n] if ok else np.full((2, 2), np.nan))
    return np.asarray(rows).reshape(-1, 2, 2)


def _mpii_table(pckh: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    """Groups (mean of left and right) and the official Mean: per-joint PCKh weighted by the number of
    labelled joints, pelvis and thorax excluded. Groups without labels are None."""
    table: dict[str, float | None] = {}
    for group, joints in MPII_GROUPS.items():
        values = pckh[list(joints)]
        table[group] = float(values.mean()) if np.isfinite(values).all() else None
    weights = counts.astype(np.float64)
    weights[list(MPII_MEAN_EXCLUDED)] = 0
    table["Mean"] = float(np.sum(np.nan_to_num(pckh) * weights / weights.sum())) if weights.sum() else None
    return table


def score_mpii(preds: np.ndarray, annotations: list[dict], headboxes: np.ndarray) -> dict:
    """PCKh as the official MPII evaluation (HRNet `MPIIDataset.evaluate`).

    preds (N, 16, 2) 0-based image pixels, in annotation order; headboxes (N, 2, 2). A joint is correct
    when its distance to the ground truth <= thr x 0.6 x head-box diagonal; unlabelled joints
    (joints_vis 0) are skipped. Returns {"PCKh@0.5": groups + Mean, "PCKh@0.1": groups + Mean,
    "Mean@0.1 (official)": the official code's number, which reads threshold 0.11, "per_joint@0.5":
    {joint: PCKh}, "num_people"}. Values are percentages.
    """
    preds_arr = np.asarray(preds, np.float64)
    if preds_arr.shape != (len(annotations), 16, 2) or np.shape(headboxes) != (len(annotations), 2, 2):
        raise DehrnetError(f"MPII predictions {preds_arr.shape} and head boxes {np.shape(headboxes)} do not match "
                           f"the {len(annotations)} annotated people; expected (N, 16, 2) and (N, 2, 2)")
    gt = np.asarray([p["joints"] for p in annotations], np.float64)  # 1-based, as the official pos_gt_src
    visible = np.asarray([p["joints_vis"] for p in annotations], np.float64) > 0
    errors = np.linalg.norm(preds_arr + 1.0 - gt, axis=2)  # official: preds + 1 against 1-based gt
    head_sizes = np.linalg.norm(np.asarray(headboxes)[:, 1] - np.asarray(headboxes)[:, 0], axis=1) * MPII_HEAD_FACTOR
    scaled = errors / head_sizes[:, None] * visible
    counts = visible.sum(axis=0)

    def pckh(thr: float) -> np.ndarray:
        hits = ((scaled <= thr) & visible).sum(axis=0)
        return np.divide(100.0 * hits, counts, out=np.full(16, np.nan), where=counts > 0)

    at_05 = pckh(0.5)
    from models.keypoints import MPII16

    return {"PCKh@0.5": _mpii_table(at_05, counts), "PCKh@0.1": _mpii_table(pckh(0.1), counts),
            "Mean@0.1 (official)": _mpii_table(pckh(MPII_OFFICIAL_LOW_THR), counts)["Mean"],
            "per_joint@0.5": {name: None if np.isnan(v) else float(v) for name, v in zip(MPII16.names, at_05)},
            "num_people": len(annotations)}


def read_mpii_results(path: Path, annotations: list[dict]) -> np.ndarray:
    """Predictions (N, 16, 2) 0-based of a results json in annotation order: a list of {"image", "joints"}
    (16 [x, y], 1-based MPII pixels, as written by --save-results) or of bare 16 x [x, y] lists."""
    doc = read_json(path, "--mpii-results", "MPII results")
    entries = doc if isinstance(doc, list) else []
    joints = [e.get("joints") if isinstance(e, dict) else e for e in entries]
    if len(joints) != len(annotations) or any(np.shape(j) != (16, 2) for j in joints):
        raise DehrnetError(f"--mpii-results {path}: expected {len(annotations)} predictions of 16 [x, y] joints in "
                           "annotation order")
    for n, (entry, person) in enumerate(zip(entries, annotations)):
        if isinstance(entry, dict) and entry.get("image", person["image"]) != person["image"]:
            raise DehrnetError(f"--mpii-results {path}: entry {n} is for {entry['image']} but the annotations have "
                               f"{person['image']} there: the files do not match")
    return np.asarray(joints, np.float64) - 1.0
