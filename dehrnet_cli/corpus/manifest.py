"""The job's manifest, OUT/manifest.jsonl: one JSON line per item, read back by the next run.

While a run works, every finished item's row is appended to it at once, flushed and fsynced (`ManifestLog`), so a
run killed at any instant (SIGKILL, the OOM killer, a preempted node) leaves a manifest of every item it finished;
a later row of an item replaces an earlier one, and a last line cut short by the kill is ignored. At the end of a
run (also after Ctrl-C) the manifest is rewritten atomically as one row per item, in listing order.

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
from dehrnet_cli.sinks.atomic import atomic_path, write_error

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
    """The rows of earlier runs by item path (the last row of an item wins); {} when there is none."""
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
            if number == len(lines) and isinstance(e, json.JSONDecodeError):
                break  # the row a killed run was appending: that item is simply not finished
            raise DehrnetError(f"{path}: line {number} is not a manifest row ({e}); delete the file to start the "
                               "bookkeeping afresh (finished items are still skipped)") from None
        rows[row.path] = row
    return rows


def _line(row: ManifestRow) -> str:
    return json.dumps(asdict(row), ensure_ascii=False) + "\n"


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> Path:
    """Write `rows` as JSON Lines to `path` atomically (streamed: a million rows never sit in one string)."""
    with atomic_path(path, f"the manifest {path}") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(_line(row))
            f.flush()
            os.fsync(f.fileno())
    return path


class ManifestLog:
    """Appends finished items' rows to the manifest as they come, each on disk before `append` returns. The file
    is there from the start, so that a job killed before its first row still marks OUT as a dehrnet job's (its
    outputs are not taken for the user's files next time); one that created it and ends with no row removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created = not path.exists()
        self._appended = False
        self._file = self._open()

    def _open(self):
        try:
            file = open(self.path, "a", encoding="utf-8")
            if file.tell() and not _ends_with_newline(self.path):
                file.write("\n")  # after a line cut short by a kill: start a fresh one
        except OSError as e:
            raise write_error(f"the manifest {self.path}", e) from None
        return file

    def append(self, row: ManifestRow) -> None:
        self._appended = True
        try:
            self._file.write(_line(row))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            raise write_error(f"the manifest {self.path}", e) from None

    def close(self) -> None:
        self._file.close()
        if self._created and not self._appended:
            self.path.unlink(missing_ok=True)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
