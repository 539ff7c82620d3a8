"""One `dehrnet bench` run: measure everything the settings ask for, then the target ratios, into a
`BenchReport` with the machine, command and date.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dehrnet_cli.bench.machine import machine_summary
from dehrnet_cli.bench.results import Measurement, Ratio, compute_ratios
from dehrnet_cli.bench.settings import BenchSettings, Log, check_settings
from dehrnet_cli.bench.stages import Bench
from dehrnet_cli.bench.timing import torch_threads_kept


@dataclass
class BenchReport:
    """Everything one run measured, with what it ran on and how it was started."""

    machine: dict[str, Any]
    command: str
    date: str
    settings: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    rss: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "command": self.command, "date": self.date, "settings": self.settings,
                "wall_s": self.wall_s, "measurements": [m.to_dict() for m in self.measurements],
                "ratios": [r.to_dict() for r in self.ratios], "rss": self.rss, "notes": self.notes}


def run_bench(settings: BenchSettings, command: str | None = None, log: Log = lambda _: None) -> BenchReport:
    """Measure everything `settings` asks for on this machine and compute the target ratios."""
    check_settings(settings)
    begin = time.perf_counter()
    import torch

    with tempfile.TemporaryDirectory(prefix="dehrnet-bench-") as tmp, torch_threads_kept():
        if settings.torch_threads is not None:
            torch.set_num_threads(settings.torch_threads)
        bench = Bench(settings, Path(tmp), log)
        measurements, rss = bench.run()
        machine = machine_summary(bench.device)
    settings_dict = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
    report = BenchReport(machine, command or shlex.join(["dehrnet", *sys.argv[1:]]),
                         datetime.now(timezone.utc).isoformat(timespec="seconds"), settings_dict, measurements,
                         compute_ratios(measurements, rss, bench.device), rss, bench.notes)
    report.wall_s = time.perf_counter() - begin
    return report
