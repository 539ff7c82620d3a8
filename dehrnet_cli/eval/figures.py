"""The pictures of `eval --analyze`, as PNG bytes: the precision-recall curves after each correction, and the
share of each keypoint error type per joint and per size.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch), so it works
headless and leaves the caller's matplotlib state alone.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dehrnet_cli.eval.image_eval import RECALL_THRESHOLDS
from dehrnet_cli.eval.keypoint_errors import LABELS

if TYPE_CHECKING:
    from dehrnet_cli.eval.analyze import Analysis

STEP_COLORS = {"original": "#d9d9d9", "miss": "#fdd49e", "swap": "#fc8d59", "inversion": "#d7301f",
               "jitter": "#7f0000", "score": "#6baed6", "background_fp": "#9e9ac8", "false_negatives": "#74c476"}
LABEL_COLORS = {"good": "#e5f5e0", "jitter": "#7f0000", "inversion": "#d7301f", "swap": "#fc8d59",
                "miss": "#fdd49e"}
STEP_NAMES = {"original": "original", "miss": "+ miss", "swap": "+ swap", "inversion": "+ inversion",
              "jitter": "+ jitter", "score": "+ score", "background_fp": "+ bkg. FP", "false_negatives": "+ FN"}


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def pr_curves_png(analysis: Analysis) -> bytes:
    """One panel per area range: the precision-recall curve (precision averaged over OKS .50:.95) of the
    original results and after each cumulative correction, the band between two curves coloured by the
    correction that gained it; the legend gives each step's AP."""
    areas = list(analysis.curves)
    figure = Figure(figsize=(5.2 * len(areas), 6.0))
    for n, area in enumerate(areas):
        axes = figure.add_subplot(1, len(areas), n + 1)
        below = np.zeros(len(RECALL_THRESHOLDS))
        for step, curve in analysis.curves[area].items():
            curve = np.nan_to_num(curve)
            axes.fill_between(RECALL_THRESHOLDS, below, np.maximum(curve, below), color=STEP_COLORS[step],
                              label=f"{analysis.ap_steps[area][step]:.3f} {STEP_NAMES[step]}", linewidth=0)
            axes.plot(RECALL_THRESHOLDS, curve, color="black", linewidth=0.6)
            below = np.maximum(curve, below)
        axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", title=f"area {area}")
        if n == 0:
            axes.set_ylabel("precision (mean over OKS .50:.95)")
        axes.grid(alpha=0.3)
        handles, labels = axes.get_legend_handles_labels()
        axes.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8,
                    title="AP after each step", title_fontsize=8)
    figure.tight_layout()
    return _png(figure)


def _stacked_bars(axes, names: list[str], counts: dict[str, dict[str, int]], title: str) -> None:
    """Horizontal bars, one per name, split into the share of each error label (good last)."""
    order = [label for label in LABELS if label != "good"] + ["good"]
    totals = np.asarray([max(sum(counts[name].values()), 1) for name in names], np.float64)
    left = np.zeros(len(names))
    for label in order:
        share = np.asarray([counts[name][label] for name in names], np.float64) / totals
        axes.barh(names, share, left=left, color=LABEL_COLORS[label], label=label, edgecolor="white", linewidth=0.3)
        left += share
    axes.set(xlim=(0, 1), title=title, xlabel="share of the labelled joints of matched results")
    axes.invert_yaxis()


def keypoint_errors_png(analysis: Analysis) -> bytes:
    """Left: per joint (area all), the share of good / jitter / inversion / swap / miss; right: the same per
    area range."""
    figure = Figure(figsize=(11, 5.2))
    joints = figure.add_subplot(1, 2, 1)
    per_joint = analysis.counts_per_keypoint["all"]
    _stacked_bars(joints, list(per_joint), per_joint, "per joint (area all)")
    sizes = figure.add_subplot(1, 2, 2)
    _stacked_bars(sizes, list(analysis.counts), analysis.counts, "per area range")
    sizes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _png(figure)
