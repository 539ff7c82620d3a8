"""What `dehrnet bench` measures: `BenchSettings` (full sweep or the --quick preset), their checks, and the
bench's torch flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from dehrnet_cli.errors import DehrnetError

DEFAULT_MODELS = ("dehrnet_w32_384x288", "hrnet_w32_384x288")

PRECISIONS = ("fp32", "fp16", "bf16", "int8")

DEFAULT_PRECISIONS = ("fp32", "fp16")  # fp16 runs on CUDA only

REDUCED_BACKEND = {"bf16": "openvino", "int8": "onnx"}  # the one backend each of these runs on (bf16: the default
# fast CPU path; torch bf16 is one --backend torch away)

COMPARED_WITH = {"bf16": ("torch", "onnx", "openvino"), "int8": ("onnx",)}  # fp32 backends its target ratios need

DEFAULT_PATH_PIPELINE = ((1280, 720), (1, 5))  # video size and people counts of the default-path rows (flip on)
PRECISION_PIPELINE = ((1280, 720), 3)  # video size and people of the per-precision pipeline runs (flip on)

CALIB_CROPS = 16  # int8 calibration crops: ranges good enough for timing, not for accuracy

Log = Callable[[str], None]


@dataclass(frozen=True)
class BenchSettings:
    """What to measure. `sweep` runs every model x backend x precision x batch x flip and the pipeline
    for every size x people; without it only what the target ratios need is run: each model at
    `pipeline_batch` without flip, the first model also with flip and on every backend, and the
    pipeline (and detector, peer) at the first size and people count. Asked bf16/int8 always add their
    pose row at `pipeline_batch` without flip (first model) and the fp32 rows they are compared with."""

    models: tuple[str, ...] = DEFAULT_MODELS
    backends: tuple[str, ...] = ("torch", "onnx", "openvino")
    precisions: tuple[str, ...] = DEFAULT_PRECISIONS  # fp16 on CUDA only, int8 on CPU only
    batches: tuple[int, ...] = (1, 8, 32, 64)  # crops per forward pass of the pose stage
    flips: tuple[bool, ...] = (False, True)
    people: tuple[int, ...] = (1, 5)
    sizes: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))  # video (w, h)
    sweep: bool = True
    pipeline_batch: int = 8  # crops per forward in the pipeline (and the pose rows the ratios compare)
    frames: int | None = None  # frames per stage repetition and pipeline run (None: 16 on CPU, 256 on CUDA,
    # where short runs would time thread start-up and the encoder flush); the memory check also runs 2x
    warmup: int = 1
    repeats: int = 5
    device: str = "auto"
    detector: bool = True
    peer: bool = True
    pipeline: bool = True
    precision_pipeline: bool = True  # with bf16/int8 asked (and `pipeline`): the PRECISION_PIPELINE runs
    default_path: bool = True  # with `pipeline`: DEFAULT_PATH_PIPELINE on torch, onnx, openvino and the default path
    seed: int = 0
    compile: bool = False  # torch.compile the pose net (torch backend)
    gpu: bool = False  # only the GPU section (bench.gpu): device-path rows, network rows, the pipeline
    ort_threads: int | None = None  # onnxruntime intra-op threads (None: its default)
    torch_threads: int | None = None  # torch intra-op threads (None: its default, the physical cores)


QUICK = BenchSettings(batches=(4,), pipeline_batch=4, frames=8, warmup=1, repeats=3, sweep=False)

# --gpu: issue 19's GPU targets; each value can still be overridden by its flag
GPU_SECTION = BenchSettings(backends=("torch",), precisions=("fp32", "fp16"), flips=(True,), people=(1, 5),
                            sizes=((1920, 1080),), sweep=False, pipeline_batch=32, repeats=3, device="cuda",
                            detector=False, peer=False, gpu=True)


def check_settings(settings: BenchSettings) -> None:
    """Refuse settings that cannot run, in one line each."""
    from dehrnet_cli.pose.backends import BACKENDS
    from models import list_models

    for name in settings.models:
        if name not in list_models():
            raise DehrnetError(f"--model {name!r}: not a named architecture; use one of {', '.join(list_models())}")
    for kind in settings.backends:
        if kind not in BACKENDS:
            raise DehrnetError(f"--backend {kind!r}: use one of {', '.join(BACKENDS)}")
    for precision in settings.precisions:
        if precision not in PRECISIONS:
            raise DehrnetError(f"--precision {precision!r}: use fp32, fp16 (CUDA), bf16 or int8 (CPU)")
    for name, values in (("--batch", settings.batches), ("--people", settings.people),
                         ("--frames", (1 if settings.frames is None else settings.frames,)),
                         ("--repeats", (settings.repeats,)),
                         ("--pipeline-batch", (settings.pipeline_batch,))):
        if not values or min(values) < 1:
            raise DehrnetError(f"{name} {', '.join(map(str, values)) or '(none)'}: give whole numbers >= 1")
    for name, threads in (("--ort-threads", settings.ort_threads), ("--threads", settings.torch_threads)):
        if threads is not None and threads < 1:
            raise DehrnetError(f"{name} {threads}: give 1 or more")
    if settings.warmup < 0:
        raise DehrnetError(f"--warmup {settings.warmup}: give 0 or more")
    if not settings.sizes or min(min(size) for size in settings.sizes) < 16:
        raise DehrnetError("--size: give video sizes of at least 16x16 pixels, e.g. 1280x720")


def make_settings(quick: bool = False, gpu: bool = False, **overrides: Any) -> BenchSettings:
    """The full (default), `--quick` or `--gpu` preset with `overrides` applied (None values ignored)."""
    if quick and gpu:
        raise DehrnetError("--quick and --gpu are two presets: give one (and narrow the other with its flags)")
    preset = QUICK if quick else GPU_SECTION if gpu else BenchSettings()
    return replace(preset, **{k: v for k, v in overrides.items() if v is not None})


def size_name(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def tune_torch(backend: Any, compile_net: bool) -> None:
    """Apply the bench's torch flags to a TorchBackend in place: torch.compile at fixed batch sizes."""
    if compile_net:
        backend.compile()
