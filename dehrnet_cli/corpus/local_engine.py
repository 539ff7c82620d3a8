"""The local engine: every item in this process, one after another, with one estimator."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from dehrnet_cli.corpus.item_job import ItemRunner
from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.manifest import ManifestRow
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.pose.backends import default_threads


def run_local(job: CorpusJob, todo: list[tuple[int, CorpusItem]], fresh_after: float | None,
              log: Callable[[str], None]) -> Iterator[tuple[int, ManifestRow]]:
    """(index, row) per item of `todo`, in order; the detector and pose model load once, first (a bad
    --weights fails before any item). Threads: --threads, else what `predict ITEM` uses (the same bytes out)."""
    options = {"threads": default_threads(), **job.estimator_options}
    runner = ItemRunner(job, PoseEstimator(**options, log=log), fresh_after)
    for index, item in todo:
        yield index, runner(item)
