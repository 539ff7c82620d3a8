"""A benchmark report as rich tables, as JSON and as a Markdown section of docs/benchmarks.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from dehrnet_cli.bench.results import PEER, PIPELINE, PIPELINE_BACKEND, PIPELINE_PRECISION, STAGES, Spread, find
from dehrnet_cli.bench.run import BenchReport
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import write_json_atomic, write_text_atomic

MARKDOWN_HEADER = """# Benchmarks

Measured with `dehrnet bench` (synthetic video with fixed person boxes, random weights: speed only).
Each section is one machine and mode, rewritten by `dehrnet bench --markdown docs/benchmarks.md`.
Numbers are medians over repetitions after warm-up, with the interquartile range (IQR) and min-max.
"""

_ORDER = {name: i for i, name in enumerate((*STAGES, PIPELINE, PIPELINE_BACKEND, PIPELINE_PRECISION, PEER))}


def describe(config: dict[str, Any]) -> str:
    """A short human reading of a configuration, e.g. '1280x720, 5 people, dehrnet_w32_384x288 torch fp32 b8 flip'."""
    words = []
    for key, value in config.items():
        if key == "people":
            words.append(f"{value} {'person' if value == 1 else 'people'},")
        elif key == "batch":
            words.append(f"b{value}")
        elif key == "flip":
            words.append("flip" if value else "no-flip")
        elif key == "size":
            words.append(f"{value},")
        elif key in ("frames_per_batch", "frames_per_call"):
            words.append(f"({value} frames/call)")
        elif key == "device" or value is False:
            continue
        elif value is True:
            words.append(key)
        else:
            words.append(f"{key}={value}" if key == "ort_threads" else str(value))
    return " ".join(words).rstrip(",")


def number(value: float) -> str:
    """A rate for a table: 3 significant digits, thousands separated ('7,100', '641', '12.3', '0.218')."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _rate(spread: Spread | None) -> str:
    return "-" if spread is None else number(spread.median)


def _iqr(spread: Spread | None) -> str:
    return "-" if spread is None else f"{number(spread.q1)}-{number(spread.q3)}"


def _range(spread: Spread | None) -> str:
    return "-" if spread is None else f"{number(spread.min)}-{number(spread.max)} (n={spread.n})"


def _flops(value: float | None, unit: str = "FLOP/s") -> str:
    """'75.3 GFLOP/s', '1.2 TFLOP/s' ('GOP/s' with unit "OP/s": int8 integer operations)."""
    if value is None:
        return "-"
    return f"{value / 1e12:.3g} T{unit}" if value >= 1e12 else f"{value / 1e9:.3g} G{unit}"


def stage_rows(report: BenchReport) -> list[list[str]]:
    """[stage, configuration, frames/s, crops/s, IQR and min-max of the main rate] per measurement, in
    pipeline order. The pose stage's main rate is crops/s (its frames/s depends on the people per frame)."""
    rows = []
    for m in sorted(report.measurements, key=lambda m: _ORDER.get(m.stage, 99)):
        crops = m.crops_per_s
        per_crop = m.stage in ("pose", "gpu_pose")
        main = crops if per_crop else m.fps
        rows.append([m.stage, describe(m.config), "-" if per_crop else _rate(m.fps), _rate(crops),
                     _iqr(main), _range(main)])
    return rows


def flops_rows(report: BenchReport) -> list[list[str]]:
    """[configuration, forward crops/s, GFLOP per forward crop, achieved, nominal peak, % of it, measured matrix
    rate, % of it] per pose row (int8 rows in integer ops/s: the same multiply-adds, counted 2 ops each). The
    nominal peak counts the base clock, so a boosting CPU can pass 100 % of it; the matrix rate is what one large
    product reaches on this CPU now (CPU fp32 and bf16 only)."""
    rows = []
    counted = [m for m in report.measurements if "flops_per_forward_crop" in m.extra]  # pose and gpu_pose rows
    for m in counted:
        extra, forwards = m.extra, m.crops_per_s.median * (2 if m.config["flip"] else 1)
        unit = "OP/s" if m.config["precision"] == "int8" else "FLOP/s"
        rows.append([describe(m.config), number(forwards), f"{extra['flops_per_forward_crop'] / 1e9:.1f}",
                     _flops(extra.get("achieved_flops_per_s"), unit),
                     _flops(extra.get("peak_flops_per_s"), unit), _percent(extra.get("fraction_of_peak")),
                     _flops(extra.get("measured_flops_per_s"), unit), _percent(extra.get("fraction_of_measured"))])
    return rows


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f} %"


def ratio_rows(report: BenchReport) -> list[list[str]]:
    """[ratio, value, target, met, what was compared] per target ratio."""
    rows = []
    for r in report.ratios:
        met = {True: "yes", False: "NO", None: "not measured"}[r.met]
        value = "-" if r.value is None else number(r.value)
        rows.append([r.label, value, f"{'>=' if r.higher_is_better else '<='} {r.target:g}", met, r.detail])
    return rows


