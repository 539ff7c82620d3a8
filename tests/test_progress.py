"""progress.py: bars on a terminal, a plain line every few seconds when stderr is a log file or a pipe (issue 14:
a long run on one huge image showed nothing for minutes), nothing with --quiet."""

from __future__ import annotations

import time

from rich.progress import BarColumn, TextColumn

from dehrnet_cli import progress


def test_a_bar_on_a_non_terminal_prints_a_plain_line_every_few_seconds(monkeypatch, capsys) -> None:
    monkeypatch.setattr(progress, "PLAIN_LINE_SECONDS", 0.1)
    with progress.progress_bar(TextColumn("predict"), BarColumn()) as bar:  # capsys: stderr is not a terminal
        task = bar.add_task("predict", total=4)
        bar.update(task, advance=1)
        time.sleep(0.45)  # stuck in one long step: the lines keep coming from the timer thread
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("dehrnet: predict: 1/4 (25 %)") for line in lines), lines
    assert lines[0].endswith("0:00:00 elapsed")


def test_quiet_bars_print_nothing_and_finished_tasks_stay_quiet(monkeypatch, capsys) -> None:
    monkeypatch.setattr(progress, "PLAIN_LINE_SECONDS", 0.05)
    with progress.progress_bar(TextColumn("x"), enabled=False) as bar:
        bar.add_task("predict", total=2)
        time.sleep(0.2)
    with progress.progress_bar(TextColumn("x")) as bar:
        task = bar.add_task("download", total=2)
        bar.update(task, completed=2)
        time.sleep(0.2)
    assert capsys.readouterr().err == ""


def test_plain_line_without_a_total() -> None:
    bar = progress.PlainProgress()
    bar.add_task("camera", total=None)
    assert progress.plain_progress_line(bar.tasks[0]).startswith("camera: 0, ")
