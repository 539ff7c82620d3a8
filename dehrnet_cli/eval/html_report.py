"""The files `eval --analyze` writes: its two PNG figures and one self-contained HTML page (the figures
embedded as base64, the tables of AP per step and error counts), all written atomically.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from dehrnet_cli.eval.figures import keypoint_errors_png, pr_curves_png
from dehrnet_cli.eval.keypoint_errors import LABELS
from dehrnet_cli.eval.layout import ANALYSIS_FILES
from dehrnet_cli.sinks.atomic import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from dehrnet_cli.eval.analyze import Analysis

PR_CURVES, KEYPOINT_ERRORS, PAGE = ANALYSIS_FILES

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
         "img{max-width:100%}caption{text-align:left;font-weight:bold;padding:4px 0}")


def _table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>"


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f} %)" if total else str(count)


def analysis_html(analysis: Analysis, images: dict[str, bytes]) -> str:
    """The page: parameters, AP per step and area (with the gain of each step), error counts per area and per
    joint, and the figures `images` {file name: PNG bytes} inline."""
    areas = list(analysis.ap_steps)
    steps = list(next(iter(analysis.ap_steps.values())))
    ap_rows = []
    for n, step in enumerate(steps):
        row = [step]
        for area in areas:
            value, before = analysis.ap_steps[area][step], analysis.ap_steps[area][steps[max(n - 1, 0)]]
            gain = f" (+{value - before:.3f})" if n > 0 and min(value, before) > -1 else ""
            row.append(f"{value:.3f}{gain}" if value > -1 else "-")
        ap_rows.append(row)
    totals = {area: sum(analysis.counts[area].values()) for area in areas}
    count_rows = [[label] + [_share(analysis.counts[area][label], totals[area]) for area in areas] for label in LABELS]
    joint_rows = [[name] + [_share(row[label], sum(row.values())) for label in LABELS]
                  for name, row in analysis.counts_per_keypoint["all"].items()]
    params = ", ".join(f"{k} {v}" for k, v in analysis.params.items() if k != "steps")
    figures = "".join(f'<p><img alt="{html.escape(name)}" src="data:image/png;base64,'
                      f'{base64.b64encode(data).decode("ascii")}"></p>' for name, data in images.items())
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>dehrnet eval --analyze</title>"
            f"<style>{STYLE}</style></head><body><h1>Keypoint error analysis</h1>"
            f"<p>Ronchi &amp; Perona (ICCV 2017) taxonomy; {html.escape(params)}.</p>{figures}"
            + _table("AP (OKS .50:.95) after each correction, cumulative", ["step", *areas], ap_rows)
            + _table("Labelled joints of matched results", ["type", *areas], count_rows)
            + _table("Per joint (area all)", ["joint", *LABELS], joint_rows)
            + "</body></html>")


def write_analysis_report(analysis: Analysis, folder: Path) -> list[Path]:
    """Write the two PNGs and the HTML page into `folder` (created); their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = {PR_CURVES: pr_curves_png(analysis), KEYPOINT_ERRORS: keypoint_errors_png(analysis)}
    paths = [write_bytes_atomic(folder / name, data) for name, data in images.items()]
    paths.append(write_text_atomic(folder / PAGE, analysis_html(analysis, images)))
    return paths
