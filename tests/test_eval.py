"""COCO keypoint AP/AR and MPII PCKh: scoring against plain pycocotools and hand-computed values, the
ground-truth-box evaluation run, and the failure modes (empty results, foreign ids, missing files)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import calibrate_bn, randomize
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import models
from dehrnet_cli.datasets.mpii import load_mpii_annotations
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.coco import STAT_NAMES, cocoeval_stats, load_coco_gt, read_coco_results, score_coco_results
from dehrnet_cli.eval.mpii import MPII_GROUPS, load_headboxes, read_mpii_results, score_mpii
from dehrnet_cli.eval.run import GroundTruthBoxes, run_coco_eval, run_mpii_eval
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.geometry import clean_gt_box
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.sinks.atomic import write_json_atomic
from dehrnet_cli.sinks.coco import poses_to_results
from dehrnet_cli.sources.images import read_image
from dehrnet_cli.stage_data import Detections, Poses
from models.keypoints import COCO17, MPII16

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


def _annotations(coco_sample: Path) -> dict:
    return json.loads((coco_sample / "test_coco.json").read_text())


def _gt_as_results(doc: dict, score: float = 1.0) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": list(a["keypoints"]), "score": score}
            for a in doc["annotations"] if a["num_keypoints"] > 0]


def _noisy_results(doc: dict, seed: int = 0, sigma_px: float = 6.0) -> list[dict]:
    """Ground truth with Gaussian keypoint noise, random scores, one dropped person and one false positive."""
    rng = np.random.default_rng(seed)
    results = []
    for entry in _gt_as_results(doc)[1:]:
        kpts = np.asarray(entry["keypoints"], np.float64).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0, sigma_px, size=(len(kpts), 2))
        kpts[:, 2] = rng.uniform(0.1, 1.0, size=len(kpts))
        results.append({**entry, "keypoints": kpts.ravel().tolist(), "score": float(rng.uniform(0.2, 1.0))})
    fake = np.column_stack([rng.uniform(0, 300, 17), rng.uniform(0, 300, 17), np.full(17, 0.5)])
    results.append({"image_id": 785, "category_id": 1, "keypoints": fake.ravel().tolist(), "score": 0.95})
    return results


def _plain_pycocotools(ann_file: Path, results: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
        coco_eval.params.useSegm = None
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def test_ground_truth_as_results_scores_one_on_every_stat(coco_sample):
    doc = _annotations(coco_sample)
    scored = score_coco_results(_gt_as_results(doc), coco_sample / "test_coco.json")
    assert list(scored.stats) == list(STAT_NAMES)
    assert scored.stats == dict.fromkeys(STAT_NAMES, 1.0)
    assert scored.warnings == [] and scored.num_images == 4
    assert sum(row["count"] for row in scored.per_keypoint.values()) == 181  # labelled keypoints (README)
    assert all(row["oks"] == 1.0 and row["accuracy"] == 1.0 for row in scored.per_keypoint.values())


def test_noisy_copy_scores_exactly_what_plain_pycocotools_gives(coco_sample):
    doc = _annotations(coco_sample)
    results = _noisy_results(doc)
    before = copy.deepcopy(results)
    scored = score_coco_results(results, coco_sample / "test_coco.json")
    expected = _plain_pycocotools(coco_sample / "test_coco.json", results)
    assert list(scored.stats.values()) == expected.tolist()
    assert 0.2 < scored.stats["AP"] < 1.0  # a real, non-trivial number
    assert results == before  # loadRes rewrites bbox/area/id in place: our input must stay untouched
    assert scored.results == results


def _breakdown_from_cocoeval_matches(ann_file: Path, results: list[dict]) -> dict:
    """Reference per-joint terms from pycocotools' own matches (evalImgs, OKS 0.5, area "all")."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
        coco_eval.evaluate()
    variances = (coco_eval.params.kpt_oks_sigmas * 2) ** 2
    terms: dict[int, list[float]] = {k: [] for k in range(17)}
    for entry in coco_eval.evalImgs:
        if entry is None or list(entry["aRng"]) != list(coco_eval.params.areaRng[0]):
            continue
        for dt_id, gt_id, ignored in zip(entry["dtIds"], entry["dtMatches"][0], entry["dtIgnore"][0]):
            if gt_id and not ignored:
                g = np.asarray(gt.anns[int(gt_id)]["keypoints"], np.float64).reshape(-1, 3)
                d = np.asarray(coco_eval.cocoDt.anns[dt_id]["keypoints"], np.float64).reshape(-1, 3)
                e = ((d[:, 0] - g[:, 0]) ** 2 + (d[:, 1] - g[:, 1]) ** 2) / variances
                e = e / (gt.anns[int(gt_id)]["area"] + np.spacing(1)) / 2
                for k in np.flatnonzero(g[:, 2] > 0):
                    terms[k].append(float(np.exp(-e[k])))
    return {COCO17.names[k]: {"oks": float(np.mean(t)) if t else 0.0,
                              "accuracy": float(np.mean(np.asarray(t) >= 0.5)) if t else 0.0, "count": len(t)}
            for k, t in terms.items()}


