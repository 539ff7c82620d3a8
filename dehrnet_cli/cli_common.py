"""What every CLI command shares: one-line errors with the right exit code, and the consoles."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from .errors import DehrnetError

# stdout for results and tables; stderr for progress, banners and errors
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print `dehrnet: error: message` as one line on stderr; return the Exit to raise."""
    one_line = " ".join(str(message).split())
    print(f"dehrnet: error: {one_line}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def command(app: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable:
    """`app.command` that turns a DehrnetError into one line + its exit code (2 bad input, 1 internal),
    Ctrl-C into exit 130, and any other exception into one line + exit 1 (DEHRNET_DEBUG=1 shows the
    traceback)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except DehrnetError as e:
                raise fail(str(e), e.exit_code) from None
            except KeyboardInterrupt:
                raise fail("interrupted", 130) from None
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except Exception as e:  # an internal failure: say so in one line, exit 1
                if os.environ.get("DEHRNET_DEBUG"):
                    traceback.print_exc()
                raise fail(f"internal error: {type(e).__name__}: {e} (set DEHRNET_DEBUG=1 for the traceback)",
                           1) from None

        return app.command(name, **kwargs)(wrapper)

    return decorate


def note_printer(quiet: bool = False) -> Callable[[str], None]:
    """Where one-line notes (which precision runs, guard results) go: stderr, or nowhere with --quiet."""
    return (lambda line: None) if quiet else (lambda line: err_console.print(line, highlight=False))
