"""The `dehrnet eval` job: which of its six modes runs (a model on COCO, a COCO results file, a model on MPII, an
MPII predictions file, two COCO results files compared, two models run on the same COCO images and boxes and
compared; --analyze with the COCO ones), its run plan (the
annotation file found by convention counts as read, so no output may overwrite it), the estimator built from
specs, and the outputs written atomically.

    outcome = evaluate(EvalJob(coco=Path("coco/val2017"), report=Path("r.json")), model=ModelSpec(...), ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.env import interrupts_deferred
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.layout import (
    ANALYSIS_FILES,
    analysis_folder,
    coco_annotation_for,
    eval_detector_conf,
    mpii_eval_paths,
    yolo_eval_set,
)
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.progress import note
from dehrnet_cli.sinks.atomic import write_json_atomic
from dehrnet_cli.sinks.plan import RunPlan
from dehrnet_cli.sources.base import IMAGE_SUFFIXES
from dehrnet_cli.weights.model_choice import ModelSpec

if TYPE_CHECKING:
    from dehrnet_cli.eval.coco import CocoEvalResult

UNTRAINED_EVAL_BANNER = "UNTRAINED WEIGHTS - the numbers are meaningless"


@dataclass(frozen=True)
class EvalJob:
    """coco: a COCO image folder (annotations: --ann, else person_keypoints_<folder>.json in ../annotations);
    coco_results: a COCO results list to score (no model); mpii: an MPII root or image folder; mpii_results: an
    MPII predictions file to score; data: an ultralytics pose data.yaml (its val split, on the labelled boxes);
    ann, headboxes: annotation files; category: the keypoint category of an annotation file with several;
    gt_boxes: ground-truth person boxes instead of a detector; limit: the first N images (MPII: people);
    save_results, report: outputs; quiet; analyze: the keypoint error analysis, its figures and page in `figures`
    (eval.analyze); compare: two COCO results files of the same images, or with `coco` two models (weights files)
    run on its images with the same boxes; `resamples` bootstrap draws from `seed` (eval.compare)."""

    coco: Path | None = None
    coco_results: Path | None = None
    mpii: Path | None = None
    mpii_results: Path | None = None
    data: Path | None = None
    ann: Path | None = None
    headboxes: Path | None = None
    category: str | None = None
    gt_boxes: bool = False
    limit: int | None = None
    save_results: Path | None = None
    report: Path | None = None
    quiet: bool = False
    analyze: bool = False
    figures: Path | None = None
    compare: tuple[Path, Path] | None = None
    resamples: int = 1000
    seed: int = 0

    @property
    def mode(self) -> str:
        """coco, coco-results, mpii, mpii-results, data, compare or compare-models (--compare with --coco);
        DehrnetError unless exactly one is given (and --analyze only with a COCO mode)."""
        modes = [name for name, given in (("coco", self.coco and not self.coco_results and not self.compare),
                                          ("coco-results", self.coco_results),
                                          ("mpii", self.mpii and not self.mpii_results),
                                          ("mpii-results", self.mpii_results), ("data", self.data),
                                          ("compare", self.compare)) if given]
        if len(modes) != 1:
            raise DehrnetError("give exactly one of --coco DIR, --coco-results FILE, --mpii DIR, --mpii-results FILE, "
                               "--data FILE, --compare A B"
                               + (f" (got {', '.join('--' + m for m in modes)})" if modes else ""))
        if self.analyze and modes[0] not in ("coco", "coco-results"):
            raise DehrnetError(f"--analyze needs COCO keypoints: use it with --coco or --coco-results, not "
                               f"--{modes[0]}")
        return "compare-models" if modes[0] == "compare" and self.coco else modes[0]

    @property
    def analysis_folder(self) -> Path | None:
        """Where --analyze writes its figures and page (None without --analyze)."""
        return analysis_folder(self.figures, self.report) if self.analyze else None


@dataclass
class EvalOutcome:
    """What an evaluation gave: `coco` (a CocoEvalResult) or `pckh` (score_mpii's dict), the settings that made it,
    whether the weights were random, and the files written."""

    mode: str
    coco: CocoEvalResult | None = None
    pckh: dict | None = None
    settings: dict = field(default_factory=dict)
    untrained: bool = False
    written: list[Path] = field(default_factory=list)
    analysis: dict | None = None  # the report's "analyze" section (--analyze)
    compare: dict | None = None  # the report's "compare" section (--compare)


def _paths(job: EvalJob, mode: str) -> tuple[Path | None, Path | dict | None, Path | None]:
    """(images folder, annotation file (or, for --data, the COCO document of its val split), head boxes) of the
    job, annotations found by convention when not given."""
    if mode in ("mpii", "mpii-results"):
        return mpii_eval_paths(job.mpii, job.ann, job.headboxes)
    if mode == "data":
        return (*yolo_eval_set(job.data), None)  # every label line checked before the model loads
    ann = job.ann or (coco_annotation_for(job.coco) if job.coco else None)
    if mode in ("coco-results", "compare") and ann is None:
        raise DehrnetError(f"--{mode} needs the annotation file: give --ann FILE")
    if mode in ("coco", "compare-models") and not ann.is_file():
        raise DehrnetError(f"annotation file {ann}: no such file; give --ann FILE (a COCO person_keypoints_*.json "
                           "for the images in --coco)")
    return job.coco, ann, None


def _check_compared_models(job: EvalJob, model: ModelSpec) -> None:
    """--compare A B with --coco: A and B are the two models; nothing else may name one."""
    results = [str(path) for path in job.compare if Path(path).suffix.lower() == ".json"]
    if results:
        raise DehrnetError(f"--compare {results[0]}: with --coco, --compare runs two models: give their weights files "
                           "(results files are compared with --ann, without --coco)")
    if model.weights is not None or model.name is not None:
        raise DehrnetError("--compare A B names the two models: drop --weights / --model")
    if job.save_results is not None:
        raise DehrnetError(f"--save-results {job.save_results}: --compare of two models writes no results list; "
                           "run `eval --coco DIR --weights A --save-results a.json` per model to keep them")


def _check_plan(job: EvalJob, mode: str, paths: tuple[Path | None, Path | None, Path | None], model: ModelSpec,
                detector: DetectorSpec) -> None:
    """Every file the job reads (the annotations found by convention too) and writes, checked before any work."""
    if mode == "compare-models":
        _check_compared_models(job, model)
    if (job.gt_boxes or job.data is not None) and detector.boxes is not None:
        raise DehrnetError(f"give either {'--data' if job.data else '--gt-boxes'} (labelled boxes) or --boxes FILE, "
                           "not both")
    if job.limit is not None and job.limit < 1:
        raise DehrnetError(f"--limit {job.limit}: give a positive number of images (MPII: people)")
    plan = RunPlan()
    _, ann, headboxes = paths
    for what, path in (("annotation file", ann if isinstance(ann, Path) else None), ("--headboxes", headboxes),
                       ("--coco-results", job.coco_results), ("--mpii-results", job.mpii_results),
                       ("--boxes", detector.boxes), ("--weights", model.weights), ("--data", job.data)):
        plan.read(what, path)
    plan.read_all("--compare", job.compare or ())
    plan.write("--save-results", job.save_results, partial=False)
    plan.write("--report", job.report, partial=False)
    folder = job.analysis_folder
    plan.write("--figures", folder, folder=True, files=[folder / name for name in ANALYSIS_FILES] if folder else ())
    plan.check()
    if job.analyze:
        from dehrnet_cli.eval.analyze import check_analysis_input

        check_analysis_input(ann, job.limit)


def evaluate(job: EvalJob, model: ModelSpec = ModelSpec(), runtime: RuntimeSpec = RuntimeSpec(),
             detector: DetectorSpec = DetectorSpec(), pose: TopDownSettings = TopDownSettings(),
             log: Callable[[str], None] = note) -> EvalOutcome:
    """Run the job (see EvalJob) and write its outputs; the plan is checked before any model work."""
    mode = job.mode
    paths = _paths(job, mode)
    _check_plan(job, mode, paths, model, detector)
    settings: dict[str, Any] = {"mode": mode, "limit": job.limit}
    if mode == "compare":
        return _compare(job, paths[1], settings)
    if mode == "coco-results":
        return _score_coco_file(job, paths[1], settings)
    if mode == "mpii-results":
        return _score_mpii_file(job, paths, settings)
    images_dir = paths[0]
    if not Path(images_dir).is_dir():
        raise DehrnetError(f"image folder {images_dir}: no such folder")
    if mode == "compare-models":
        return _compare_models(job, paths, model, runtime, detector, pose, log, settings)
    estimator = _estimator(job, mode, paths, model, runtime, detector, pose, log)
    settings.update(_model_settings(estimator, model, pose))
    outcome = EvalOutcome(mode, settings=settings, untrained=estimator.untrained)
    if mode == "mpii":
        from dehrnet_cli.eval.run import run_mpii_eval

        _, ann, headboxes = paths
        settings.update(ann=str(ann), headboxes=str(headboxes), images=str(images_dir))
        outcome.pckh = run_mpii_eval(estimator.topdown, images_dir, ann, headboxes, progress=not job.quiet,
                                     limit=job.limit)
        predictions = outcome.pckh.pop("predictions")
        outcome.written = _write(job, predictions, {"pckh": outcome.pckh, "settings": settings})
        return outcome
    from dehrnet_cli.eval.run import run_coco_eval

    settings.update(ann=str(job.data or paths[1]), images=str(images_dir), category=job.category,
                    boxes=_boxes_words(job, detector))
    outcome.coco = run_coco_eval(estimator.topdown, images_dir, paths[1],
                                 "gt" if job.gt_boxes or mode == "data" else estimator.detector, limit=job.limit,
                                 progress=not job.quiet, category=job.category)
    outcome.written = _analyze(job, outcome, paths[1])
    outcome.written += _write(job, outcome.coco.results, _document(outcome))
    return outcome


def _estimator(job: EvalJob, mode: str, paths: tuple, model: ModelSpec, runtime: RuntimeSpec,
               detector: DetectorSpec, pose: TopDownSettings, log: Callable[[str], None]) -> Any:
    """The PoseEstimator of `model`, built for the job's images (the detector only in the COCO modes without
    --gt-boxes), with the untrained banner when its weights are random."""
    model.choose()  # a bad --weights / --model, or an offline default, fails before torch
    with interrupts_deferred():  # torch, onnxruntime and ultralytics load here
        from dehrnet_cli.estimator import PoseEstimator
    use_detector = mode in ("coco", "compare-models") and not job.gt_boxes
    detector = replace(detector, conf=eval_detector_conf(detector.conf, detector.kind, detector.boxes),
                       kind=detector.kind if use_detector else "none",
                       boxes=detector.boxes if use_detector else None,
                       ann=paths[1] if isinstance(paths[1], Path) else None)
    estimator = PoseEstimator.from_specs(model, runtime, detector, pose, log)
    frames = len(paths[1]["images"]) if mode == "data" else _image_count(paths[0])
    with interrupts_deferred():
        estimator.prepare(job.limit or frames)
    if estimator.untrained:  # --untrained, or an ONNX file exported from random weights
        log(f"[bold yellow]{UNTRAINED_EVAL_BANNER}[/] ({estimator.config.name})")
    return estimator


def _compare_models(job: EvalJob, paths: tuple, model: ModelSpec, runtime: RuntimeSpec, detector: DetectorSpec,
                    pose: TopDownSettings, log: Callable[[str], None], settings: dict) -> EvalOutcome:
    """--coco DIR --compare A B: each model run on the images (the boxes the first run's detector found are given
    to the second: the same boxes, whatever engine the detector runs on), then compared as two results files."""
    from dehrnet_cli.detect.recorded import RecordingDetector
    from dehrnet_cli.eval.compare import compare_sections
    from dehrnet_cli.eval.run import run_coco_eval

    images_dir, ann_file, _ = paths
    settings.update(ann=str(ann_file), images=str(images_dir), category=job.category,
                    boxes=_boxes_words(job, detector))
    specs = [replace(model, weights=Path(weights)) for weights in job.compare]
    for spec in specs:  # both models and the detector's file found before either model runs
        spec.choose()
    if not job.gt_boxes:
        detector.check(runtime.device)
    live = not job.gt_boxes and detector.boxes is None  # a detector runs: A's boxes are recorded and given to B
    runs, reports, untrained, recorded = [], {}, False, None
    for key, weights, spec in zip(("a", "b"), job.compare, specs):
        log(f"model {key.upper()}: {weights}")
        replayed = replace(detector, kind="none", boxes=None, engine="auto")  # B loads no detector of its own
        estimator = _estimator(job, "compare-models", paths, spec, runtime,
                               replayed if recorded is not None else detector, pose, log)
        if live:
            recorded = RecordingDetector(estimator.detector) if recorded is None else recorded.replay()
        boxes = recorded if live else "gt" if job.gt_boxes else estimator.detector  # a boxes file: as given, twice
        coco = run_coco_eval(estimator.topdown, images_dir, ann_file, boxes, limit=job.limit, progress=not job.quiet,
                             category=job.category)
        runs.append((str(weights), coco.results))
        reports[key] = coco.to_report(_model_settings(estimator, spec, pose))
        untrained = untrained or estimator.untrained
        del estimator
    section = compare_sections(runs, ann_file, job.limit, job.resamples, job.seed, progress=not job.quiet)
    document = {"compare": section, "runs": reports, "settings": settings}
    return EvalOutcome("compare-models", compare=section, settings=settings, untrained=untrained,
                       written=_write(job, [], document))


def _document(outcome: EvalOutcome) -> dict:
    """The --report document of a COCO evaluation (its "analyze" section with --analyze)."""
    document = outcome.coco.to_report(outcome.settings)
    if outcome.analysis is not None:
        document["analyze"] = outcome.analysis
    return document


def _analyze(job: EvalJob, outcome: EvalOutcome, ann_file: Path) -> list[Path]:
    """--analyze: the error analysis of the scored results (outcome.analysis); the figure files written."""
    if not job.analyze:
        return []
    from dehrnet_cli.eval.analyze import run_analysis

    outcome.analysis = run_analysis(outcome.coco.results, ann_file, job.limit, job.analysis_folder, not job.quiet)
    return [Path(path) for path in outcome.analysis["figures"]]


def _compare(job: EvalJob, ann_file: Path, settings: dict) -> EvalOutcome:
    """--compare A B: two results files side by side with paired bootstrap intervals."""
    from dehrnet_cli.eval.compare import run_compare

    section = run_compare(*job.compare, ann_file, job.limit, job.resamples, job.seed, progress=not job.quiet)
    settings.update(ann=str(ann_file))
    return EvalOutcome("compare", compare=section, settings=settings,
                       written=_write(replace(job, save_results=None), [], {"compare": section, "settings": settings}))


def _model_settings(estimator: Any, model: ModelSpec, pose: TopDownSettings) -> dict:
    chosen, backend, topdown = estimator.model_choice, estimator.backend, estimator.topdown
    return dict(model=estimator.config.name, weights=str(chosen.weights or chosen.architecture),
                untrained=model.untrained, input_size=list(estimator.config.input_size), backend=backend.name,
                device=backend.device, precision=backend.precision, flip=pose.flip, decoder=pose.decoder,
                batch=pose.batch, kpt_score_thr=topdown.settings.kpt_score_thr, oks_thr=topdown.settings.oks_thr)


def _boxes_words(job: EvalJob, detector: DetectorSpec) -> str:
    if job.gt_boxes or job.data is not None:
        return "gt"
    if detector.boxes is not None:
        return str(detector.boxes)
    return f"yolo ({detector.model}, conf {detector.conf})" if detector.kind == "yolo" else detector.kind


def _write(job: EvalJob, results: list, document: dict) -> list[Path]:
    written = []
    if job.save_results is not None:
        written.append(write_json_atomic(job.save_results, results, what=f"--save-results {job.save_results}"))
    if job.report is not None:
        written.append(write_json_atomic(job.report, document, indent=2, what=f"--report {job.report}"))
    return written


def _score_coco_file(job: EvalJob, ann_file: Path, settings: dict) -> EvalOutcome:
    """--coco-results: score an existing COCO results list (the first `limit` images when given)."""
    from dehrnet_cli.eval.coco import load_coco_gt, read_coco_results, score_coco_results

    image_ids = load_coco_gt(ann_file).getImgIds()[:job.limit] if job.limit else None
    scored = score_coco_results(read_coco_results(job.coco_results), ann_file, image_ids,
                                source=f"--coco-results {job.coco_results}", category=job.category)
    settings.update(results=str(job.coco_results), ann=str(ann_file))
    outcome = EvalOutcome("coco-results", coco=scored, settings=settings)
    outcome.written = _analyze(job, outcome, ann_file)
    outcome.written += _write(replace(job, save_results=None), [], _document(outcome))
    return outcome


def _score_mpii_file(job: EvalJob, paths: tuple[Path | None, Path, Path], settings: dict) -> EvalOutcome:
    """--mpii-results: score an existing MPII predictions json (annotation order)."""
    from dehrnet_cli.datasets.mpii import load_mpii_annotations
    from dehrnet_cli.eval.mpii import load_headboxes, read_mpii_results, score_mpii

    _, ann_file, hb_file = paths
    annotations = load_mpii_annotations(ann_file)
    head_boxes = load_headboxes(hb_file, annotations)
    preds = read_mpii_results(job.mpii_results, annotations)
    limit = job.limit
    scored = score_mpii(preds[:limit], annotations[:limit], head_boxes[:limit])
    settings.update(results=str(job.mpii_results), ann=str(ann_file), headboxes=str(hb_file))
    return EvalOutcome("mpii-results", pckh=scored, settings=settings,
                       written=_write(replace(job, save_results=None), [], {"pckh": scored, "settings": settings}))


def _image_count(images_dir: Path) -> int:
    """The image files of an evaluation folder (what --backend auto weighs; one listing, no image read)."""
    return sum(1 for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
