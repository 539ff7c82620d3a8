"""`dehrnet info`: parameters, FLOPs, sizes and keypoints of a named model or a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dehrnet_cli.cli.command import command, console
from dehrnet_cli.cli.options import (
    parse_size,
)
from dehrnet_cli.errors import DehrnetError


def _model_from(target: str, input_size: str | None):
    """A named model on the meta device (shapes only: enough to count), or the network of a checkpoint file."""
    from dehrnet_cli.bench.model_cost import shape_only_model
    from models import list_models, load_model

    if target in list_models():
        return shape_only_model(target, input_size=parse_size(input_size))
    path = Path(target)
    if not path.exists():
        raise DehrnetError(f"{target}: neither a named model (dehrnet info --all lists them) nor an existing file")
    size = parse_size(input_size)
    return load_model(path, **({"input_size": size} if size else {}))


@command("info")
def info_command(
    target: str = typer.Argument(None, help="A named model (e.g. dehrnet_w32_384x288) or a checkpoint file."),
    all_models: bool = typer.Option(False, "--all", help="A table of every named model."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the --all table as Markdown (docs/models.md)."),
    input_size: str = typer.Option(None, "--input-size", help="HxW for official files of another size, e.g. 256x192."),
) -> None:
    """Parameters, FLOPs, input/heatmap size and keypoints of a model or checkpoint.

    FLOPs come from torch's FlopCounterMode (convolution and linear multiply-adds, counted on the meta device
    without a real forward): "GFLOPs (2 x MAC)" and "GMACs" are decimal billions; "paper GFLOPs" is
    multiply-adds / 2^30, the number the HRNet paper and the official get_model_summary call "GFLOPs"
    (HRNet-W32 384x288: 16.0 paper GFLOPs = 17.20 GMACs, 28.5 M params).

    Examples:
      dehrnet info dehrnet_w32_384x288
      dehrnet info pose_hrnet_w32_256x192.pth --input-size 256x192
      dehrnet info --all --markdown
    """
    from dehrnet_cli.bench.model_cost import shape_only_model, summarize
    from models import list_models

    if all_models:
        summaries = [summarize(shape_only_model(name)) for name in list_models()]
    elif target is None:
        raise DehrnetError("give a named model or a checkpoint file, or --all")
    else:
        summaries = [summarize(_model_from(target, input_size))]
    headers = ["model", "params (M)", "paper GFLOPs (MACs / 2^30)", "GMACs", "GFLOPs (2 x MAC)", "input HxW",
               "heatmap HxW", "keypoints", "upsample", "DEM stages"]
    rows = [[s.name, f"{s.params / 1e6:.3f}", f"{s.paper_gflops:.1f}", f"{s.gmacs:.2f}", f"{s.gflops:.2f}",
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
    console.print(table)
