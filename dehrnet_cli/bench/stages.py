"""`dehrnet bench`: each stage of the top-down pipeline alone, then the whole pipeline, on this machine.

Input is a synthetic video made here (fixed seed) with fixed person boxes, so no weights are needed:
the pose networks and the YOLO detector are built with random weights (time only). Every number is the
median and spread over `repeats` timed repetitions after `warmup` untimed ones; CUDA work is timed with
CUDA events after a synchronisation, never with a bare host clock. Stages (see bench_results.STAGES):
video decode (PyAV on the reader thread), detector (YOLO11n from its yaml), crop (affine warps), pose
(normalise + forward, one batched forward of 2N crops with the flip test, flip fuse), decode + flip
(flip fuse, argmax decode, rescoring, OKS-NMS), render (draw_poses), encode (H.264 VideoWriter). The
pipeline is `run_predict` (reader thread, pose on the main thread, render + encode on a sink thread).

Reduced precisions: fp16 runs on CUDA (torch or an fp16 ONNX export); bf16 always on torch (bf16 weights,
channels_last) and int8 always on ONNX Runtime (a QDQ model quantized from the fp32 export on a few crops),
whatever --backend says. Each asked bf16/int8 adds its pose row and the fp32 rows its target ratios compare
it with, and (unless --no-precision-pipeline) the pipeline at 1280x720, 3 people, flip on, per precision.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dehrnet_cli.bench.gpu import GpuMeasurements
from dehrnet_cli.bench.machine import PeakFlops, cpu_peak_flops, gpu_peak_flops, measured_matrix_rate
from dehrnet_cli.bench.pipeline import PipelineMeasurements
from dehrnet_cli.bench.results import PEER, Measurement
from dehrnet_cli.bench.settings import (
    CALIB_CROPS,
    COMPARED_WITH,
    DEFAULT_PATH_PIPELINE,
    PRECISION_PIPELINE,
    REDUCED_BACKEND,
    BenchSettings,
    Log,
    size_name,
    tune_torch,
)
from dehrnet_cli.bench.synthetic_video import (
    VIDEO_FPS,
    person_boxes,
    synthetic_poses,
    write_synthetic_video,
)
from dehrnet_cli.bench.timing import interleaved, repeat, torch_threads_kept
from dehrnet_cli.precision.cpu import read_cpu_info
from dehrnet_cli.stage_data import Frame

DETECTOR_YAML, PEER_YAML = "yolo26n.yaml", "yolo11n-pose.yaml"  # the default detector; the peer of issue 7


class Bench(PipelineMeasurements, GpuMeasurements):
    """One benchmark run on `settings.device`; `run()` measures everything. Files (synthetic videos, ONNX
    exports, outputs) go to `workdir`; `log` receives one line per finished measurement."""

    def __init__(self, settings: BenchSettings, workdir: Path, log: Log = lambda _: None) -> None:
        import torch

        from dehrnet_cli.pose.backends import resolve_device
        from dehrnet_cli.precision.cpu import native_bf16

        self.s, self.workdir, self.log = settings, workdir, log
        self.device = resolve_device(settings.device)
        self.cuda = self.device.startswith("cuda")
        self.measurements: list[Measurement] = []
        self.notes: list[str] = []
        self._videos: dict[tuple[tuple[int, int], int], Path] = {}
        self._frames: dict[tuple[int, int], list[Frame]] = {}
        self._onnx: dict[tuple[str, str, str], Path] = {}
        self._matrix_rates: dict[str, PeakFlops | None] = {}
        self.reduced = [p for p in REDUCED_BACKEND if p in settings.precisions and not (p == "int8" and self.cuda)]
        self.precision_pipelines = bool(self.reduced) and settings.pipeline and settings.precision_pipeline
        self.max_people = max(*settings.people, PRECISION_PIPELINE[1] if self.precision_pipelines else 1,
                              *(DEFAULT_PATH_PIPELINE[1] if settings.pipeline and settings.default_path else ()))
        self.n_frames = settings.frames or (256 if self.cuda else 16)
        if "fp16" in settings.precisions and not self.cuda:
            self.notes.append("fp16 skipped: it needs a CUDA device")
        if "int8" in settings.precisions and self.cuda:
            self.notes.append("int8 skipped: it is a CPU path (ONNX Runtime on a quantized model); use --device cpu")
        if self.cuda:
            self.peak_fn = lambda p: gpu_peak_flops(torch.cuda.get_device_name(torch.device(self.device)), p,
                                                    tf32=torch.backends.cudnn.allow_tf32)
        else:
            cpu = read_cpu_info()
            self.peak_fn = lambda p: cpu_peak_flops(cpu, p)
            if "bf16" in self.reduced and not native_bf16(cpu):
                self.notes.append(f"bf16 is emulated on {cpu.model} (no AVX512-BF16 or AMX-BF16 unit), so it runs "
                                  "several times slower than fp32 here")

    # inputs ------------------------------------------------------------------------------------

    def boxes(self, size: tuple[int, int], people: int) -> np.ndarray:
        """(people, 4) xyxy boxes: the first of the layout the synthetic video draws figures in."""
        return person_boxes(size, self.max_people)[:people]

    def video(self, size: tuple[int, int], frames: int) -> Path:
        """The synthetic video of `frames` frames at `size`, made on first use."""
        key = (size, frames)
        if key not in self._videos:
            path = self.workdir / f"synthetic_{size_name(size)}_{frames}f.mp4"
            self._videos[key] = write_synthetic_video(path, size, frames, self.boxes(size, self.max_people),
                                                      self.s.seed)
        return self._videos[key]

    def frames(self, size: tuple[int, int]) -> list[Frame]:
        """The decoded frames of the N-frame video at `size` (the input of the stages timed alone)."""
        from dehrnet_cli.sources.open import open_source

        if size not in self._frames:
            with open_source(str(self.video(size, self.n_frames))) as source:
                self._frames[size] = list(source)
        return self._frames[size]

    def _record(self, stage: str, config: dict[str, Any], frames: float, crops: int, seconds: list[float],
                **extra: Any) -> Measurement:
        m = Measurement(stage, config, frames, crops, seconds, extra)
        self.measurements.append(m)
        rate = f"{m.crops_per_s.median:.3g} crops/s" if crops else f"{m.fps.median:.3g} frames/s"
        self.log(f"{stage:<18} {' '.join(f'{k}={v}' for k, v in config.items())}: {rate}")
        return m

    def _time(self, stage: str, config: dict[str, Any], fn: Callable[[], object], frames: float, crops: int = 0,
              cuda_device: str | None = None, **extra: Any) -> Measurement:
        seconds, first = repeat(fn, self.s.warmup, self.s.repeats, cuda_device)
        return self._record(stage, config, frames, crops, seconds, first_call_s=first, **extra)

    # stages without a network ------------------------------------------------------------------

    def measure_io(self, size: tuple[int, int]) -> None:
        """Video decode and encode of `frames` frames at `size`."""
        from dehrnet_cli.sinks.video_writer import VideoWriter
        from dehrnet_cli.sources.open import open_source

        path, n = self.video(size, self.n_frames), self.n_frames
        cfg = {"size": size_name(size)}
        self._time("video_decode", cfg, lambda: sum(1 for _ in open_source(str(path))), n)
        images = [f.image for f in self.frames(size)]

        def encode() -> None:
            with VideoWriter(self.workdir / "encode.mp4", VIDEO_FPS, size) as writer:
                for image in images:
                    writer.write(image)

        self._time("encode", cfg, encode, n)

    def measure_per_person(self, size: tuple[int, int], people: int, model: str, decode: bool) -> None:
        """Crop and render for `people` fixed boxes per frame, and decode + flip (which does not depend
        on the video size) when `decode`."""
        from dehrnet_cli.pose.codec import HeatmapCodec
        from dehrnet_cli.pose.flip import fuse_flip_test
        from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
        from dehrnet_cli.postprocess.nms import oks_nms
        from dehrnet_cli.postprocess.oks import oks_sigmas
        from dehrnet_cli.postprocess.rescore import box_areas, rescore
        from dehrnet_cli.sinks.render import draw_poses
        from models import get_config

        cfg = get_config(model)
        frames, boxes, n = self.frames(size), self.boxes(size, people), self.n_frames
        size_cfg = {"size": size_name(size), "people": people}

        def crop() -> None:
            for frame in frames:
                centers, scales = center_scale_from_xyxy(boxes, cfg.input_size)
                warp_crops(frame.image, centers, scales, cfg.input_size)

        self._time("crop", {**size_cfg, "model": model}, crop, n, n * people)
        poses = synthetic_poses(boxes, cfg.keypoints.num_keypoints, self.s.seed)
        self._time("render", size_cfg, lambda: [draw_poses(f.image, poses, cfg.keypoints) for f in frames], n)
        if not decode:
            return
        codec = HeatmapCodec(cfg.input_size, cfg.heatmap_size, cfg.sigma)
        centers, scales = center_scale_from_xyxy(boxes, cfg.input_size)
        areas, sigmas, flip_index = box_areas(scales), oks_sigmas(cfg.keypoints), cfg.keypoints.flip_index()
        rng = np.random.default_rng(self.s.seed)
        shape = (people, cfg.keypoints.num_keypoints, cfg.heatmap_size[1], cfg.heatmap_size[0])
        maps, maps_of_flipped = rng.random(shape, np.float32), rng.random(shape, np.float32)
        for flip in self.s.flips:
            def decode(flip: bool = flip) -> None:
                for _ in range(n):
                    fused = fuse_flip_test(maps, maps_of_flipped, flip_index) if flip else maps
                    kpts, kpt_scores = codec.decode_to_image(fused, centers, scales)
                    scores = rescore(kpt_scores, np.ones(people, np.float32))
                    if people > 1:
                        oks_nms(kpts, scores, areas, 0.9, sigmas)

            self._time("decode_flip", {"people": people, "flip": flip, "model": model}, decode, n, n * people)

    # networks ----------------------------------------------------------------------------------

    def _yolo_device(self) -> str:
        return "cpu" if not self.cuda else (self.device if ":" in self.device else "cuda:0")

    def measure_detector(self, size: tuple[int, int]) -> None:
        """The YOLO26n person detector (the default; random weights) as predict calls it, a batch of frames per call."""
        from dehrnet_cli.detect.yolo import YoloPersonDetector

        with torch_threads_kept():
            detector = YoloPersonDetector(DETECTOR_YAML, device=self._yolo_device())
        frames, per_call = self.frames(size), max(1, min(self.n_frames, self.s.pipeline_batch))

        def detect() -> None:
            with torch_threads_kept():
                for i in range(0, len(frames), per_call):
                    detector(frames[i:i + per_call])

        self._time("detector", {"size": size_name(size), "model": "yolo26n (random weights)",
                                "frames_per_call": per_call}, detect, len(frames))

    def measure_peer(self, size: tuple[int, int]) -> None:
        """ultralytics YOLO11n-pose (one-stage, random weights) on the same frames."""
        from ultralytics import YOLO

        peer = YOLO(PEER_YAML)
        images = [f.image for f in self.frames(size)]
        per_call = max(1, min(self.n_frames, self.s.pipeline_batch))
        half = self.cuda and "fp16" in self.s.precisions
        options = {"device": self._yolo_device(), "verbose": False, **({"half": True} if half else {})}

        def run() -> None:
            with torch_threads_kept():
                for i in range(0, len(images), per_call):
                    peer.predict(images[i:i + per_call], **options)

        self._time(PEER, {"size": size_name(size), "model": "yolo11n-pose (random weights)",
                          "precision": "fp16" if half else "fp32", "frames_per_call": per_call}, run, len(images))

    def onnx_file(self, model_name: str, precision: str, net: Any | None = None, sampler: str = "gather") -> Path:
        """The pose net of `model_name` (random weights: `net`, or a new one) as ONNX, made once per (model,
        precision) in the work folder: fp32 and fp16 exported, int8 quantized from the fp32 export on
        CALIB_CROPS crops of the images bundled with ultralytics."""
        from dehrnet_cli.export.calibration import calibration_crops
        from dehrnet_cli.export.onnx import export_onnx
        from dehrnet_cli.export.quantize import quantize_onnx
        from models import create_model, get_config

        key = (model_name, precision, sampler)
        if key not in self._onnx:
            path = self.workdir / f"{model_name}_{precision}_{sampler}.onnx"
            if precision == "int8":
                fp32 = self.onnx_file(model_name, "fp32", net)
                begin = time.perf_counter()
                quantize_onnx(fp32, path, calibration_crops(None, get_config(model_name), CALIB_CROPS, self.s.seed))
                self.log(f"quantized {path.name} ({CALIB_CROPS} calibration crops) in "
                         f"{time.perf_counter() - begin:.1f} s")
            else:
                begin = time.perf_counter()
                # not simplified: onnxslim changes how fast a session opens (not timed here), not the crops/s
                export_onnx(net if net is not None else create_model(model_name).eval(), path,
                            half=precision == "fp16", check=False, device=self.device if precision == "fp16" else "cpu",
                            slim=False, sampler=sampler)
                self.log(f"exported {path.name} in {time.perf_counter() - begin:.1f} s")
            self._onnx[key] = path
        return self._onnx[key]

    def backend(self, model_name: str, kind: str, precision: str, net: Any | None = None) -> Any:
        """A pose backend of `net` (random weights; None: a new one) with the bench's tuning flags."""
        from dehrnet_cli.pose.backends import OnnxBackend, TorchBackend
        from models import create_model

        if kind == "torch":
            backend = TorchBackend(net if net is not None else create_model(model_name).eval(), self.device,
                                   precision=precision)
            tune_torch(backend, self.s.compile)
            return backend
        if kind == "openvino":
            from dehrnet_cli.pose.openvino_backend import OpenVinoBackend

            return OpenVinoBackend(self.onnx_file(model_name, "fp32", net, sampler="grid_sample"), precision,
                                   self.s.torch_threads, cache=False)
        path = self.onnx_file(model_name, precision, net)
        backend = OnnxBackend(path, self.device)
        if self.s.ort_threads is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.s.ort_threads
            backend.session = ort.InferenceSession(str(path), options, providers=backend.providers)
        return backend

    def measure_poses(self, configs: list[tuple[str, str, str, int, bool]]) -> None:
        """The pose stage (normalise, forward, flip fuse) for every (model, backend, precision, batch,
        flip) in `configs`, on `batch` real crops of the first video, timed round-robin (`interleaved`)."""
        from dehrnet_cli.bench.model_cost import count_flops
        from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
        from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
        from models import create_model

        backends: dict[tuple[str, str, str], Any] = {}
        flops: dict[str, int] = {}
        runs: list[tuple[dict[str, Any], Callable[[], object], str | None]] = []
        size = self.s.sizes[0]
        for model_name, kind, precision, batch, flip in configs:
            key = (model_name, kind, precision)
            if key not in backends:
                net = create_model(model_name).eval()
                if model_name not in flops:
                    flops[model_name] = count_flops(net, net.config.input_size, batch=1)
                backends[key] = self.backend(model_name, kind, precision, net)
            estimator = TopDownEstimator(backends[key], TopDownSettings(flip=flip, batch=batch))
            centers, scales = center_scale_from_xyxy(self.boxes(size, self.max_people), estimator.config.input_size)
            one_frame = warp_crops(self.frames(size)[0].image, centers, scales, estimator.config.input_size)
            crops = np.ascontiguousarray(np.resize(one_frame, (batch, *one_frame.shape[1:])))
            device = estimator.backend.device
            config = {"model": model_name, "backend": kind, "precision": precision, "batch": batch, "flip": flip,
                      "device": device, **self._variant(kind)}
            runs.append((config, lambda e=estimator, c=crops: e.heatmaps(c),
                         self.device if device.startswith("cuda") else None))
        self.log(f"pose stage: {len(runs)} configurations, {self.s.repeats} rounds")
        timings = interleaved([fn for _, fn, _ in runs], self.s.warmup, self.s.repeats, [d for _, _, d in runs])
        for (config, _, _), (seconds, first) in zip(runs, timings):
            m = self._record("pose", config, config["batch"], config["batch"], seconds, first_call_s=first)
            peak = self.peak_fn(config["precision"])
            measured = None if self.cuda else self.matrix_rate(config["precision"])
            per_crop = flops[config["model"]]
            achieved = per_crop * m.crops_per_s.median * (2 if config["flip"] else 1)
            m.extra.update(flops_per_forward_crop=per_crop, achieved_flops_per_s=achieved,
                           peak_flops_per_s=None if peak is None else peak.flops_per_s,
                           peak_basis=None if peak is None else peak.basis,
                           fraction_of_peak=None if peak is None else achieved / peak.flops_per_s,
                           measured_flops_per_s=None if measured is None else measured.flops_per_s,
                           measured_basis=None if measured is None else measured.basis,
                           fraction_of_measured=None if measured is None else achieved / measured.flops_per_s)

    def matrix_rate(self, precision: str) -> PeakFlops | None:
        """This CPU's measured matrix rate in `precision` (bench.machine.measured_matrix_rate), probed once."""
        if precision not in self._matrix_rates:
            self._matrix_rates[precision] = measured_matrix_rate(precision)
        return self._matrix_rates[precision]

    def _variant(self, kind: str) -> dict[str, Any]:
        if kind == "torch":
            return {"compile": True} if self.s.compile else {}
        return {"ort_threads": self.s.ort_threads} if self.s.ort_threads is not None else {}

    def pose_configs(self) -> list[tuple[str, str, str, int, bool]]:
        """(model, backend, precision, batch, flip) to time, without duplicates. bf16 and int8 rows run on
        their own backend (REDUCED_BACKEND), next to the fp32 rows they are compared with."""
        s, first_prec = self.s, self.precisions()[0]
        core = [(m, s.backends[0], first_prec, s.pipeline_batch, False) for m in s.models]
        core += [(s.models[0], s.backends[0], first_prec, s.pipeline_batch, True)] if True in s.flips else []
        core += [(s.models[0], b, first_prec, s.pipeline_batch, False) for b in s.backends[1:]]
        if self.pipeline_precision() != first_prec:
            core.append((s.models[0], s.backends[0], self.pipeline_precision(), s.pipeline_batch, True in s.flips))
        core += [(s.models[0], kind, precision, s.pipeline_batch, False) for kind, precision in self.precision_paths()]
        sweep = itertools.product(s.models, s.backends, self.precisions(), s.batches, s.flips) if s.sweep else []
        sweep_reduced = [(m, REDUCED_BACKEND[p], p, batch, flip) for m, p, batch, flip
                         in itertools.product(s.models, self.reduced, s.batches, s.flips)] if s.sweep else []
        return list(dict.fromkeys([*core, *sweep, *sweep_reduced]))

    def precisions(self) -> list[str]:
        """The asked-for fp32 and fp16 this device runs (fp16 needs CUDA); bf16 and int8 are `reduced`."""
        return [p for p in self.s.precisions if p == "fp32" or (p == "fp16" and self.cuda)] or ["fp32"]

    def pipeline_precision(self) -> str:
        return "fp16" if self.cuda and "fp16" in self.s.precisions else self.precisions()[0]

    def precision_paths(self) -> list[tuple[str, str]]:
        """(backend, precision) of each asked bf16/int8 path, after the fp32 paths it is compared with."""
        fp32 = [(kind, "fp32") for p in self.reduced for kind in COMPARED_WITH[p]]
        return list(dict.fromkeys([*fp32, *((REDUCED_BACKEND[p], p) for p in self.reduced)]))

    def run(self) -> tuple[list[Measurement], dict[str, Any] | None]:
        """(every measurement, the memory check of the first pipeline configuration or None). The pipeline
        runs right after the pose stage, so that the two see the same machine load as far as possible."""
        s = self.s
        if s.gpu:
            return self.run_gpu()
        pipeline_sizes = s.sizes if s.sweep else s.sizes[:1]
        pipeline_people = s.people if s.sweep else s.people[:1]
        for size in s.sizes:
            self.measure_io(size)
            for people in s.people:
                self.measure_per_person(size, people, s.models[0], decode=size == s.sizes[0])
        self.measure_poses(self.pose_configs())
        rss = None
        if s.pipeline:
            for size, people in itertools.product(pipeline_sizes, pipeline_people):
                result = self.measure_pipeline(size, people)
                rss = rss or result
        if self.precision_pipelines:
            for kind, precision in self.precision_paths():
                self.measure_precision_pipeline(kind, precision)
        if s.pipeline and s.default_path:
            self.measure_default_path()
        for size in pipeline_sizes:
            if s.detector:
                self.measure_detector(size)
            if s.peer:
                self.measure_peer(size)
        return self.measurements, rss
