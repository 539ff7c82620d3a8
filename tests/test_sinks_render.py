"""Pose rendering: what is drawn where, side colours, thresholds, boxes, ids and banner."""

from __future__ import annotations

import numpy as np
import pytest

from dehrnet_cli.errors import InternalError
from dehrnet_cli.sinks.render import CENTER_BGR, LEFT_BGR, RIGHT_BGR, draw_poses, limb_side
from dehrnet_cli.stage_data import Poses
from models.keypoints import COCO17, MPII16

W, H = 320, 240  # thickness 1 (~radius 2): features stay local


def _poses(kpts_xy: np.ndarray, kpt_scores: np.ndarray, boxes_xyxy: np.ndarray | None = None,
           track_ids: np.ndarray | None = None) -> Poses:
    n = len(kpts_xy)
    boxes = np.zeros((n, 4), np.float32) if boxes_xyxy is None else boxes_xyxy.astype(np.float32)
    ones = np.ones(n, np.float32)
    return Poses(boxes, ones, kpts_xy.astype(np.float32), kpt_scores.astype(np.float32), ones, ones,
                 track_ids)


def _coco_person() -> tuple[np.ndarray, np.ndarray]:
    """A standing person (K=17, image pixels) with every keypoint scored 0.9 but the left wrist (0.1)."""
    kpts_xy = np.array([
        [160, 40], [166, 34], [154, 34], [174, 38], [146, 38],  # nose, eyes, ears
        [190, 70], [130, 70], [210, 105], [110, 105], [230, 140], [90, 140],  # shoulders, elbows, wrists
        [180, 140], [140, 140], [185, 180], [135, 180], [188, 220], [132, 220],  # hips, knees, ankles
    ], np.float32)  # fmt: skip
    kpt_scores = np.full(17, 0.9, np.float32)
    kpt_scores[9] = 0.1  # left wrist
    return kpts_xy[None], kpt_scores[None]


def _changed(before: np.ndarray, after: np.ndarray, x: float, y: float) -> bool:
    return bool(np.any(before[int(y), int(x)] != after[int(y), int(x)]))


def test_visible_keypoints_are_drawn_and_low_scores_hidden() -> None:
    image = np.full((H, W, 3), 30, np.uint8)
    kpts_xy, kpt_scores = _coco_person()
    out = draw_poses(image, _poses(kpts_xy, kpt_scores), COCO17, kpt_thr=0.3)
    for k in (0, 5, 7, 11, 16):
        assert _changed(image, out, *kpts_xy[0, k])
    left_wrist, left_elbow = kpts_xy[0, 9], kpts_xy[0, 7]
    assert not _changed(image, out, *left_wrist)
    assert not _changed(image, out, *(left_wrist + left_elbow) / 2)  # nor the limb that touches it
    assert _changed(image, out, *(kpts_xy[0, 8] + kpts_xy[0, 10]) / 2)  # the right forearm is drawn
    shown = draw_poses(image, _poses(kpts_xy, kpt_scores), COCO17, kpt_thr=0.05)
    assert _changed(image, shown, *left_wrist)  # the same keypoint above a lower threshold


def test_left_right_and_centre_limbs_have_different_colours() -> None:
    image = np.zeros((3 * H, 3 * W, 3), np.uint8)  # thickness 3: the line's centre has its exact colour
    kpts_xy, kpt_scores = _coco_person()
    out = draw_poses(image, _poses(3 * kpts_xy, kpt_scores), COCO17, kpt_thr=0.05)
    left = out[367, 660].tolist()  # the middle of the left forearm (elbow 7 -> wrist 9)
    right = out[367, 300].tolist()  # the middle of the right forearm
    centre = out[210, 480].tolist()  # the middle of shoulder -> shoulder
    assert left == list(LEFT_BGR) and right == list(RIGHT_BGR) and centre == list(CENTER_BGR)
    assert len({tuple(left), tuple(right), tuple(centre)}) == 3


def test_limb_sides() -> None:
    assert limb_side(COCO17, 7, 9) == "left" and limb_side(COCO17, 8, 10) == "right"
    assert limb_side(COCO17, 0, 1) == "left"  # nose -> left eye: one side only
    assert limb_side(COCO17, 5, 6) == "center"  # shoulder -> shoulder
    assert limb_side(MPII16, 0, 1) == "right" and limb_side(MPII16, 14, 15) == "left"


def test_input_is_not_modified_and_a_new_array_is_returned() -> None:
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    before = image.copy()
    kpts_xy, kpt_scores = _coco_person()
    out = draw_poses(image, _poses(kpts_xy, kpt_scores), COCO17, draw_boxes=True, banner="untrained")
    np.testing.assert_array_equal(image, before)
    assert out is not image and not np.shares_memory(out, image) and out.shape == image.shape


def test_boxes_and_track_ids() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    kpts_xy, kpt_scores = _coco_person()
    boxes = np.array([[60, 60, 260, 230]])
    no_boxes = draw_poses(image, _poses(kpts_xy, kpt_scores * 0, boxes), COCO17, draw_ids=False)
    assert not no_boxes.any()  # nothing visible, no box asked for: nothing drawn
    boxed = draw_poses(image, _poses(kpts_xy, kpt_scores * 0, boxes), COCO17, draw_boxes=True)
    assert boxed[230, 150].any() and boxed[150, 60].any() and not boxed[150, 150].any()
    with_id = draw_poses(image, _poses(kpts_xy, kpt_scores * 0, boxes, np.array([7])), COCO17)
    assert with_id[40:60, 60:100].any()  # "#7" above the box's top-left corner
    assert not with_id[100:, :].any()


def test_banner_marks_the_top_only() -> None:
    image = np.full((H, W, 3), 128, np.uint8)
    out = draw_poses(image, Poses.empty(17), COCO17, banner="UNTRAINED WEIGHTS: poses are meaningless")
    assert np.any(out[:10] != 128) and np.all(out[H // 2:] == 128)
    tiny = draw_poses(np.zeros((48, 64, 3), np.uint8), Poses.empty(17), COCO17, banner="UNTRAINED 画像")
    assert tiny[:10].any() and not tiny[30:].any()


def test_wild_coordinates_do_not_crash() -> None:
    kpts_xy = np.full((1, 17, 2), np.nan, np.float32)
    kpts_xy[0, 5:] = 1e12
    out = draw_poses(np.zeros((H, W, 3), np.uint8), _poses(kpts_xy, np.ones((1, 17))), COCO17)
    assert out.shape == (H, W, 3)


def test_keypoint_count_mismatch_is_an_internal_error() -> None:
    kpts_xy, kpt_scores = _coco_person()
    with pytest.raises(InternalError, match="16 keypoints"):
        draw_poses(np.zeros((H, W, 3), np.uint8), _poses(kpts_xy, kpt_scores), MPII16)
