"""The job's manifest, OUT/manifest.jsonl: one JSON line per item, in listing order, written atomically at
the end of every run that did any work (also after Ctrl-C), read back by the next run.

    path     the item as listed                      status   ok | error | skipped (this run)
    reason   error: one line; skipped: the earlier error when it failed before (else null)
    people   poses found (all frames)                frames   frames processed (1 for an image)
    seconds  wall time of the item                   worker   HOST:PID of the process that ran it
    bytes    the input's size (a failed item is retried when it changes)

A skipped row keeps the people, frames, seconds and worker of the run that did the item.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import atomic_path

MANIFEST_NAME = "manifest.jsonl"

OK, ERROR, SKIPPED = "ok", "error", "skipped"


@dataclass(frozen=True)
class ManifestRow:
    path: str
    status: str
    reason: str | None = None
    people: int | None = None
    frames: int | None = None
    seconds: float | None = None
    worker: str | None = None
    bytes: int | None = None

    @property
    def failed(self) -> bool:
        """The item has no outputs because it failed (in this run, or in the earlier run a skip carries)."""
        return self.reason is not None

    def skipped(self, size: int | None) -> ManifestRow:
        """This row as a later run that did not redo the item records it."""
        return replace(self, status=SKIPPED, bytes=size)


_FIELDS = [f.name for f in fields(ManifestRow)]


def read_manifest(path: Path) -> dict[str, ManifestRow]:
    """The rows of an earlier run by item path; {} when there is none."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{path}: cannot read the manifest ({e}); delete it to start the bookkeeping afresh "
                           "(finished items are still skipped: their outputs are there)") from None
    rows = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
            row = ManifestRow(**{name: values.get(name) for name in _FIELDS})
        except (json.JSONDecodeError, TypeError, AttributeError) as e:
            raise DehrnetError(f"{path}: line {number} is not a manifest row ({e}); delete the file to start the "
                               "bookkeeping afresh (finished items are still skipped)") from None
        rows[row.path] = row
    return rows


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> Path:
    """Write `rows` as JSON Lines to `path` atomically (streamed: a million rows never sit in one string)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return path
