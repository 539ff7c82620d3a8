"""The GPU section of `dehrnet bench` (`--gpu`): the rows issue 19's targets name, timed with CUDA events.

- gpu_pose: the network alone on normalised crops already on the device, every model x precision x batch
  (default HRNet-W32 and DE-HRNet-W32 384x288, fp32 and fp16, batch 1, 8, 32, 64), no flip; with --compile
  also each model compiled (fixed batch, CUDA graphs) in the last precision at the largest batch (the
  pipeline runs eager: compiling every shape it meets would take the section's time).
- gpu_crop: upload + warp + normalise on the device of every frame's crops (the device path's `crops`),
  next to the CPU's cv2 `crop` row; gpu_decode: flip merge + decode on the device.
- pose: the device path's forward + flip merge + decode at the pipeline's batch, so that the pipeline's
  overlap ratio has its pose stage; and the pipeline itself (`run_predict`, flip on) at each size x people,
  where the top-down stage takes its device path on CUDA.
Mixed into `bench.stages.Bench`. Runs on the CPU too (the tests do, with a tiny model), slowly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dehrnet_cli.bench.settings import size_name
from dehrnet_cli.bench.timing import interleaved

FORWARD_CROPS_PER_CALL = 256  # a timed gpu_pose call runs this many crops (at least two forwards)

FRAMES_PER_CALL = 32  # frames per timed gpu_crop call


class GpuMeasurements:
    """The GPU section's rows of a Bench."""

    def run_gpu(self) -> tuple[list, dict[str, Any] | None]:
        """(every measurement, the memory check of the first pipeline or None) of the GPU section."""
        s = self.s
        for size in s.sizes:
            self.measure_io(size)
            for people in s.people:
                self.measure_per_person(size, people, s.models[0], decode=size == s.sizes[0])
                self.measure_device_crops(size, people)
        self.measure_networks()
        for people in s.people:
            self.measure_device_pose(people)
        checks = [self.measure_pipeline(size, people) for size in s.sizes for people in s.people] if s.pipeline else []
        return self.measurements, checks[0] if checks else None

    def _device_keypoints(self, model_name: str, precision: str, flip: bool, batch: int) -> Any:
        """The device path of `model_name` (random weights, eager) in `precision`."""
        from dehrnet_cli.pose.backends import TorchBackend
        from dehrnet_cli.pose.codec import HeatmapCodec
        from dehrnet_cli.pose.device_stage import DeviceKeypoints
        from models import create_model

        backend = TorchBackend(create_model(model_name).eval(), self.device, precision=precision)
        cfg = backend.config
        return DeviceKeypoints(backend, HeatmapCodec(cfg.input_size, cfg.heatmap_size, cfg.sigma),
                               cfg.keypoints.flip_index(), flip, batch)

    def _cuda(self) -> str | None:
        return self.device if self.cuda else None

    def measure_networks(self) -> None:
        """gpu_pose rows: forwards of device-resident crops, round-robin over every configuration."""
        from dehrnet_cli.bench.model_cost import count_flops, shape_only_model
        from dehrnet_cli.pose.backends import TorchBackend
        from models import create_model

        s = self.s
        runs: list[tuple[dict[str, Any], Callable[[], object], int]] = []
        compiled = [(m, s.precisions[-1], max(s.batches)) for m in s.models] if s.compile else []
        flops: dict[str, int] = {}
        for model_name in s.models:
            shapes = shape_only_model(model_name)  # counted on the meta device: no weights to build
            flops[model_name] = count_flops(shapes, shapes.config.input_size, batch=1)
            w, h = shapes.config.input_size
            for precision in self._network_precisions():
                backend = TorchBackend(create_model(model_name).eval(), self.device, precision=precision)
                for batch in s.batches:
                    runs.append(self._network_run(backend, model_name, precision, batch, False, (h, w)))
                if (model_name, precision, max(s.batches)) in compiled:
                    fast = TorchBackend(create_model(model_name).eval(), self.device, precision=precision)
                    fast.compile()
                    runs.append(self._network_run(fast, model_name, precision, max(s.batches), True, (h, w)))
        self.log(f"gpu_pose: {len(runs)} configurations, {s.repeats} rounds")
        timings = interleaved([fn for _, fn, _ in runs], s.warmup, s.repeats, [self._cuda()] * len(runs))
        for (config, _, crops), (seconds, first) in zip(runs, timings):
            m = self._record("gpu_pose", config, crops, crops, seconds, first_call_s=first)
            peak = self.peak_fn(config["precision"])
            achieved = flops[config["model"]] * m.crops_per_s.median
            m.extra.update(flops_per_forward_crop=flops[config["model"]], achieved_flops_per_s=achieved,
                           peak_flops_per_s=None if peak is None else peak.flops_per_s,
                           peak_basis=None if peak is None else peak.basis,
                           fraction_of_peak=None if peak is None else achieved / peak.flops_per_s)

    def _network_precisions(self) -> list[str]:
        return [p for p in self.s.precisions if p in ("fp32", "fp16", "bf16") and (p != "fp16" or self.cuda)]

    def _network_run(self, backend: Any, model_name: str, precision: str, batch: int, compiled: bool,
                     input_hw: tuple[int, int]) -> tuple[dict[str, Any], Callable[[], object], int]:
        import torch

        from dehrnet_cli.pose.gpu_crops import normalize_crops_torch

        generator = torch.Generator().manual_seed(self.s.seed)
        pixels = torch.randint(0, 256, (batch, 3, *input_hw), generator=generator).float().to(self.device)
        cfg = backend.config
        crops = normalize_crops_torch(pixels, cfg.mean, cfg.std, backend.dtype)
        calls = max(2, FORWARD_CROPS_PER_CALL // batch)

        def forward() -> None:
            for _ in range(calls):
                backend.forward(crops)

        config = {"model": model_name, "backend": "torch", "precision": precision, "batch": batch, "flip": False,
                  "device": self.device, **({"compile": True} if compiled else {})}
        return config, forward, calls * batch

    def measure_device_crops(self, size: tuple[int, int], people: int) -> None:
        """gpu_crop: FRAMES_PER_CALL frames' uploads, warps and normalisation on the device per timed call."""
        from dehrnet_cli.pose.geometry import center_scale_from_xyxy

        model = self.s.models[0]
        keypoints = self._device_keypoints(model, self.pipeline_precision(), False, self.s.pipeline_batch)
        images = [f.image for f in self.frames(size)][:FRAMES_PER_CALL]
        centers, scales = center_scale_from_xyxy(self.boxes(size, people), keypoints.config.input_size)

        def crops() -> None:
            keypoints.crops(images, [centers] * len(images), [scales] * len(images))

        self._time("gpu_crop", {"size": size_name(size), "people": people, "model": model}, crops, len(images),
                   len(images) * people, cuda_device=self._cuda())

    def measure_device_pose(self, people: int) -> None:
        """pose (device path) and gpu_decode rows at the pipeline's batch: crops already on the device."""
        import torch

        s = self.s
        model, precision, flip = s.models[0], self.pipeline_precision(), True in s.flips
        keypoints = self._device_keypoints(model, precision, flip, s.pipeline_batch)
        w, h = keypoints.config.input_size
        crops = torch.zeros((s.pipeline_batch, 3, h, w), dtype=keypoints.backend.dtype, device=self.device)
        crops.normal_(generator=torch.Generator(self.device).manual_seed(s.seed))
        config = {"model": model, "backend": "torch", "precision": precision, "batch": s.pipeline_batch,
                  "flip": flip, "device": self.device, "path": "device"}
        if people == s.people[0]:
            self._time("pose", config, lambda: keypoints.decode(crops), s.pipeline_batch, s.pipeline_batch,
                       cuda_device=self._cuda())
        self._measure_device_decode(keypoints, people, flip)

    def _measure_device_decode(self, keypoints: Any, people: int, flip: bool) -> None:
        import torch

        from dehrnet_cli.pose.flip import fuse_flip_test

        cfg = keypoints.config
        shape = (people * FRAMES_PER_CALL, cfg.keypoints.num_keypoints, cfg.heatmap_size[1], cfg.heatmap_size[0])
        generator = torch.Generator(self.device).manual_seed(self.s.seed)
        maps = torch.rand(shape, generator=generator, device=self.device)
        maps_of_flipped = torch.rand(shape, generator=generator, device=self.device)
        flip_index = cfg.keypoints.flip_index()

        def decode() -> None:
            fused = fuse_flip_test(maps, maps_of_flipped, flip_index) if flip else maps
            coords, maxvals = keypoints.codec.decode(fused)
            np.asarray(coords.cpu()), np.asarray(maxvals.cpu())

        self._time("gpu_decode", {"people": people, "flip": flip, "model": cfg.name}, decode, FRAMES_PER_CALL,
                   shape[0], cuda_device=self._cuda())
