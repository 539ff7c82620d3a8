"""The `dehrnet` command line: each command parses its options and makes one API call."""

from __future__ import annotations

import typer

from . import __version__

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


def main() -> None:
    app(prog_name="dehrnet")


if __name__ == "__main__":
    main()
