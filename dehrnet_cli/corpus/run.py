"""`run_corpus`: lock OUT, list the corpus, decide what to redo and check where it writes, run the items on an
engine with a progress bar on the driver, and keep the manifest (every finished item's row on disk as soon as
it is done; compacted at the end, also after Ctrl-C).

    items (corpus.items) -> plan (corpus.plan) -> engine: local (this process) | ray (Ray Data actors)
      -> manifest rows (corpus.manifest) -> OUT/manifest.jsonl
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from dehrnet_cli.corpus.items import CorpusItem, is_uri, list_corpus, walk_media
from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.layout import sweep_temp_files
from dehrnet_cli.corpus.lock import OutDirLock
from dehrnet_cli.corpus.manifest import (
    ERROR,
    MANIFEST_NAME,
    OK,
    ManifestLog,
    ManifestRow,
    read_manifest,
    write_manifest,
)
from dehrnet_cli.corpus.plan import Plan, check_outputs, plan_corpus
from dehrnet_cli.env import interrupts_deferred
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import job_progress_bar, note
from dehrnet_cli.sinks.atomic import OutputWriteError

Engine = Callable[[CorpusJob, list[tuple[int, CorpusItem]], float | None, Callable[[str], None]],
                  Iterator[tuple[int, ManifestRow]]]

ERRORS_SHOWN = 10  # error lines logged at the end; the manifest has every one


@dataclass
class CorpusSummary:
    """What a run did: items listed; ok / errors / skipped in this run; frames and people of the items
    it ran; the manifest written (None when there was nothing to do); interrupted by Ctrl-C."""

    items: int = 0
    ok: int = 0
    errors: int = 0
    skipped: int = 0
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    manifest: Path | None = None
    interrupted: bool = False
    error_rows: list[ManifestRow] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.ok + self.errors

    @property
    def items_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


def run_corpus(job: CorpusJob, log: Callable[[str], None] = note) -> CorpusSummary:
    """Run `job`; `log` receives one-line notes (what is skipped, the engine, the totals, errors). OUT is locked
    for the run (a second job on it refuses); every finished item's manifest row is on disk as soon as it is
    done. Ctrl-C writes the compact manifest of what finished, then re-raises KeyboardInterrupt."""
    if job.engine == "ray":
        from dehrnet_cli.corpus.ray_engine import check_ray

        check_ray(job)
    out_dir = _checked_out_dir(job)
    job = replace(job, out_dir=out_dir)
    with OutDirLock(out_dir):
        return _run_locked(job, out_dir, log)


def _run_locked(job: CorpusJob, out_dir: Path, log: Callable[[str], None]) -> CorpusSummary:
    items = list_corpus(job.corpus, exclude=out_dir)
    _note_left_out(job, out_dir, log)
    manifest_path = out_dir / MANIFEST_NAME
    first_run = not manifest_path.exists()
    previous = read_manifest(manifest_path)
    plan = plan_corpus(items, previous, out_dir, job.save_media, job.overwrite)
    check_outputs(items, plan, first_run)
    summary = CorpusSummary(items=len(items), skipped=len(plan.settled) - _new_errors(plan))
    if not plan.todo and _new_errors(plan) == 0:
        log(f"nothing to do: all {len(items)} items of {job.corpus} are done ({plan.done_before} with outputs, "
            f"{plan.failed_before} failed before: see {manifest_path}; --overwrite redoes everything)")
        return summary
    log(f"{len(items)} items: {len(plan.todo)} to do, {plan.done_before} done before and {plan.failed_before} "
        "failed before (skipped)" + (f", {_new_errors(plan)} unreadable" if _new_errors(plan) else ""))
    rows: dict[int, ManifestRow] = dict(plan.settled)
    for row in plan.settled.values():
        _count(summary, row)
    sweep_temp_files(plan.outputs[index] for index in plan.todo)  # of killed runs: nobody else writes here now
    fresh_after = _filesystem_now(out_dir) if job.overwrite else None
    start = time.perf_counter()
    finished: set[int] = set()
    manifest_log = ManifestLog(manifest_path)
    try:
        _run_engine(job, items, plan, fresh_after, rows, finished, summary, start, manifest_log, log)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        manifest_log.close()
        summary.seconds = time.perf_counter() - start
        sweep_temp_files(plan.outputs[index] for index in plan.todo)
        if finished or _new_errors(plan) or summary.interrupted:  # an engine that failed to start: left as it was
            ordered = (rows.get(index) or previous.get(item.source) for index, item in enumerate(items))
            try:
                summary.manifest = write_manifest(manifest_path, (row for row in ordered if row is not None))
            except OutputWriteError as e:  # a full disk: the appended rows stay, and the error that stopped us shows
                log(f"{e}; the manifest keeps one row per finished item, appended as they finished")
                summary.manifest = manifest_path
            _log_summary(summary, len(plan.todo), log)
    return summary


def _note_left_out(job: CorpusJob, out_dir: Path, log: Callable[[str], None]) -> None:
    """An OUT inside a corpus folder is left out of the listing: say how many images and videos that leaves out."""
    corpus = Path(job.corpus).expanduser()
    if is_uri(job.corpus) or not corpus.is_dir() or not out_dir.is_relative_to(corpus.resolve()):
        return
    left_out = sum(1 for _ in walk_media(out_dir))
    if left_out:
        log(f"left out {left_out} image(s) and video(s) under --out-dir {out_dir}, which lies inside the corpus "
            "(this job's own outputs go there)")


def _run_engine(job: CorpusJob, items: list[CorpusItem], plan: Plan, fresh_after: float | None,
                rows: dict[int, ManifestRow], finished: set[int], summary: CorpusSummary, start: float,
                manifest_log: ManifestLog, log: Callable[[str], None]) -> None:
    """Run the plan's items on the job's engine; each item's row goes into `rows` and the manifest's log, and its
    index into `finished`, as it comes back."""
    engine = _engine(job.engine)
    todo = [(index, items[index]) for index in plan.todo]
    with _progress(job.quiet) as progress:
        task = progress.add_task("corpus", total=len(todo), ok=0, errors=summary.errors, skipped=summary.skipped,
                                 rate=0.0)
        for index, row in engine(job, todo, fresh_after, log):
            if index in finished:
                continue  # a retried task reports an item again: it was done once
            finished.add(index)
            rows[index] = row
            manifest_log.append(row)
            _count(summary, row)
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=1, ok=summary.ok, errors=summary.errors, rate=summary.done / elapsed)


def _engine(name: str) -> Engine:
    if name == "ray":
        from dehrnet_cli.corpus.ray_engine import run_ray

        return run_ray
    with interrupts_deferred():  # the local engine imports the estimator: torch, onnxruntime, ultralytics
        from dehrnet_cli.corpus.local_engine import run_local
    return run_local


def _count(summary: CorpusSummary, row: ManifestRow) -> None:
    if row.status == OK:
        summary.ok += 1
        summary.frames += row.frames or 0
        summary.people += row.people or 0
    elif row.status == ERROR:
        summary.errors += 1
        if len(summary.error_rows) < ERRORS_SHOWN:
            summary.error_rows.append(row)


def _new_errors(plan: Plan) -> int:
    """Items of this run that cannot be processed at all (missing, not media): errors without work."""
    return sum(row.status == ERROR for row in plan.settled.values())


def _checked_out_dir(job: CorpusJob) -> Path:
    out_dir = Path(job.out_dir).expanduser()
    if is_uri(str(job.out_dir)):
        raise DehrnetError(f"--out-dir {job.out_dir}: give a local folder (on a cluster, one every worker "
                           "mounts); outputs on object storage are not supported yet")
    if out_dir.exists() and not out_dir.is_dir():
        raise DehrnetError(f"--out-dir {out_dir}: exists and is not a folder")
    corpus = Path(job.corpus).expanduser()
    if not is_uri(job.corpus) and corpus.is_dir() and out_dir.resolve() == corpus.resolve():
        raise DehrnetError(f"--out-dir {out_dir}: is the corpus folder itself; give another folder (inside it "
                           "is fine: it is left out of the listing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DehrnetError(f"--out-dir {out_dir}: cannot create the folder ({e.strerror or e})") from None
    return out_dir.resolve()


def _filesystem_now(folder: Path) -> float:
    """The current time as the output filesystem stamps files (a file created now: its mtime), so that
    workers compare output times with the filesystem's clock, not this machine's."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".dehrnet-clock-") as stamp:
        return os.fstat(stamp.fileno()).st_mtime


def _progress(quiet: bool):
    return job_progress_bar("corpus", "{task.fields[ok]} ok, {task.fields[errors]} errors, {task.fields[skipped]} "
                            "skipped", "{task.fields[rate]:.2f} items/s", enabled=not quiet)


def _log_summary(summary: CorpusSummary, todo: int, log: Callable[[str], None]) -> None:
    stopped = f"stopped after {summary.done} of {todo} items (rerun to go on): " if summary.interrupted else ""
    log(f"{stopped}{summary.ok} ok, {summary.errors} errors, {summary.skipped} skipped in {summary.seconds:.1f} s "
        f"({summary.items_per_s:.2f} items/s; {summary.frames} frames, {summary.people} people)")
    for row in summary.error_rows:
        log(f"error {row.path}: {row.reason}")
    if summary.errors > len(summary.error_rows):
        log(f"... and {summary.errors - len(summary.error_rows)} more errors (status error in the manifest)")
