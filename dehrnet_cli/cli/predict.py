"""`dehrnet predict`: detect people, estimate their poses, write annotated media and COCO JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, err_console, note_printer
from dehrnet_cli.cli.options import (
    BackendOpt,
    BatchOpt,
    CalibOpt,
    CompileOpt,
    DecoderOpt,
    DeviceOpt,
    FlipOpt,
    HalfOpt,
    InputSizeOpt,
    ModelOpt,
    PrecisionOpt,
    UntrainedOpt,
    WeightsOpt,
    parse_size,
)
from dehrnet_cli.errors import DehrnetError


@command("predict")
def predict_command(
    source: str = typer.Argument(..., help="Image, folder, glob, .txt list, video, camera index (0) or rtsp/http URL."),
    out: Path = typer.Option(None, "--out", "-o", help="Annotated video file (video sources) or folder (images)."),
    json_path: Path = typer.Option(None, "--json", help="Write a COCO-format file: images, annotations, categories."),
    save_results: Path = typer.Option(None, "--save-results", help="Also write the plain COCO results list."),
    ann: Path = typer.Option(None, "--ann", help="COCO annotation file naming the same images (image ids)."),
    weights: WeightsOpt = None,
    model: ModelOpt = None,
    untrained: UntrainedOpt = False,
    input_size: InputSizeOpt = None,
    detector: str = typer.Option("yolo", "--detector", help="yolo, hog (OpenCV, no download) or none (whole image)."),
    det_model: str = typer.Option("yolo11n.pt", "--det-model", help="YOLO weights (ultralytics fetches known names)."),
    conf: float = typer.Option(None, "--conf", help="Detector score threshold (YOLO default 0.25; files: 0)."),
    iou: float = typer.Option(0.7, "--iou", help="Detector NMS IoU."),
    max_people: int = typer.Option(None, "--max-people", help="Keep at most this many people per frame."),
    boxes: Path = typer.Option(None, "--boxes", help="COCO detections list (image_id, bbox, score) instead of a "
                               "detector."),
    backend: BackendOpt = "torch",
    device: DeviceOpt = "auto",
    half: HalfOpt = False,
    precision: PrecisionOpt = "auto",
    calib: CalibOpt = None,
    batch: BatchOpt = 32,
    compile_net: CompileOpt = False,
    flip: FlipOpt = True,
    decoder: DecoderOpt = "msra",
    kpt_thr: float = typer.Option(0.3, "--kpt-thr", help="Hide keypoints below this score; JSON v=2 above, 1 below."),
    kpt_score_thr: float = typer.Option(0.2, "--kpt-score-thr", help="Rescoring: mean of keypoint scores above this."),
    oks_nms: float = typer.Option(0.9, "--oks-nms", help="OKS-NMS threshold per frame (1 keeps everything)."),
    draw_boxes: bool = typer.Option(False, "--draw-boxes", help="Draw person boxes."),
    show: bool = typer.Option(False, "--show", help="Show a window while running (when a display exists)."),
    exif: bool = typer.Option(False, "--exif", help="Apply EXIF orientation (default: ignored, as COCO and HRNet)."),
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
) -> None:
    """Detect people, estimate their poses, write annotated media and COCO JSON.

    Examples:
      dehrnet predict video.mp4 --weights best.pt --out annotated.mp4
      dehrnet predict images/ --weights best.pt --json results.json --out annotated/
      dehrnet predict val2017/ --weights w32.pth --boxes dets.json --ann person_keypoints_val2017.json --json out.json
      dehrnet predict photo.jpg --model dehrnet_w32_384x288 --untrained --detector none --out out/
      dehrnet predict walk.mp4 --weights best.pt --track --smooth --csv walk.csv --out walk_pose.mp4
      dehrnet predict 0 --weights best.pt --track --det-every 5 --show
    """
    from dehrnet_cli.estimator import PoseEstimator
    from dehrnet_cli.predict import PredictJob, open_job_source, run_predict
    from dehrnet_cli.sinks.render import UNTRAINED_BANNER
    from dehrnet_cli.video.stage import detector_conf, video_settings

    if out is None and json_path is None and save_results is None and csv_path is None and save_crops is None \
            and not show:
        raise DehrnetError("nothing to write: give --out, --json, --save-results, --csv, --save-crops or --show")
    video = video_settings(track, tracker, det_every, smooth, smooth_min_cutoff, smooth_beta, kpt_thr)
    conf = detector_conf(video, detector, conf, boxes is not None)
    job = PredictJob(source, out, json_path, save_results, kpt_thr, draw_boxes, show, quiet, exif,
                     banner=UNTRAINED_BANNER if untrained else None, video=video, csv_path=csv_path,
                     crops_dir=save_crops)
    frames = open_job_source(job)  # a bad source or output fails here, before the detector and model load
    try:
        estimator = PoseEstimator(
            weights, model=model, untrained=untrained, backend=backend, device=device, half=half,
            precision=precision, calib=calib, log=note_printer(quiet), input_size=parse_size(input_size),
            detector=detector, det_model=det_model, conf=conf, iou=iou,
            max_people=max_people, boxes=boxes, ann=ann, flip=flip, decoder=decoder, batch=batch,
            kpt_score_thr=kpt_score_thr, oks_thr=None if oks_nms >= 1 else oks_nms, compile=compile_net)
    except BaseException:
        frames.close()
        raise
    if untrained:
        err_console.print(f"[bold yellow]{UNTRAINED_BANNER}[/] ({estimator.config.name}, random weights)")
    summary = run_predict(estimator, job, frames)
    for path, reason in summary.skipped:
        err_console.print(f"skipped {path}: {reason}")
    if not quiet:
        err_console.print(f"{summary.frames} frames, {summary.people} people, {summary.fps:.1f} frames/s "
                          f"({estimator.backend.name} {estimator.backend.precision} on {estimator.backend.device})")
        for path in summary.outputs:
            console.print(f"wrote {path}")
