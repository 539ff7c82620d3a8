"""The command line (typer): `main` is the `dehrnet` console script; `cli.app.app` the typer application.

Ctrl-C ends a run with one line and exit 130 at any moment. Until a command starts (the first half second:
typer, rich and the commands being imported, then the arguments parsed), an interrupt is only noted, and acted
on when the command would start (`resume_interrupts`): raised in the middle of an import, Python may print it as
"Exception ignored" and go on, and typer turns one during parsing into a silent exit 130.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

_noted: list[int] = []  # SIGINTs that arrived while they were only noted


def _note_interrupt(signum: int, frame: object) -> None:
    _noted.append(signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM (sent by `timeout`, schedulers, `docker stop`), raised in the main thread as a KeyboardInterrupt
    so that every cleanup written for Ctrl-C runs for it too; the command then exits 143 (128 + 15)."""


def raise_terminated(signum: int, frame: object) -> None:
    """The SIGTERM handler `main` installs."""
    raise Terminated()


def interrupted(error: BaseException | None = None) -> SystemExit:
    """Print the line of an interrupted run; return the exit to raise: 130 (128 + SIGINT), or 143 (128 + SIGTERM)
    when `error` is a Terminated."""
    if isinstance(error, Terminated):
        print("dehrnet: error: terminated (SIGTERM)", file=sys.stderr, flush=True)
        return SystemExit(143)
    print("dehrnet: error: interrupted", file=sys.stderr, flush=True)
    return SystemExit(130)


def resume_interrupts() -> None:
    """From now on Ctrl-C raises KeyboardInterrupt (the commands handle it), outside imports
    (env.raise_outside_imports); one noted before is raised now."""
    if signal.getsignal(signal.SIGINT) is _note_interrupt:
        from dehrnet_cli.env import raise_outside_imports

        signal.signal(signal.SIGINT, raise_outside_imports)
    if _noted:
        _noted.clear()
        raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    """Run `dehrnet` on `argv` (default: sys.argv[1:]) and exit with its code (`cli.app.main`)."""
    noting = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGINT) is signal.default_int_handler)  # not when ignored (nohup, &)
    if noting:
        signal.signal(signal.SIGINT, _note_interrupt)
    try:
        from dehrnet_cli.cli.app import main as run_app

        run_app(argv)
    except KeyboardInterrupt as e:  # one that got past the commands' own handling
        raise interrupted(e) from None
    finally:
        if noting and signal.getsignal(signal.SIGINT) is _note_interrupt:  # no command started (--help, errors)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if _noted:
                _noted.clear()
                raise interrupted()


__all__ = ["main"]
