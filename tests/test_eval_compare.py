"""The per-image decomposition of COCOeval (every number equal to pycocotools', its image re-weighting equal to
evaluating a resampled set) and eval --compare's paired bootstrap and verdicts."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from analyze_scenes import NAMES, document, joints, person, pycoco, random_scene, result
from pycocotools.cocoeval import COCOeval

from dehrnet_cli.eval.accumulate import (
    STAT_NAMES,
    decompose,
    precision_recall,
    summary_stats,
    weighted_precision_recall,
)
from dehrnet_cli.eval.coco import cocoeval_stats
from dehrnet_cli.eval.compare import compare_results, per_image_eval
from dehrnet_cli.eval.image_eval import OFFICIAL_AREAS, GroundTruth, ResultSet, image_oks, match_images
from dehrnet_cli.eval.keypoint_breakdown import keypoint_breakdown


def _pycocotools(doc: dict, results: list[dict]) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = pycoco(doc)
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), "keypoints")
        coco_eval.params.useSegm = None
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _decompositions(doc: dict, results: list[dict]) -> dict:
    gt = GroundTruth.from_coco(pycoco(doc), [i["id"] for i in doc["images"]])
    subset = ResultSet.from_results(results, gt)
    table = image_oks(gt, subset)
    return {area: decompose(match_images(gt, subset, table, area_range), subset, gt)
            for area, area_range in OFFICIAL_AREAS.items()}


@pytest.mark.parametrize("seed", [0, 3])
def test_the_decomposition_gives_pycocotools_numbers_bit_for_bit(seed):
    doc, results = random_scene(seed)
    reference = _pycocotools(doc, results)
    decompositions = _decompositions(doc, results)
    for a, area in enumerate(OFFICIAL_AREAS):
        precision, recall = precision_recall(decompositions[area])
        np.testing.assert_array_equal(precision, reference.eval["precision"][:, :, 0, a, 0])
        np.testing.assert_array_equal(recall, reference.eval["recall"][:, 0, a, 0])
    stats = summary_stats({area: precision_recall(dec) for area, dec in decompositions.items()})
    assert [float(stats[name]) for name in STAT_NAMES] == reference.stats.tolist()
    faster = cocoeval_stats(pycoco(doc), results, [i["id"] for i in doc["images"]], "faster-coco-eval")
    np.testing.assert_allclose(faster, reference.stats, rtol=0, atol=1e-12)


def test_image_weights_equal_evaluating_the_resampled_set():
    """Weights (counts per image) give what COCOeval gives on a set where each image appears that many times."""
    doc, results = random_scene(5)
    for n, r in enumerate(results):  # distinct scores: the resampled set then has no ties between images
        r["score"] = 0.5 + n * 1e-5
    decompositions = _decompositions(doc, results)
    rng = np.random.default_rng(1)
    counts = rng.multinomial(len(doc["images"]), np.full(len(doc["images"]), 1 / len(doc["images"])), size=3)
    weighted = {area: weighted_precision_recall(dec, counts.astype(float)) for area, dec in decompositions.items()}
    for b, row in enumerate(counts):
        images, annotations, drawn = [], [], []
        for i, image in enumerate(doc["images"]):
            for _ in range(row[i]):
                new_id = len(images) + 1
                images.append(new_id)
                for ann in doc["annotations"]:
                    if ann["image_id"] == image["id"]:
                        annotations.append({**ann, "id": len(annotations) + 1, "image_id": new_id})
                drawn += [{**r, "image_id": new_id} for r in results if r["image_id"] == image["id"]]
        reference = _pycocotools(document(images, annotations), drawn)
        for a, area in enumerate(OFFICIAL_AREAS):
            np.testing.assert_array_equal(weighted[area][0][b], reference.eval["precision"][:, :, 0, a, 0])
            np.testing.assert_array_equal(weighted[area][1][b], reference.eval["recall"][:, 0, a, 0])


def test_per_keypoint_oks_is_the_eval_tables():
    doc, results = random_scene(2)
    gt_coco = pycoco(doc)
    image_ids = [i["id"] for i in doc["images"]]
    per_image = per_image_eval(GroundTruth.from_coco(gt_coco, image_ids), results, NAMES)
    table = keypoint_breakdown(gt_coco, results, image_ids)
    metrics = per_image.metrics()
    for k, name in enumerate(NAMES):
        assert per_image.joint_count[:, k].sum() == table[name]["count"]
        assert metrics[f"oks/{k}"] == pytest.approx(table[name]["oks"], abs=1e-12)


def _pair_scene(num_images: int = 40, seed: int = 0) -> tuple[dict, list[dict], list[dict]]:
    """Two people per image; A's results carry OKS-sized noise, B's are exact."""
    rng = np.random.default_rng(seed)
    annotations, noisy, exact = [], [], []
    for image_id in range(1, num_images + 1):
        for x in (100, 400):
            ann = person(len(annotations) + 1, image_id, x, 100, scale=rng.uniform(0.5, 1.2))
            annotations.append(ann)
            score = float(rng.uniform(0.3, 1))
            exact.append(result(image_id, joints(ann)[:, :2], score))
            noisy.append(result(image_id, joints(ann)[:, :2] + rng.normal(0, 6, (17, 2)), score))
    return document(list(range(1, num_images + 1)), annotations), noisy, exact


def test_a_clearly_better_file_gets_verdicts_and_identical_files_get_none():
    doc, noisy, exact = _pair_scene()
    gt_coco = pycoco(doc)
    image_ids = [i["id"] for i in doc["images"]]
    rows = {row["metric"]: row for row in compare_results(gt_coco, noisy, exact, image_ids, NAMES, resamples=200,
                                                          progress=False)}
    assert rows["AP"]["verdict"] == "b better" and rows["AP"]["ci95"][0] > 0
    assert rows["AP"]["diff"] == pytest.approx(rows["AP"]["b"] - rows["AP"]["a"])
    assert rows["oks/left_wrist"]["verdict"] == "b better"
    assert rows["errors/jitter"]["verdict"] == "b better"  # fewer errors: lower is better
    reversed_rows = {row["metric"]: row for row in compare_results(gt_coco, exact, noisy, image_ids, NAMES,
                                                                   resamples=200, progress=False)}
    assert reversed_rows["AP"]["verdict"] == "a better" and reversed_rows["errors/jitter"]["verdict"] == "a better"
    same = compare_results(gt_coco, noisy, copy.deepcopy(noisy), image_ids, NAMES, resamples=200, progress=False)
    assert all(row["verdict"] is None for row in same)
    assert all(row["ci95"] == [0.0, 0.0] for row in same if row["ci95"] is not None)


def test_the_bootstrap_is_seeded():
    doc, noisy, exact = _pair_scene(20)
    gt_coco, image_ids = pycoco(doc), list(range(1, 21))
    first, again, other = (compare_results(gt_coco, noisy, exact, image_ids, NAMES, resamples=50, seed=s,
                                           progress=False) for s in (0, 0, 1))
    assert first == again and first != other
