"""`dehrnet eval`: COCO keypoint AP/AR and MPII PCKh with the standard protocols (the CLI face of
`dehrnet_cli.evaluation`)."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, err_console, note_printer
from dehrnet_cli.cli.eval_tables import print_coco, print_mpii
from dehrnet_cli.cli.options import (
    BackendOpt,
    BatchOpt,
    CalibOpt,
    DecoderOpt,
    DeviceOpt,
    FlipOpt,
    HalfOpt,
    InputSizeOpt,
    ModelOpt,
    PrecisionOpt,
    ThreadsOpt,
    UntrainedOpt,
    WeightsOpt,
    parse_size,
)
from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.layout import (
    EVAL_YOLO_CONF,
    coco_annotation_for,
    eval_detector_conf,
    mpii_eval_paths,
    yolo_eval_set,
)
from dehrnet_cli.sinks.atomic import write_json_atomic
from dehrnet_cli.sinks.locations import OutputLocation, check_locations
from dehrnet_cli.weights.model_choice import choose_model


def _write_outputs(save_results: Path | None, results: list, report: Path | None, document: dict) -> None:
    if save_results is not None:
        console.print(f"wrote {write_json_atomic(save_results, results)}")
    if report is not None:
        console.print(f"wrote {write_json_atomic(report, document, indent=2)}")


@command("eval")
def eval_command(
    coco: Path = typer.Option(None, "--coco", help="COCO image folder (e.g. coco/val2017); the annotations are "
                              "person_keypoints_<folder>.json in its ../annotations unless --ann is given."),
    ann: Path = typer.Option(None, "--ann", help="Annotation file: COCO person_keypoints_*.json, or the MPII "
                             "per-person json (annot/valid.json)."),
    coco_results: Path = typer.Option(None, "--coco-results", help="Score this COCO results list (no model run)."),
    gt_boxes: bool = typer.Option(False, "--gt-boxes", help="Ground-truth person boxes (cleaned as the "
                                  "official loader) instead of a detector."),
    boxes: Path = typer.Option(None, "--boxes", help="COCO person detections (image_id, bbox, score), e.g. the "
                               "56.4-AP val2017 file; every box is used."),
    detector: str = typer.Option("yolo", "--detector", help="Person detector when neither --boxes nor "
                                 "--gt-boxes: yolo, hog or none (whole image)."),
    det_model: str = typer.Option(DEFAULT_YOLO, "--det-model", help="YOLO weights."),
    conf: float = typer.Option(None, "--conf", help=f"Detector score threshold (YOLO default {EVAL_YOLO_CONF}: "
                               "low, as AP rewards recall; --boxes default 0)."),
    max_people: int = typer.Option(None, "--max-people", help="Keep at most this many boxes per image."),
    weights: WeightsOpt = None,
    model: ModelOpt = None,
    untrained: UntrainedOpt = False,
    input_size: InputSizeOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    half: HalfOpt = False,
    precision: PrecisionOpt = "auto",
    calib: CalibOpt = None,
    batch: BatchOpt = 32,
    threads: ThreadsOpt = None,
    flip: FlipOpt = True,
    decoder: DecoderOpt = "msra",
    limit: int = typer.Option(None, "--limit", help="Evaluate only the first N images (MPII: people)."),
    save_results: Path = typer.Option(None, "--save-results", help="Write the predictions: the COCO results "
                                      "list, or for MPII [{image, joints (1-based), scores}]."),
    report: Path = typer.Option(None, "--report", help="Write {stats, per_keypoint, settings, ...} as JSON."),
    mpii: Path = typer.Option(None, "--mpii", help="MPII root (annot/valid.json, annot/gt_valid.mat, images/) "
                              "or image folder (then --ann)."),
    mpii_results: Path = typer.Option(None, "--mpii-results", help="Score this MPII predictions json (no model "
                                      "run); needs --ann or --mpii to find the annotations."),
    headboxes: Path = typer.Option(None, "--headboxes", help="MPII head boxes: gt_valid.mat (needs scipy) or json "
                                   "(a list of \\[\\[x1, y1], \\[x2, y2]] per person, or {image: box})."),
    data: Path = typer.Option(None, "--data", help="An ultralytics pose data.yaml: score its val split on the "
                              "labelled boxes."),
    category: str = typer.Option(None, "--category", help="The keypoint category of an annotation file that has "
                                 "several (default: the one with the model's keypoint names)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the result table: no progress bar, per-keypoint "
                               "table or timings."),
) -> None:
    """Evaluate a pose model: COCO keypoint AP/AR (OKS) or MPII PCKh, with the standard protocols.

    COCO: flip test, rescoring, OKS-NMS 0.9 per image, then COCOeval (the official HRNet protocol).
    MPII: official crops; PCKh with head size 0.6 x head-box diagonal.

    Examples:
      dehrnet eval --coco coco/val2017 --weights best.pt --gt-boxes
      dehrnet eval --coco coco/val2017 --weights w32.pth --boxes COCO_val2017_detections_AP_H_56_person.json
      dehrnet eval --coco coco/val2017 --model hrnet_w32.coco_384x288 --report report.json --limit 500
      dehrnet eval --coco-results preds.json --ann coco/annotations/person_keypoints_val2017.json
      dehrnet eval --data animals/data.yaml --weights runs/animals/best.pt
      dehrnet eval --coco own/images --ann own/val.json --gt-boxes --weights runs/own/best.pt
      dehrnet eval --mpii mpii --weights mpii_w32.pth
      dehrnet eval --mpii-results preds.json --ann mpii/annot/valid.json --headboxes mpii/annot/gt_valid.mat
    """
    modes = [name for name, given in (("--coco", coco and not coco_results), ("--coco-results", coco_results),
                                      ("--mpii", mpii and not mpii_results), ("--mpii-results", mpii_results),
                                      ("--data", data)) if given]
    if len(modes) != 1:
        raise DehrnetError("give exactly one of --coco DIR, --coco-results FILE, --mpii DIR, --mpii-results FILE, "
                           "--data FILE" + (f" (got {', '.join(modes)})" if modes else ""))
    if (gt_boxes or data is not None) and boxes is not None:
        raise DehrnetError(f"give either {'--data' if data else '--gt-boxes'} (labelled boxes) or --boxes FILE, "
                           "not both")
    if limit is not None and limit < 1:
        raise DehrnetError(f"--limit {limit}: give a positive number of images (MPII: people)")
    outputs = [OutputLocation(flag, path) for flag, path in (("--save-results", save_results), ("--report", report))
               if path is not None]
    read = (("--ann", ann), ("--coco-results", coco_results), ("--mpii-results", mpii_results), ("--boxes", boxes),
            ("--weights", weights), ("--data", data))
    check_locations(outputs, [(flag, path) for flag, path in read if path is not None])  # before any work
    settings: dict = {"mode": modes[0].lstrip("-"), "limit": limit}
    if coco_results is not None:
        _score_coco_file(coco_results, ann or (coco_annotation_for(coco) if coco else None), limit, report,
                         settings, quiet, category)
        return
    if mpii_results is not None:
        _score_mpii_file(mpii_results, mpii_eval_paths(mpii, ann, headboxes), limit, report, settings, quiet)
        return
    if mpii is not None:
        images_dir, ann_file, hb_file = mpii_eval_paths(mpii, ann, headboxes)
        settings.update(ann=str(ann_file), headboxes=str(hb_file), images=str(images_dir))
    elif data is not None:
        images_dir, ann_file = yolo_eval_set(data)  # every label line checked before the model loads
        gt_boxes = True
    else:
        images_dir, ann_file = coco, ann or coco_annotation_for(coco)
        if not ann_file.is_file():
            raise DehrnetError(f"annotation file {ann_file}: no such file; give --ann FILE (a COCO "
                               "person_keypoints_*.json for the images in --coco)")
    if not Path(images_dir).is_dir():
        raise DehrnetError(f"image folder {images_dir}: no such folder")
    choose_model(weights, model, untrained)  # a bad --weights / --model, or an offline default, fails before torch
    from dehrnet_cli.eval.run import run_coco_eval, run_mpii_eval
    from dehrnet_cli.pose.backends import default_threads

    det_conf = eval_detector_conf(conf, detector, boxes)
    use_detector = coco is not None and not gt_boxes
    estimator = _estimator(weights, model=model, untrained=untrained, backend=backend,
                           device=device, half=half, precision=precision, calib=calib,
                           log=note_printer(quiet),
                           input_size=parse_size(input_size), detector=detector if use_detector else "none",
                           det_model=det_model, conf=det_conf, max_people=max_people,
                           boxes=boxes if use_detector else None, flip=flip, decoder=decoder, batch=batch,
                           expected_frames=limit or (len(ann_file["images"]) if data else _image_count(images_dir)),
                           threads=threads or default_threads())
    topdown = estimator.topdown
    chosen = estimator.model_choice
    settings.update(model=estimator.config.name, weights=str(chosen.weights or chosen.architecture),
                    untrained=untrained,
                    input_size=list(estimator.config.input_size), backend=estimator.backend.name,
                    device=estimator.backend.device, precision=estimator.backend.precision,
                    flip=flip, decoder=decoder, batch=batch,
                    kpt_score_thr=topdown.settings.kpt_score_thr, oks_thr=topdown.settings.oks_thr)
    if mpii is not None:
        scored = run_mpii_eval(topdown, images_dir, ann_file, hb_file, progress=not quiet, limit=limit)
        print_mpii(scored, quiet)
        predictions = scored.pop("predictions")
        _write_outputs(save_results, predictions, report, {"pckh": scored, "settings": settings})
        return
    settings.update(ann=str(data or ann_file), images=str(images_dir), category=category,
                    boxes="gt" if gt_boxes else str(boxes) if boxes else
                    f"yolo ({det_model}, conf {det_conf})" if detector == "yolo" else detector)
    scored = run_coco_eval(topdown, images_dir, ann_file, "gt" if gt_boxes else estimator.detector,
                           limit=limit, progress=not quiet, category=category)
    print_coco(scored, quiet)
    _write_outputs(save_results, scored.results, report, scored.to_report(settings))


def _score_coco_file(results_file: Path, ann_file: Path | None, limit: int | None, report: Path | None,
                     settings: dict, quiet: bool, category: str | None) -> None:
    """--coco-results: score an existing COCO results list (the first `limit` images when given)."""
    from dehrnet_cli.eval.coco import load_coco_gt, read_coco_results, score_coco_results

    if ann_file is None:
        raise DehrnetError("--coco-results needs the annotation file: give --ann FILE")
    image_ids = load_coco_gt(ann_file).getImgIds()[:limit] if limit else None
    scored = score_coco_results(read_coco_results(results_file), ann_file, image_ids,
                                source=f"--coco-results {results_file}", category=category)
    settings.update(results=str(results_file), ann=str(ann_file))
    print_coco(scored, quiet)
    _write_outputs(None, [], report, scored.to_report(settings))


def _score_mpii_file(results_file: Path, paths: tuple[Path | None, Path, Path], limit: int | None,
                     report: Path | None, settings: dict, quiet: bool) -> None:
    """--mpii-results: score an existing MPII predictions json (annotation order)."""
    from dehrnet_cli.datasets.mpii import load_mpii_annotations
    from dehrnet_cli.eval.mpii import load_headboxes, read_mpii_results, score_mpii

    _, ann_file, hb_file = paths
    annotations = load_mpii_annotations(ann_file)
    head_boxes = load_headboxes(hb_file, annotations)
    preds = read_mpii_results(results_file, annotations)
    scored = score_mpii(preds[:limit], annotations[:limit], head_boxes[:limit])
    settings.update(results=str(results_file), ann=str(ann_file), headboxes=str(hb_file))
    print_mpii(scored, quiet)
    _write_outputs(None, [], report, {"pckh": scored, "settings": settings})


def _image_count(images_dir: Path) -> int:
    """The image files of an evaluation folder (what --backend auto weighs; one listing, no image read)."""
    from dehrnet_cli.sources.base import IMAGE_SUFFIXES

    return sum(1 for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _estimator(weights: Path | None, **options):
    """The pose stage (and, for detector boxes, the detector) that the flags ask for: PoseEstimator(weights,
    **options)."""
    from dehrnet_cli.estimator import PoseEstimator

    estimator = PoseEstimator(weights, **options)
    if estimator.untrained:  # --untrained, or an ONNX file exported from random weights
        err_console.print(f"[bold yellow]UNTRAINED WEIGHTS - the numbers are meaningless[/] ({estimator.config.name})")
    return estimator
