"""The `dehrnet` command line: each command parses its options and makes one API call."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .cli_bench import register as register_bench
from .cli_common import command, console, err_console, note_printer
from .cli_eval import register as register_eval
from .cli_guard import register as register_guard
from .cli_options import (
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
    UntrainedOpt,
    WeightsOpt,
    parse_size,
)
from .cli_train import register as register_train
from .cli_weights import weights_app
from .errors import DehrnetError

app = typer.Typer(
    name="dehrnet",
    help="DE-HRNet top-down human pose estimation: predict, evaluate, train, export.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


app.add_typer(weights_app, name="weights")
register_eval(app)
register_train(app)
register_bench(app)
register_guard(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dehrnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """DE-HRNet top-down human pose estimation."""


def _model_from(target: str, input_size: str | None):
    from models import create_model, list_models, load_model

    if target in list_models():
        return create_model(target, input_size=parse_size(input_size))
    path = Path(target)
    if not path.exists():
        raise DehrnetError(f"{target}: neither a named model (dehrnet info --all lists them) nor an existing file")
    size = parse_size(input_size)
    return load_model(path, **({"input_size": size} if size else {}))


@command(app, "info")
def info_command(
    target: str = typer.Argument(None, help="A named model (e.g. dehrnet_w32_384x288) or a checkpoint file."),
    all_models: bool = typer.Option(False, "--all", help="A table of every named model."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the --all table as Markdown (docs/models.md)."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size, e.g. 256x192."),
) -> None:
    """Parameters, FLOPs, input/heatmap size and keypoints of a model or checkpoint.

    FLOPs come from torch's FlopCounterMode, which counts 2 per multiply-add; GMACs (= FLOPs / 2) is the
    number the HRNet paper calls "GFLOPs" (HRNet-W32 384x288: 16.0 GFLOPs, 28.5 M params).

    Examples:
      dehrnet info dehrnet_w32_384x288
      dehrnet info pose_hrnet_w32_256x192.pth --input-size 256x192
      dehrnet info --all --markdown
    """
    from models import create_model, list_models

    from .model_info import summarize

    if all_models:
        summaries = [summarize(create_model(name)) for name in list_models()]
    elif target is None:
        raise DehrnetError("give a named model or a checkpoint file, or --all")
    else:
        summaries = [summarize(_model_from(target, input_size))]
    headers = ["model", "params (M)", "GFLOPs (2xMAC)", "GMACs (paper 'GFLOPs')", "input HxW", "heatmap HxW",
               "keypoints", "upsample", "DEM stages"]
    rows = [[s.name, f"{s.params / 1e6:.3f}", f"{s.gflops:.2f}", f"{s.gmacs:.2f}",
             f"{s.input_size[1]}x{s.input_size[0]}", f"{s.heatmap_size[1]}x{s.heatmap_size[0]}",
             str(len(s.keypoints)), s.upsample, ",".join(map(str, s.dem_stages)) or "-"] for s in summaries]
    if markdown:
        console.print("| " + " | ".join(headers) + " |")
        console.print("|" + "---|" * len(headers))
        for row in rows:
            console.print("| " + " | ".join(row) + " |")
        return
    if len(summaries) == 1:
        table = Table(show_header=False)
        table.add_row("model", summaries[0].name)
        for header, value in zip(headers[1:], rows[0][1:]):
            table.add_row(header, value)
        table.add_row("keypoint names", ", ".join(summaries[0].keypoints))
        console.print(table)
        return
    table = Table(*headers, title="dehrnet models")
    for row in rows:
        table.add_row(*row)
    # a pipe or file has no width: give the wide table room instead of rich's 80-column default
    wide = console if console.is_terminal else Console(soft_wrap=True, width=160)
    wide.print(table)


@command(app, "export")
def export_command(
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    model: str = typer.Option(None, "--model", help="A named model (random weights) or a registry weights name."),
    weights: Path = typer.Option(None, "--weights", help="A checkpoint file (dehrnet, official HRNet, mmpose)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 16 with --sampler grid_sample)."),
    half: bool = typer.Option(False, "--half", help="fp16 inside (needs --device cuda); fp32 input and output."),
    int8: bool = typer.Option(False, "--int8", help="Quantize to int8 (ONNX Runtime static quantization, QDQ) for "
                              "fast CPU inference."),
    calib: Path = typer.Option(None, "--calib", help="With --int8: a folder of images to calibrate on (default: the "
                               "sample images bundled with ultralytics; your own images calibrate better)."),
    calib_crops: int = typer.Option(256, "--calib-crops", help="With --int8: person crops to calibrate on."),
    sampler: str = typer.Option("gather", "--sampler", help="DySample sampling in the graph: gather (fast in ONNX "
                                "Runtime) or grid_sample (the GridSample op)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N] for tracing and the check."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare onnxruntime with torch after export."),
) -> None:
    """Export a pose model to ONNX (dynamic batch, config stored as metadata), then check it.

    Examples:
      dehrnet export --weights runs/exp1/best.pt --out dehrnet.onnx
      dehrnet export --weights runs/exp1/best.pt --out dehrnet.int8.onnx --int8 --calib my_images/
      dehrnet export --model dehrnet_w32_384x288 --out untrained.onnx
    """
    import tempfile

    from models import list_models

    from .export import export_onnx
    from .loading import load_pose_model

    if int8 and half:
        raise DehrnetError("--int8 and --half are two different precisions; choose one")
    if int8 and device != "cpu":
        raise DehrnetError("--int8 models are for ONNX Runtime's CPU provider; export them with --device cpu")
    if calib is not None and not int8:
        raise DehrnetError("--calib only matters with --int8")
    untrained = weights is None and model in list_models()
    if untrained:
        err_console.print(f"[yellow]{model}: exporting random weights (an architecture name, no checkpoint)")
    net = load_pose_model(weights, model, untrained=untrained, input_size=parse_size(input_size))
    if not int8:
        report = export_onnx(net, out, opset=opset, half=half, check=check, device=device, sampler=sampler)
        precision = "fp16" if report.half else "fp32"
        console.print(f"wrote {report.path} (opset {report.opset}, {precision}, batch axis dynamic)")
        for batch, diff in report.max_abs_diff.items():
            console.print(f"onnxruntime ({', '.join(report.providers)}) vs torch, batch {batch}: "
                          f"max |diff| = {diff:.3g}")
        return
    from .quantize import calibration_crops, int8_agreement, quantize_onnx

    crops = calibration_crops(calib, net.config, count=calib_crops)  # bad --calib fails before the slow work
    with tempfile.TemporaryDirectory(prefix="dehrnet-export-") as work:
        fp32 = export_onnx(net, Path(work) / "fp32.onnx", opset=opset, check=False, sampler=sampler).path
        err_console.print(f"quantizing on {len(crops)} calibration crops from {calib or 'the bundled sample images'}")
        quantize_onnx(fp32, out, crops)
        console.print(f"wrote {out} (opset {opset}, int8 QDQ, batch axis dynamic)")
        if check:
            held_out = calibration_crops(calib, net.config, count=16, seed=1)
            within = int8_agreement(fp32, out, held_out)
            console.print(f"int8 vs fp32 on 16 held-out crops: {100 * within:.1f} % of keypoints within 1 heatmap "
                          "pixel (the PCK guard runs on first use: dehrnet predict --precision int8)")


@command(app, "predict")
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
    from .estimator import PoseEstimator
    from .predict import UNTRAINED_BANNER, PredictJob, open_job_source, run_predict
    from .video_stage import detector_conf, video_settings

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
            kpt_score_thr=kpt_score_thr, oks_thr=None if oks_nms >= 1 else oks_nms)
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


def main() -> None:
    app(prog_name="dehrnet")


if __name__ == "__main__":
    main()