@pytest.mark.parametrize("sigma_px", [3.0, 12.0, 20.0])
def test_per_keypoint_matching_is_cocoeval_own(coco_sample, sigma_px):
    """Small to large noise (many results unmatched) and a lower-scored duplicate of every result (a
    person is matched once): the breakdown equals the one built from pycocotools' evalImgs matches,
    number for number."""
    ann = coco_sample / "test_coco.json"
    results = _noisy_results(_annotations(coco_sample), seed=int(sigma_px), sigma_px=sigma_px)
    results += [{**r, "score": r["score"] / 2} for r in _noisy_results(_annotations(coco_sample), 99, sigma_px)]
    scored = score_coco_results(results, ann)
    reference = _breakdown_from_cocoeval_matches(ann, results)
    assert scored.per_keypoint == reference
    assert 0 < sum(row["count"] for row in reference.values())


def _poses_of_gt_with_spurious_people(doc: dict) -> dict[int, Poses]:
    """Per image: its labelled people (keypoints and box from the ground truth) plus one spurious person
    far from everyone, as a detector box on background gives: a large box, keypoints bunched into a 20 px
    patch, a high score. By box it is a large person; by keypoint extent (the protocol) a small one."""
    rng = np.random.default_rng(0)
    poses = {}
    for image in doc["images"]:
        people = [a for a in doc["annotations"] if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        kpts = [np.asarray(a["keypoints"], np.float64).reshape(-1, 3)[:, :2] for a in people]
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                 for a in people]
        far = np.array([image["width"] * 5.0, image["height"] * 5.0])  # outside the image: matches no one
        kpts.append(far + rng.uniform(0, 20, size=(17, 2)))
        boxes.append([*(far - 100), *(far + 100)])
        n = len(people) + 1
        scores = np.array([0.9] * (n - 1) + [0.99], np.float32)
        poses[image["id"]] = Poses(np.asarray(boxes, np.float32), np.ones(n, np.float32),
                                   np.stack(kpts).astype(np.float32), np.ones((n, 17), np.float32), scores,
                                   np.full(n, 1e4, np.float32))
    return poses


def test_scored_results_are_the_official_list_so_area_ranges_follow_the_keypoints(coco_sample, tmp_path):
    """The results list dehrnet scores and saves has no bbox (the official HRNet / mmpose results): COCOeval
    then takes each prediction's area from its keypoint extent, and the spurious far-away people, small by
    that extent, are left out of AP(L) as the protocol says (AP(L) 1.0). With a bbox, loadRes would take the
    area from the box and count them against AP(L) (0.636)."""
    doc = _annotations(coco_sample)
    results = [r for image_id, poses in _poses_of_gt_with_spurious_people(doc).items()
               for r in poses_to_results(poses, image_id)]
    assert all(set(r) == {"image_id", "category_id", "keypoints", "score"} for r in results)
    saved = write_json_atomic(tmp_path / "results.json", results)
    scored = score_coco_results(read_coco_results(saved), coco_sample / "test_coco.json")
    official = [{"image_id": r["image_id"], "category_id": 1, "keypoints": r["keypoints"], "score": r["score"]}
                for r in results]
    assert list(scored.stats.values()) == _plain_pycocotools(coco_sample / "test_coco.json", official).tolist()
    assert scored.stats["APl"] == 1.0 and scored.stats["AP"] < 1.0  # the spurious people do count for AP
    assert scored.warnings == []


