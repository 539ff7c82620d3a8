"""`eval --analyze`: where a results file loses AP, after Ronchi & Perona (ICCV 2017), per area range.

1. Match: COCOeval's own matching in the area range at the localization OKS (0.1), at most 20 results per
   image. Every match is analysed, a match to a person the range ignores (another size) included; matches to
   people without a labelled keypoint are left out.
2. Classify the labelled joints of the matched results (`keypoint_errors`) and count them.
3. Correct, in the paper's order, misses, swaps, inversions and jitters (each step keeps the earlier ones) and
   re-evaluate each step with the official COCOeval (`coco.cocoeval_precision`).
4. Score: give each result (all of them, on the corrected keypoints) its highest OKS with a person the range
   does not ignore as its score; re-evaluate officially.
5. Background: at OKS .5 on the rescored results, ignore the results that match no person (false positives),
   then also the people that no result matches (false negatives).
COCOeval cannot ignore chosen results or people (step 5), so every step is evaluated by `image_eval`'s
per-image matching and `accumulate` (bit for bit pycocotools), and each of steps 1 to 4 is also evaluated by
the official COCOeval of `coco.cocoeval_precision`, which must agree (to the last-bit rounding in which
faster-coco-eval differs from pycocotools; an InternalError otherwise). The report gives the former, so that
all steps come from one computation.
Every AP is COCO's: the mean precision over OKS .50:.95 and 101 recall thresholds, here with the paper's area
ranges (all = 32^2 and up, unlike the official "all") and 20 results per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO

from dehrnet_cli.datasets.coco import SIGMA_SCALE
from dehrnet_cli.errors import DehrnetError, InternalError
from dehrnet_cli.eval.accumulate import LIBRARY_TOLERANCE, Decomposition, decompose, precision_recall
from dehrnet_cli.eval.coco import cocoeval_library, cocoeval_precision, load_coco_gt
from dehrnet_cli.eval.image_eval import (
    MAX_DETS,
    GroundTruth,
    ImageMatches,
    ImageOks,
    ResultSet,
    best_unignored_oks,
    image_oks,
    match_images,
)
from dehrnet_cli.eval.keypoint_errors import CORRECTION_ORDER, GOOD_KS, NEAR_KS, KeypointErrors, classify_keypoints
from dehrnet_cli.progress import job_progress_bar
from models.keypoints import COCO17, flip_pairs_from_names

ANALYSIS_AREAS = {"all": (32.0**2, 1e5**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}
LOC_OKS = 0.1
STEPS = ("original", *CORRECTION_ORDER, "score", "background_fp", "false_negatives")


@dataclass
class Analysis:
    """What --analyze finds, per area range name: counts {label: n}; counts_per_keypoint {joint: {label: n}};
    ap_steps {step: AP} in STEPS order; curves {step: (R,) precision at the 101 recall thresholds averaged over
    the OKS thresholds}; figures: the files written (`html_report.write_analysis_report`)."""

    params: dict
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    counts_per_keypoint: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    ap_steps: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    def to_report(self) -> dict:
        return {"params": self.params, "counts": self.counts, "counts_per_keypoint": self.counts_per_keypoint,
                "ap_steps": self.ap_steps, "figures": self.figures}


def twin_index(names: list[str]) -> np.ndarray:
    """(K,) the left/right twin of each joint by name (models.keypoints.flip_pairs_from_names); itself when it has
    none."""
    twins = np.arange(len(names))
    for a, b in flip_pairs_from_names(names):
        twins[a], twins[b] = b, a
    return twins


def _ap(precision: np.ndarray) -> float:
    return float(np.mean(precision[precision > -1])) if (precision > -1).any() else -1.0


def _curve(precision: np.ndarray) -> np.ndarray:
    """(R,) precision averaged over the OKS thresholds where it is defined (NaN where it never is)."""
    valid = precision > -1
    return np.where(valid.any(axis=0), np.where(valid, precision, 0).sum(axis=0) / np.maximum(valid.sum(axis=0), 1),
                    np.nan)


def require_labelled_keypoints(gt_coco: COCO, image_ids: list[int], ann_file: Path | str) -> None:
    """DehrnetError unless the file has one keypoint category, COCO's 17 person keypoints with COCO's sigmas (the
    ones the per-image evaluation scores with), and the evaluated images have a person with a labelled keypoint
    (what --analyze and --compare measure)."""
    categories = [c for c in gt_coco.dataset["categories"] if "keypoints" in c]
    sigmas = categories[0].get("kpt_oks_sigmas") if len(categories) == 1 else None
    if len(categories) != 1 or list(categories[0]["keypoints"]) != list(COCO17.names) or (
            sigmas is not None and not np.allclose(np.asarray(sigmas, np.float64) * SIGMA_SCALE, COCO17.sigmas)):
        what = f"{len(categories)} keypoint categories" if len(categories) != 1 else \
            f"the keypoints {', '.join(map(str, categories[0]['keypoints']))}" + ("" if sigmas is None else
                                                                                  " with their own sigmas")
        raise DehrnetError(f"--ann {ann_file}: --analyze and --compare score COCO's 17 person keypoints with COCO's "
                           f"sigmas, and this file has {what}: score it without them")
    gt = GroundTruth.from_coco(gt_coco, image_ids, str(ann_file))
    if not (gt.keypoints[:, :, 2] > 0).any():
        raise DehrnetError(f"--ann {ann_file}: no person of the evaluated images has a labelled keypoint, so there "
                           "is no keypoint error to find: give a COCO person-keypoints file")


def check_analysis_input(ann_file: Path, limit: int | None = None) -> None:
    """Refuse, before any work, an annotation file that --analyze or --compare cannot use (DehrnetError)."""
    gt_coco = load_coco_gt(ann_file)
    require_labelled_keypoints(gt_coco, gt_coco.getImgIds()[:limit] if limit else gt_coco.getImgIds(), ann_file)


def run_analysis(results: list[dict], ann_file: Path, limit: int | None, folder: Path, progress: bool = True) -> dict:
    """`eval --analyze` of a checked results list on the first `limit` images of `ann_file` (all: None): the
    analysis, its figures and HTML page written into `folder`; returns the report section."""
    from dehrnet_cli.eval.html_report import write_analysis_report  # matplotlib: only when figures are drawn

    gt_coco = load_coco_gt(ann_file)
    image_ids = gt_coco.getImgIds()[:limit] if limit else gt_coco.getImgIds()
    require_labelled_keypoints(gt_coco, image_ids, ann_file)
    analysis = analyze_results(gt_coco, results, image_ids, progress)
    analysis.figures = [str(path) for path in write_analysis_report(analysis, folder)]
    return analysis.to_report()


def analyze_results(gt_coco: COCO, results: list[dict], image_ids: list[int], progress: bool = True,
                    library: str = "auto") -> Analysis:
    """The error analysis of `results` (a checked COCO keypoint results list) on `image_ids` of `gt_coco`."""
    gt = GroundTruth.from_coco(gt_coco, image_ids)
    names = next(c["keypoints"] for c in gt_coco.dataset["categories"] if "keypoints" in c)
    subset = ResultSet.from_results(results, gt)
    analysis = Analysis(params={"loc_oks": LOC_OKS, "jitter_ks": [NEAR_KS, GOOD_KS], "max_dets": MAX_DETS,
                                "areas": {k: list(v) for k, v in ANALYSIS_AREAS.items()},
                                "oks_thresholds": [round(t, 2) for t in np.linspace(.5, .95, 10).tolist()],
                                "steps": list(STEPS), "library": cocoeval_library(library)})
    with job_progress_bar("analyze", enabled=progress) as bar:
        task = bar.add_task("analyze", total=1 + 6 * len(ANALYSIS_AREAS))
        original = cocoeval_precision(gt_coco, gt, subset, ANALYSIS_AREAS, MAX_DETS, library)
        table = image_oks(gt, subset)
        bar.advance(task)
        for area, area_range in ANALYSIS_AREAS.items():
            steps = {"original": _checked(_decomposition(gt, subset, area_range, table)[1], original[area][0], area,
                                          "original")}
            errors = _localization_errors(gt, subset, table, area_range, names)
            analysis.counts[area], analysis.counts_per_keypoint[area] = errors.counts(names)
            keypoints = subset.keypoints
            for error in CORRECTION_ORDER:
                keypoints = errors.corrected(keypoints, error)
                steps[error] = _step(gt_coco, gt, subset.with_keypoints(keypoints), area, library, error)[0]
                bar.advance(task)
            steps.update(_score_and_background(gt_coco, gt, subset.with_keypoints(keypoints), area, library))
            bar.advance(task, 2)
            analysis.ap_steps[area] = {step: _ap(steps[step]) for step in STEPS}
            analysis.curves[area] = {step: _curve(steps[step]) for step in STEPS}
    return analysis


def _decomposition(gt: GroundTruth, subset: ResultSet, area_range: tuple[float, float],
                   table: ImageOks | None = None) -> tuple[ImageMatches, np.ndarray, Decomposition]:
    """(matches, precision (T, R), decomposition) of `subset` in one area range, from the per-image matching."""
    matches = match_images(gt, subset, image_oks(gt, subset) if table is None else table, area_range)
    dec = decompose(matches, subset, gt)
    return matches, precision_recall(dec)[0], dec


def _checked(precision: np.ndarray, official: np.ndarray, area: str, step: str) -> np.ndarray:
    """`precision` from the per-image matching, once the official COCOeval agrees with it (to the rounding in
    which faster-coco-eval and pycocotools differ); InternalError otherwise."""
    if np.abs(precision - official).max() > LIBRARY_TOLERANCE:
        raise InternalError(f"--analyze: dehrnet's per-image evaluation and COCOeval disagree at step {step} "
                            f"(area {area}, largest precision difference {np.abs(precision - official).max():.3g})")
    return precision


def _step(gt_coco: COCO, gt: GroundTruth, subset: ResultSet, area: str, library: str,
          step: str) -> tuple[np.ndarray, ImageMatches, Decomposition]:
    """(precision (T, R), matches, decomposition) of `subset` in one analysis area range, checked against the
    official COCOeval."""
    matches, precision, dec = _decomposition(gt, subset, ANALYSIS_AREAS[area])
    official = cocoeval_precision(gt_coco, gt, subset, {area: ANALYSIS_AREAS[area]}, MAX_DETS, library)[area][0]
    return _checked(precision, official, area, step), matches, dec


def _score_and_background(gt_coco: COCO, gt: GroundTruth, corrected: ResultSet, area: str,
                          library: str) -> dict[str, np.ndarray]:
    """Precision (T, R) after the oracle rescoring of the corrected results, then without the background false
    positives, then also without the false negatives."""
    rescored = corrected.with_scores(best_unignored_oks(gt, corrected, ANALYSIS_AREAS[area]))
    precision, matches, dec = _step(gt_coco, gt, rescored, area, library, "score")
    at_half = 0  # OKS .5, the first threshold: the loosest match COCOeval counts
    unmatched = matches.matched_gt[:, at_half, :] < 0
    false_positive = np.zeros(len(rescored.scores), bool)
    false_positive[matches.dt[(matches.dt >= 0) & unmatched]] = True
    found = np.zeros(len(gt.image), bool)
    found[matches.matched_gt[:, at_half, :][~unmatched]] = True
    missed_people = np.bincount(gt.image[~found & ~matches.gt_ignored], minlength=len(gt.image_ids))
    without_fp = dec.ignoring(results=false_positive[dec.result])
    return {"score": precision, "background_fp": precision_recall(without_fp)[0],
            "false_negatives": precision_recall(without_fp.ignoring(people_per_image=missed_people))[0]}


def keypoint_errors_of(gt: GroundTruth, subset: ResultSet, names: list[str],
                       area_range: tuple[float, float] = ANALYSIS_AREAS["all"],
                       table: ImageOks | None = None) -> KeypointErrors:
    """The classified joints of the results matched at the localization OKS in one area range (`table`: their
    image_oks when the caller has it)."""
    return _localization_errors(gt, subset, image_oks(gt, subset) if table is None else table, area_range, names)


def _localization_errors(gt: GroundTruth, subset: ResultSet, table: ImageOks, area_range: tuple[float, float],
                         names: list[str]) -> KeypointErrors:
    matches = match_images(gt, subset, table, area_range, np.asarray([LOC_OKS]))
    matched = matches.matched_gt[:, 0, :] >= 0
    return classify_keypoints(gt, subset, matches.dt[matched], matches.matched_gt[:, 0, :][matched], twin_index(names))
