"""The run folder: the files a run writes there (checked against what it reads before it starts), and its
human-readable ones: metrics.jsonl (one line per epoch) and curves.png."""

from __future__ import annotations

import json
from pathlib import Path

from dehrnet_cli.sinks.atomic import atomic_path, write_text_atomic
from dehrnet_cli.sinks.plan import RunPlan

RUN_FILES = ("last.pt", "best.pt", "config.json", "metrics.jsonl", "curves.png")


def check_run_folder(run_dir: Path, reads: dict[str, Path | None]) -> None:
    """Refuse a run whose folder files (RUN_FILES) would overwrite a file it reads (`reads`: flag -> path; a
    --resume checkpoint is the run's own last.pt and is not among them), before any work."""
    plan = RunPlan()
    for flag, path in reads.items():
        plan.read(flag, path)
    for name in RUN_FILES:
        plan.write(f"--out {run_dir}", Path(run_dir) / name, partial=False)
    plan.check()


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def write_curves(run_dir: Path, history: list[dict], metric: str) -> None:
    """curves.png: training loss, learning rate and the validation metric per epoch."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(13, 3.6))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    loss_ax, lr_ax, val_ax = fig.subplots(1, 3)
    loss_ax.plot(epochs, [r["loss"] for r in history], marker=".")
    loss_ax.set(title="training loss", xlabel="epoch", yscale="log")
    lr_ax.plot(epochs, [r["lr"] for r in history], marker=".")
    lr_ax.set(title="learning rate", xlabel="epoch", yscale="log")
    validated = [r for r in history if r.get("val")]
    val_ax.plot([r["epoch"] for r in validated], [r["val"][metric] for r in validated], marker="o")
    val_ax.set(title=f"validation {metric}", xlabel="epoch")
    for ax in (loss_ax, lr_ax, val_ax):
        ax.grid(alpha=0.3)
    with atomic_path(run_dir / "curves.png") as tmp:
        fig.savefig(tmp, dpi=90)
