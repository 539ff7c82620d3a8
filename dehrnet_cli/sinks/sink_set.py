"""The one sink protocol, and the set of sinks a run feeds from a writer thread.

A sink is planned once (its paths come from the run plan), gets `add(result)` for every frame in order, then
either `finish()` (publish every file atomically under its final name) or `abort(frames)` (keep valid
`NAME.partial.EXT` files holding exactly the first `frames` frames, nothing else, no temp files).

`SinkSet` runs a run's sinks on one writer thread behind a bounded queue, so that rendering and encoding
overlap the pose work and memory stays flat. A frame counts as done once every sink took it; when a run stops
(Ctrl-C, SIGTERM, a failure, a full disk), every sink keeps the same done frames, so the partial outputs agree.
Order the sinks so that those that cannot take a frame back (an encoded video) come last.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.result import PoseResult


class Sink(Protocol):
    def add(self, result: PoseResult) -> None: ...

    def finish(self) -> list[Path]: ...

    def abort(self, frames: int) -> list[Path]: ...


@dataclass
class SinkOutcome:
    """What the sinks left: `outputs` published under their names, `partial` kept as NAME.partial.EXT (or, for a
    folder of per-frame files, the folder), `frames` the frames every output holds."""

    outputs: list[Path] = field(default_factory=list)
    partial: list[Path] = field(default_factory=list)
    frames: int = 0


class SinkSet:
    """Feeds `sinks` (in order) from a writer thread; `add` passes on the writer's first error; `close`
    finishes or aborts them all. `log` receives a line for a partial output that could not be kept."""

    def __init__(self, sinks: list[Sink], log: Callable[[str], None], queue_size: int = 8) -> None:
        self.sinks, self.log = sinks, log
        self.frames_done = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="dehrnet-sinks", daemon=True)
        self._thread.start()

    def add(self, result: PoseResult) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(result)

    def _run(self) -> None:
        while (result := self._queue.get()) is not None:
            if self.error is not None:
                continue  # drain after a failure so that add() never blocks
            try:
                for sink in self.sinks:
                    sink.add(result)
                self.frames_done += 1
            except BaseException as e:  # handed to the main thread
                self.error = e

    def close(self, ok: bool) -> SinkOutcome:
        """Wait for the queued frames; then, if `ok` and nothing failed, publish every output, else keep each
        output's done frames as a partial output. Re-raises the writer's error after the cleanup."""
        self._queue.put(None)
        self._thread.join()
        outcome = SinkOutcome(frames=self.frames_done)
        pending = list(self.sinks)
        try:
            if ok and self.error is None:
                while pending:
                    outcome.outputs.extend(pending[0].finish())
                    pending.pop(0)
        except BaseException as e:
            self.error = e
        if pending and (self.error is not None or not ok):
            self._abort(pending, outcome)
        if self.error is not None:
            raise self.error
        return outcome

    def _abort(self, sinks: list[Sink], outcome: SinkOutcome) -> None:
        """Keep every output's done frames, last sink first (cutting a CSV or deleting undone crops frees the
        space a partial JSON needs on a full disk); a failure to keep one is logged, never hides the error that
        stopped the run."""
        for sink in reversed(sinks):
            try:
                outcome.partial.extend(sink.abort(self.frames_done))
            except (OSError, DehrnetError) as e:
                self.log(f"could not keep a partial output ({e})")
