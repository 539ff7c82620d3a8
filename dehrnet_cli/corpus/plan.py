"""Resume: which items a run processes and which it skips, decided on the driver before any work.

An item is skipped when its outputs are all there (written atomically, so complete), or when it failed
in an earlier run and its input has the same size since (a corrupt file stays corrupt; a second run of
a finished job does nothing). `--overwrite` redoes everything; deleting an item's output redoes exactly
that item; deleting the manifest retries the failed ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.corpus.layout import FolderListings, ItemOutputs, item_outputs
from dehrnet_cli.corpus.manifest import ERROR, SKIPPED, ManifestRow
from dehrnet_cli.errors import DehrnetError


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


def _key(path: Path | str) -> str:
    """A key equal for two spellings of one local path (absolute and normalised; links are not followed: a
    million items must not cost a million resolve() calls)."""
    return os.path.normcase(os.path.abspath(path))


def check_outputs(items: list[CorpusItem], plan: Plan, first_run: bool) -> None:
    """The corpus's run plan: refuse (one line naming both) two items whose outputs share a path (x.pgm and x.png
    both annotated as x.png), an output on a corpus item, and, in an OUT where no job ran yet (`first_run`: no
    manifest), an output that already exists: a file of the user's (a picture under an OUT inside the corpus),
    not one of ours. (Each finished item's manifest row is on disk at once, so a later run finds a manifest.)"""
    reads = {_key(item.location): item for item in items if not item.is_remote}
    written: dict[str, CorpusItem] = {}
    for item, outputs in zip(items, plan.outputs):
        for path in outputs.files:
            key = _key(path)
            if key in reads:
                raise DehrnetError(f"--out-dir: {path}, an output of {item.source}, is the corpus item "
                                   f"{reads[key].source}, which it would overwrite; give an --out-dir outside the "
                                   "corpus")
            if key in written:
                raise DehrnetError(f"--out-dir: {written[key].source} and {item.source} would both write {path}; "
                                   "rename one of them or run them separately")
            written[key] = item
    if not first_run:
        return
    listings = FolderListings()
    for index in plan.todo:
        for path in plan.outputs[index].files:
            if path.name in listings.names(path.parent):
                raise DehrnetError(f"--out-dir: {path} exists, and no dehrnet job ran in this folder before (it "
                                   f"has no manifest); the outputs of {items[index].source} would overwrite it: move "
                                   "that file away, or give another --out-dir")
