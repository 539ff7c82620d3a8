"""The `dehrnet predict` job: source -> estimator -> sinks, with the run plan checked before any model work.

    job = PredictJob("clip.mp4", out=Path("annotated.mp4"), json_path=Path("poses.json"))
    summary = predict(job, model=ModelSpec(...), runtime=RuntimeSpec(...), detector=DetectorSpec(...))

Reading (the source's own thread), detection + pose (this thread) and rendering + encoding (the sinks' writer
thread behind a bounded queue) overlap, so the slowest stage sets the pace and memory stays flat. Ctrl-C or
SIGTERM on a file source keeps every output's done frames as valid `NAME.partial.EXT` files (the same frames in
each); on a live source it ends the run and publishes every output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dehrnet_cli.env import interrupts_deferred
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import job_progress_bar, note
from dehrnet_cli.sinks.annotated import AnnotatedImagesSink, AnnotatedVideoSink
from dehrnet_cli.sinks.coco import CocoSink, ImageIds
from dehrnet_cli.sinks.crops import CropsSink
from dehrnet_cli.sinks.keypoints_csv import CsvSink
from dehrnet_cli.sinks.outputs import PredictOutputs, display_available, plan_outputs
from dehrnet_cli.sinks.plan import RunPlan
from dehrnet_cli.sinks.render import UNTRAINED_BANNER
from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.sinks.sink_set import Sink, SinkSet
from dehrnet_cli.sources.base import Source
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.sources.open import open_source
from dehrnet_cli.video.settings import VideoSettings

if TYPE_CHECKING:  # the estimator imports torch: the job module stays light, so bad input fails fast
    from dehrnet_cli.detect.spec import DetectorSpec
    from dehrnet_cli.estimator import PoseEstimator
    from dehrnet_cli.pose.settings import TopDownSettings
    from dehrnet_cli.precision.runtime import RuntimeSpec
    from dehrnet_cli.weights.model_choice import ModelSpec

@dataclass(frozen=True)
class PredictJob:
    """What to run on and what to write: the source; out (annotated video file, image file or folder of images);
    json_path (COCO-format file); results_path (plain COCO results list); csv_path (one row per frame x person x
    keypoint); crops_dir (per-person crop images); ann (the annotation file naming the images: their COCO ids);
    kpt_thr (keypoints below are hidden, and get v = 1 in the JSON); draw_boxes; show (a window); quiet;
    orientation (of images: "exif", the picture as the user sees it, or "stored", the pixels as stored; None:
    `image_orientation` decides); frames_per_batch; banner (written across annotated frames); video (tracking,
    smoothing, detection every N frames); reads ((what, path) of the other files the run reads)."""

    source: str
    out: Path | None = None
    json_path: Path | None = None
    results_path: Path | None = None
    csv_path: Path | None = None
    crops_dir: Path | None = None
    ann: Path | None = None
    kpt_thr: float = 0.3
    draw_boxes: bool = False
    show: bool = False
    quiet: bool = False
    orientation: str | None = None
    frames_per_batch: int = 4
    banner: str | None = None
    video: VideoSettings | None = None
    reads: tuple[tuple[str, Path], ...] = ()

    def writes_anything(self) -> bool:
        return any(v is not None for v in (self.out, self.json_path, self.results_path, self.csv_path,
                                           self.crops_dir)) or self.show


@dataclass
class PredictSummary:
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    partial: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    engine: str = ""  # backend, precision and device, in words

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class OpenedJob:
    """A job's source, opened, with its outputs planned and checked."""

    source: Source
    outputs: PredictOutputs


def image_orientation(job: PredictJob) -> str:
    """How the job reads images: as asked, else as the user sees them ("exif"), except where the results are
    scored against annotations made on the stored pixels (--ann, --boxes): "stored"."""
    if job.orientation is not None:
        return job.orientation
    scored = any(what in ("--ann", "--boxes") for what, _ in job.reads) or job.ann is not None
    return "stored" if scored else "exif"


def open_job(job: PredictJob, source: Source | None = None) -> OpenedJob:
    """Open the job's source (unless `source` is given: one opened by the caller, a camera stand-in) and plan
    its outputs: a bad source, an output of the wrong kind, one that cannot be written where asked, two outputs
    on one file, or an output on a file the job reads fail here, before any model is loaded or frame processed."""
    source = source if source is not None else open_source(job.source, orientation=image_orientation(job))
    try:
        outputs = plan_outputs(source, job.out, job.json_path, job.results_path, job.csv_path, job.crops_dir)
        plan = RunPlan()
        source_file = Path(job.source).expanduser()
        if isinstance(source, ImageSource):
            plan.read_all("source image", source.paths)
        elif source_file.is_file():
            plan.read("source", source_file)
        for what, path in job.reads:
            plan.read(what, path)
        outputs.add_to(plan)
        plan.check()
    except DehrnetError:
        source.close()
        raise
    return OpenedJob(source, outputs)


