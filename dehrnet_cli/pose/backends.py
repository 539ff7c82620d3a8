"""Inference backends behind one small interface: `backend(batch) -> heatmaps`.

Both take normalised crops (N, 3, h, w) float32 (from `normalize_crops`, the one preprocessing for
training and inference) and return heatmaps (N, K, h/4, w/4) float32 as numpy arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from dehrnet_cli.env import usable_cores
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.device import normalize_device, resolve_device
from dehrnet_cli.progress import warn
from models import PoseHRNet, PoseNetConfig

if TYPE_CHECKING:
    import torch

BACKENDS = ("torch", "onnx", "openvino")  # the engines (pose.openvino_backend runs the third)


def normalize_crops(crops_bgr: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(N, h, w, 3) uint8 BGR crops -> (N, 3, h, w) float32 RGB, /255, ImageNet-normalised, as the
    official ToTensor + Normalize (float32 arithmetic throughout)."""
    rgb = crops_bgr[..., ::-1].astype(np.float32) / np.float32(255.0)
    normalised = (rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))


def set_cpu_threads(threads: int) -> int:
    """Run torch, OpenCV and the onnxruntime sessions opened from now on with `threads` threads each; returns
    it. Process-wide: torch and OpenCV have one setting per process. More threads than usable cores are set
    as asked, with a warning: each waits for a core, and a run got many times slower (docs/reliability.md)."""
    import cv2
    import torch

    from dehrnet_cli.pose.onnx_session import set_ort_threads

    if threads < 1:
        raise DehrnetError(f"--threads {threads}: give 1 or more")
    cores = usable_cores()
    if threads > cores:
        warn(f"--threads {threads}: more threads than the {cores} core(s) this process may use; they take turns and "
             f"the run slows down many times over: give --threads {cores} or fewer")
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    set_ort_threads(threads)
    return threads


def static_batch(num: int) -> int:
    """The fixed forward size a compiled network runs `num` crops at: the next power of two, so that a few
    shapes (1, 2, 4, ... 64 for batch 32 with the flip test) cover every batch and nothing recompiles."""
    return 1 << max(0, num - 1).bit_length()


class Backend(Protocol):
    name: str
    config: PoseNetConfig
    device: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """PyTorch eager in fp32, fp16 (CUDA) or bf16 (weights and activations; heatmaps come back fp32).

    Weights and input are channels_last by default: on CPU, fp32 DE-HRNet-W32 ran 8 % faster per crop at
    batch 4 and 26 % at batch 8 (the flip test's 2N) than NCHW (2 cores, docs/benchmarks.md); cuDNN and
    oneDNN's bf16 kernels want it too. The model is converted in place: `channels_last=False` leaves the
    memory format alone (training validates its live model without changing how it trains)."""

    name = "torch"
    _DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

    def __init__(self, model: PoseHRNet, device: str = "auto", precision: str = "fp32",
                 channels_last: bool = True) -> None:
        import torch

        self.device = resolve_device(device)
        if precision not in self._DTYPES:
            raise DehrnetError(f"--precision {precision}: the torch backend runs fp32, bf16 or fp16 "
                               "(int8 runs through --backend onnx)")
        if precision == "fp16" and not self.device.startswith("cuda"):
            raise DehrnetError("--precision fp16 needs a CUDA device (use --device cuda, or bf16/fp32 on CPU)")
        self.config = model.config
        self.precision = precision
        self.dtype = getattr(torch, self._DTYPES[precision])
        self.channels_last = channels_last
        self.model = model.eval().to(self.device, self.dtype)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._torch = torch
        self.compiled = self._cuda_graphs = False

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.forward(self._torch.from_numpy(batch)).cpu().numpy()

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Normalised crops (N, 3, h, w), any float dtype and device -> heatmaps (N, K, h/4, w/4) float32 on
        this backend's device. Compiled, each forward runs at a fixed size (`static_batch`), zero-padded."""
        torch = self._torch
        with torch.inference_mode():
            x = batch.to(self.device, self.dtype, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            num = len(x)
            size = static_batch(num) if self.compiled else num
            if size != num:
                x = torch.cat([x, x.new_zeros((size - num, *x.shape[1:]))])
            if self._cuda_graphs:  # the graph's output memory is reused by the next replay: copy it out
                torch.compiler.cudagraph_mark_step_begin()
                return self.model(x)[:num].to(torch.float32, copy=True)
            return self.model(x)[:num].float()

    def compile(self) -> None:
        """torch.compile the network for fixed-size batches (`static_batch`), with CUDA graphs on CUDA
        (mode "reduce-overhead"); the first forward of each size compiles (slow), later ones replay."""
        self.model = self._torch.compile(self.model, dynamic=False,
                                         mode="reduce-overhead" if self.device.startswith("cuda") else None)
        self.compiled = True
        self._cuda_graphs = self.device.startswith("cuda")


class OnnxBackend:
    """ONNX Runtime: CUDA provider when asked for and present, else CPU. `providers` says what runs; `untrained`
    whether the file says it was exported from random weights."""

    name = "onnx"

    def __init__(self, path: Path, device: str = "auto") -> None:
        from dehrnet_cli.pose.onnx_session import (
            INPUT_NAME,
            ort_session,
            read_onnx_config,
            read_onnx_precision,
            read_onnx_untrained,
        )

        device = normalize_device(device)
        want_cuda = device == "auto" or device.startswith("cuda")
        self.session = ort_session(Path(path), "cuda" if want_cuda else "cpu")
        self.providers = self.session.get_providers()
        self.device = "cuda" if self.providers[0] in ("TensorrtExecutionProvider", "CUDAExecutionProvider") else "cpu"
        if device.startswith("cuda") and self.device != "cuda":
            raise DehrnetError(f"--device {device}: onnxruntime has no working CUDA provider here; use --device cpu")
        self.config = PoseNetConfig.from_dict(read_onnx_config(path, self.session))
        self.precision = read_onnx_precision(self.session)
        self.untrained = read_onnx_untrained(self.session)  # exported from random weights
        self._input = INPUT_NAME

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]
