"""The `dehrnet` command line: the typer app, its root options, and every command mounted on it.

Each command lives in its own module of this package, parses its options and makes one call into the
library below; nothing outside `dehrnet_cli.cli` imports typer or this package.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import typer

from dehrnet_cli import __version__, env
from dehrnet_cli.cli import interrupted, raise_terminated, resume_interrupts
from dehrnet_cli.cli.bench import bench_command
from dehrnet_cli.cli.command import FlagsWithoutTypes, add_commands, fail
from dehrnet_cli.cli.eval import eval_command
from dehrnet_cli.cli.export import export_command
from dehrnet_cli.cli.guard import guard_command
from dehrnet_cli.cli.info import info_command
from dehrnet_cli.cli.predict import predict_command
from dehrnet_cli.cli.train import train_command
from dehrnet_cli.cli.weights import weights_app


class _Root(FlagsWithoutTypes):
    """The `dehrnet` group: Ctrl-C acts from here on (`resume_interrupts`); one that lands before a command's own
    handling (its arguments being parsed) is the same one line and exit 130, not typer's silent exit."""

    def invoke(self, ctx: Any) -> Any:
        try:
            resume_interrupts()
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise interrupted(e) from None


app = typer.Typer(
    name="dehrnet",
    help="DE-HRNet top-down human pose estimation: predict, evaluate, train, export.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    cls=_Root,
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


def _given_value(param: object, argv: Sequence[str]) -> str | None:
    """What the user typed after option `param` in `argv` (`--batch abc` or `--batch=abc`), if anything."""
    names = getattr(param, "opts", [])
    for n, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in names:
            return value if equals else (argv[n + 1] if n + 1 < len(argv) else None)
    return None


def usage_error_line(error: typer.TyperException, argv: Sequence[str]) -> str:
    """click's usage error (unknown flag with its did-you-mean, missing argument, `--batch abc`) as the text of
    one `dehrnet: error:` line, naming the command, the flag and value, and where the help is."""
    ctx = getattr(error, "ctx", None)
    where = ctx.command_path if ctx is not None else "dehrnet"
    close = getattr(error, "possibilities", None)  # NoSuchOption: difflib's close matches, best first
    param = getattr(error, "param", None)
    value = _given_value(param, argv) if param is not None else None
    if close:
        message = f"no such option {error.option_name}; did you mean {' or '.join(close)}?"
    elif value is not None:  # a value of the wrong type or out of range
        reason = getattr(error, "message", str(error)).rstrip(".")
        message = f"{param.opts[-1]} {value!r}: {reason[:1].lower() + reason[1:]}"
    else:
        message = error.format_message().rstrip(".").replace(". Did you mean", "; did you mean")
        message = message[:1].lower() + message[1:]
    command = where.removeprefix("dehrnet").strip()
    return f"{command + ': ' if command else ''}{message} (see {where} --help)"


def main(argv: Sequence[str] | None = None) -> None:
    """The `dehrnet` console script: run the app on `argv` (default: sys.argv[1:]) and exit with its code.
    Usage errors print one line (exit 2) like every other error; SIGTERM is handled like Ctrl-C."""
    env.prefer_passive_openmp()  # before any command imports torch
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = typer.main.get_command(app).main(args=args, prog_name="dehrnet", standalone_mode=False)
    except typer.TyperException as e:  # click's usage errors (typer vendors click; these are its public base)
        if type(e).__name__ == "NoArgsIsHelpError":  # `dehrnet` alone: the help was printed
            raise SystemExit(0) from None
        raise SystemExit(fail(usage_error_line(e, args), getattr(e, "exit_code", 2)).exit_code) from None
    except typer.Abort as e:  # Ctrl-C or SIGTERM outside a command (click wraps the KeyboardInterrupt)
        raise interrupted(e.__cause__ or e.__context__) from None
    sys.exit(code if isinstance(code, int) else 0)
