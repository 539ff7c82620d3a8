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


def print_analysis(section: dict, quiet: bool) -> None:
    """--analyze: AP after each cumulative correction and the error counts, per area range; the files written."""
    areas = list(section["ap_steps"])
    steps = _table("AP (OKS .50:.95, 20 results per image) after each correction, cumulative (-: no person of "
                   "that size)", "step", *areas)
    names = list(next(iter(section["ap_steps"].values())))
    for n, step in enumerate(names):
        cells = []
        for area in areas:
            value, before = section["ap_steps"][area][step], section["ap_steps"][area][names[max(n - 1, 0)]]
            gain = f" (+{value - before:.3f})" if n > 0 and min(value, before) > -1 else ""
            cells.append(_fmt(value) + gain if value > -1 else "-")
        steps.add_row(step, *cells)
    console.print(steps)
    counts = _table("Labelled joints of results matched at OKS 0.1", "type", *areas)
    for label in next(iter(section["counts"].values())):
        counts.add_row(label, *[_share(section["counts"][area], label) for area in areas])
    console.print(counts)
    if not quiet:
        per_joint = section["counts_per_keypoint"]["all"]
        labels = list(next(iter(per_joint.values())))
        joints = _table("Per joint (area all)", "joint", *labels)
        for name, row in per_joint.items():
            joints.add_row(name, *[_share(row, label) for label in labels])
        console.print(joints)


def _share(counts: dict[str, int], label: str) -> str:
    total = sum(counts.values())
    return f"{counts[label]} ({100 * counts[label] / total:.1f}%)" if total else "0"


def print_compare(section: dict, quiet: bool) -> None:
    """--compare: A, B, B - A and its 95 % interval per metric; the verdict where the interval excludes 0."""
    table = _table(f"A = {section['a']}, B = {section['b']} ({section['images']} images, paired bootstrap, "
                   f"{section['resamples']} resamples, seed {section['seed']})", "metric", "A", "B", "B - A",
                   "95% interval", "verdict")
    for row in section["rows"]:
        if quiet and row["verdict"] is None:
            continue
        interval = "-" if row["ci95"] is None else f"[{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]"
        diff = "-" if row["diff"] is None else f"{row['diff']:+.4f}"
        table.add_row(row["metric"], _fmt(row["a"], 4), _fmt(row["b"], 4), diff, interval, row["verdict"] or "")
    console.print(table)
