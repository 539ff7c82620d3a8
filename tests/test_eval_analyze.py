"""eval --analyze: the keypoint error taxonomy on hand-built scenes (each error type at known joints), the
corrections, the AP after each correction, and the matching it rests on against pycocotools' own."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from analyze_scenes import NAMES, J, distance_for, document, joints, person, pycoco, random_scene, result, with_errors
from pycocotools.cocoeval import COCOeval

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.analyze import ANALYSIS_AREAS, STEPS, analyze_results, keypoint_errors_of, twin_index
from dehrnet_cli.eval.image_eval import GroundTruth, ResultSet, best_unignored_oks, image_oks, match_images
from dehrnet_cli.eval.keypoint_errors import LABELS, UNLABELLED
from models.keypoints import COCO17


def _two_people_scene() -> tuple[dict, list[dict], np.ndarray]:
    """Image 1: people A and B side by side. A's result has a jitter, an inversion, a swap (onto B), a miss and a
    good-but-not-exact joint; A's right ear is not labelled; B's result is exact. Returns (ground truth, results,
    expected labels (2, 17) in result order)."""
    a = person(1, 1, 100, 100, unlabelled=(J["right_ear"],))
    b = person(2, 1, 400, 100)
    errors = {"left_wrist": "jitter", "left_knee": "inversion", "right_elbow": "swap", "left_ankle": "miss",
              "nose": "good"}
    results = [result(1, with_errors(a, b, errors), 0.9), result(1, joints(b)[:, :2], 0.8)]
    expected = np.full((2, 17), LABELS.index("good"))
    for name, error in errors.items():
        expected[0, J[name]] = LABELS.index(error)
    expected[0, J["right_ear"]] = UNLABELLED
    return document([1], [a, b]), results, expected


def _errors(doc: dict, results: list[dict], area: str = "all"):
    gt = GroundTruth.from_coco(pycoco(doc), [i["id"] for i in doc["images"]])
    return gt, keypoint_errors_of(gt, ResultSet.from_results(results, gt), NAMES, ANALYSIS_AREAS[area])


def test_each_injected_error_is_classified_exactly():
    doc, results, expected = _two_people_scene()
    gt, errors = _errors(doc, results)
    assert errors.result.tolist() == [0, 1] and errors.person.tolist() == [0, 1]
    np.testing.assert_array_equal(errors.label, expected)
    total, per_joint = errors.counts(NAMES)
    assert total == {"good": 29, "jitter": 1, "inversion": 1, "swap": 1, "miss": 1}  # 16 + 17 labelled
    assert per_joint["left_knee"] == {"good": 1, "jitter": 0, "inversion": 1, "swap": 0, "miss": 0}


def test_the_similarity_limits_are_the_papers():
    """ks .5 and .85 on the right joint: jitter begins at .5 and good at .85 (both inclusive)."""
    a = person(1, 1, 100, 100)
    cases = {"left_wrist": 0.49, "right_wrist": 0.5, "left_ankle": 0.84, "right_ankle": 0.86}
    xy = joints(a)[:, :2].copy()
    for name, ks in cases.items():
        xy[J[name], 0] += distance_for(ks, J[name], a["area"]) * (1 - 1e-9 if ks in (0.5,) else 1)
    _, errors = _errors(document([1], [a]), [result(1, xy, 0.9)])
    labels = {name: LABELS[errors.label[0, J[name]]] for name in cases}
    assert labels == {"left_wrist": "miss", "right_wrist": "jitter", "left_ankle": "jitter", "right_ankle": "good"}


def test_a_joint_near_another_persons_twin_is_a_swap_and_ties_go_to_the_right_joint():
    a, b = person(1, 1, 100, 100), person(2, 1, 400, 100)
    xy = joints(a)[:, :2].copy()
    xy[J["left_hip"]] = joints(b)[J["right_hip"], :2]  # another person's twin joint
    c = person(3, 1, 100, 100)  # a second annotation of A: its joints tie with A's
    _, errors = _errors(document([1], [a, b, c]), [result(1, xy, 0.9)])
    assert LABELS[errors.label[0, J["left_hip"]]] == "swap"
    assert LABELS[errors.label[0, J["nose"]]] == "good"  # the nose is its own twin: never an inversion


def test_corrections_move_each_joint_to_its_similarity():
    doc, results, expected = _two_people_scene()
    gt, errors = _errors(doc, results)
    a = doc["annotations"][0]
    kpts = ResultSet.from_results(results, gt).keypoints
    targets = {"jitter": 0.85, "miss": 0.5, "inversion": 1.0, "swap": 1.0}
    for error, ks in targets.items():
        moved = errors.corrected(kpts, error)
        k = int(np.flatnonzero(expected[0] == LABELS.index(error))[0])
        d2 = ((moved[0, k, :2] - joints(a)[k, :2]) ** 2).sum()
        reached = np.exp(-d2 / (2 * SIGMAS_VAR[k] * (a["area"] + np.spacing(1))))
        assert reached == pytest.approx(ks, abs=1e-9), error
        untouched = np.ones(17, bool)
        untouched[k] = False
        np.testing.assert_array_equal(moved[0, untouched], kpts[0, untouched])


SIGMAS_VAR = (2 * np.asarray(COCO17.sigmas) / 10) ** 2


def test_matches_to_ignored_people_are_analysed_and_keypointless_people_are_not():
    small = person(1, 1, 100, 100, scale=0.15)  # area ~900: ignored by every analysis range (all starts at 32^2)
    empty = person(2, 1, 500, 100, unlabelled=tuple(range(17)))  # num_keypoints 0
    doc = document([1], [small, empty])
    xy = with_errors(small, None, {"left_wrist": "miss"})
    _, errors = _errors(doc, [result(1, xy, 0.9), result(1, joints(person(9, 1, 500, 100))[:, :2], 0.8)])
    assert errors.person.tolist() == [0]  # the result on the keypoint-less person is left out
    assert LABELS[errors.label[0, J["left_wrist"]]] == "miss"


JITTERED = ("left_wrist", "right_wrist", "left_elbow", "right_elbow", "left_knee")  # at ks .6: OKS .88 -> .956


def _impact_scene(kinds: tuple[str, ...]) -> tuple[dict, list[dict]]:
    """One large person per error kind, each result with that error (one joint; five jittered joints), the
    scores falling with the person; a
    medium person found exactly, a person nobody finds, a confident false positive far away and a duplicate
    (OKS .98) of the second person: once rescored it ranks above the corrected first one (OKS .956)."""
    annotations, results = [], []
    for n, kind in enumerate(kinds):
        own = person(n + 1, 1, 100 + 170 * n, 100)
        annotations.append(own)
        other = person(99, 1, 100 + 170 * ((n + 1) % len(kinds)), 100)
        joint_names = JITTERED if kind == "jitter" else ("right_elbow",) if kind == "swap" else ("left_wrist",)
        xy = with_errors(own, other, dict.fromkeys(joint_names, kind), jitter_ks=0.6)
        results.append(result(1, xy, 0.9 - 0.05 * n))
    medium = person(50, 2, 100, 100, scale=0.45)
    nobody = person(51, 2, 400, 100)
    annotations += [medium, nobody]
    results.append(result(2, joints(medium)[:, :2], 0.5))
    results.append(result(2, joints(medium)[:, :2] + 700, 0.95))  # far from everyone
    near_copy = with_errors(annotations[1], None, {"left_shoulder": "jitter"}, jitter_ks=0.7)
    results.append(result(1, near_copy, 0.3))
    return document([1, 2], annotations), results


def test_each_correction_gains_where_its_error_is_and_everything_corrected_reaches_ap_1():
    kinds = ("jitter", "inversion", "swap", "miss")
    doc, results = _impact_scene(kinds)
    gt_coco = pycoco(doc)
    analysis = analyze_results(gt_coco, results, [1, 2], progress=False)
    steps = analysis.ap_steps["all"]
    assert list(steps) == list(STEPS) == ["original", "miss", "swap", "inversion", "jitter", "score",
                                          "background_fp", "false_negatives"]
    values = list(steps.values())
    assert all(b >= a for a, b in zip(values, values[1:]))  # each correction keeps the earlier ones
    assert steps["original"] < 0.8 and steps["false_negatives"] == 1.0
    for error in ("miss", "swap", "inversion", "jitter"):
        previous = values[STEPS.index(error) - 1]
        assert steps[error] > previous, error
    assert steps["score"] > steps["jitter"]
    assert steps["false_negatives"] > steps["background_fp"] > steps["score"]
    assert analysis.counts["all"]["good"] > 0 and analysis.counts["all"]["miss"] == 1


def test_a_correction_changes_nothing_where_its_error_is_absent():
    doc, results = _impact_scene(("inversion", "inversion", "inversion"))
    analysis = analyze_results(pycoco(doc), results, [1, 2], progress=False)
    steps = analysis.ap_steps["all"]
    assert steps["miss"] == steps["swap"] == steps["original"]
    assert steps["inversion"] > steps["swap"]
    assert steps["jitter"] == steps["inversion"]
    assert analysis.counts["all"] == {"good": 3 * 17 + 17 - 3, "jitter": 0, "inversion": 3, "swap": 0, "miss": 0}


def test_perfect_results_have_no_error_and_no_impact():
    doc, _ = _impact_scene(("jitter", "miss"))
    results = [result(a["image_id"], joints(a)[:, :2], 0.9) for a in doc["annotations"]]
    analysis = analyze_results(pycoco(doc), results, [1, 2], progress=False)
    for area in ANALYSIS_AREAS:
        values = set(analysis.ap_steps[area].values())
        assert len(values) == 1 and values.pop() == pytest.approx(1.0, abs=1e-15)  # pycocotools: 1 / (1 + eps)
        counts = analysis.counts[area]
        assert counts["good"] > 0 and counts["jitter"] == counts["inversion"] == counts["swap"] == counts["miss"] == 0


def test_the_oracle_score_is_the_best_oks_with_a_person_the_area_counts():
    large, medium = person(1, 1, 100, 100), person(2, 1, 400, 100, scale=0.45)
    crowd = person(3, 1, 100, 100, crowd=True)  # a crowd region over the large person
    gt = GroundTruth.from_coco(pycoco(document([1], [large, medium, crowd])), [1])
    near = with_errors(large, None, {"left_wrist": "jitter"}, jitter_ks=0.6)
    subset = ResultSet.from_results([result(1, near, 0.1), result(1, joints(medium)[:, :2], 0.2)], gt)
    expected_large = (16 + 0.6) / 17
    assert best_unignored_oks(gt, subset, ANALYSIS_AREAS["large"]) == pytest.approx([expected_large, 0.0], abs=1e-9)
    assert best_unignored_oks(gt, subset, ANALYSIS_AREAS["medium"]) == pytest.approx([0.0, 1.0], abs=1e-9)
    assert best_unignored_oks(gt, subset, ANALYSIS_AREAS["all"]) == pytest.approx([expected_large, 1.0], abs=1e-9)


def test_a_ground_truth_without_labelled_keypoints_is_refused():
    doc = document([1], [person(1, 1, 100, 100, unlabelled=tuple(range(17)))])
    from dehrnet_cli.eval.analyze import require_labelled_keypoints

    with pytest.raises(DehrnetError, match="no person of the evaluated images has a labelled keypoint"):
        require_labelled_keypoints(pycoco(doc), [1], "gt.json")
    doc["annotations"][0].pop("keypoints")
    with pytest.raises(DehrnetError, match="has no keypoints list"):
        GroundTruth.from_coco(pycoco(doc), [1], "--ann gt.json")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("thresholds", [[0.1], list(np.linspace(.5, .95, 10))])
def test_matching_is_cocoevals_own(seed, thresholds):
    """match_images gives pycocotools' evalImgs (dtMatches, dtIgnore, gtIgnore) for every image and area."""
    doc, results = random_scene(seed)
    gt_coco = pycoco(doc)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(gt_coco, gt_coco.loadRes(copy.deepcopy(results)), "keypoints")
        coco_eval.params.iouThrs = np.asarray(thresholds)
        coco_eval.params.areaRng = [list(r) for r in ANALYSIS_AREAS.values()]
        coco_eval.params.areaRngLbl = list(ANALYSIS_AREAS)
        coco_eval.params.maxDets = [20]
        coco_eval.evaluate()
    gt = GroundTruth.from_coco(gt_coco, [i["id"] for i in doc["images"]])
    subset = ResultSet.from_results(results, gt)
    table = image_oks(gt, subset)
    checked = 0
    for a, area_range in enumerate(ANALYSIS_AREAS.values()):
        matches = match_images(gt, subset, table, area_range, np.asarray(thresholds))
        for i in range(len(gt.image_ids)):
            entry = coco_eval.evalImgs[a * len(gt.image_ids) + i]
            if entry is None:
                continue
            present = matches.dt[i] >= 0
            assert (matches.dt[i][present] + 1).tolist() == entry["dtIds"]  # loadRes ids: position + 1
            ours = np.where(matches.matched_gt[i][:, present] >= 0,
                            gt.ann_ids[np.maximum(matches.matched_gt[i][:, present], 0)], 0)
            np.testing.assert_array_equal(ours, entry["dtMatches"])
            np.testing.assert_array_equal(matches.dt_ignored[i][:, present], entry["dtIgnore"])
            rows = np.arange(gt.starts[i], gt.starts[i + 1])
            assert sorted(matches.gt_ignored[rows].tolist()) == sorted(entry["gtIgnore"].astype(bool).tolist())
            checked += int(present.sum())
    assert checked > 100


def test_twins_are_found_by_name():
    assert twin_index(NAMES).tolist() == COCO17.flip_index()
