"""The local engine: every item in this process, one after another, with one estimator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from dehrnet_cli.corpus.item_job import ItemRunner
from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.manifest import ManifestRow
from dehrnet_cli.env import default_threads, interrupts_deferred
from dehrnet_cli.estimator import PoseEstimator


def run_local(job: CorpusJob, todo: list[tuple[int, CorpusItem]], fresh_after: float | None,
              log: Callable[[str], None]) -> Iterator[tuple[int, ManifestRow]]:
    """(index, row) per item of `todo`, in order; the detector and pose model load once, first (a bad
    --weights fails before any item). Threads: --threads, else what `predict ITEM` uses (the same bytes out)."""
    runtime = replace(job.runtime, threads=job.runtime.threads or default_threads())
    with interrupts_deferred():  # native libraries load here
        estimator = PoseEstimator.from_specs(job.model, runtime, job.detector, job.pose, log).prepare()
    runner = ItemRunner(job, estimator, fresh_after)
    for index, item in todo:
        yield index, runner(item)