def open_sinks(job: PredictJob, opened: OpenedJob, estimator: PoseEstimator) -> list[Sink]:
    """The sinks of the job's planned outputs, the annotated media last (an encoded frame cannot be taken back)."""
    outputs, source = opened.outputs, opened.source
    plot = {"kpt_thr": job.kpt_thr, "boxes": job.draw_boxes, "banner": job.banner}
    sinks: list[Sink] = []
    if outputs.json is not None or outputs.results is not None:
        ids = ImageIds(job.ann, source.paths if isinstance(source, ImageSource) else None)
        sinks.append(CocoSink(estimator.keypoints, ids, outputs.json, outputs.results, job.kpt_thr,
                              {"source": source.name}))
    if outputs.csv is not None:
        sinks.append(CsvSink(outputs.csv, estimator.keypoints, source.fps, source.kind != "images"))
    if outputs.crops is not None:
        sinks.append(CropsSink(outputs.crops))
    if outputs.video is not None:
        sinks.append(AnnotatedVideoSink(outputs.video, source.fps, plot))
    elif outputs.images:
        sinks.append(AnnotatedImagesSink(outputs.images, outputs.out, plot))
    return sinks


def run_predict(estimator: PoseEstimator, job: PredictJob, opened: OpenedJob | Source | None = None,
                log: Callable[[str], None] = note) -> PredictSummary:
    """Run `job` (opened with `open_job`; a Source: planned here on it; None: opened here) with `estimator`;
    returns what was written. `log`
    receives one-line notes (no display for --show, which partial outputs were kept). Ctrl-C on a file source
    stops cleanly (earlier outputs intact, every output's done frames kept as NAME.partial.EXT) and re-raises
    KeyboardInterrupt after the cleanup; on a live source it ends the run and writes every output."""
    opened = opened if isinstance(opened, OpenedJob) else open_job(job, opened)
    source = opened.source
    summary = PredictSummary()
    show = job.show and display_available()
    if job.show and not show:
        log("--show: no display here (DISPLAY is not set); not opening a window")
    try:
        estimator.prepare(source.num_frames)
        sinks = SinkSet(open_sinks(job, opened, estimator), log)
    except BaseException:
        source.close()
        raise
    start = time.perf_counter()
    ok = False
    try:
        with job_progress_bar("predict", "{task.fields[rate]:.1f} frames/s", enabled=not job.quiet) as progress:
            task = progress.add_task("predict", total=source.num_frames, rate=0.0)
            for result in estimator.predict(source, job.video, job.frames_per_batch):
                if show:
                    _show(result, job, summary, start)
                sinks.add(result)
                summary.frames += 1
                summary.people += len(result)
                progress.update(task, advance=1, rate=summary.frames / max(time.perf_counter() - start, 1e-9))
        if summary.frames == 0 and source.skipped:
            raise DehrnetError(f"no readable images in {source.name} ({len(source.skipped)} skipped)")
        ok = True
    except KeyboardInterrupt:
        summary.interrupted = True
        if not source.is_live:
            raise
        ok = True  # Ctrl-C (or q in the window) is how a camera or stream run ends: finalise every output
    finally:
        source.close()
        summary.seconds = time.perf_counter() - start
        summary.skipped = list(source.skipped)
        backend = estimator.backend
        summary.engine = f"{backend.name} {backend.precision} on {backend.device}"
        try:
            outcome = sinks.close(ok)
            summary.outputs, summary.partial = outcome.outputs, outcome.partial
        finally:
            if show:
                import cv2

                cv2.destroyAllWindows()
            if sinks.error is not None or not ok:
                kept = ", ".join(str(p) for p in summary.partial) or "no partial output"
                log(f"stopped after {sinks.frames_done} frames; kept {kept}")
    return summary


def predict(job: PredictJob, model: ModelSpec, runtime: RuntimeSpec, detector: DetectorSpec,
            pose: TopDownSettings, log: Callable[[str], None] = note) -> PredictSummary:
    """The whole predict command: the plan checked (source, outputs, model, detector files) before torch is even
    imported, then the estimator built for the job's length, then the run. The UNTRAINED banner goes on every
    annotated frame of random weights (asked for, or an ONNX file exported from them)."""
    if not job.writes_anything():
        raise DehrnetError("nothing to write: give --out, --json, --save-results, --csv, --save-crops or --show")
    model.choose()  # a bad --weights / --model, or an offline default, fails before the source is opened
    detector.check(runtime.device)
    opened = open_job(job)
    try:
        with interrupts_deferred():  # torch, onnxruntime and ultralytics load here
            from dehrnet_cli.estimator import PoseEstimator

            estimator = PoseEstimator.from_specs(model, runtime, detector, pose, log)
            estimator.prepare(opened.source.num_frames)
    except BaseException:
        opened.source.close()
        raise
    if estimator.untrained and job.banner is None:
        log(f"[bold yellow]{UNTRAINED_BANNER}[/] ({estimator.config.name}, random weights)")
        job = replace(job, banner=UNTRAINED_BANNER)
    return run_predict(estimator, job, opened, log)


def _show(result: PoseResult, job: PredictJob, summary: PredictSummary, start: float) -> None:
    import cv2

    window = result.plot(job.kpt_thr, boxes=job.draw_boxes, banner=job.banner)
    fps = (summary.frames + 1) / max(time.perf_counter() - start, 1e-9)
    cv2.putText(window, f"{fps:.1f} fps", (10, window.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (255, 255, 255), 2, cv2.LINE_AA)
    cv2.imshow("dehrnet", window)
    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
        raise KeyboardInterrupt
