"""Track ids (OKS association and ultralytics' box trackers), keypoint boxes, and the video stage
(detection every N frames) on synthetic clips with known poses."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from video_synth import (
    OracleDetector,
    OracleTopDown,
    agreement,
    clip_frames,
    jitter_px,
    lap_stand_in,
    noisy_poses,
    owner_of,
    walking_clip,
)

from dehrnet_cli.detect.base import WholeImageDetector
from dehrnet_cli.detect.yolo import YoloPersonDetector
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.postprocess.oks import oks_sigmas
from dehrnet_cli.stage_data import Detections
from dehrnet_cli.video.box_tracker import BoxTracker
from dehrnet_cli.video.boxes import boxes_from_keypoints, source_rows
from dehrnet_cli.video.oks_tracker import OksTracker, greedy_match, pose_oks
from dehrnet_cli.video.settings import TRACK_DET_CONF, VideoSettings, detector_conf
from dehrnet_cli.video.smoothing import OneEuroSettings
from dehrnet_cli.video.stage import VideoStage
from models import COCO17

SIGMAS = oks_sigmas(COCO17)


@pytest.fixture
def lap_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """ultralytics' trackers import `lap`: the real one when installed, else a stand-in."""
    try:
        import lap  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "lap", lap_stand_in())


def _one_id_each(first: list[int], second: list[int]) -> None:
    """Each person kept one id all along, and the two ids differ."""
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0], (set(first), set(second))


def _ids_by_person(id_rows: list[np.ndarray], owners: list[np.ndarray], people: int) -> list[list[int]]:
    """For each true person, the ids it got frame after frame."""
    seen: list[list[int]] = [[] for _ in range(people)]
    for ids, owner in zip(id_rows, owners):
        for track_id, person in zip(ids, owner):
            seen[int(person)].append(int(track_id))
    return seen


# ------------------------------------------------------------------------------------ OKS tracking


def test_pose_oks_uses_only_joints_confident_in_both() -> None:
    a = np.zeros((1, 17, 2))
    b = a.copy()
    b[0, 0] = [500, 500]  # the nose far away...
    scores_a = np.full((1, 17), 0.9)
    scores_b = scores_a.copy()
    scores_b[0, 0] = 0.1  # ...but unsure: left out
    oks = pose_oks(a, scores_a, b, scores_b, np.full((1, 1), 100.0 * 200), SIGMAS, 0.3)
    assert oks[0, 0] == pytest.approx(1.0)
    scores_b[0, 0] = 0.9
    assert pose_oks(a, scores_a, b, scores_b, np.full((1, 1), 100.0 * 200), SIGMAS, 0.3)[0, 0] == pytest.approx(16 / 17)
    assert pose_oks(a, np.zeros((1, 17)), b, scores_b, np.ones((1, 1)), SIGMAS, 0.3)[0, 0] == 0.0


def test_greedy_match_takes_the_best_pairs_first() -> None:
    similarity = np.array([[0.9, 0.8], [0.85, 0.1], [0.05, 0.05]])
    assert greedy_match(similarity, 0.2) == [(0, 0)]  # row 1 wanted column 0 too; column 1 at 0.1 is too low
    assert greedy_match(similarity, 0.05) == [(0, 0), (1, 1)]
    assert greedy_match(np.zeros((0, 3)), 0.1) == []


def test_oks_tracker_keeps_ids_of_two_people_crossing() -> None:
    clip = walking_clip(150)
    rng = np.random.default_rng(0)
    tracker = OksTracker(SIGMAS)
    id_rows, owners = [], []
    for t in range(clip.num_frames):
        poses = noisy_poses(clip, t, rng, outlier_rate=0.03)
        order = rng.permutation(len(poses))  # the detector's order means nothing
        id_rows.append(tracker.update(poses.select(order)))
        owners.append(order)
    _one_id_each(*_ids_by_person(id_rows, owners, 2))


def test_oks_tracker_bridges_a_gap_and_expires_old_ids() -> None:
    """Person 2 is missed for 20 frames as the two cross (it walks ~40% of its height meanwhile): it
    comes back with its id, found where its velocity predicts; gone for longer than max_age frames,
    it gets a new id."""
    clip = walking_clip(160)
    rng = np.random.default_rng(1)
    tracker = OksTracker(SIGMAS, max_age=30)
    id_rows, owners = [], []
    gaps = (range(60, 80), range(110, 145))
    for t in range(clip.num_frames):
        poses = noisy_poses(clip, t, rng)
        keep = [0] if any(t in gap for gap in gaps) else [0, 1]
        id_rows.append(tracker.update(poses.select(keep)))
        owners.append(np.array(keep))
    first, second = _ids_by_person(id_rows, owners, 2)
    assert set(first) == {1}
    assert set(second[:110 - 20]) == {2}  # bridged the 20-frame gap
    assert set(second[110 - 20:]) == {3}  # 35 frames > max_age: a new id