def test_a_results_file_with_boxes_is_scored_as_given_with_a_note(coco_sample):
    """A user's results with bboxes score as pycocotools scores them (areas from the boxes), and the
    result says in one line that the area ranges then follow the boxes."""
    doc = _annotations(coco_sample)
    results = [{**r, "bbox": [float(v) for v in [*poses.boxes_xyxy[n][:2], *(poses.boxes_xyxy[n][2:]
                                                                         - poses.boxes_xyxy[n][:2])]]}
               for image_id, poses in _poses_of_gt_with_spurious_people(doc).items()
               for n, r in enumerate(poses_to_results(poses, image_id))]
    scored = score_coco_results(results, coco_sample / "test_coco.json")
    assert list(scored.stats.values()) == _plain_pycocotools(coco_sample / "test_coco.json", results).tolist()
    assert scored.stats["APl"] < 0.7
    assert len(scored.warnings) == 1 and "bbox" in scored.warnings[0] and "\n" not in scored.warnings[0]


def test_faster_coco_eval_gives_the_pycocotools_numbers(coco_sample):
    """When faster-coco-eval is installed it is used; its stats must equal pycocotools' exactly."""
    pytest.importorskip("faster_coco_eval")
    gt = load_coco_gt(coco_sample / "test_coco.json")
    for seed in range(3):
        results = _noisy_results(_annotations(coco_sample), seed=seed)
        fast = cocoeval_stats(gt, results, gt.getImgIds(), "faster-coco-eval")
        assert fast.tolist() == cocoeval_stats(gt, results, gt.getImgIds(), "pycocotools").tolist()


def test_per_keypoint_terms_equal_an_independent_oks_computation(coco_sample):
    """Small noise: every result matches its own ground truth, so the expected per-joint OKS terms
    can be computed here from the pairs directly."""
    doc = _annotations(coco_sample)
    rng = np.random.default_rng(1)
    sigmas = np.asarray(COCO17.sigmas) / 10
    terms: list[list[float]] = [[] for _ in range(17)]
    results = []
    for ann in (a for a in doc["annotations"] if a["num_keypoints"] > 0):
        gt = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        dt = gt.copy()
        dt[:, :2] += rng.normal(0, 2.0, size=(17, 2))
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": dt.ravel().tolist(),
                        "score": 0.9})
        d2 = ((dt[:, :2] - gt[:, :2]) ** 2).sum(axis=1)
        for k in np.flatnonzero(gt[:, 2] > 0):
            terms[k].append(np.exp(-d2[k] / (2 * ann["area"] * (2 * sigmas[k]) ** 2)))
    scored = score_coco_results(results, coco_sample / "test_coco.json")
    for k, name in enumerate(COCO17.names):
        row = scored.per_keypoint[name]
        assert row["count"] == len(terms[k])
        assert row["oks"] == pytest.approx(np.mean(terms[k]), abs=1e-9)
        assert row["accuracy"] == pytest.approx(np.mean(np.asarray(terms[k]) >= 0.5), abs=1e-12)
    assert scored.per_keypoint["left_eye"]["oks"] < scored.per_keypoint["left_hip"]["oks"]  # small sigma, small term


def test_scoring_a_subset_of_images(coco_sample):
    """--limit scores only the evaluated images: people of other images are not misses."""
    one_image = [r for r in _gt_as_results(_annotations(coco_sample)) if r["image_id"] == 40083]
    ann = coco_sample / "test_coco.json"
    assert score_coco_results(one_image, ann, image_ids=[40083]).stats["AR"] == 1.0
    assert score_coco_results(one_image, ann).stats["AR"] < 0.5


@pytest.mark.parametrize("field, value", [("score", float("nan")), ("score", float("inf")), ("score", "0.9"),
                                          ("keypoint", float("nan")), ("keypoint", "12"), ("keypoint", None)])
def test_a_results_entry_with_a_value_that_is_not_a_finite_number_is_refused_by_name(coco_sample, tmp_path,
                                                                                     field, value):
    """A NaN score stopped COCOeval (an internal error) and a NaN keypoint was scored as a miss without a word."""
    results = _gt_as_results(_annotations(coco_sample))
    bad = dict(results[2])
    if field == "score":
        bad["score"] = value
    else:
        bad["keypoints"] = [*bad["keypoints"][:3], value, *bad["keypoints"][4:]]
    results[2] = bad
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))  # NaN and Infinity as Python's json writes them
    where = rf"--coco-results {path}: entry 2 \(image_id {bad['image_id']}\) has a "
    what = "score" if field == "score" else r"keypoint number 3"
    with pytest.raises(DehrnetError, match=where + what) as err:
        score_coco_results(read_coco_results(path), coco_sample / "test_coco.json", source=f"--coco-results {path}")
    assert err.value.exit_code == 2


