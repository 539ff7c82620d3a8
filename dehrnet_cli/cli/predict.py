"""`dehrnet predict`: detect people, estimate their poses, write annotated media and COCO JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, err_console, note_printer
from dehrnet_cli.cli.options import (
    BatchOpt,
    DecoderOpt,
    DetEngineOpt,
    FlipOpt,
    in_range,
    model_options,
    runtime_options,
    with_default_threads,
)
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.video.settings import detector_conf, video_settings
from dehrnet_cli.weights.model_choice import ModelSpec


@command("predict")
@model_options
@runtime_options
def predict_command(
    source: str = typer.Argument(..., help="Image, folder, glob, .txt list, video, camera index (0) or rtsp/http URL."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated video file (video sources) or folder (images)."),
    json_path: Path = typer.Option(None, "--json", help="Write a COCO-format file: images, annotations, categories."),
    save_results: Path = typer.Option(None, "--save-results", help="Also write the plain COCO results list."),
    ann: Path = typer.Option(None, "--ann", help="COCO annotation file naming the same images (image ids)."),
    detector: str = typer.Option("yolo", "--detector", help="yolo, hog (OpenCV, no download) or none (whole image)."),
    det_model: str = typer.Option(DEFAULT_YOLO, "--det-model", help="YOLO weights (ultralytics fetches known names)."),
    det_engine: DetEngineOpt = "auto",
    conf: float = typer.Option(None, "--conf", callback=in_range(0, 1),
                               help="Detector score threshold (YOLO default 0.25; files: 0)."),
    iou: float = typer.Option(0.7, "--iou", callback=in_range(0, 1), help="Detector NMS IoU."),
    max_people: int = typer.Option(None, "--max-people", callback=in_range(1),
                                   help="Keep at most this many people per frame."),
    boxes: Path = typer.Option(None, "--boxes", help="COCO detections list (image_id, bbox, score) instead of a "
                               "detector."),
    batch: BatchOpt = 32,
    flip: FlipOpt = True,
    decoder: DecoderOpt = "msra",
    kpt_thr: float = typer.Option(0.3, "--kpt-thr", callback=in_range(0, 1),
                                  help="Hide keypoints below this score; JSON v=2 above, 1 below."),
    kpt_score_thr: float = typer.Option(TopDownSettings.kpt_score_thr, "--kpt-score-thr", callback=in_range(0, 1),
                                        help="Rescoring: mean of keypoint scores above this."),
    oks_nms: float = typer.Option(TopDownSettings.oks_thr, "--oks-nms", callback=in_range(0, 1),
                                  help="OKS-NMS threshold per frame (1 keeps everything)."),
    draw_boxes: bool = typer.Option(False, "--draw-boxes", help="Draw person boxes."),
    show: bool = typer.Option(False, "--show", help="Show a window while running (when a display exists)."),
    exif: bool = typer.Option(None, "--exif/--no-exif", help="Images as viewers show them (EXIF orientation applied) "
                              "or as stored. Default: as shown, but as stored with --ann or --boxes, whose "
                              "annotations are made on the stored pixels (as COCO's). Videos are always read as "
                              "displayed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    track: bool = typer.Option(False, "--track", help="Give every person a stable id across frames (JSON track_id, "
                               "drawn on the video)."),
    tracker: str = typer.Option(None, "--tracker", help="bytetrack.yaml (default with YOLO), botsort.yaml, a tracker "
                                "YAML, or oks (pose similarity; default otherwise). Implies --track."),
    det_every: int = typer.Option(1, "--det-every", help="Run the detector on every N-th frame; in between, boxes come "
                                  "from the last frame's keypoints."),
    smooth: bool = typer.Option(False, "--smooth", help="One-Euro filter per track and keypoint (implies --track)."),
    smooth_min_cutoff: float = typer.Option(None, "--smooth-min-cutoff", help="Hz for still joints (default 1.0): "
                                            "lower is steadier but lags more."),
    smooth_beta: float = typer.Option(None, "--smooth-beta", help="Cutoff growth with speed (default 8.0): higher "
                                      "lags less on fast moves, keeps more jitter."),
    csv_path: Path = typer.Option(None, "--csv", help="Keypoints as CSV: frame, time, track_id, person, keypoint, x, "
                                  "y, score."),
    save_crops: Path = typer.Option(None, "--save-crops", help="Folder for per-person crop images."),
    out_dir: Path = typer.Option(None, "--out-dir", help="Corpus mode: SOURCE is a corpus (folder tree, glob, .txt "
                                 "list, s3:// or gs:// URI); one COCO JSON per item under OUT at its relative path, "
                                 "a manifest, resumable (docs/scale.md)."),
    engine: str = typer.Option("local", "--engine", help="Corpus mode: local (this process) or ray (Ray Data)."),
    address: str = typer.Option(None, "--address", help="--engine ray: auto or HOST:PORT of a running cluster "
                                "(default: start a local one on 127.0.0.1)."),
    workers: int = typer.Option(None, "--workers", help="--engine ray: pose workers (default: one per CPU, or per "
                                "--gpus-per-worker GPUs)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="--engine ray: GPUs per worker (0.5: two "
                                          "per GPU)."),
    save_media: bool = typer.Option(False, "--save-media", help="Corpus mode: also write annotated images/videos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Corpus mode: redo every item (default: skip finished "
                                   "ones)."),
    model_spec: ModelSpec = None,
    runtime: RuntimeSpec = None,
) -> None:
    """Detect people, estimate their poses, write annotated media and COCO JSON.

    Examples:
      dehrnet predict video.mp4 --weights best.pt --out annotated.mp4
      dehrnet predict images/ --weights best.pt --json results.json --out annotated/
      dehrnet predict val2017/ --weights w32.pth --boxes dets.json --ann person_keypoints_val2017.json --json out.json
      dehrnet predict photo.jpg --model dehrnet_w32_384x288 --untrained --detector none --out out/
      dehrnet predict walk.mp4 --weights best.pt --track --smooth --csv walk.csv --out walk_pose.mp4
      dehrnet predict 0 --weights best.pt --track --det-every 5 --show
      dehrnet predict clips/ --weights best.pt --out-dir poses/ --engine ray --workers 8
    """
    from dehrnet_cli.predict import UNTRAINED_BANNER, PredictJob, predict  # OpenCV, PyAV: not for --help

    video = video_settings(track, tracker, det_every, smooth, smooth_min_cutoff, smooth_beta, kpt_thr)
    specs = dict(model=model_spec, runtime=with_default_threads(runtime),
                 detector=DetectorSpec(detector, det_model, detector_conf(video, detector, conf, boxes is not None),
                                       iou, max_people, boxes, ann, det_engine),
                 pose=TopDownSettings(flip, decoder, batch, kpt_score_thr, None if oks_nms >= 1 else oks_nms))
    single = {"--out": out, "--json": json_path, "--save-results": save_results, "--csv": csv_path,
              "--save-crops": save_crops, "--show": show}
    corpus = {"--engine": engine != "local", "--address": address, "--workers": workers,
              "--gpus-per-worker": gpus_per_worker, "--save-media": save_media, "--overwrite": overwrite}
    _check_mode(out_dir, single, corpus)
    log = note_printer(quiet)
    if out_dir is not None:  # corpus mode: every item as `predict ITEM --json`, on this process or Ray
        from dehrnet_cli.corpus import CorpusJob, run_corpus

        specs["runtime"] = runtime  # threads None unless given: each engine has its own default
        summary = run_corpus(CorpusJob(source, out_dir, **specs, engine=engine, address=address, workers=workers,
                                       gpus_per_worker=gpus_per_worker, save_media=save_media, overwrite=overwrite,
                                       quiet=quiet, orientation=_orientation(exif), kpt_thr=kpt_thr,
                                       draw_boxes=draw_boxes,
                                       banner=UNTRAINED_BANNER if model_spec.untrained else None, video=video), log=log)
        if summary.manifest is not None:
            console.print(f"wrote {summary.manifest}")
        return
    reads = tuple((flag, path) for flag, path in (("--boxes", boxes), ("--ann", ann), ("--weights", model_spec.weights),
                                                  ("--calib", runtime.calib)) if path is not None)
    job = PredictJob(source, out, json_path, save_results, csv_path, save_crops, ann, kpt_thr, draw_boxes, show,
                     quiet, _orientation(exif), banner=UNTRAINED_BANNER if model_spec.untrained else None, video=video,
                     reads=reads)
    summary = predict(job, **specs, log=log)
    if summary.skipped:  # each was named in a warning when it was met
        err_console.print(f"skipped {len(summary.skipped)} unreadable file(s) (see the warnings above)")
    if not quiet:
        err_console.print(f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} frames/s "
                          f"({summary.engine})")
        for path in summary.outputs:
            console.print(f"wrote {path}")


def _orientation(exif: bool | None) -> str | None:
    """--exif / --no-exif as an image orientation; None (neither): the job decides (predict.image_orientation)."""
    return None if exif is None else "exif" if exif else "stored"


def _check_mode(out_dir: Path | None, single: dict, corpus: dict) -> None:
    """Single-run outputs only without --out-dir, corpus flags only with it, and something to write."""
    if out_dir is not None:
        given = [flag for flag, value in single.items() if value]
        if given:
            raise DehrnetError(f"{given[0]}: not with --out-dir (corpus mode writes OUT/<item>.json per item; "
                               "--save-media adds the annotated media)")
        return
    given = [flag for flag, value in corpus.items() if value]
    if given:
        raise DehrnetError(f"{given[0]}: only in corpus mode (give --out-dir OUT)")
