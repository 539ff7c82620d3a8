"""`dehrnet export`: a pose model as ONNX (fp32, fp16 or int8), checked through ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console
from dehrnet_cli.cli.options import parse_size
from dehrnet_cli.progress import note
from dehrnet_cli.weights.model_choice import ModelSpec


@command("export")
def export_command(
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    model: str = typer.Option(None, "--model", help="A named model (random weights) or a registry weights name."),
    weights: Path = typer.Option(None, "--weights", help="A checkpoint file (dehrnet, official HRNet, mmpose)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 16 with --sampler grid_sample)."),
    half: bool = typer.Option(False, "--half", help="fp16 inside (needs --device cuda); fp32 input and output."),
    int8: bool = typer.Option(False, "--int8", help="Quantize to int8 (ONNX Runtime static quantization, QDQ) for "
                              "fast CPU inference."),
    calib: Path = typer.Option(None, "--calib", help="With --int8: a folder of images to calibrate on (default: the "
                               "sample images bundled with ultralytics; your own images calibrate better)."),
    calib_crops: int = typer.Option(256, "--calib-crops", help="With --int8: person crops to calibrate on."),
    sampler: str = typer.Option("gather", "--sampler", help="DySample sampling in the graph: gather (fast in ONNX "
                                "Runtime) or grid_sample (the GridSample op)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N] for tracing and the check."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare onnxruntime with torch after export."),
    slim: bool = typer.Option(True, "--slim/--no-slim", help="Simplify the graph with onnxslim (ONNX Runtime then "
                              "opens DE-HRNet about 5x faster; the simplification takes about 20 s)."),
) -> None:
    """Export a pose model to ONNX (dynamic batch, config stored as metadata), then check it.

    Examples:
      dehrnet export --weights runs/exp1/best.pt --out dehrnet.onnx
      dehrnet export --weights runs/exp1/best.pt --out dehrnet.int8.onnx --int8 --calib my_images/
      dehrnet export --model dehrnet_w32_384x288 --out untrained.onnx
    """
    from dehrnet_cli.export.run import ExportJob, export_model
    from models import list_models

    untrained = weights is None and model in list_models()
    job = ExportJob(out, ModelSpec(weights, model, untrained, parse_size(input_size)), opset, half, int8, calib,
                    calib_crops, sampler, device, check, slim)
    outcome = export_model(job, log=note)
    precision = "int8 QDQ" if outcome.precision == "int8" else outcome.precision
    console.print(f"wrote {outcome.path} (opset {outcome.opset}, {precision}, batch axis dynamic)")
    for batch, diff in outcome.max_abs_diff.items():
        console.print(f"onnxruntime ({', '.join(outcome.providers)}) vs torch, batch {batch}: max |diff| = {diff:.3g}")
    if outcome.int8_within is not None:
        console.print(f"int8 vs fp32 on 16 held-out crops: {100 * outcome.int8_within:.1f} % of keypoints within 1 "
                      "heatmap pixel (predict --precision int8 checks it on the model first)")