def test_empty_results_give_zeros_and_a_warning(coco_sample):
    scored = score_coco_results([], coco_sample / "test_coco.json")
    assert scored.stats == dict.fromkeys(STAT_NAMES, 0.0)
    assert len(scored.warnings) == 1 and "no results" in scored.warnings[0]
    assert all(row["count"] == 0 for row in scored.per_keypoint.values())


def test_results_of_another_dataset_are_refused(coco_sample):
    results = _gt_as_results(_annotations(coco_sample))
    results[0] = {**results[0], "image_id": 123456}
    with pytest.raises(DehrnetError, match="123456.*another dataset"):
        score_coco_results(results, coco_sample / "test_coco.json")


def test_missing_or_malformed_annotation_file_is_a_user_error(coco_sample, tmp_path):
    with pytest.raises(DehrnetError, match="no such annotation file"):
        score_coco_results([], tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DehrnetError, match="not a COCO keypoint annotation file"):
        score_coco_results([], tmp_path / "bad.json")


def test_crowd_regions_and_images_without_people(coco_sample, tmp_path):
    """A result inside a crowd region is ignored (AP stays 1); one on an image without people is a
    false positive; both score exactly as plain pycocotools."""
    doc = _annotations(coco_sample)
    doc["images"].append({"id": 999, "file_name": "empty.jpg", "width": 320, "height": 240})
    in_crowd = np.column_stack([np.linspace(20, 180, 17), np.linspace(20, 180, 17), np.full(17, 2)])
    doc["annotations"].append({"id": 1, "image_id": 785, "category_id": 1, "iscrowd": 1, "num_keypoints": 17,
                               "keypoints": in_crowd.ravel().tolist(), "bbox": [0, 0, 200, 200], "area": 40000.0,
                               "segmentation": {"counts": [0, 40000], "size": [425, 640]}})
    ann_file = tmp_path / "with_crowd.json"
    ann_file.write_text(json.dumps(doc))
    crowd_result = {"image_id": 785, "category_id": 1, "keypoints": in_crowd.ravel().tolist(), "score": 1.0}
    results = [r for r in _gt_as_results(doc, score=0.9) if r["keypoints"] != crowd_result["keypoints"]]
    scored = score_coco_results(results + [crowd_result], ann_file)
    assert scored.stats["AP"] == 1.0 and scored.num_images == 5
    assert sum(row["count"] for row in scored.per_keypoint.values()) == 181  # the crowd match is left out
    gt_boxes = GroundTruthBoxes(load_coco_gt(ann_file))
    assert gt_boxes.boxes_xywh(785).shape == (1, 4) and gt_boxes.boxes_xywh(999).shape == (0, 4)
    assert sum(len(gt_boxes.boxes_xywh(i)) for i in (785, 40083, 196141, 197388)) == 12  # 2 keypoint-less skipped
    lonely = {**crowd_result, "image_id": 999}
    scored = score_coco_results(results + [crowd_result, lonely], ann_file)
    assert scored.stats["AP"] < 1.0
    assert list(scored.stats.values()) == _plain_pycocotools(ann_file, results + [crowd_result, lonely]).tolist()


@pytest.fixture(scope="module")
def tiny_topdown() -> TopDownEstimator:
    net = calibrate_bn(randomize(models.create_model(TINY)), (128, 96))
    return TopDownEstimator(TorchBackend(net, "cpu"), TopDownSettings(batch=8))


def _cleaned_gt_boxes(doc: dict, image_id: int) -> Detections:
    """REFERENCE.md step 4, from the annotations directly: no crowd, keypoints present, cleaned box."""
    image = next(im for im in doc["images"] if im["id"] == image_id)
    boxes = []
    for ann in doc["annotations"]:
        if ann["image_id"] != image_id or ann["iscrowd"] or max(ann["keypoints"]) == 0:
            continue
        box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
        if box is not None:
            boxes.append([box[0], box[1], box[0] + box[2], box[1] + box[3]])
    return Detections(np.asarray(boxes, np.float64).reshape(-1, 4), np.ones(len(boxes), np.float32))


