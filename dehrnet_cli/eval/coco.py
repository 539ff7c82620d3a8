"""COCO keypoint AP/AR with the standard protocol (COCOeval "keypoints", as the official HRNet
`COCODataset.evaluate`): loading the annotations, checking and scoring a results list.

COCOeval runs in faster-coco-eval when it is installed (the same ten numbers, bit for bit, several
times faster), else in pycocotools; the per-keypoint breakdown (`eval.keypoint_breakdown`) is computed
here, the same with either. Keypoints are image pixels.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.keypoint_breakdown import COCO_SIGMAS, keypoint_breakdown, keypoint_names

STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@dataclass
class CocoEvalResult:
    """What a COCO keypoint evaluation gives.

    stats: the ten COCOeval numbers (STAT_NAMES; -1 where the evaluated images have no ground truth of
    that size, as pycocotools). per_keypoint: {joint name: {"oks", "accuracy", "count"}} (see
    `keypoint_breakdown`). results: the COCO results list that was scored. timings: seconds per phase.
    """

    stats: dict[str, float]
    per_keypoint: dict[str, dict[str, float]]
    results: list[dict]
    timings: dict[str, float] = field(default_factory=dict)
    num_images: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_report(self, settings: dict) -> dict:
        """The --report document: stats, per_keypoint and settings (plus images, timings, warnings)."""
        return {"stats": self.stats, "per_keypoint": self.per_keypoint, "settings": settings,
                "num_images": self.num_images, "timings": self.timings, "warnings": self.warnings}


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """pycocotools prints its progress and tables to stdout: keep them out of ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def load_coco_gt(ann_file: Path) -> COCO:
    """A pycocotools COCO of a person-keypoints annotation file; DehrnetError if absent or malformed."""
    doc = read_json(ann_file, "--ann", "annotation")
    ok = isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories"))
    if not ok or not any("keypoints" in c for c in doc["categories"]):
        raise DehrnetError(f"--ann {ann_file}: not a COCO keypoint annotation file (needs images, annotations and "
                           "a category with keypoints, like person_keypoints_val2017.json)")
    gt = COCO()
    gt.dataset = doc
    try:
        with _silenced():
            gt.createIndex()
    except (KeyError, TypeError) as e:
        raise DehrnetError(f"--ann {ann_file}: malformed COCO annotations ({type(e).__name__}: {e})") from None
    return gt


def _is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_results(results: list[dict], gt: COCO, source: str) -> None:
    """Every entry has image_id, category_id, 3K finite keypoint numbers and a finite score, for an image of
    `gt` (COCOeval would stop at a NaN score and score a NaN keypoint as a miss without a word)."""
    if not isinstance(results, list):
        raise DehrnetError(f"{source}: expected a COCO results list [{{image_id, category_id, keypoints, score}}]")
    num_values = 3 * len(keypoint_names(gt))
    for n, entry in enumerate(results):
        ok = isinstance(entry, dict) and {"image_id", "category_id", "keypoints", "score"} <= entry.keys()
        if not ok or not isinstance(entry["keypoints"], list) or len(entry["keypoints"]) != num_values:
            raise DehrnetError(f"{source}: entry {n} is not a keypoint result (image_id, category_id, score and "
                               f"{num_values} keypoint numbers)")
        bad = [f"score {entry['score']!r}"] if not _is_finite_number(entry["score"]) else []
        bad += [f"keypoint number {k} ({value!r})" for k, value in enumerate(entry["keypoints"])
                if not _is_finite_number(value)][:1]
        if bad:
            raise DehrnetError(f"{source}: entry {n} (image_id {entry['image_id']}) has a {' and a '.join(bad)} that "
                               "is not a finite number; fix or drop that entry")
    unknown = sorted({r["image_id"] for r in results} - set(gt.imgs), key=str)
    if unknown:
        raise DehrnetError(f"{source}: {len(unknown)} image id(s) such as {unknown[:3]} are not in the annotation "
                           "file: these results belong to another dataset or split; pass the matching --ann")


