"""The whole-pipeline rows of `dehrnet bench`: `run_predict` on the synthetic video with fixed person boxes.

Mixed into `bench.stages.Bench` (it uses the bench's settings, inputs, backends and recorder); kept apart
because the pipeline runs are a job of their own: warm-up, N-frame repetitions, the 2N-frame memory check and
the per-precision runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

from dehrnet_cli.bench.machine import PeakRss
from dehrnet_cli.bench.results import PIPELINE, PIPELINE_PRECISION
from dehrnet_cli.bench.settings import (
    PRECISION_PIPELINE,
    size_name,
    tune_torch,
)
from dehrnet_cli.bench.synthetic_video import (
    FixedBoxesDetector,
)

DETECTOR_YAML, PEER_YAML = "yolo11n.yaml", "yolo11n-pose.yaml"


class PipelineMeasurements:
    """`run_predict` timings of a Bench: the pipeline per size x people, and per reduced precision."""


    # the whole pipeline ------------------------------------------------------------------------

    def pipeline_estimator(self, size: tuple[int, int], people: int, kind: str, precision: str,
                           flip: bool) -> Any:
        """A PoseEstimator of the first model (random weights) on `kind` in `precision`, with the bench's
        torch flags and a detector that returns the `people` fixed boxes of the video at `size`."""
        from dehrnet_cli.estimator import PoseEstimator
        from dehrnet_cli.pose.topdown import TopDownEstimator

        s, model = self.s, self.s.models[0]
        plain = "fp32" if precision == "int8" else precision  # int8 is swapped in below
        onnx = self.onnx_file(model, plain) if kind == "onnx" else None
        estimator = PoseEstimator(onnx, model=None if onnx else model, untrained=onnx is None, backend=kind,
                                  device=self.device, precision=plain, detector="none", flip=flip,
                                  batch=s.pipeline_batch, log=self.log)
        if kind == "onnx":  # the pose stage's backend: --ort-threads applied, int8 without the accuracy guard
            estimator.backend = self.backend(model, kind, precision)
            estimator.topdown = TopDownEstimator(estimator.backend, estimator.topdown.settings)
        estimator.detector = FixedBoxesDetector(self.boxes(size, people))
        if kind == "torch":
            tune_torch(estimator.backend, s.compile and not s.gpu)  # the GPU section compiles its gpu_pose rows only
        return estimator

    def _run_pipeline(self, estimator: Any, size: tuple[int, int], frames: int,
                      per_batch: int) -> tuple[float, int, int]:
        """(seconds from opening the video to the output file closed, frames, peak RSS in bytes) of one
        `run_predict` over the `frames`-frame video at `size`."""
        from dehrnet_cli.predict import PredictJob, run_predict

        job = PredictJob(str(self.video(size, frames)), out=self.workdir / "pipeline.mp4", kpt_thr=-math.inf,
                         quiet=True, frames_per_batch=per_batch)
        with PeakRss() as rss:
            begin = time.perf_counter()
            summary = run_predict(estimator, job)
            seconds = time.perf_counter() - begin
        return seconds, summary.frames, rss.peak_bytes

    def _pipeline_runs(self, size: tuple[int, int], people: int, kind: str, precision: str,
                       flip: bool) -> tuple[Any, dict[str, Any], list[tuple[float, int, int]]]:
        """(estimator, configuration, `repeats` runs of N frames after `warmup` short ones) of the pipeline."""
        s = self.s
        per_batch = max(1, s.pipeline_batch // people)
        estimator = self.pipeline_estimator(size, people, kind, precision, flip)
        for _ in range(s.warmup):
            self._run_pipeline(estimator, size, per_batch, per_batch)
        runs = [self._run_pipeline(estimator, size, self.n_frames, per_batch) for _ in range(s.repeats)]
        config = {"size": size_name(size), "people": people, "model": s.models[0], "backend": kind,
                  "precision": estimator.backend.precision, "batch": s.pipeline_batch, "flip": flip,
                  "frames_per_batch": per_batch, **self._variant(kind)}
        return estimator, config, runs

    def measure_pipeline(self, size: tuple[int, int], people: int) -> dict[str, Any]:
        """`run_predict` on the synthetic video with fixed boxes: `repeats` runs of N frames, then one of
        2N frames; peak RSS of the last N-frame run and of the 2N run (the memory check)."""
        s = self.s
        estimator, config, runs = self._pipeline_runs(size, people, s.backends[0], self.pipeline_precision(),
                                                      True in s.flips)
        seconds_2n, frames_2n, peak_2n = self._run_pipeline(estimator, size, 2 * self.n_frames,
                                                            config["frames_per_batch"])
        frames_n = runs[0][1]
        self._record(PIPELINE, config, frames_n, frames_n * people, [r[0] for r in runs],
                     run_2n_frames_per_s=frames_2n / seconds_2n)
        return {"frames_n": frames_n, "peak_n_bytes": runs[-1][2], "peak_2n_bytes": peak_2n, "config": config}

    def measure_precision_pipeline(self, kind: str, precision: str) -> None:
        """The pipeline at PRECISION_PIPELINE (1280x720, 3 people), flip on, on one (backend, precision)."""
        size, people = PRECISION_PIPELINE
        _, config, runs = self._pipeline_runs(size, people, kind, precision, True)
        self._record(PIPELINE_PRECISION, config, runs[0][1], runs[0][1] * people, [r[0] for r in runs])