def test_gt_box_run_gives_exactly_the_candidates_of_topdown_estimate(coco_sample, tiny_topdown):
    doc = _annotations(coco_sample)
    scored = run_coco_eval(tiny_topdown, coco_sample, coco_sample / "test_coco.json", boxes="gt",
                                      progress=False, frames_per_batch=3)
    expected = []
    for group in (doc["images"][:3], doc["images"][3:]):  # annotation order, the same frames per forward pass
        images = [read_image(coco_sample / image["file_name"]) for image in group]
        all_poses = tiny_topdown.estimate(images, [_cleaned_gt_boxes(doc, image["id"]) for image in group])
        for image, poses in zip(group, all_poses):
            expected.extend(poses_to_results(poses, image["id"]))
    assert scored.results == expected  # bit for bit (CPU convolutions differ ~1e-6 across batch sizes)
    assert 0 < len(scored.results) <= 12
    assert set(scored.timings) == {"load", "read", "detect", "inference", "nms", "scoring"}
    assert scored.num_images == 4 and set(scored.stats) == set(STAT_NAMES)
    limited = run_coco_eval(tiny_topdown, coco_sample, coco_sample / "test_coco.json", limit=1,
                                       progress=False)
    assert limited.num_images == 1 and {r["image_id"] for r in limited.results} == {doc["images"][0]["id"]}


def test_detections_file_boxes_are_used_as_given(coco_sample, tiny_topdown, tmp_path):
    dets = [{"image_id": 40083, "category_id": 1, "bbox": [100.0, 50.0, 120.0, 200.0], "score": 0.7}]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    scored = run_coco_eval(tiny_topdown, coco_sample, coco_sample / "test_coco.json",
                                      boxes=tmp_path / "dets.json", progress=False)
    assert [r["image_id"] for r in scored.results] == [40083]
    image = read_image(coco_sample / "000000040083.jpg")
    box = Detections(np.array([[100.0, 50.0, 220.0, 250.0]]), np.array([0.7], np.float32))
    assert scored.results == poses_to_results(tiny_topdown.estimate([image], [box])[0], 40083)


def test_detector_objects_and_per_image_oks_nms(coco_sample, tiny_topdown):
    """Any detector object works; a duplicated box is removed by the per-image OKS-NMS (OKS 1 > 0.9)
    exactly as `topdown.estimate` removes it."""
    box = np.array([[150.0, 40.0, 330.0, 380.0]])

    def duplicates(frames):
        return [Detections(np.repeat(box, 2, axis=0), np.array([0.9, 0.6], np.float32)) for _ in frames]

    scored = run_coco_eval(tiny_topdown, coco_sample, coco_sample / "test_coco.json", boxes=duplicates,
                                      progress=False)
    assert [r["image_id"] for r in scored.results] == [785, 40083, 196141, 197388]
    doc = _annotations(coco_sample)
    images = [read_image(coco_sample / image["file_name"]) for image in doc["images"]]
    expected = tiny_topdown.estimate(images, duplicates(images))
    assert scored.results == [r for image, poses in zip(doc["images"], expected)
                              for r in poses_to_results(poses, image["id"])]


def test_missing_folder_or_image_is_a_user_error(coco_sample, tiny_topdown, tmp_path):
    ann = coco_sample / "test_coco.json"
    with pytest.raises(DehrnetError, match="no such folder"):
        run_coco_eval(tiny_topdown, tmp_path / "absent", ann, progress=False)
    shutil.copy(coco_sample / "000000000785.jpg", tmp_path)
    with pytest.raises(DehrnetError, match="000000040083.jpg: image listed in .* is missing"):
        run_coco_eval(tiny_topdown, tmp_path, ann, progress=False)


# ------------------------------------------------------------------------------------------------ MPII

HEAD_SIZE = 30.0  # 0.6 x diagonal of a 30 x 40 head box


def _mpii(mpii_sample: Path) -> list[dict]:
    return load_mpii_annotations(mpii_sample / "test_mpii.json")


def _head_boxes(people: list[dict]) -> np.ndarray:
    return np.asarray([[[p["center"][0], p["center"][1]], [p["center"][0] + 30, p["center"][1] + 40]]
                       for p in people], np.float64)


def test_mpii_ground_truth_as_predictions_scores_100(mpii_sample):
    people = _mpii(mpii_sample)
    gt_0_based = np.asarray([p["joints"] for p in people], np.float64) - 1
    scored = score_mpii(gt_0_based, people, _head_boxes(people))
    assert scored["PCKh@0.5"] == dict.fromkeys([*MPII_GROUPS, "Mean"], 100.0)
    assert scored["PCKh@0.1"]["Mean"] == 100.0 and scored["num_people"] == 5


