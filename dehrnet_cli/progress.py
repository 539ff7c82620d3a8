"""How library code reports to the person at the terminal: progress bars and one-line notes, on stderr.

Library code never imports the CLI (which owns stdout for results); it takes a `log` callback (default:
`note`) and builds its progress bars with `progress_bar`, so every bar of dehrnet behaves alike: drawn
on stderr when it is a terminal; when it is not (a log file, a CI job, `2> run.log`), one plain-text line
every PLAIN_LINE_SECONDS instead, so that a long run shows it is alive; nothing when the caller says so
(--quiet).
"""

from __future__ import annotations

import sys
import threading
from datetime import timedelta

from rich.console import Console
from rich.progress import Progress, ProgressColumn, Task

# stderr for progress, banners, notes and errors (the CLI prints its results on stdout)
stderr_console = Console(stderr=True, soft_wrap=True)

PLAIN_LINE_SECONDS = 5.0  # how often a progress bar on a non-terminal stderr prints its plain line


def note(line: str) -> None:
    """The default `log` callback: one plain line on stderr."""
    stderr_console.print(line, highlight=False)


def warn(message: str) -> None:
    """A warning for the person at the terminal, the one way dehrnet prints them: `dehrnet: warning: MESSAGE`,
    one line on stderr (also with --quiet: a warning is not progress)."""
    print(f"dehrnet: warning: {message}", file=sys.stderr, flush=True)


def plain_progress_line(task: Task) -> str:
    """One task as plain text: `predict: 12/40 (30 %), 2.4/s, 0:00:05 elapsed` (what is known of it)."""
    done = f"{task.completed:g}" + (f"/{task.total:g} ({100 * task.completed / task.total:.0f} %)"
                                    if task.total else "")
    speed = f", {task.speed:.1f}/s" if task.speed else ""
    elapsed = timedelta(seconds=round(task.elapsed or 0.0))
    return f"{task.description}: {done}{speed}, {elapsed} elapsed"


class PlainProgress(Progress):
    """A rich Progress that draws nothing and instead prints `plain_progress_line` of each task on stderr every
    `interval` seconds from a timer thread, also while the caller is stuck in one long step (a huge image)."""

    def __init__(self, *columns: str | ProgressColumn, interval: float = PLAIN_LINE_SECONDS) -> None:
        super().__init__(*columns, console=stderr_console, disable=True)
        self.interval = interval
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self._stopped.clear()
        self._timer = threading.Thread(target=self._print_lines, name="dehrnet-progress", daemon=True)
        self._timer.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        super().stop()

    def _print_lines(self) -> None:
        while not self._stopped.wait(self.interval):
            for task in self.tasks:
                if not task.finished:
                    print(f"dehrnet: {plain_progress_line(task)}", file=sys.stderr, flush=True)


def progress_bar(*columns: str | ProgressColumn, enabled: bool = True, transient: bool = False) -> Progress:
    """A rich progress bar with `columns` on stderr when it is a terminal; a `PlainProgress` (a line every few
    seconds) when it is not; drawing nothing unless `enabled`."""
    if enabled and not stderr_console.is_terminal:
        return PlainProgress(*columns, interval=PLAIN_LINE_SECONDS)
    return Progress(*columns, console=stderr_console, transient=transient, disable=not enabled)


def job_progress_bar(title: str, *counters: str, enabled: bool = True) -> Progress:
    """The bar of a job over a known number of things (frames, items): a spinner, `title`, the bar, done / total,
    the `counters` (TextColumn templates over the task's fields), elapsed and remaining time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return progress_bar(SpinnerColumn(), TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(),
                        *(TextColumn(counter) for counter in counters), TimeElapsedColumn(), TimeRemainingColumn(),
                        enabled=enabled)
