"""The whole-pipeline rows of `dehrnet bench`: `run_predict` on the synthetic video with fixed person boxes.

Mixed into `bench.stages.Bench` (it uses the bench's settings, inputs, backends and recorder); kept apart
because the pipeline runs are a job of their own: warm-up, N-frame repetitions, the 2N-frame memory check and
the per-precision runs, the default-path rows.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dehrnet_cli.bench.machine import PeakRss
from dehrnet_cli.bench.results import PIPELINE, PIPELINE_BACKEND, PIPELINE_PRECISION
from dehrnet_cli.bench.settings import (
    DEFAULT_PATH_PIPELINE,
    PRECISION_PIPELINE,
    size_name,
    tune_torch,
)
from dehrnet_cli.bench.synthetic_video import (
    FixedBoxesDetector,
)


class PipelineMeasurements:
    """`run_predict` timings of a Bench: the pipeline per size x people, per reduced precision, and the default
    path next to explicit torch and ONNX Runtime."""

    def pipeline_estimator(self, size: tuple[int, int], people: int, kind: str, precision: str,
                           flip: bool) -> Any:
        """A PoseEstimator of the first model (random weights) on `kind` in `precision`, with the bench's
        torch flags and a detector that returns the `people` fixed boxes of the video at `size`."""
        from dehrnet_cli.estimator import PoseEstimator
        from dehrnet_cli.pose.backends import TorchBackend
        from dehrnet_cli.pose.settings import TopDownSettings
        from models import create_model

        s, model = self.s, self.s.models[0]
        if kind in ("onnx", "openvino"):  # --ort-threads applied, int8 unchecked
            backend = self.backend(model, kind, precision)
        else:
            backend = TorchBackend(create_model(model).eval(), self.device, precision=precision)
            tune_torch(backend, s.compile and not s.gpu)  # the GPU section compiles its gpu_pose rows only
        return PoseEstimator.from_parts(backend, FixedBoxesDetector(self.boxes(size, people)),
                                        TopDownSettings(flip=flip, batch=s.pipeline_batch), self.log)

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

    def default_path_estimator(self, size: tuple[int, int], people: int) -> Any:
        """The PoseEstimator a user gets with a checkpoint and no backend or precision flag, for a long video: the
        first model (random weights, saved as a checkpoint) on --backend auto, its exports made in the bench's own
        weights folder. Random weights rarely pass the precision check, so on a bf16 CPU this is usually the
        fallback (OpenVINO fp32); the openvino row beside it is the checked path."""
        from dehrnet_cli.estimator import PoseEstimator
        from models import create_model, save_checkpoint

        checkpoint = self.workdir / f"{self.s.models[0]}_random.pt"
        if not checkpoint.exists():
            save_checkpoint(create_model(self.s.models[0]).eval(), checkpoint)
        with bench_weights_home(self.workdir / "home"):
            chosen = PoseEstimator(checkpoint, backend="auto", device=self.device, detector="none", flip=True,
                                   batch=self.s.pipeline_batch, log=self.log).prepare()  # a long video
        return PoseEstimator.from_parts(chosen.backend, FixedBoxesDetector(self.boxes(size, people)),
                                        chosen.settings, self.log)

    def measure_default_path(self) -> None:
        """The pipeline at DEFAULT_PATH_PIPELINE (1280x720, 1 and 5 people, flip on) on explicit torch fp32, ONNX
        Runtime fp32 (the default before OpenVINO), OpenVINO (bf16 where the CPU has bf16 units, else fp32) and the
        default path (what --backend auto --precision auto resolve to here), in one run."""
        from dehrnet_cli.precision.cpu import native_bf16

        size, people_counts = DEFAULT_PATH_PIPELINE
        if self.device.startswith("cuda"):
            paths = {"torch": "fp32", "onnx": "fp32"}
        else:
            paths = {"torch": "fp32", "onnx": "fp32", "openvino": "bf16" if native_bf16() else "fp32"}
        for people in people_counts:
            per_batch = max(1, self.s.pipeline_batch // people)
            estimators = {kind: self.pipeline_estimator(size, people, kind, precision, True)
                          for kind, precision in paths.items()}
            estimators["auto"] = self.default_path_estimator(size, people)
            for kind, estimator in estimators.items():
                for _ in range(self.s.warmup):
                    self._run_pipeline(estimator, size, per_batch, per_batch)
                runs = [self._run_pipeline(estimator, size, self.n_frames, per_batch) for _ in range(self.s.repeats)]
                config = {"size": size_name(size), "people": people, "model": self.s.models[0], "backend": kind,
                          "precision": estimator.backend.precision, "runs_on": estimator.backend.name,
                          "batch": self.s.pipeline_batch, "flip": True, "frames_per_batch": per_batch}
                self._record(PIPELINE_BACKEND, config, runs[0][1], runs[0][1] * people, [r[0] for r in runs])


@contextmanager
def bench_weights_home(home: Path) -> Iterator[None]:
    """DEHRNET_HOME pointed at `home` inside the block: the bench's exports and precision checks stay out of the
    user's cache."""
    (home / "weights").mkdir(parents=True, exist_ok=True)
    before = os.environ.get("DEHRNET_HOME")
    os.environ["DEHRNET_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DEHRNET_HOME", None)
        else:
            os.environ["DEHRNET_HOME"] = before
