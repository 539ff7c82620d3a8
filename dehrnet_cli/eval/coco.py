"""COCO keypoint AP/AR with the standard protocol (COCOeval "keypoints", as the official HRNet
`COCODataset.evaluate`): loading the annotations, checking and scoring a results list.

Any keypoint category scores the same way: COCOeval runs on that category alone with its OKS sigmas (the
file's `kpt_oks_sigmas`, else the model's keypoint set's, else the COCO-17 sigmas for the COCO names, else
the uniform default of `postprocess.oks_sigmas`).

COCOeval runs in faster-coco-eval when it is installed (the same ten numbers, bit for bit, several
times faster), else in pycocotools; the per-keypoint breakdown (`eval.keypoint_breakdown`) is computed
here, the same with either. Keypoints are image pixels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dehrnet_cli.datasets.coco import category_keypoint_set, choose_category
from dehrnet_cli.datasets.files import read_json
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.image_eval import GroundTruth, ResultSet
from dehrnet_cli.eval.keypoint_breakdown import keypoint_breakdown
from dehrnet_cli.postprocess.oks import oks_sigmas
from models import KeypointSpec

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


@dataclass(frozen=True, eq=False)
class EvalCategory:
    """The keypoint category an evaluation scores: its id, keypoint names and OKS sigmas (K,) (COCO scale,
    before the /10 of COCOeval)."""

    id: int
    name: str
    names: list[str]
    sigmas: np.ndarray


def eval_category(gt: COCO, source: str, name: str | None = None, spec: KeypointSpec | None = None) -> EvalCategory:
    """The category to score (`datasets.coco.choose_category`: --category `name`, the only one, or the one with
    the model's keypoint names) and its sigmas: the file's, else the model's `spec` (same names), else those of
    the COCO-17 set for its names, else the uniform default."""
    category = choose_category(gt.dataset["categories"], source, name, None if spec is None else spec.names)
    keypoints = category_keypoint_set(category, source)
    if not keypoints.sigmas and spec is not None and spec.names == keypoints.names:
        keypoints = spec
    return EvalCategory(category["id"], str(category.get("name")), list(category["keypoints"]), oks_sigmas(keypoints))


def load_coco_gt(ann_file: Path | dict) -> COCO:
    """A pycocotools COCO of a keypoint annotation file (or of a COCO document already in memory, e.g. an
    ultralytics val split); DehrnetError if absent or malformed."""
    doc = ann_file if isinstance(ann_file, dict) else read_json(ann_file, "--ann", "annotation")
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



def check_results(results: list[dict], gt: COCO, source: str, category: EvalCategory | None = None) -> None:
    """Every entry has image_id, category_id, 3K finite keypoint numbers (K of `category`, default: the file's only
    keypoint category) and a finite score, for an image of `gt` (COCOeval would stop at a NaN score and score a
    NaN keypoint as a miss without a word)."""
    category = category or eval_category(gt, source)
    if not isinstance(results, list):
        raise DehrnetError(f"{source}: expected a COCO results list [{{image_id, category_id, keypoints, score}}]")
    num_values = 3 * len(category.names)
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


def cocoeval_library(library: str = "auto") -> str:
    """The COCOeval that `library` ("auto", "pycocotools" or "faster-coco-eval") runs: "auto" is faster-coco-eval
    when it is installed, else pycocotools."""
    if library != "auto":
        return library
    return "faster-coco-eval" if importlib.util.find_spec("faster_coco_eval") is not None else "pycocotools"


def _run_cocoeval(gt: COCO, image_ids: list[int], library: str, results: list[dict] | None = None,
                  loaded: list[dict] | None = None, area_ranges: dict[str, tuple[float, float]] | None = None,
                  max_dets: int | None = None, category: EvalCategory | None = None):
    """A COCOeval "keypoints" (useSegm None) over `image_ids`, evaluated and accumulated, of `results` (through
    loadRes) or of `loaded` (entries that already hold what loadRes adds: id, area, bbox), on `category` (default:
    the file's only keypoint category) with its sigmas; the area ranges and the maximum results per image are
    COCOeval's unless given. library "auto": faster-coco-eval when it is installed (identical numbers, several
    times faster), else pycocotools; or name either."""
    category = category or eval_category(gt, "the annotations")
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
        coco_gt = gt
        if FastCOCO is not None:
            coco_gt = FastCOCO()
            coco_gt.dataset = gt.dataset
            coco_gt.createIndex()
        if loaded is None:
            coco_dt = coco_gt.loadRes([dict(r) for r in results])  # loadRes edits entries
        else:
            coco_dt = (FastCOCO or COCO)()
            coco_dt.dataset = {"images": list(gt.dataset["images"]), "categories": gt.dataset["categories"],
                               "annotations": loaded}
            coco_dt.createIndex()
        if FastCOCO is not None:
            coco_eval = COCOeval_faster(coco_gt, coco_dt, "keypoints")
        else:
            coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
            coco_eval.params.useSegm = None
        coco_eval.params.imgIds = sorted(image_ids)
        coco_eval.params.catIds = [category.id]
        coco_eval.params.kpt_oks_sigmas = category.sigmas / 10.0
        if area_ranges is not None:
            coco_eval.params.areaRng = [list(r) for r in area_ranges.values()]
            coco_eval.params.areaRngLbl = list(area_ranges)
        if max_dets is not None:
            coco_eval.params.maxDets = [max_dets]
        coco_eval.evaluate()
        coco_eval.accumulate()
    return coco_eval


def cocoeval_stats(gt: COCO, results: list[dict], image_ids: list[int], library: str = "auto",
                   category: EvalCategory | None = None) -> np.ndarray:
    """The ten COCOeval "keypoints" stats (useSegm None) over `image_ids`, of `category` (library, category: see
    `_run_cocoeval`)."""
    coco_eval = _run_cocoeval(gt, image_ids, library, results=results, category=category)
    with _silenced():
        coco_eval.summarize()
    return np.asarray(coco_eval.stats[:len(STAT_NAMES)], np.float64)


def cocoeval_precision(gt: COCO, people: GroundTruth, results: ResultSet, area_ranges: dict[str, tuple[float, float]],
                       max_dets: int, library: str = "auto") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """COCOeval's precision (T, R) and recall (T,) of each named area range (OKS .50:.95, 101 recall
    thresholds), at most `max_dets` results per image, over the images of `people` (library: see
    `_run_cocoeval`). The results go in as loadRes would shape them (built from the arrays: ids in order, area
    as `results.areas`, the keypoints' box), which skips loadRes' per-entry loop: the tests check that the
    numbers equal those of loadRes."""
    x, y = results.keypoints[..., 0], results.keypoints[..., 1]
    boxes = np.stack([x.min(1), y.min(1), x.max(1) - x.min(1), y.max(1) - y.min(1)], axis=1).tolist()
    loaded = [{"id": n + 1, "image_id": image_id, "category_id": people.category_id, "keypoints": keypoints,
               "score": score, "area": area, "bbox": box, "iscrowd": 0}
              for n, (image_id, keypoints, score, area, box) in enumerate(zip(
                  people.image_ids[results.image].tolist(), results.keypoints.reshape(len(x), x.shape[1] * 3).tolist(),
                  results.scores.tolist(), results.areas.tolist(), boxes))]
    coco_eval = _run_cocoeval(gt, people.image_ids.tolist(), library, loaded=loaded, area_ranges=area_ranges,
                              max_dets=max_dets)
    precision, recall = np.asarray(coco_eval.eval["precision"]), np.asarray(coco_eval.eval["recall"])
    return {name: (precision[:, :, 0, a, 0], recall[:, 0, a, 0]) for a, name in enumerate(area_ranges)}


def score_results(results: list[dict], gt: COCO, image_ids: list[int] | None, source: str,
                  category: EvalCategory | None = None) -> CocoEvalResult:
    """COCOeval stats and the per-keypoint breakdown of `results` for `category` (default: `eval_category`)."""
    category = category or eval_category(gt, source)
    check_results(results, gt, source, category)
    names = category.names
    image_ids = gt.getImgIds() if image_ids is None else list(image_ids)
    if not results:
        zeros = {name: {"oks": 0.0, "accuracy": 0.0, "count": 0} for name in names}
        return CocoEvalResult(dict.fromkeys(STAT_NAMES, 0.0), zeros, [], num_images=len(image_ids),
                              warnings=[f"{source}: no results to score; every number is 0"])
    stats = dict(zip(STAT_NAMES, cocoeval_stats(gt, results, image_ids, category=category).tolist()))
    missing = [name for name, v in stats.items() if v < 0]
    warnings = [f"{', '.join(missing)} = -1: the evaluated images have no ground-truth people of that size"] \
        if missing else []
    elsewhere = sorted({r["category_id"] for r in results} - {category.id}, key=str)
    if elsewhere:
        warnings.append(f"{source}: {sum(r['category_id'] != category.id for r in results)} results have category_id "
                        f"{', '.join(map(str, elsewhere))}, not {category.id} ({category.name!r}): they are not scored")
    if any("bbox" in r for r in results):
        warnings.append(f"{source}: the results carry a bbox: COCOeval then takes each result's area from its "
                        "box, so the area ranges of APm/APl/ARm/ARl follow the boxes, unlike the HRNet/mmpose "
                        "protocol (keypoint extent)")
    breakdown = keypoint_breakdown(gt, results, image_ids, category.sigmas, category_id=category.id)
    return CocoEvalResult(stats, breakdown, results, num_images=len(image_ids), warnings=warnings)


def score_coco_results(results: list[dict], ann_file: Path, image_ids: list[int] | None = None,
                       source: str = "results", category: str | None = None) -> CocoEvalResult:
    """COCO keypoint AP/AR of a results list against `ann_file` (`cocoeval_stats`) and the per-keypoint
    breakdown, over `image_ids` (default: every image of the file). Empty results give zeros and a
    warning; results with a bbox are scored as given (areas from the boxes) with a warning; results for
    images that the file does not have raise DehrnetError. `source` names the results in messages; `category`
    names the keypoint category of a file that has several (--category)."""
    start = time.perf_counter()
    gt = load_coco_gt(ann_file)
    loaded = time.perf_counter()
    scored = score_results(results, gt, image_ids, source, eval_category(gt, f"--ann {ann_file}", category))
    scored.timings = {"load": loaded - start, "scoring": time.perf_counter() - loaded}
    return scored


def read_coco_results(path: Path) -> list[dict]:
    """A COCO results json (the list that COCOeval's loadRes takes); checked when scored."""
    return read_json(path, "--coco-results", "results")
