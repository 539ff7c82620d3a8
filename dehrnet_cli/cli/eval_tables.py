"""The tables `dehrnet eval` prints: the ten COCOeval numbers, the per-keypoint breakdown, MPII PCKh and
the time per phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table

from dehrnet_cli.cli.command import console
from dehrnet_cli.progress import warn

if TYPE_CHECKING:
    from dehrnet_cli.eval.coco import CocoEvalResult


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(title: str, *headers: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for n, header in enumerate(headers):
        table.add_column(header, justify="left" if n == 0 else "right")
    return table


def print_coco(scored: CocoEvalResult, quiet: bool) -> None:
    """The ten COCOeval numbers; unless quiet, the per-keypoint table and the phase timings."""
    table = _table(f"COCO keypoints ({scored.num_images} images, {len(scored.results)} results)", *scored.stats)
    table.add_row(*[_fmt(v) for v in scored.stats.values()])
    console.print(table)
    if not quiet:
        joints = _table("Per keypoint (people matched by COCOeval at OKS 0.5)", "joint", "labelled",
                        "mean OKS term", "accuracy (term >= 0.5)")
        for name, row in scored.per_keypoint.items():
            counted = row["count"] > 0
            joints.add_row(name, str(row["count"]), _fmt(row["oks"] if counted else None),
                           _fmt(row["accuracy"] if counted else None))
        console.print(joints)
        print_timings(scored.timings)
    for warning in scored.warnings:
        warn(warning)


def print_mpii(scored: dict, quiet: bool) -> None:
    groups = list(scored["PCKh@0.5"])
    table = _table(f"MPII PCKh ({scored['num_people']} people)", "", *groups)
    for key in ("PCKh@0.5", "PCKh@0.1"):
        table.add_row(key, *[_fmt(scored[key][g], 2) for g in groups])
    console.print(table)
    official = _fmt(scored["Mean@0.1 (official)"], 2)
    console.print(f"official HRNet 'Mean@0.1' (its code reads threshold 0.11): {official}")
    if not quiet and "timings" in scored:
        print_timings(scored["timings"])


def print_timings(timings: dict[str, float]) -> None:
    if timings:
        table = _table("Time per phase", "phase", "seconds")
        for phase, seconds in timings.items():
            table.add_row(phase, f"{seconds:.2f}")
        console.print(table)