# ---------------------------------------------------------------------------- box trackers


@pytest.mark.parametrize("config", ["bytetrack.yaml", "botsort.yaml"])
def test_ultralytics_tracker_on_our_boxes_keeps_ids_of_two_people_crossing(config: str, lap_module) -> None:
    clip = walking_clip(120)
    rng = np.random.default_rng(2)
    tracker = BoxTracker(config)
    image = np.zeros((clip.size[1], clip.size[0], 3), np.uint8)
    id_rows, owners = [], []
    for t in range(clip.num_frames):
        boxes = clip.person_boxes(t) + rng.normal(size=(2, 4)) * 2
        order = rng.permutation(2)
        det = Detections(boxes[order].astype(np.float32), np.array([0.9, 0.7], np.float32))
        rows, ids = tracker.update(det, image)
        id_rows.append(ids)
        owners.append(order[rows])
    first, second = _ids_by_person(id_rows, owners, 2)
    assert len(first) == len(second) == clip.num_frames  # both tracked from the first frame on
    _one_id_each(first, second)


def test_box_tracker_drops_boxes_it_does_not_track(lap_module) -> None:
    tracker = BoxTracker("bytetrack.yaml")
    image = np.zeros((100, 100, 3), np.uint8)
    det = Detections(np.array([[10, 10, 40, 90], [60, 10, 90, 90]], np.float32), np.array([0.9, 0.05], np.float32))
    rows, ids = tracker.update(det, image)
    assert rows.tolist() == [0] and ids.tolist() == [1]  # 0.05 is below ByteTrack's low threshold


def test_box_tracker_config_errors(lap_module) -> None:
    with pytest.raises(DehrnetError, match="--tracker nope.yaml: cannot read it"):
        BoxTracker("nope.yaml")
    with pytest.raises(DehrnetError, match="give 'oks' or an ultralytics tracker YAML"):
        BoxTracker("bytetrack")


def test_box_tracker_without_lap_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lap", None)  # import lap -> ImportError
    with pytest.raises(DehrnetError, match="pip install 'lap"):
        BoxTracker("bytetrack.yaml")


# ------------------------------------------------------------------------------ keypoint boxes


def test_boxes_from_keypoints_expand_clip_and_drop() -> None:
    kpts = np.zeros((3, 17, 2), np.float32)
    kpts[0, :, 0], kpts[0, :, 1] = np.linspace(100, 140, 17), np.linspace(50, 250, 17)  # 40 x 200
    kpts[1, :, 0], kpts[1, :, 1] = np.linspace(-30, 10, 17), 100  # wide and flat, off the left edge
    scores = np.full((3, 17), 0.9, np.float32)
    scores[2, 2:] = 0.1  # person 2: only 2 confident joints
    boxes, rows = boxes_from_keypoints(kpts, scores, (300, 400), kpt_thr=0.3, expand=1.25, min_size=32)
    assert rows.tolist() == [0, 1]
    np.testing.assert_allclose(boxes[0], [95, 25, 145, 275])  # (40, 200) x 1.25 about the centre
    np.testing.assert_allclose(boxes[1], [0, 84, 15, 116])  # height grown to 32, clipped at x = 0


def test_source_rows_follow_reordering_and_drops() -> None:
    det_boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 30], [50, 50, 60, 70]], np.float32)
    assert source_rows(det_boxes[[2, 0]], det_boxes).tolist() == [2, 0]
    assert source_rows(np.zeros((0, 4)), det_boxes).tolist() == []


# ---------------------------------------------------------------------------- the video stage


def _run_stage(clip, settings: VideoSettings, detector=None) -> tuple[list, OracleDetector | None]:
    detector = detector or OracleDetector(clip, seed=3)
    stage = VideoStage(detector, OracleTopDown(clip), settings, fps=clip.fps)
    frames = clip_frames(clip)
    poses = []
    for start in range(0, len(frames), 4):  # frames arrive in batches, as predict sends them
        batch = frames[start:start + 4]
        poses.extend(stage.estimate(batch))
    return poses, detector


@pytest.mark.parametrize("tracker", ["oks", "bytetrack.yaml"])
def test_stage_gives_stable_ids_across_a_crossing(tracker: str, lap_module) -> None:
    clip = walking_clip(120)
    poses, _ = _run_stage(clip, VideoSettings(track=True, tracker=tracker))
    owners = [owner_of(clip, t, p) for t, p in enumerate(poses)]
    first, second = _ids_by_person([p.track_ids for p in poses], owners, 2)
    _one_id_each(first, second)
    assert len(first) + len(second) >= 2 * clip.num_frames - 4  # OKS-NMS-free oracle: nearly every pose kept