def peer_rows(report: BenchReport) -> list[list[str]]:
    """[size, YOLO11n-pose frames/s, our pipeline frames/s, YOLO11n detector frames/s, ours incl. detector]."""
    rows = []
    for peer in (m for m in report.measurements if m.stage == PEER):
        size = peer.config["size"]
        pipe, det = find(report.measurements, PIPELINE, size=size), find(report.measurements, "detector", size=size)
        ours = None if pipe is None else pipe.fps.median
        with_det = None if ours is None or det is None else 1 / (1 / ours + 1 / det.fps.median)
        people = "" if pipe is None else f" ({pipe.config['people']} per frame)"
        rows.append([size, _rate(peer.fps), f"{_rate(pipe and pipe.fps)}{people}", _rate(det and det.fps),
                     "-" if with_det is None else number(with_det)])
    return rows


def machine_line(report: BenchReport) -> str:
    m = report.machine
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    device = m["gpu"] or f"{m['cpu']} ({m['cpu_cores']} cores, {m['torch_threads']} torch threads)"
    return f"{device}; {m['os']}; Python {m['python']}; {versions}"


_TABLES = (
    ("Stages alone and the whole pipeline", ["stage", "configuration", "frames/s", "crops/s", "IQR", "min-max"],
     stage_rows),
    ("Pose stage FLOP/s (FlopCounterMode FLOPs x forward crops/s)",
     ["configuration", "forward crops/s", "GFLOP/crop", "achieved", "nominal peak", "of peak", "matrix rate",
      "of matrix"], flops_rows),
    ("Targets (ratios from this run)", ["ratio", "value", "target", "met", "compared"], ratio_rows),
    ("Peer: one-stage YOLO11n-pose vs our top-down pipeline (frames/s)",
     ["video", "YOLO11n-pose", "ours (fixed boxes)", "YOLO11n detector", "ours + detector (est.)"], peer_rows),
)


def _footer(report: BenchReport) -> list[str]:
    lines = []
    bases = {m.extra.get("peak_basis") for m in report.measurements if m.stage in ("pose", "gpu_pose")} - {None}
    lines += [f"Peak FLOP/s: {basis}." for basis in sorted(bases)]
    measured = {m.extra.get("measured_basis") for m in report.measurements if m.stage == "pose"} - {None}
    lines += [f"Matrix rate: {basis}." for basis in sorted(measured)]
    if report.rss:
        lines.append(f"Peak RSS: {report.rss['peak_n_bytes'] / 2**20:.0f} MiB at {report.rss['frames_n']} frames, "
                     f"{report.rss['peak_2n_bytes'] / 2**20:.0f} MiB at {2 * report.rss['frames_n']} frames.")
    lines += [f"Note: {note}." for note in report.notes]
    return lines


def print_report(report: BenchReport, console: Console) -> None:
    """The report as rich tables on `console` (160 columns at least when it is not a terminal, so that
    a log file gets one line per row)."""
    if not console.is_terminal:
        console = Console(file=console.file, width=max(console.width, 160), no_color=True, highlight=False)
    console.print(f"[bold]dehrnet bench[/] on {machine_line(report)}")
    console.print(f"command: {report.command}   date: {report.date}   wall time: {report.wall_s:.0f} s")
    for title, headers, make_rows in _TABLES:
        rows = make_rows(report)
        if not rows:
            continue
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for n, header in enumerate(headers):
            table.add_column(header, justify="left" if n in (0, 1) or header == "compared" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for line in _footer(report):
        console.print(line)


def markdown_section(report: BenchReport) -> str:
    """The report as one Markdown section (a '## ' title, machine, command, date and the tables)."""
    lines = [f"## {section_title(report)}", "", f"- machine: {machine_line(report)}",
             f"- command: `{report.command}`", f"- date: {report.date} (wall time {report.wall_s:.0f} s)", ""]
    for title, headers, make_rows in _TABLES:
        rows = make_rows(report)
        if not rows:
            continue
        lines += [f"**{title}**", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
        lines.append("")
    lines += [f"- {line}" for line in _footer(report)]
    return "\n".join(lines).rstrip() + "\n"


def section_title(report: BenchReport) -> str:
    """What a section is keyed by: the device and the mode (a re-run on the same machine replaces it)."""
    m = report.machine
    device = m["gpu"] or f"{m['cpu']}, {m['cpu_cores']} cores"
    mode = "GPU section" if report.settings.get("gpu") else "full sweep" if report.settings.get("sweep") else \
        "ratios only"
    return f"{device} ({mode})"


def update_markdown(text: str, title: str, section: str) -> str:
    """`text` with the section whose '## ' line is `title` replaced by `section` (appended when absent)."""
    if not text.strip():
        text = MARKDOWN_HEADER
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    return text.rstrip() + "\n\n" + section


def write_markdown(report: BenchReport, path: Path) -> Path:
    """Write or update this machine's section of the Markdown file at `path`, atomically."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as e:
        raise DehrnetError(f"--markdown {path}: cannot read it ({e}); give a writable Markdown file") from None
    return write_text_atomic(path, update_markdown(text, section_title(report), markdown_section(report)))


def write_json(report: BenchReport, path: Path) -> Path:
    """Every number of the report as JSON at `path`, atomically."""
    return write_json_atomic(Path(path), report.to_dict(), indent=2)
