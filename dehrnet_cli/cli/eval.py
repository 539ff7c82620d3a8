"""`dehrnet eval`: COCO keypoint AP/AR and MPII PCKh with the standard protocols (the CLI face of
`dehrnet_cli.evaluation`)."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, note_printer
from dehrnet_cli.cli.eval_tables import print_analysis, print_coco, print_compare, print_mpii
from dehrnet_cli.cli.options import (
    BatchOpt,
    DecoderOpt,
    DetEngineOpt,
    FlipOpt,
    model_options,
    runtime_options,
    with_default_threads,
)
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.eval.layout import EVAL_YOLO_CONF
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.weights.model_choice import ModelSpec


@command("eval")
@model_options
@runtime_options
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
    det_engine: DetEngineOpt = "auto",
    conf: float = typer.Option(None, "--conf", help=f"Detector score threshold (YOLO default {EVAL_YOLO_CONF}: "
                               "low, as AP rewards recall; --boxes default 0)."),
    max_people: int = typer.Option(None, "--max-people", help="Keep at most this many boxes per image."),
    batch: BatchOpt = 32,
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
    analyze: bool = typer.Option(False, "--analyze", help="COCO: also the keypoint error analysis of Ronchi & Perona "
                                 "(ICCV 2017): counts of good, jitter, inversion, swap and miss joints, AP after "
                                 "correcting each kind, figures and an HTML page (docs/evaluation.md)."),
    figures: Path = typer.Option(None, "--figures", help="Folder for the --analyze figures and HTML page (default: "
                                 "<report name>_analysis beside --report, else ./dehrnet_analysis)."),
    compare: tuple[Path, Path] = typer.Option(None, "--compare", metavar="A B", help="Compare two COCO "
                                              "results files of the same images (--ann), or with --coco two "
                                              "weights files run on its images with the same boxes: the COCO "
                                              "numbers, per-keypoint OKS and error shares with paired bootstrap "
                                              "95% intervals of B - A."),
    resamples: int = typer.Option(1000, "--resamples", help="--compare: bootstrap resamples of the images."),
    seed: int = typer.Option(0, "--seed", help="--compare: seed of the bootstrap."),
    model_spec: ModelSpec = None,
    runtime: RuntimeSpec = None,
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
      dehrnet eval --coco-results preds.json --ann person_keypoints_val2017.json --analyze --report r.json
      dehrnet eval --compare hrnet.json dehrnet.json --ann person_keypoints_val2017.json
      dehrnet eval --coco coco/val2017 --boxes dets.json --compare w32.pth dehrnet.pt --report c.json
      dehrnet eval --mpii mpii --weights mpii_w32.pth
      dehrnet eval --mpii-results preds.json --ann mpii/annot/valid.json --headboxes mpii/annot/gt_valid.mat
    """
    from dehrnet_cli.evaluate import EvalJob, evaluate

    job = EvalJob(coco, coco_results, mpii, mpii_results, data, ann, headboxes, category, gt_boxes, limit, save_results,
                  report, quiet, analyze=analyze, figures=figures, compare=compare, resamples=resamples, seed=seed)
    outcome = evaluate(job, model_spec, with_default_threads(runtime),
                       DetectorSpec(detector, det_model, conf, max_people=max_people, boxes=boxes,
                                    engine=det_engine),
                       TopDownSettings(flip, decoder, batch), log=note_printer(quiet))
    if outcome.compare is not None:
        print_compare(outcome.compare, quiet)
    elif outcome.coco is not None:
        print_coco(outcome.coco, quiet)
    else:
        print_mpii(outcome.pckh, quiet)
    if outcome.analysis is not None:
        print_analysis(outcome.analysis, quiet)
    for path in outcome.written:
        console.print(f"wrote {path}")