def cocoeval_stats(gt: COCO, results: list[dict], image_ids: list[int], library: str = "auto") -> np.ndarray:
    """The ten COCOeval "keypoints" stats (useSegm None) over `image_ids`. library "auto": faster-coco-eval
    when it is installed (identical numbers, several times faster), else pycocotools; or name either."""
    FastCOCO = None
    if library in ("auto", "faster-coco-eval"):
        try:
            from faster_coco_eval import COCO as FastCOCO
            from faster_coco_eval import COCOeval_faster
        except ImportError:
            if library != "auto":
                raise DehrnetError("faster-coco-eval is not installed: pip install faster-coco-eval") from None
    elif library != "pycocotools":
        raise DehrnetError(f"COCOeval library {library!r}: use auto, pycocotools or faster-coco-eval")
    with _silenced():
        if FastCOCO is not None:
            fast_gt = FastCOCO()
            fast_gt.dataset = gt.dataset
            fast_gt.createIndex()
            coco_eval = COCOeval_faster(fast_gt, fast_gt.loadRes([dict(r) for r in results]), "keypoints")
        else:
            coco_eval = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "keypoints")  # loadRes edits entries
            coco_eval.params.useSegm = None
        coco_eval.params.imgIds = sorted(image_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return np.asarray(coco_eval.stats[:len(STAT_NAMES)], np.float64)


def score_results(results: list[dict], gt: COCO, image_ids: list[int] | None, source: str) -> CocoEvalResult:
    _check_results(results, gt, source)
    names = keypoint_names(gt)
    if len(names) != len(COCO_SIGMAS):
        raise DehrnetError(f"{source}: COCO keypoint AP is defined for the 17 COCO keypoints; the annotations have "
                           f"{len(names)}")
    image_ids = gt.getImgIds() if image_ids is None else list(image_ids)
    if not results:
        zeros = {name: {"oks": 0.0, "accuracy": 0.0, "count": 0} for name in names}
        return CocoEvalResult(dict.fromkeys(STAT_NAMES, 0.0), zeros, [], num_images=len(image_ids),
                              warnings=[f"{source}: no results to score; every number is 0"])
    stats = dict(zip(STAT_NAMES, cocoeval_stats(gt, results, image_ids).tolist()))
    missing = [name for name, v in stats.items() if v < 0]
    warnings = [f"{', '.join(missing)} = -1: the evaluated images have no ground-truth people of that size"] \
        if missing else []
    if any("bbox" in r for r in results):
        warnings.append(f"{source}: the results carry a bbox: COCOeval then takes each result's area from its "
                        "box, so the area ranges of APm/APl/ARm/ARl follow the boxes, unlike the HRNet/mmpose "
                        "protocol (keypoint extent)")
    return CocoEvalResult(stats, keypoint_breakdown(gt, results, image_ids), results, num_images=len(image_ids),
                          warnings=warnings)


def score_coco_results(results: list[dict], ann_file: Path, image_ids: list[int] | None = None,
                       source: str = "results") -> CocoEvalResult:
    """COCO keypoint AP/AR of a results list against `ann_file` (`cocoeval_stats`) and the per-keypoint
    breakdown, over `image_ids` (default: every image of the file). Empty results give zeros and a
    warning; results with a bbox are scored as given (areas from the boxes) with a warning; results for
    images that the file does not have raise DehrnetError. `source` names the results in messages."""
    start = time.perf_counter()
    gt = load_coco_gt(ann_file)
    loaded = time.perf_counter()
    scored = score_results(results, gt, image_ids, source)
    scored.timings = {"load": loaded - start, "scoring": time.perf_counter() - loaded}
    return scored


def read_coco_results(path: Path) -> list[dict]:
    """A COCO results json (the list that COCOeval's loadRes takes); checked when scored."""
    return read_json(path, "--coco-results", "results")
