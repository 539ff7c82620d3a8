"""`PoseEstimator`: the Python API (and what the CLI builds): detector + top-down pose stage.

    est = PoseEstimator(weights="best.pt")          # or model="hrnet_w32.coco_384x288"
    poses = est(image_bgr)                           # Poses of one image
    for frame, poses in est.predict("video.mp4"):    # any source: file, folder, glob, video, camera
        ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import Detector
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.factory import make_detector
from dehrnet_cli.detect.yolo import DEFAULT_YOLO
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, OnnxBackend, TorchBackend, resolve_device, set_cpu_threads
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.precision.auto_path import BACKENDS
from dehrnet_cli.precision.backend_factory import Log, make_pose_backend, require_guard
from dehrnet_cli.sinks.coco import ImageIds
from dehrnet_cli.sources.base import Source
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.sources.open import open_source
from dehrnet_cli.stage_data import Frame, Poses
from dehrnet_cli.video.settings import VideoSettings
from dehrnet_cli.video.stage import VideoStage
from dehrnet_cli.weights.model_choice import ModelChoice, choose_model


class PoseEstimator:
    """Person detector + DE-HRNet/HRNet pose stage with the official HRNet test protocol by default.

    weights: a checkpoint (dehrnet, official HRNet, mmpose) or an exported .onnx; model: a registry
    weights name or, with untrained=True, an architecture name (random weights, for timing and smoke
    tests); neither: the local DE-HRNet weights, else the HRNet-W32 384x288 COCO baseline, fetched on first
    use (weights.model_choice). detector: "yolo" (det_model), "hog", "none" (whole image), or boxes=dets.json.
    backend: "auto" (CUDA: torch; CPU: ONNX Runtime or torch, whichever finishes a job of `expected_frames`
    frames sooner, precision.auto_path), "torch" or "onnx"; expected_frames None means a long job.
    precision: auto, fp32, bf16, fp16 (CUDA; half=True is the same) or int8 (ONNX Runtime, quantized on
    `calib` images); reduced precisions must pass the accuracy guard (dehrnet_cli.precision).
    `log` receives one-line notes (which precision runs and why); default: stderr. threads: CPU threads of
    torch, onnxruntime and OpenCV, set process-wide (None: leave the process's settings as they are). compile:
    torch.compile the torch backend's network at fixed batch sizes (CUDA graphs on CUDA).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        model: str | None = None,
        untrained: bool = False,
        backend: str = "auto",
        device: str = "auto",
        half: bool = False,
        precision: str = "auto",
        calib: str | Path | None = None,
        log: Log | None = None,
        input_size: tuple[int, int] | None = None,
        detector: str = "yolo",
        det_model: str = DEFAULT_YOLO,
        conf: float | None = None,
        iou: float = 0.7,
        max_people: int | None = None,
        boxes: str | Path | None = None,
        ann: str | Path | None = None,
        flip: bool = True,
        decoder: str = "msra",
        batch: int = 32,
        kpt_score_thr: float = TopDownSettings.kpt_score_thr,
        oks_thr: float | None = TopDownSettings.oks_thr,
        expected_frames: int | None = None,
        threads: int | None = None,
        compile: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise DehrnetError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if batch < 1:
            raise DehrnetError(f"--batch {batch}: must be at least 1")
        choice = choose_model(weights, model, untrained)  # a bad name or file fails before any model work
        self.model_choice = choice
        if threads is not None:  # CPU threads of torch, onnxruntime and OpenCV (process-wide)
            set_cpu_threads(threads)
        self.ann = None if ann is None else Path(ann)
        # the detector first: a missing detector file must stop us before any slow model work
        self.detector: Detector = make_detector(detector, boxes=None if boxes is None else Path(boxes),
                                                det_model=det_model, conf=conf, iou=iou, max_people=max_people,
                                                device=device)
        log = log or (lambda line: print(line, file=sys.stderr))
        crops = None if expected_frames is None else expected_frames * (2 if flip else 1)
        self.backend = self._backend(choice, backend, device, half, precision, None if calib is None else Path(calib),
                                     input_size, crops, log)
        if compile and isinstance(self.backend, TorchBackend):  # fixed batch sizes, CUDA graphs on CUDA
            self.backend.compile()
        settings = TopDownSettings(flip=flip, decoder=decoder, batch=batch, kpt_score_thr=kpt_score_thr,
                                   oks_thr=oks_thr)
        self.untrained = untrained or getattr(self.backend, "untrained", False)  # an ONNX file may say so
        self.topdown = TopDownEstimator(self.backend, settings)
        self.config = self.topdown.config
        self.spec = self.topdown.spec

    @staticmethod
    def _backend(choice: ModelChoice, kind: str, device: str, half: bool, precision: str, calib: Path | None,
                 input_size: tuple[int, int] | None, crops: int | None, log: Log) -> Backend:
        if choice.is_onnx:  # by content: an ONNX model runs on onnxruntime
            if kind == "torch":
                raise DehrnetError(f"{choice.weights}: an ONNX model runs with --backend onnx (or auto)")
            backend = OnnxBackend(choice.weights, device)
            wanted = "fp16" if half else precision
            if wanted not in ("auto", backend.precision):
                raise DehrnetError(f"{choice.weights}: this ONNX model computes in {backend.precision}, not {wanted}; "
                                   "export one with dehrnet export (--int8 or --half), or pass the checkpoint")
            log(f"onnx precision {backend.precision} on {backend.device}: {choice.weights.name} is an ONNX model, "
                "run by onnxruntime in its own precision")
            if backend.precision == "int8":
                require_guard("int8", "cpu", log)
            return backend
        return make_pose_backend(choice, kind, resolve_device(device), precision, half, calib, input_size, crops, log)

    def __call__(self, image_bgr: np.ndarray, image_id: int = 1) -> Poses:
        """Poses of one (H, W, 3) uint8 BGR image."""
        if not (isinstance(image_bgr, np.ndarray) and image_bgr.ndim == 3 and image_bgr.shape[2] == 3):
            shape = getattr(image_bgr, "shape", type(image_bgr).__name__)
            raise DehrnetError(f"expected an (H, W, 3) uint8 BGR image, got {shape}")
        frame = Frame(0, image_bgr)
        return self.topdown.estimate([image_bgr], self.detector([frame], [image_id]))[0]

    def estimate_frames(self, frames: list[Frame], image_ids: list[int]) -> list[Poses]:
        """Detect and estimate several frames at once (all their crops share forward passes)."""
        return self.topdown.estimate([f.image for f in frames], self.detector(frames, image_ids))

    def image_ids_for(self, source: Source) -> ImageIds:
        paths = source.paths if isinstance(source, ImageSource) else None
        return ImageIds(self.ann, paths)

    def predict(self, source: str | Source, frames_per_batch: int = 4, exif: bool = False,
                video: VideoSettings | None = None) -> Iterator[tuple[Frame, Poses]]:
        """(frame, poses) for every frame of a source (a path, glob, camera index, URL or Source);
        `video`: tracking, smoothing and detection every N frames (see video.stage.VideoSettings)."""
        for frame, _, poses in self.predictions(source, frames_per_batch, exif, video):
            yield frame, poses

    def predictions(self, source: str | Source, frames_per_batch: int = 4, exif: bool = False,
                    video: VideoSettings | None = None) -> Iterator[tuple[Frame, int, Poses]]:
        """(frame, COCO image id, poses); files are batched `frames_per_batch` frames at a time, live
        sources one frame at a time (latency first). With `video`, a fresh VideoStage (trackers,
        filters) serves this source run."""
        src = open_source(str(source), exif=exif) if not isinstance(source, Source) else source
        ids = self.image_ids_for(src)
        boxes_file = self.detector if isinstance(self.detector, BoxesFileDetector) else None
        planned_ids = ids.of_source(src.paths if isinstance(src, ImageSource) else None, src.num_frames)
        if boxes_file is not None:  # a file for other images: one clear line now, not "0 people" at the end
            boxes_file.check_image_ids(planned_ids, src.name)
        per_batch = 1 if src.is_live else max(1, frames_per_batch)
        pending: list[Frame] = []
        try:
            estimate = self.estimate_frames
            if video is not None and video.active:
                estimate = VideoStage(self.detector, self.topdown, video, src.fps).estimate
            for frame in src:
                pending.append(frame)
                if len(pending) >= per_batch:
                    yield from self._flush(pending, ids, estimate)
                    pending = []
            if pending:
                yield from self._flush(pending, ids, estimate)
        finally:
            src.close()
            if boxes_file is not None:
                boxes_file.warn_outside()

    def _flush(self, frames: list[Frame], ids: ImageIds,
               estimate: Callable[[list[Frame], list[int]], list[Poses]]) -> Iterator[tuple[Frame, int, Poses]]:
        image_ids = [ids(f.path, f.index) for f in frames]
        yield from zip(frames, image_ids, estimate(frames, image_ids))
