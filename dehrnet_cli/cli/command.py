"""What every CLI command shares: the `command` decorator (one-line errors with the right exit code),
mounting commands on an app, and the consoles (results on stdout, notes and progress on stderr).
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup, TyperOption

from dehrnet_cli import env
from dehrnet_cli.cli import Terminated
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import note, stderr_console

# stdout for results and tables; stderr for progress, banners and errors. A pipe or a file has no width: rich
# would lay tables out in 80 columns and cut their cells, so there they get all the width they need
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 1000)
err_console = stderr_console


def fail(message: str, code: int) -> typer.Exit:
    """Print `dehrnet: error: message` as one line on stderr; return the Exit to raise."""
    one_line = " ".join(str(message).split())
    print(f"dehrnet: error: {one_line}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def command(name: str, **options: Any) -> Callable:
    """Mark a function as the CLI command `name` (typer `options` pass through to `app.command`) and wrap it:
    a DehrnetError becomes one line + its exit code (2 bad input, 1 internal), Ctrl-C exit 130 (SIGTERM 143), any
    other exception one line + exit 1 (DEHRNET_DEBUG=1 shows the traceback). `add_commands` mounts it."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except DehrnetError as e:
                raise fail(str(e), e.exit_code) from None
            except Terminated:
                raise fail("terminated (SIGTERM)", 143) from None
            except KeyboardInterrupt:
                raise fail("interrupted", 130) from None
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except Exception as e:  # an internal failure: say so in one line, exit 1
                if env.debug():
                    traceback.print_exc()
                raise fail(f"internal error: {type(e).__name__}: {e} (set DEHRNET_DEBUG=1 for the traceback)",
                           1) from None

        wrapper.command_name, wrapper.command_options = name, options
        return wrapper

    return decorate


def _blank_flag_types(params: list) -> list:
    """typer 0.29 prints `<bool>` in --help beside every on/off flag (noise: a flag takes no value); blank it."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
    return params


class CommandWithoutFlagTypes(TyperCommand):
    """A typer command whose --help shows no `<bool>` beside flags."""

    def get_params(self, ctx: Any) -> list:
        return _blank_flag_types(super().get_params(ctx))


class FlagsWithoutTypes(TyperGroup):
    """A typer group (an app: `typer.Typer(cls=FlagsWithoutTypes)`) whose --help shows no `<bool>` beside flags."""

    def get_params(self, ctx: Any) -> list:
        return _blank_flag_types(super().get_params(ctx))


def add_commands(app: typer.Typer, *commands: Callable) -> None:
    """Mount functions marked with `command` on `app` under their names."""
    for fn in commands:
        app.command(fn.command_name, **{"cls": CommandWithoutFlagTypes, **fn.command_options})(fn)


def note_printer(quiet: bool = False) -> Callable[[str], None]:
    """Where one-line notes (which precision runs, guard results) go: stderr, or nowhere with --quiet."""
    return (lambda line: None) if quiet else note
