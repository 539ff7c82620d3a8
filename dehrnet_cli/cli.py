"""The `dehrnet` command line: each command parses its options and makes one API call."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from . import __version__
from .cli_common import command, console, err_console
from .errors import DehrnetError

app = typer.Typer(
    name="dehrnet",
    help="DE-HRNet top-down human pose estimation: predict, evaluate, train, export.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dehrnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """DE-HRNet top-down human pose estimation."""


def _parse_size(text: str | None) -> tuple[int, int] | None:
    """'384x288' (h x w, as model names write it) -> (w, h)."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DehrnetError(f"--input-size {text!r}: expected HxW, e.g. 256x192") from None
    return w, h


def _model_from(target: str, input_size: str | None):
    from models import create_model, list_models, load_model

    if target in list_models():
        return create_model(target, input_size=_parse_size(input_size))
    path = Path(target)
    if not path.exists():
        raise DehrnetError(f"{target}: neither a named model (dehrnet info --all lists them) nor an existing file")
    size = _parse_size(input_size)
    return load_model(path, **({"input_size": size} if size else {}))


@command(app, "info")
def info_command(
    target: str = typer.Argument(None, help="A named model (e.g. dehrnet_w32_384x288) or a checkpoint file."),
    all_models: bool = typer.Option(False, "--all", help="A table of every named model."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the --all table as Markdown (docs/models.md)."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size, e.g. 256x192."),
) -> None:
    """Parameters, FLOPs, input/heatmap size and keypoints of a model or checkpoint.

    FLOPs come from torch's FlopCounterMode, which counts 2 per multiply-add; GMACs (= FLOPs / 2) is the
    number the HRNet paper calls "GFLOPs" (HRNet-W32 384x288: 16.0 GFLOPs, 28.5 M params).

    Examples:
      dehrnet info dehrnet_w32_384x288
      dehrnet info pose_hrnet_w32_256x192.pth --input-size 256x192
      dehrnet info --all --markdown
    """
    from models import create_model, list_models

    from .model_info import summarize

    if all_models:
        summaries = [summarize(create_model(name)) for name in list_models()]
    elif target is None:
        raise DehrnetError("give a named model or a checkpoint file, or --all")
    else:
        summaries = [summarize(_model_from(target, input_size))]
    headers = ["model", "params (M)", "GFLOPs (2xMAC)", "GMACs (paper 'GFLOPs')", "input HxW", "heatmap HxW",
               "keypoints", "upsample", "DEM stages"]
    rows = [[s.name, f"{s.params / 1e6:.3f}", f"{s.gflops:.2f}", f"{s.gmacs:.2f}",
             f"{s.input_size[1]}x{s.input_size[0]}", f"{s.heatmap_size[1]}x{s.heatmap_size[0]}",
             str(len(s.keypoints)), s.upsample, ",".join(map(str, s.dem_stages)) or "-"] for s in summaries]
    if markdown:
        console.print("| " + " | ".join(headers) + " |")
        console.print("|" + "---|" * len(headers))
        for row in rows:
            console.print("| " + " | ".join(row) + " |")
        return
    if len(summaries) == 1:
        table = Table(show_header=False)
        table.add_row("model", summaries[0].name)
        for header, value in zip(headers[1:], rows[0][1:]):
            table.add_row(header, value)
        table.add_row("keypoint names", ", ".join(summaries[0].keypoints))
        console.print(table)
        return
    table = Table(*headers, title="dehrnet models")
    for row in rows:
        table.add_row(*row)
    console.print(table, width=max(console.width, 150))


@command(app, "export")
def export_command(
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    model: str = typer.Option(None, "--model", help="A named model (random weights) or a registry weights name."),
    weights: Path = typer.Option(None, "--weights", help="A checkpoint file (dehrnet, official HRNet, mmpose)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 16: DySample uses GridSample)."),
    half: bool = typer.Option(False, "--half", help="fp16 inside (needs --device cuda); fp32 input and output."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda[:N] for tracing and the check."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare onnxruntime with torch after export."),
) -> None:
    """Export a pose model to ONNX (dynamic batch, config stored as metadata), then check it.

    Examples:
      dehrnet export --weights runs/exp1/best.pt --out dehrnet.onnx
      dehrnet export --model dehrnet_w32_384x288 --out untrained.onnx
    """
    from models import list_models

    from .export import export_onnx
    from .loading import load_pose_model

    untrained = weights is None and model in list_models()
    if untrained:
        err_console.print(f"[yellow]{model}: exporting random weights (an architecture name, no checkpoint)")
    net = load_pose_model(weights, model, untrained=untrained, input_size=_parse_size(input_size))
    report = export_onnx(net, out, opset=opset, half=half, check=check, device=device)
    precision = "fp16" if report.half else "fp32"
    console.print(f"wrote {report.path} (opset {report.opset}, {precision}, batch axis dynamic)")
    for batch, diff in report.max_abs_diff.items():
        console.print(f"onnxruntime ({', '.join(report.providers)}) vs torch, batch {batch}: max |diff| = {diff:.3g}")


def main() -> None:
    app(prog_name="dehrnet")


if __name__ == "__main__":
    main()