def test_mpii_shifted_predictions_give_the_hand_computed_pckh(mpii_sample):
    """Person n is shifted by s_n head sizes. Persons 2 and 3 have no ankles, so ankles count 3 people
    and Mean (14 joints, pelvis and thorax out) counts 12 x 5 + 2 x 3 = 66 joints."""
    people = _mpii(mpii_sample)
    shifts = np.array([0.05, 0.105, 0.3, 0.45, 0.6]) * HEAD_SIZE
    preds = np.asarray([p["joints"] for p in people], np.float64) - 1
    preds[..., 0] += shifts[:, None]
    scored = score_mpii(preds, people, _head_boxes(people))
    at_05, at_01 = scored["PCKh@0.5"], scored["PCKh@0.1"]
    for group in ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee"):
        assert at_05[group] == pytest.approx(80.0) and at_01[group] == pytest.approx(20.0)
    assert at_05["Ankle"] == pytest.approx(200 / 3) and at_01["Ankle"] == pytest.approx(100 / 3)
    assert at_05["Mean"] == pytest.approx(100 * 52 / 66)
    assert at_01["Mean"] == pytest.approx(100 * 14 / 66)
    assert scored["Mean@0.1 (official)"] == pytest.approx(100 * 28 / 66)  # the official code's 0.11


def test_mpii_head_box_files(mpii_sample, tmp_path):
    people = _mpii(mpii_sample)
    boxes = _head_boxes(people)
    (tmp_path / "list.json").write_text(json.dumps(boxes.tolist()))
    (tmp_path / "dict.json").write_text(json.dumps({p["image"]: b.tolist() for p, b in zip(people, boxes)}))
    assert np.array_equal(load_headboxes(tmp_path / "list.json", people), boxes)
    assert np.array_equal(load_headboxes(tmp_path / "dict.json", people), boxes)
    with pytest.raises(DehrnetError, match="one head box"):
        load_headboxes(tmp_path / "list.json", people + people[:1])
    try:
        import scipy.io
    except ImportError:
        (tmp_path / "gt_valid.mat").write_bytes(b"")
        with pytest.raises(DehrnetError, match="needs scipy"):
            load_headboxes(tmp_path / "gt_valid.mat", people)
    else:
        scipy.io.savemat(tmp_path / "gt_valid.mat", {"headboxes_src": np.transpose(boxes, (1, 2, 0))})
        assert np.array_equal(load_headboxes(tmp_path / "gt_valid.mat", people), boxes)


def test_mpii_run_uses_the_official_crop(mpii_sample, tmp_path):
    net = calibrate_bn(randomize(models.create_model(TINY, keypoints=MPII16)), (128, 96))
    topdown = TopDownEstimator(TorchBackend(net, "cpu"), TopDownSettings(batch=8))
    people = _mpii(mpii_sample)
    scored = run_mpii_eval(topdown, mpii_sample, mpii_sample / "test_mpii.json", _head_boxes(people),
                                      progress=False)
    assert len(scored["predictions"]) == 5 and set(scored["timings"]) == {"read", "inference", "scoring"}
    person = people[3]
    center = np.array([person["center"][0], person["center"][1] + 15 * person["scale"]]) - 1  # 1-based -> 0-based
    scale = np.full(2, person["scale"] * 1.25)
    image = read_image(mpii_sample / person["image"])
    from dehrnet_cli.pose.geometry import warp_crops

    heatmaps = topdown.heatmaps(warp_crops(image, center[None], scale[None], (96, 128)))
    joints, _ = topdown.codec.decode_to_image(heatmaps, center[None], scale[None])
    assert np.array_equal(np.asarray(scored["predictions"][3]["joints"]), joints[0].astype(np.float64) + 1)
    (tmp_path / "preds.json").write_text(json.dumps(scored["predictions"]))
    again = score_mpii(read_mpii_results(tmp_path / "preds.json", people), people,
                                  _head_boxes(people))
    assert again["PCKh@0.5"] == scored["PCKh@0.5"]
    coco_topdown = TopDownEstimator(TorchBackend(models.create_model(TINY), "cpu"))
    with pytest.raises(DehrnetError, match="16-joint"):
        run_mpii_eval(coco_topdown, mpii_sample, mpii_sample / "test_mpii.json", _head_boxes(people))
