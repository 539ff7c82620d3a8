"""One corpus item, the same on every engine: exactly `dehrnet predict ITEM --json OUT/<rel>.json` (with
--save-media also `--out`), through dehrnet's own readers and `predict.run_predict`, so the per-item JSON
is the single-item run's byte for byte. A bad item becomes an error row; nothing but Ctrl-C escapes.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from dehrnet_cli.corpus.items import CorpusItem, UriFilesystems
from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.layout import ItemOutputs, counts_of, is_complete, item_outputs
from dehrnet_cli.corpus.manifest import ERROR, OK, ManifestRow
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.predict import PredictJob, open_job, run_predict
from dehrnet_cli.sinks.atomic import OutputWriteError, partial_path_for
from dehrnet_cli.sources.images import ImageReadError


def worker_name() -> str:
    """HOST:PID of this process, the manifest's `worker`."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ItemRunner:
    """Runs items of `job` with one estimator (loaded once per process); `fresh_after`: with --overwrite,
    the job's start time as the output filesystem saw it (outputs at least that new are this job's own)."""

    def __init__(self, job: CorpusJob, estimator: PoseEstimator, fresh_after: float | None = None) -> None:
        self.job, self.estimator, self.fresh_after = job, estimator, fresh_after
        self.filesystems = UriFilesystems()
        self.worker = worker_name()

    def __call__(self, item: CorpusItem) -> ManifestRow:
        outputs = item_outputs(item, self.job.out_dir, self.job.save_media)
        if is_complete(outputs, self.fresh_after if self.job.overwrite else None):
            done = self._found_done(item, outputs)
            if done is not None:
                return done
        start = time.perf_counter()
        local: Path | None = None
        try:
            with self._local_copy(item) as local:
                predict_job = self._predict_job(local, outputs)
                opened = open_job(predict_job)
                opened.source.name = item.source  # the JSON's info.source and messages name the item, not a copy
                summary = run_predict(self.estimator, predict_job, opened, log=lambda line: None)
        except (KeyboardInterrupt, OutputWriteError):  # a full disk fails every later item too: stop the job
            raise
        except ImageReadError as e:
            return self._error(item, e.reason, start)
        except DehrnetError as e:
            return self._error(item, _without_path(str(e), local, item), start)
        except Exception as e:  # an internal failure on one item must not end a million-item job
            return self._error(item, f"internal error: {type(e).__name__}: {_without_path(str(e), local, item)}",
                               start)
        for path in outputs.files:  # an earlier run stopped mid-item kept these: the item is done now
            partial_path_for(path).unlink(missing_ok=True)
        return ManifestRow(item.source, OK, None, summary.people, summary.frames,
                           round(time.perf_counter() - start, 3), self.worker, item.size)

    def _predict_job(self, local: Path, outputs: ItemOutputs) -> PredictJob:
        job = self.job
        return PredictJob(str(local), out=outputs.predict_out, json_path=outputs.json, ann=job.detector.ann,
                          kpt_thr=job.kpt_thr, draw_boxes=job.draw_boxes, quiet=True, orientation=job.orientation,
                          reads=tuple(job.files()),
                          banner=job.banner, video=job.video)

    @contextmanager
    def _local_copy(self, item: CorpusItem) -> Iterator[Path]:
        """The item as a local file: itself, or a URI fetched into a temp folder under its own name (so
        that file_name and the COCO image id are those of the item)."""
        if not item.is_remote:
            yield Path(item.location)
            return
        with tempfile.TemporaryDirectory(prefix="dehrnet-corpus-") as folder:
            target = Path(folder) / PurePosixPath(item.rel).name
            try:
                fs, path = self.filesystems.resolve(item.location)
                with fs.open_input_stream(path) as remote, open(target, "wb") as copy:
                    shutil.copyfileobj(remote, copy, 1 << 20)
            except OSError as e:
                raise DehrnetError(f"cannot fetch it ({e})") from None
            yield target

    def _found_done(self, item: CorpusItem, outputs: ItemOutputs) -> ManifestRow | None:
        """The row of an item whose outputs this job already wrote (a worker died after writing them and
        Ray retried its task): nothing is written twice, the counts come from its JSON. None when that
        JSON is not one dehrnet wrote (the item is then done again)."""
        try:
            frames, people = counts_of(outputs.json)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return ManifestRow(item.source, OK, None, people, frames, 0.0, self.worker, item.size)

    def _error(self, item: CorpusItem, reason: str, start: float) -> ManifestRow:
        return ManifestRow(item.source, ERROR, " ".join(reason.split()), None, None,
                           round(time.perf_counter() - start, 3), self.worker, item.size)


def _without_path(message: str, local: Path | None, item: CorpusItem) -> str:
    """An error message about the item without its path in front (the manifest row names it), a fetched
    copy's temp path replaced by the item's own name."""
    if local is not None:
        message = message.replace(str(local), item.source)
    return message.removeprefix(f"{item.source}: ")
