"""Options shared by the CLI commands, declared once: the single options (as `Annotated` types) and the option
groups that become one spec (`model_options` -> ModelSpec, `runtime_options` -> RuntimeSpec), with their checks.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from dehrnet_cli.env import default_threads
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.precision.runtime import RuntimeSpec, precision_of
from dehrnet_cli.weights.model_choice import ModelSpec


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'384x288' (h x w, as model names write it) -> (w, h)."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DehrnetError(f"--input-size {text!r}: expected HxW, e.g. 256x192") from None
    return w, h


def in_range(low: float | None = None, high: float | None = None) -> Callable[[float | None], float | None]:
    """A typer callback refusing a number outside [low, high] (or NaN) as a usage error. Used instead of typer's
    min/max, which print `<float range> [0.0<=x<=1.0]` in the --help type column and squeeze the help text."""
    bounds = f"between {low:g} and {high:g}" if low is not None and high is not None else \
        f"at least {low:g}" if low is not None else f"at most {high:g}"

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        if math.isnan(value) or (low is not None and value < low) or (high is not None and value > high):
            raise typer.BadParameter(f"must be {bounds}")
        return value

    return check


# The pose-model flags that predict and eval share (declared once, used as type annotations).
WeightsOpt = Annotated[Path, typer.Option("--weights", "-w",
                                          help="Checkpoint: dehrnet, official HRNet, mmpose, .onnx. Default: the local "
                                          "DE-HRNet weights, else the HRNet-W32 384x288 COCO baseline (fetched once).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry weights name (dehrnet weights list), or an "
                                       "architecture name with --untrained.")]
UntrainedOpt = Annotated[bool, typer.Option("--untrained", help="Random weights (timing, smoke tests): results are "
                                            "meaningless.")]
InputSizeOpt = Annotated[str, typer.Option("--input-size", help="HxW for official files of another size, "
                                           "e.g. 256x192.")]
BackendOpt = Annotated[str, typer.Option("--backend", help="auto (CUDA: torch; CPU: OpenVINO for a long job, torch "
                                         "for a short one, whichever finishes sooner), torch, onnx or openvino.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or N (= cuda:N, as ultralytics).")]
HalfOpt = Annotated[bool, typer.Option("--half", help="fp16 on CUDA (= --precision fp16).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (fp16 on CUDA; bf16 on CPUs with native bf16 "
                                           "units; else fp32), fp32, bf16, fp16 or int8 (quantized once; OpenVINO "
                                           "or ONNX Runtime). A reduced precision first passes a check of its "
                                           "keypoints against fp32 on the model itself (seconds, cached).")]
CalibOpt = Annotated[Path, typer.Option("--calib", help="Folder of images to calibrate int8 on (default: the sample "
                                        "images bundled with ultralytics).")]
BatchOpt = Annotated[int, typer.Option("--batch", callback=in_range(1), help="Crops per forward pass (x2 with the "
                                       "flip test).")]
FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test (official protocol: on).")]
ThreadsOpt = Annotated[int, typer.Option("--threads", callback=in_range(1), help="CPU threads for torch, onnxruntime "
                                         "and OpenCV (default: $OMP_NUM_THREADS, else the cores this process may "
                                         "use).")]
DecoderOpt = Annotated[str, typer.Option("--decoder", help="msra (official argmax + quarter offset) or dark.")]
DetEngineOpt = Annotated[str, typer.Option("--det-engine", help="What runs YOLO: auto (OpenVINO when the pose "
                                           "network runs there, else torch), torch, or openvino (exported once "
                                           "beside the .pt).")]

CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the pose network at fixed batch sizes (CUDA "
                                          "graphs on CUDA); each new size compiles first, for a minute or more.")]


def _option_group(name: str, options: dict[str, tuple[Any, Any]], build: Callable[..., Any]) -> Callable:
    """A decorator adding the command options `options` (parameter -> (Annotated type, default)) to a command and
    handing it `name=build(**their values)` instead: the group is declared once, for every command using it."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)  # typer reads the annotations of a given __signature__ as is
        own = [p for p in signature.parameters.values() if p.name != name]
        added = [inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
                 for option, (annotation, default) in options.items()]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {option: kwargs.pop(option) for option in options}
            return fn(**kwargs, **{name: build(**values)})

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])
        return wrapper

    return decorate


def _model_spec(weights: Path | None, model: str | None, untrained: bool, input_size: str | None) -> ModelSpec:
    return ModelSpec(weights, model, untrained, parse_size(input_size))


def _runtime_spec(backend: str, device: str, half: bool, precision: str, calib: Path | None, threads: int | None,
                  compile_net: bool) -> RuntimeSpec:
    """--half folded into the precision; threads None when --threads is not given (`with_default_threads`)."""
    return RuntimeSpec(backend, device, precision_of(precision, half), threads, compile_net, calib)


def with_default_threads(runtime: RuntimeSpec) -> RuntimeSpec:
    """A command's runtime with --threads defaulting to $OMP_NUM_THREADS, else the cores this process may use."""
    return replace(runtime, threads=runtime.threads or default_threads())


model_options = _option_group("model_spec", {
    "weights": (WeightsOpt, None), "model": (ModelOpt, None), "untrained": (UntrainedOpt, False),
    "input_size": (InputSizeOpt, None)}, _model_spec)  # the command gets model_spec: ModelSpec

runtime_options = _option_group("runtime", {
    "backend": (BackendOpt, "auto"), "device": (DeviceOpt, "auto"), "half": (HalfOpt, False),
    "precision": (PrecisionOpt, "auto"), "calib": (CalibOpt, None), "threads": (ThreadsOpt, None),
    "compile_net": (CompileOpt, False)}, _runtime_spec)  # the command gets runtime: RuntimeSpec
