"""`dehrnet guard`: run the accuracy guard of the reduced-precision paths on this machine, ahead of use."""

from __future__ import annotations

import typer
from rich.table import Table

from dehrnet_cli.cli.command import command, console, note_printer
from dehrnet_cli.errors import DehrnetError

GUARDED = ("bf16", "int8", "fp16")


@command("guard")
def guard_command(
    precisions: list[str] = typer.Option(None, "--precision", help="bf16, int8 and/or fp16 (repeatable); "
                                         "default: bf16 and int8, plus fp16 on CUDA."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (bf16 and fp16 paths)."),
    fresh: bool = typer.Option(False, "--fresh", help="Measure again even when a verdict is cached."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the table."),
) -> None:
    """Audit each reduced-precision path against fp32 on a model trained on synthetic people (trained once,
    about 12 minutes on a 2-core CPU): PCK@0.1 of each, a path losing more than 1 point fails. Jobs do not wait
    for it: each reduced precision of a checkpoint passes the quick precision check on that model first.

    Examples:
      dehrnet guard
      dehrnet guard --precision int8 --fresh
    """
    from dehrnet_cli.pose.backends import resolve_device
    from dehrnet_cli.precision.backend_factory import guard_report
    from dehrnet_cli.precision.guard import verdicts_path

    resolved = resolve_device(device)
    wanted = list(precisions or ("bf16", "int8", *(("fp16",) if resolved.startswith("cuda") else ())))
    for precision in wanted:
        if precision not in GUARDED:
            raise DehrnetError(f"--precision {precision!r}: the guarded paths are {', '.join(GUARDED)}")
    if "fp16" in wanted and not resolved.startswith("cuda"):
        raise DehrnetError("--precision fp16 needs a CUDA device")
    log = note_printer(quiet)
    table = Table("path", "PCK@0.1 fp32", "PCK@0.1", "loss (points)", "within 1 px", "verdict",
                  title=f"accuracy guard (fails above a 1.0 point loss; verdicts in {verdicts_path()})")
    for precision in wanted:
        report = guard_report(precision, "cpu" if precision == "int8" else resolved, log, fresh=fresh)
        table.add_row(report.path, f"{100 * report.pck_fp32:.1f}", f"{100 * report.pck:.1f}",
                      f"{report.loss_points:.2f}", f"{100 * report.within_1px:.1f} %",
                      "passed" if report.passed else "[bold red]refused[/]")
    console.print(table)