def test_stage_ids_follow_poses_that_the_pose_stage_reorders(lap_module) -> None:
    """The pose stage may reorder and drop people (OKS-NMS): ids must follow their boxes."""
    clip = walking_clip(60)
    rng = np.random.default_rng(5)

    class Shuffling(OracleTopDown):
        def estimate(self, images, detections):
            return [p.select(rng.permutation(len(p))) for p in super().estimate(images, detections)]

    stage = VideoStage(OracleDetector(clip, seed=3), Shuffling(clip),
                       VideoSettings(track=True, tracker="bytetrack.yaml"), fps=clip.fps)
    poses = stage.estimate(clip_frames(clip))
    owners = [owner_of(clip, t, p) for t, p in enumerate(poses)]
    _one_id_each(*_ids_by_person([p.track_ids for p in poses], owners, 2))


def test_stage_smooths_keypoints_per_track() -> None:
    clip = walking_clip(90)
    jitter = {}
    for smooth in (None, OneEuroSettings()):
        stage = VideoStage(OracleDetector(clip, seed=3), OracleTopDown(clip, noise=0.012, seed=4),
                           VideoSettings(track=True, tracker="oks", smooth=smooth), fps=clip.fps)
        poses = [stage.estimate([f])[0] for f in clip_frames(clip)]
        per_person = np.zeros((clip.num_frames, 2, 17, 2))
        for t, p in enumerate(poses):
            per_person[t, owner_of(clip, t, p)] = p.keypoints_xy
        jitter[smooth is not None] = np.mean([jitter_px(per_person[:, i], clip.gt_xy[:, i]) for i in range(2)])
    assert jitter[True] < jitter[False] / 1.5


def test_stage_default_tracker_is_bytetrack_with_yolo_and_oks_otherwise(lap_module) -> None:
    clip = walking_clip(5)
    yolo = object.__new__(YoloPersonDetector)  # the type is all that matters here: no weights needed
    stage = VideoStage(yolo, OracleTopDown(clip), VideoSettings(track=True))
    assert stage.box_tracker is not None and stage.box_tracker.name == "bytetrack.yaml"
    assert stage.oks_tracker is None
    stage = VideoStage(OracleDetector(clip), OracleTopDown(clip), VideoSettings(track=True))
    assert stage.box_tracker is None and stage.oks_tracker is not None


def test_stage_refuses_a_box_tracker_on_whole_image_boxes(lap_module) -> None:
    clip = walking_clip(5)
    with pytest.raises(DehrnetError, match="--tracker oks"):
        VideoStage(WholeImageDetector(), OracleTopDown(clip), VideoSettings(track=True, tracker="bytetrack.yaml"))
    stage = VideoStage(WholeImageDetector(), OracleTopDown(clip), VideoSettings(track=True))
    assert stage.oks_tracker is not None and stage.box_tracker is None


def test_smoothing_implies_tracking_and_det_every_is_checked() -> None:
    assert VideoSettings(smooth=OneEuroSettings()).tracking
    assert not VideoSettings(det_every=3).tracking and VideoSettings(det_every=3).active
    with pytest.raises(DehrnetError, match="--det-every 0"):
        VideoSettings(det_every=0)


def test_tracking_lowers_the_yolo_threshold_only_for_box_trackers() -> None:
    track = VideoSettings(track=True)
    assert detector_conf(track, "yolo", None) == TRACK_DET_CONF
    assert detector_conf(track, "yolo", 0.5) == 0.5
    assert detector_conf(track, "yolo", None, boxes_file=True) is None
    assert detector_conf(VideoSettings(track=True, tracker="oks"), "yolo", None) is None
    assert detector_conf(VideoSettings(), "yolo", None) is None


@pytest.mark.parametrize("det_every", [3, 8])
def test_det_every_n_agrees_with_detection_on_every_frame(det_every: int) -> None:
    clip = walking_clip(96, crossing=False, speed=0.5)
    every, det_all = _run_stage(clip, VideoSettings(track=True, tracker="oks"))
    sparse, det_some = _run_stage(clip, VideoSettings(track=True, tracker="oks", det_every=det_every))
    assert det_all.calls == clip.num_frames
    assert det_some.calls == -(-clip.num_frames // det_every)  # ceil: frames 0, N, 2N, ...
    oks = agreement(every, sparse, clip)
    print(f"\ndet-every {det_every}: mean OKS to per-frame detection {oks:.3f}")
    assert oks > 0.95
    assert {int(i) for p in sparse for i in p.track_ids} == {1}


def test_det_every_n_detects_again_when_everyone_is_lost() -> None:
    clip = walking_clip(12, crossing=False)

    class Blind(OracleDetector):
        """Sees nobody on the first 2 frames."""

        def __call__(self, frames):
            out = super().__call__(frames)
            return [Detections.empty() if f.index < 2 else d for f, d in zip(frames, out)]

    poses, detector = _run_stage(clip, VideoSettings(det_every=100), Blind(clip))
    assert [len(p) for p in poses[:4]] == [0, 0, 1, 1]
    assert detector.calls == 3  # frames 0, 1 (nobody to follow) and 2; then keypoint boxes
