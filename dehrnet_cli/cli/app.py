"""The `dehrnet` command line: the typer app, its root options, and every command mounted on it.

Each command lives in its own module of this package, parses its options and makes one call into the
library below; nothing outside `dehrnet_cli.cli` imports typer or this package.
"""

from __future__ import annotations

import typer

from dehrnet_cli import __version__
from dehrnet_cli.cli.bench import bench_command
from dehrnet_cli.cli.command import add_commands
from dehrnet_cli.cli.eval import eval_command
from dehrnet_cli.cli.export import export_command
from dehrnet_cli.cli.guard import guard_command
from dehrnet_cli.cli.info import info_command
from dehrnet_cli.cli.predict import predict_command
from dehrnet_cli.cli.train import train_command
from dehrnet_cli.cli.weights import weights_app

app = typer.Typer(
    name="dehrnet",
    help="DE-HRNet top-down human pose estimation: predict, evaluate, train, export.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.add_typer(weights_app, name="weights")
add_commands(app, eval_command, train_command, bench_command, guard_command, info_command, export_command,
             predict_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dehrnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """DE-HRNet top-down human pose estimation."""


def main() -> None:
    app(prog_name="dehrnet")
