"""`PoseEstimator`: the Python API, and what every command runs: a person detector and the top-down pose stage,
built from specs; every image or frame comes back as a `PoseResult`.

    est = PoseEstimator(weights="best.pt")          # or model="hrnet_w32.coco_384x288"; detector="none", ...
    result = est("bus.jpg")                          # a path, a BGR uint8 array, a PIL image, grayscale, BGRA
    results = est([img1, img2])                      # a list: batched, a list of results
    result.plot(); result.to_coco(); result.to_df(); result.save("out.jpg"); result[0]
    for result in est.predict("video.mp4"):          # any source: file, folder, glob, video, camera, stream
        ...
    PoseEstimator.from_specs(ModelSpec(...), RuntimeSpec(...), DetectorSpec(...), TopDownSettings(...))

Building one is cheap: the specs are checked and the model named is found, nothing is loaded. The detector and
the pose network are built once the first job's length is known (the first call: its images; `predict`: the
source's frame count; or `prepare(expected_frames)`), because the fastest CPU engine depends on it
(precision.auto_path: ONNX Runtime repays its one-time export only on long jobs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dehrnet_cli.detect.base import Detector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.factory import follow_pose_engine, make_detector
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.pose.backends import Backend
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.precision.backend_factory import make_pose_backend
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.progress import note
from dehrnet_cli.sinks.outputs import frame_name
from dehrnet_cli.sinks.result import PoseResult
from dehrnet_cli.sources.base import Source
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.sources.in_memory import to_frame
from dehrnet_cli.sources.open import open_source
from dehrnet_cli.stage_data import Frame, Poses
from dehrnet_cli.video.settings import VideoSettings
from dehrnet_cli.video.stage import VideoStage
from dehrnet_cli.weights.model_choice import ModelSpec
from models import KeypointSpec, PoseNetConfig

Log = Callable[[str], None]


class PoseEstimator:
    """Person detector + DE-HRNet/HRNet pose stage, the official HRNet test protocol by default.

    weights: a checkpoint (dehrnet, official HRNet, mmpose) or an exported .onnx; model: a registry weights name
    or, with untrained=True, an architecture (random weights); neither: the local DE-HRNet weights, else the
    HRNet-W32 384x288 COCO baseline, fetched on first use. device: auto, cpu, cuda, cuda:N; backend: auto (the
    fastest engine for the job), torch, onnx or openvino; precision: auto, fp32, bf16, fp16 (CUDA) or int8.
    detector: yolo (det_model), hog, none (the whole image), or boxes=dets.json (a COCO detections file); conf:
    its score threshold; det_engine: what runs YOLO (auto: OpenVINO when the pose network runs there, else torch).
    flip: the flip test; batch: crops per forward pass. threads: CPU threads, set process-wide when the network
    is built (None: the process's settings stay). log: one-line notes (which model and engine run,
    and why); default: stderr. Everything else: `from_specs`.
    """

    def __init__(self, weights: str | Path | None = None, *, model: str | None = None, untrained: bool = False,
                 device: str = "auto", backend: str = "auto", precision: str = "auto", detector: str = "yolo",
                 det_model: str = DEFAULT_YOLO, conf: float | None = None, boxes: str | Path | None = None,
                 flip: bool = True, batch: int = 32, threads: int | None = None, det_engine: str = "auto",
                 log: Log | None = None) -> None:
        self._setup(ModelSpec(None if weights is None else Path(weights), model, untrained),
                    RuntimeSpec(backend, device, precision, threads),
                    DetectorSpec(detector, det_model, conf, boxes=None if boxes is None else Path(boxes),
                                 engine=det_engine),
                    TopDownSettings(flip=flip, batch=batch), log)

    @classmethod
    def from_specs(cls, model: ModelSpec = ModelSpec(), runtime: RuntimeSpec = RuntimeSpec(),
                   detector: DetectorSpec = DetectorSpec(), pose: TopDownSettings = TopDownSettings(),
                   log: Log | None = None) -> PoseEstimator:
        """An estimator of any model, runtime, detector and pose settings (specs are checked when made)."""
        estimator = cls.__new__(cls)
        estimator._setup(model, runtime, detector, pose, log)
        return estimator

    @classmethod
    def from_parts(cls, backend: Backend, detector: Detector, pose: TopDownSettings = TopDownSettings(),
                   log: Log | None = None) -> PoseEstimator:
        """An estimator around a pose backend and a detector already built (benchmarks, tests, your own detector:
        any callable `frames -> list[Detections]`)."""
        estimator = cls.__new__(cls)
        estimator.model_spec, estimator.runtime, estimator.settings = ModelSpec(), RuntimeSpec(), pose
        estimator.detector_spec, estimator.model_choice = None, None
        estimator.log = log or note
        estimator._detector, estimator._topdown = detector, TopDownEstimator(backend, pose)
        return estimator

    def _setup(self, model: ModelSpec, runtime: RuntimeSpec, detector: DetectorSpec, pose: TopDownSettings,
               log: Log | None) -> None:
        self.model_spec, self.runtime, self.detector_spec, self.settings = model, runtime, detector, pose
        self.model_choice = model.choose()  # a bad name or file, or an offline default, fails here
        detector.check(runtime.device)  # a missing boxes file or detector fails before any slow model work
        self.log: Log = log or note
        self._detector: Detector | None = None
        self._topdown: TopDownEstimator | None = None

    def prepare(self, expected_frames: int | None = None) -> PoseEstimator:
        """Build the detector and the pose network (once) for a job of `expected_frames` frames (None: long or
        unknown), which decides the engine when the runtime says auto. The detector is built first (a refused
        file fails before the pose network's export), then follows the pose network onto OpenVINO."""
        if self._detector is None:
            self._detector = make_detector(self.detector_spec, self.runtime.device)
        if self._topdown is None:
            crops = None if expected_frames is None else expected_frames * (2 if self.settings.flip else 1)
            backend = make_pose_backend(self.model_choice, self.runtime, self.model_spec.input_size, crops,
                                        self.log)
            self._topdown = TopDownEstimator(backend, self.settings)
            if self.detector_spec is not None:
                follow_pose_engine(self._detector, self.detector_spec, backend.name, self.runtime.precision, self.log)
        return self

    @property
    def topdown(self) -> TopDownEstimator:
        return self.prepare()._topdown

    @property
    def detector(self) -> Detector:
        return self.prepare()._detector

    @property
    def backend(self) -> Backend:
        return self.topdown.backend

    @property
    def config(self) -> PoseNetConfig:
        return self.topdown.config

    @property
    def keypoints(self) -> KeypointSpec:
        """The keypoint set the model predicts (names, skeleton, flip pairs)."""
        return self.topdown.spec

    @property
    def untrained(self) -> bool:
        """Random weights: asked for, or an ONNX file that says it was exported from them."""
        return self.model_spec.untrained or bool(getattr(self.backend, "untrained", False))

    def __call__(self, images: Any) -> PoseResult | list[PoseResult]:
        """The result of one image, or a list of results for a list of images (batched together). An image is a
        path, a uint8 numpy array ((H, W, 3) BGR, (H, W) gray, (H, W, 4) BGRA) or a PIL image."""
        many = isinstance(images, (list, tuple))
        frames = [to_frame(image, index) for index, image in enumerate(images if many else [images])]
        self.prepare(len(frames))
        results = [PoseResult.of_frame(frame, poses, self.keypoints)
                   for frame, poses in zip(frames, self.estimate_frames(frames))]
        return results if many else results[0]

    def estimate_frames(self, frames: list[Frame]) -> list[Poses]:
        """Detect and estimate several frames at once (all their crops share forward passes)."""
        return self.topdown.estimate([f.image for f in frames], self.detector(frames))

    def predict(self, source: str | Path | int | Source, video: VideoSettings | None = None,
                frames_per_batch: int = 4, orientation: str = "exif") -> Iterator[PoseResult]:
        """One PoseResult per frame of a source (a path, glob, camera index, URL or an opened Source), in order.
        Files are batched `frames_per_batch` frames at a time, live sources one frame at a time (latency first);
        `video`: tracking, smoothing and detection every N frames, with a fresh state for this source; images are
        read as the user sees them (`orientation` "exif"), or as stored ("stored", the pixels annotations use)."""
        src = source if isinstance(source, Source) else open_source(str(source), orientation=orientation)
        try:
            self.prepare(src.num_frames)
            boxes_file = self.detector if isinstance(self.detector, BoxesFileDetector) else None
            if boxes_file is not None:  # a file for other images: one clear line now, not "0 people" at the end
                boxes_file.for_source(src.paths if isinstance(src, ImageSource) else None, src.num_frames, src.name)
            estimate = self.estimate_frames
            if video is not None and video.active:
                estimate = VideoStage(self.detector, self.topdown, video, src.fps).estimate
            per_batch = 1 if src.is_live else max(1, frames_per_batch)
            pending: list[Frame] = []
            for frame in src:
                pending.append(frame)
                if len(pending) >= per_batch:
                    yield from self._results(src, pending, estimate)
                    pending = []
            if pending:
                yield from self._results(src, pending, estimate)
        finally:
            src.close()
            if isinstance(self._detector, BoxesFileDetector):
                self._detector.warn_outside()

    def _results(self, source: Source, frames: list[Frame], estimate: Callable[[list[Frame]], list[Poses]]
                 ) -> Iterator[PoseResult]:
        for frame, poses in zip(frames, estimate(frames)):
            yield PoseResult.of_frame(frame, poses, self.keypoints, frame_name(source, frame))
