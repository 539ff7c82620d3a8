"""`dehrnet export`: a pose model as ONNX (fp32, fp16 or int8), checked through ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console, err_console
from dehrnet_cli.cli.options import (
    parse_size,
)
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import note


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
    import tempfile

    from dehrnet_cli.weights.model_choice import choose_model
    from models import list_models

    if int8 and half:
        raise DehrnetError("--int8 and --half are two different precisions; choose one")
    if int8 and device != "cpu":
        raise DehrnetError("--int8 models are for ONNX Runtime's CPU provider; export them with --device cpu")
    if calib is not None and not int8:
        raise DehrnetError("--calib only matters with --int8")
    untrained = weights is None and model in list_models()
    choice = choose_model(weights, model, untrained)  # a bad name or file fails before torch loads
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.weights.pose_model import load_pose_model

    if untrained:
        err_console.print(f"[yellow]{model}: exporting random weights (an architecture name, no checkpoint)")
    net = load_pose_model(choice, parse_size(input_size), log=note)
    if not int8:
        report = export_onnx(net, out, opset=opset, half=half, check=check, device=device, sampler=sampler,
                             slim=slim, untrained=untrained)
        precision = "fp16" if report.half else "fp32"
        console.print(f"wrote {report.path} (opset {report.opset}, {precision}, batch axis dynamic)")
        for batch, diff in report.max_abs_diff.items():
            console.print(f"onnxruntime ({', '.join(report.providers)}) vs torch, batch {batch}: "
                          f"max |diff| = {diff:.3g}")
        return
    from dehrnet_cli.export.calibration import calibration_crops
    from dehrnet_cli.export.quantize import int8_agreement, quantize_onnx

    crops = calibration_crops(calib, net.config, count=calib_crops)  # bad --calib fails before the slow work
    with tempfile.TemporaryDirectory(prefix="dehrnet-export-") as work:
        fp32 = export_onnx(net, Path(work) / "fp32.onnx", opset=opset, check=False, sampler=sampler, slim=slim,
                           untrained=untrained).path
        err_console.print(f"quantizing on {len(crops)} calibration crops from {calib or 'the bundled sample images'}")
        quantize_onnx(fp32, out, crops)
        console.print(f"wrote {out} (opset {opset}, int8 QDQ, batch axis dynamic)")
        if check:
            held_out = calibration_crops(calib, net.config, count=16, seed=1)
            within = int8_agreement(fp32, out, held_out)
            console.print(f"int8 vs fp32 on 16 held-out crops: {100 * within:.1f} % of keypoints within 1 heatmap "
                          "pixel (the PCK guard runs on first use: dehrnet predict --precision int8)")
