"""How library code reports to the person at the terminal: progress bars and one-line notes, on stderr.

Library code never imports the CLI (which owns stdout for results); it takes a `log` callback (default:
`note`) and builds its progress bars with `progress_bar`, so every bar of dehrnet behaves alike: drawn
on stderr, off when stderr is not a terminal or when the caller says so (--quiet).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, ProgressColumn

# stderr for progress, banners, notes and errors (the CLI prints its results on stdout)
stderr_console = Console(stderr=True, soft_wrap=True)


def note(line: str) -> None:
    """The default `log` callback: one plain line on stderr."""
    stderr_console.print(line, highlight=False)


def progress_bar(*columns: str | ProgressColumn, enabled: bool = True, transient: bool = False) -> Progress:
    """A rich progress bar with `columns` on stderr; disabled (drawing nothing) unless `enabled` and stderr is
    a terminal."""
    return Progress(*columns, console=stderr_console, transient=transient,
                    disable=not (enabled and stderr_console.is_terminal))
