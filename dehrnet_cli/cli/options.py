"""Option parsing shared by the CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dehrnet_cli.errors import DehrnetError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'384x288' (h x w, as model names write it) -> (w, h)."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DehrnetError(f"--input-size {text!r}: expected HxW, e.g. 256x192") from None
    return w, h

# The pose-model flags that predict and eval share (declared once, used as type annotations).
WeightsOpt = Annotated[Path, typer.Option("--weights", "-w",
                                          help="Checkpoint: dehrnet, official HRNet, mmpose, .onnx.")]

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry weights name (dehrnet weights list), or an "
                                       "architecture name with --untrained.")]

UntrainedOpt = Annotated[bool, typer.Option("--untrained", help="Random weights (timing, smoke tests): results are "
                                            "meaningless.")]

InputSizeOpt = Annotated[str, typer.Option("--input-size", help="HxW for official files of another size, "
                                           "e.g. 256x192.")]

BackendOpt = Annotated[str, typer.Option("--backend", help="torch or onnx (onnxruntime).")]

DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]

HalfOpt = Annotated[bool, typer.Option("--half", help="fp16 on CUDA (= --precision fp16).")]

PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (fp16 on CUDA, bf16 on CPUs with native bf16, "
                                           "else fp32), fp32, bf16, fp16 or int8 (ONNX Runtime, quantized once).")]

CalibOpt = Annotated[Path, typer.Option("--calib", help="Folder of images to calibrate int8 on (default: the sample "
                                        "images bundled with ultralytics).")]

BatchOpt = Annotated[int, typer.Option("--batch", help="Crops per forward pass (x2 with the flip test).")]

FlipOpt = Annotated[bool, typer.Option("--flip/--no-flip", help="Flip test (official protocol: on).")]

DecoderOpt = Annotated[str, typer.Option("--decoder", help="msra (official argmax + quarter offset) or dark.")]

CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the pose network at fixed batch sizes (CUDA "
                                          "graphs on CUDA); each new size compiles first, for a minute or more.")]
