"""The `dehrnet predict` job: source -> poses -> annotated images/video, COCO JSON, results list.

Reading (the source's own thread), detection + pose (this thread) and rendering + encoding (a sink
thread behind a bounded queue) overlap, so the slowest stage sets the pace and memory stays flat.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import job_progress_bar, note
from dehrnet_cli.sinks.atomic import partial_path_for
from dehrnet_cli.sinks.coco import CocoFileBuilder
from dehrnet_cli.sinks.exports import PoseExports
from dehrnet_cli.sinks.locations import OutputLocation, check_locations
from dehrnet_cli.sinks.outputs import (
    annotated_location,
    check_export_paths,
    check_output,
    display_available,
    frame_name,
    plan_image_output,
    plan_video_output,
)
from dehrnet_cli.sinks.render import draw_poses
from dehrnet_cli.sinks.video_writer import VideoWriter, write_image
from dehrnet_cli.sources.base import Source
from dehrnet_cli.sources.open import open_source
from dehrnet_cli.stage_data import Frame, Poses
from dehrnet_cli.video.settings import VideoSettings

if TYPE_CHECKING:  # the estimator imports torch: the job module stays light, so bad input fails fast
    from dehrnet_cli.estimator import PoseEstimator


@dataclass(frozen=True)
class PredictJob:
    source: str
    out: Path | None = None  # annotated video file, or folder of annotated images
    json_path: Path | None = None  # COCO-format file (images, annotations, categories)
    results_path: Path | None = None  # plain COCO results list (COCOeval loadRes)
    kpt_thr: float = 0.3  # keypoints below are hidden, and get v = 1 in the JSON
    draw_boxes: bool = False
    show: bool = False
    quiet: bool = False
    exif: bool = False
    frames_per_batch: int = 4
    banner: str | None = None
    video: VideoSettings | None = None  # tracking, smoothing, detection every N frames
    csv_path: Path | None = None  # one row per frame x person x keypoint (sinks.keypoints_csv)
    crops_dir: Path | None = None  # per-person crop images
    inputs: tuple[tuple[str, Path], ...] = ()  # (flag, path) of other files the job reads: no output may name one

    def output_locations(self, source: Source) -> list[OutputLocation]:
        """Every output this job writes for `source`, named by its flag."""
        files = [("--json", self.json_path), ("--save-results", self.results_path), ("--csv", self.csv_path)]
        locations = [OutputLocation(flag, path) for flag, path in files if path is not None]
        if self.out is not None:
            locations.append(annotated_location(self.out, source))
        if self.crops_dir is not None:
            locations.append(OutputLocation("--save-crops", self.crops_dir, folder=True))
        return locations


@dataclass
class PredictSummary:
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    partial: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Sink:
    """Renders and writes in its own thread; errors come back to the caller on the next call."""

    def __init__(self, job: PredictJob, estimator: PoseEstimator, source: Source, summary: PredictSummary) -> None:
        self.job, self.source, self.summary = job, source, summary
        self.spec = estimator.spec
        self.coco = CocoFileBuilder(self.spec, job.kpt_thr, {"source": source.name})
        self.video: VideoWriter | None = None
        self.images_written = 0
        self.exports: PoseExports | None = None
        if job.csv_path is not None or job.crops_dir is not None:
            self.exports = PoseExports(self.spec, job.csv_path, job.crops_dir, source.fps, source.kind != "images")
        self.queue: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dehrnet-sink", daemon=True)
        self.thread.start()

    def put(self, frame: Frame, image_id: int, poses: Poses, rendered: np.ndarray | None) -> None:
        self._raise_error()
        self.queue.put((frame, image_id, poses, rendered))

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def render(self, frame: Frame, poses: Poses) -> np.ndarray:
        return draw_poses(frame.image, poses, self.spec, self.job.kpt_thr, draw_boxes=self.job.draw_boxes,
                          banner=self.job.banner)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # drain after a failure so put() never blocks
            try:
                self._write(*item)
            except BaseException as e:  # handed to the main thread
                self.error = e

    def _write(self, frame: Frame, image_id: int, poses: Poses, rendered: np.ndarray | None) -> None:
        name = frame_name(self.source, frame)
        if self.job.json_path is not None or self.job.results_path is not None:
            self.coco.add(image_id, name, frame.size, poses)  # kept only when asked for: memory stays flat
        if self.exports is not None:
            self.exports.add(frame, poses, name)
        if self.job.out is None:
            return
        image = rendered if rendered is not None else self.render(frame, poses)
        if self.source.kind == "images":
            write_image(plan_image_output(self.job.out, self.source, frame), image)
            self.images_written += 1
        else:
            if self.video is None:
                self.video = VideoWriter(plan_video_output(self.job.out, self.source), self.source.fps or 30.0,
                                         frame.size)
            self.video.write(image)

    def finish(self, ok: bool) -> None:
        """Wait for queued frames; on success move every output into place. Otherwise earlier files under the
        final names stay as they were, and every output holding frames is kept, complete and valid, as
        NAME.partial.EXT (the video finalised, the COCO file and results list of the frames done, the CSV);
        annotated images already written stay in their folder."""
        self.queue.put(None)
        self.thread.join()
        done = ok and self.error is None
        if self.video is not None:
            if done:
                self.video.close()
                self.summary.outputs.append(self.video.path)
            else:
                self.video.abort()
                if self.video.partial_path is not None:
                    self.summary.partial.append(self.video.partial_path)
        if self.exports is not None:  # the CSV is published on success, else kept as NAME.partial.csv
            written, partial = self.exports.finish(done)
            self.summary.outputs.extend(written)
            self.summary.partial.extend(partial)
        if self.images_written:
            (self.summary.outputs if done else self.summary.partial).append(self.job.out)
        self._write_coco(done)
        self._raise_error()

    def _write_coco(self, done: bool) -> None:
        """The COCO file and results list: under their names on success; else, when frames were done, as
        NAME.partial.json (a failure to write a partial file does not hide the error that stopped the run)."""
        for path, write in ((self.job.json_path, self.coco.write), (self.job.results_path, self.coco.write_results)):
            if path is None:
                continue
            if done:
                self.summary.outputs.append(write(path))
            elif self.coco.images:
                try:
                    self.summary.partial.append(write(partial_path_for(path)))
                except (OSError, ValueError, DehrnetError) as e:
                    note(f"could not keep the partial {partial_path_for(path)} ({e})")


def _progress(job: PredictJob):
    return job_progress_bar("predict", "{task.fields[rate]:.1f} frames/s", enabled=not job.quiet)


def open_job_source(job: PredictJob) -> Source:
    """Open the job's source and check that its outputs can be written: a bad source, an output that cannot be
    written where asked (read-only folder, a parent that is a file, a folder named as a file), two outputs on
    one path or an output on an input fail here, before any model is loaded or frame processed."""
    source = open_source(job.source, exif=job.exif)
    try:
        if job.out is not None:
            check_output(job.out, source)
        check_export_paths(job.csv_path, job.crops_dir)
        source_file = Path(job.source).expanduser()
        inputs = [*job.inputs, *([("source", source_file)] if source_file.is_file() else [])]
        check_locations(job.output_locations(source), inputs)
    except DehrnetError:
        source.close()
        raise
    return source


def run_predict(estimator: PoseEstimator, job: PredictJob, source: Source | None = None,
                log: Callable[[str], None] = note) -> PredictSummary:
    """Run the job on `source` (opened with `open_job_source`, else opened here); returns what was written;
    `log` receives one-line notes (no display for --show, which partial outputs were kept).
    Ctrl-C on a file source stops cleanly (earlier outputs intact, a playable NAME.partial video) and
    re-raises KeyboardInterrupt after the cleanup; on a live source it ends the run and writes every output."""
    source = open_job_source(job) if source is None else source
    summary = PredictSummary()
    show = job.show and display_available()
    if job.show and not show:
        log("--show: no display here (DISPLAY is not set); not opening a window")
    sink = _Sink(job, estimator, source, summary)
    start = time.perf_counter()
    ok = False
    try:
        with _progress(job) as progress:
            task = progress.add_task("predict", total=source.num_frames, rate=0.0)
            for frame, image_id, poses in estimator.predictions(source, job.frames_per_batch, job.exif, job.video):
                rendered = _show(sink, frame, poses, summary, start) if show else None
                sink.put(frame, image_id, poses, rendered)
                summary.frames += 1
                summary.people += len(poses)
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
        try:
            sink.finish(ok)
        finally:
            if show:
                import cv2

                cv2.destroyAllWindows()
            if summary.partial:
                kept = ", ".join(str(p) for p in summary.partial)
                log(f"stopped after {summary.frames} frames; kept the partial output {kept}")
    return summary


def _show(sink: _Sink, frame: Frame, poses: Poses, summary: PredictSummary, start: float) -> np.ndarray:
    import cv2

    rendered = sink.render(frame, poses)
    fps = (summary.frames + 1) / max(time.perf_counter() - start, 1e-9)
    window = rendered.copy()
    cv2.putText(window, f"{fps:.1f} fps", (10, window.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                (255, 255, 255), 2, cv2.LINE_AA)
    cv2.imshow("dehrnet", window)
    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
        raise KeyboardInterrupt
    return rendered
