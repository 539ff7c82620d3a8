"""Resume: which items a run processes and which it skips, decided on the driver before any work.

An item is skipped when its outputs are all there (written atomically, so complete), or when it failed
in an earlier run and its input has the same size since (a corrupt file stays corrupt; a second run of
a finished job does nothing). `--overwrite` redoes everything; deleting an item's output redoes exactly
that item; deleting the manifest retries the failed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.corpus.layout import FolderListings, ItemOutputs, item_outputs
from dehrnet_cli.corpus.manifest import ERROR, SKIPPED, ManifestRow


@dataclass
class Plan:
    """todo: indices of the items to process; settled: the rows of the others, by index (skipped, or an
    error for an item that cannot be processed at all); outputs: every item's output paths, by index."""

    todo: list[int] = field(default_factory=list)
    settled: dict[int, ManifestRow] = field(default_factory=dict)
    outputs: list[ItemOutputs] = field(default_factory=list)
    done_before: int = 0
    failed_before: int = 0


def plan_corpus(items: list[CorpusItem], previous: dict[str, ManifestRow], out_dir: Path, save_media: bool,
                overwrite: bool) -> Plan:
    """Split `items` into work and skips, given the earlier run's manifest rows (`previous`)."""
    plan = Plan(outputs=[item_outputs(item, out_dir, save_media) for item in items])
    listings = FolderListings()
    for index, item in enumerate(items):
        before = previous.get(item.source)
        failed_before = before is not None and before.failed and before.bytes == item.size
        if not overwrite and item.problem is None and listings.has_all(plan.outputs[index]):
            plan.done_before += 1
            row = replace(before, reason=None) if before is not None else ManifestRow(item.source, SKIPPED)
            plan.settled[index] = row.skipped(item.size)
        elif not overwrite and failed_before:
            plan.failed_before += 1
            plan.settled[index] = before.skipped(item.size)
        elif item.problem is not None:
            plan.settled[index] = ManifestRow(item.source, ERROR, item.problem, bytes=item.size)
        else:
            plan.todo.append(index)
    return plan
