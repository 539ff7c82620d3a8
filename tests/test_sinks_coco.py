"""The COCO file and results list predict writes (sinks.coco.CocoFileBuilder): COCO's visibility semantics,
no -0.0, and never a NaN (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.errors import InternalError
from dehrnet_cli.sinks.coco import CocoFileBuilder
from dehrnet_cli.stage_data import Poses
from models.keypoints import COCO17


def _poses(keypoints_xy: np.ndarray, kpt_scores: np.ndarray) -> Poses:
    n = len(keypoints_xy)
    return Poses(np.tile(np.array([[0, 0, 10, 20]], np.float32), (n, 1)), np.ones(n, np.float32),
                 keypoints_xy.astype(np.float32), kpt_scores.astype(np.float32), np.full(n, 0.5, np.float32),
                 np.full(n, 200.0, np.float32))


def test_num_keypoints_counts_every_keypoint_with_v_above_zero_and_no_negative_zero(tmp_path: Path) -> None:
    kpts = np.full((1, 17, 2), 5.0)
    kpts[0, 0] = (-0.0001, -0.0002)  # rounds to -0.0
    scores = np.linspace(0.0, 1.0, 17)[None]  # some below kpt_thr (v = 1), some above (v = 2)
    builder = CocoFileBuilder(COCO17, kpt_thr=0.3)
    builder.add(1, "a/bus.jpg", (64, 48), _poses(kpts, scores))
    doc = json.loads(builder.write(tmp_path / "r.json").read_text())
    ann = doc["annotations"][0]
    visibility = ann["keypoints"][2::3]
    assert set(visibility) == {1, 2} and ann["num_keypoints"] == 17  # COCO: the keypoints with v > 0
    text = (tmp_path / "r.json").read_text() + builder.write_results(tmp_path / "res.json").read_text()
    assert "-0.0" not in text
    assert ann["keypoints"][:2] == [0.0, 0.0]


def test_a_non_finite_prediction_is_refused_instead_of_writing_bare_nan(tmp_path: Path) -> None:
    builder = CocoFileBuilder(COCO17)
    builder.add(1, "x.jpg", (64, 48), _poses(np.full((1, 17, 2), np.nan), np.full((1, 17), 0.5)))
    for write, path in ((builder.write, tmp_path / "r.json"), (builder.write_results, tmp_path / "res.json")):
        with pytest.raises(InternalError, match="NaN or infinity"):
            write(path)
        assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temp file either
