"""The command line (typer): `main` is the `dehrnet` console script; `app` the typer application."""

from dehrnet_cli.cli.app import app, main

__all__ = ["app", "main"]
