"""`PoseEstimator`: the Python API (and what the CLI builds): detector + top-down pose stage.

    est = PoseEstimator(weights="best.pt")          # or model="hrnet_w32.coco_384x288"
    poses = est(image_bgr)                           # Poses of one image
    for frame, poses in est.predict("video.mp4"):    # any source: file, folder, glob, video, camera
        ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .backends import BACKENDS, Backend, OnnxBackend, TorchBackend, resolve_device
from .coco_format import ImageIds
from .detector import DEFAULT_YOLO, Detector, make_detector
from .errors import DehrnetError
from .loading import load_pose_model
from .sources import ImageSource, Source, open_source
from .topdown import TopDownEstimator, TopDownSettings
from .types import Frame, Poses
from .video_stage import VideoSettings, VideoStage


def _onnx_for(model, weights: Path | None, device: str) -> Path:
    """An ONNX export of `model`, cached next to the weights cache (keyed by the checkpoint's content)
    so `--backend onnx --weights file.pt` exports once."""
    from .export import export_onnx
    from .weights import weights_dir

    if weights is None:  # random weights: one file per architecture, replaced on every run
        out = weights_dir() / "onnx" / f"{model.config.name}-untrained.onnx"
    else:
        digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
        out = weights_dir() / "onnx" / f"{Path(weights).stem}-{digest}.onnx"
        if out.exists():
            return out
    export_onnx(model, out, check=False, device="cpu" if device == "cpu" else device)
    return out


class PoseEstimator:
    """Person detector + DE-HRNet/HRNet pose stage with the official HRNet test protocol by default.

    weights: a checkpoint (dehrnet, official HRNet, mmpose) or an exported .onnx; model: a registry
    weights name or, with untrained=True, an architecture name (random weights, for timing and smoke
    tests). detector: "yolo" (det_model), "hog", "none" (whole image), or boxes=dets.json.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        *,
        model: str | None = None,
        untrained: bool = False,
        backend: str = "torch",
        device: str = "auto",
        half: bool = False,
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
        kpt_score_thr: float = 0.2,
        oks_thr: float | None = 0.9,
    ) -> None:
        if backend not in BACKENDS:
            raise DehrnetError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if batch < 1:
            raise DehrnetError(f"--batch {batch}: must be at least 1")
        weights = None if weights is None else Path(weights)
        self.untrained = untrained
        self.ann = None if ann is None else Path(ann)
        # the detector first: a missing detector file must stop us before any slow model work
        self.detector: Detector = make_detector(detector, boxes=None if boxes is None else Path(boxes),
                                                det_model=det_model, conf=conf, iou=iou, max_people=max_people,
                                                device=device)
        self.backend = self._backend(weights, model, untrained, backend, device, half, input_size)
        settings = TopDownSettings(flip=flip, decoder=decoder, batch=batch, kpt_score_thr=kpt_score_thr,
                                   oks_thr=oks_thr)
        self.topdown = TopDownEstimator(self.backend, settings)
        self.config = self.topdown.config
        self.spec = self.topdown.spec

    @staticmethod
    def _backend(weights: Path | None, model: str | None, untrained: bool, kind: str, device: str, half: bool,
                 input_size: tuple[int, int] | None) -> Backend:
        if weights is not None and weights.suffix.lower() == ".onnx":
            if kind != "onnx":
                raise DehrnetError(f"{weights}: an ONNX model runs with --backend onnx")
            if not weights.is_file():
                raise DehrnetError(f"{weights}: no such file")
            return OnnxBackend(weights, device)
        net = load_pose_model(weights, model, untrained=untrained, input_size=input_size)
        if kind == "torch":
            return TorchBackend(net, device, half)
        device = resolve_device(device)
        return OnnxBackend(_onnx_for(net, weights, device), device)

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
        `video`: tracking, smoothing and detection every N frames (see video_stage.VideoSettings)."""
        for frame, _, poses in self.predictions(source, frames_per_batch, exif, video):
            yield frame, poses

    def predictions(self, source: str | Source, frames_per_batch: int = 4, exif: bool = False,
                    video: VideoSettings | None = None) -> Iterator[tuple[Frame, int, Poses]]:
        """(frame, COCO image id, poses); files are batched `frames_per_batch` frames at a time, live
        sources one frame at a time (latency first). With `video`, a fresh VideoStage (trackers,
        filters) serves this source run."""
        src = open_source(str(source), exif=exif) if not isinstance(source, Source) else source
        ids = self.image_ids_for(src)
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

    def _flush(self, frames: list[Frame], ids: ImageIds,
               estimate: Callable[[list[Frame], list[int]], list[Poses]]) -> Iterator[tuple[Frame, int, Poses]]:
        image_ids = [ids(f.path, f.index) for f in frames]
        yield from zip(frames, image_ids, estimate(frames, image_ids))
