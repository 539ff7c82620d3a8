"""The Ray engine: the corpus as a Ray Data dataset of small rows (index, source, location, rel, bytes), mapped
by a pool of stateful actors (`PoseWorker`: detector + pose model loaded once per actor) that read every
item themselves with dehrnet's own readers and return one small status row. Pixels never enter the
object store; the driver only lists, plans, draws the progress bar and writes the manifest.

Faults: Ray Data restarts a dead actor and retries its task (max_restarts / max_task_retries -1, its
defaults for actor pools); an item found complete on retry is not written again (`ItemRunner`), and a
killed writer's temp files are swept at the end (`layout.sweep_temp_files`).
Videos go one row per video: tracking and smoothing need the frames in order, and a segment join is
not provably equal to the single run (docs/scale.md).
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import fields, replace
from pathlib import Path

from dehrnet_cli.corpus.item_job import ItemRunner, worker_name
from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.corpus.job import CorpusJob
from dehrnet_cli.corpus.manifest import ManifestRow
from dehrnet_cli.errors import DehrnetError

RESERVED_CPUS = 0.5  # left to Ray Data's own tasks and actors: a pool holding every CPU starves them
TASKS_PER_WORKER = 20  # tasks are sized so that each worker gets about this many: balance and progress steps
MAX_ITEMS_PER_TASK = 32  # what a killed worker's task redoes at most; ~12 ms of Ray overhead per task here
ACTOR_INIT_DEATHS = 3  # actors that may fail to start in a row before the job fails (a bad --model)
_ROW_FIELDS = [f.name for f in fields(ManifestRow)]
_QUIET = {"log_to_driver": False, "logging_level": logging.ERROR}  # workers log to Ray's files, not here


def import_ray():
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data ships in the ray[data] extra)
    except ImportError:
        raise DehrnetError("--engine ray: Ray Data is not installed; pip install 'dehrnet[ray]' "
                           "(or 'ray[data]==2.60.*')") from None
    return ray


class PoseWorker:
    """A Ray Data actor: one detector + pose model for its lifetime, `threads` CPU threads (torch, OpenCV,
    onnxruntime); each call runs a batch of rows (pyarrow) and returns their manifest rows with the item index."""

    def __init__(self, job: CorpusJob, fresh_after: float | None, threads: int) -> None:
        from dehrnet_cli.estimator import PoseEstimator

        if not Path(job.out_dir).is_dir():
            raise DehrnetError(f"--out-dir {job.out_dir}: not visible on worker {worker_name()}; on a cluster, "
                               "give a folder every node mounts (NFS, EFS, Filestore, a FUSE bucket)")
        runtime = replace(job.runtime, threads=threads)
        estimator = PoseEstimator.from_specs(job.model, runtime, job.detector, job.pose, log=lambda line: None)
        estimator.prepare()  # a model that cannot load fails the actor's start, not every item
        self.runner = ItemRunner(job, estimator, fresh_after)

    def __call__(self, batch):
        import pyarrow as pa

        out = []
        for row in batch.to_pylist():
            item = CorpusItem(row["source"], row["location"], row["rel"], row["bytes"])
            out.append({"index": row["index"], **vars(self.runner(item))})
        return pa.Table.from_pylist(out, schema=result_schema())


def result_schema():
    import pyarrow as pa

    types = {"people": pa.int64(), "frames": pa.int64(), "seconds": pa.float64(), "bytes": pa.int64()}
    return pa.schema([("index", pa.int64())] + [(name, types.get(name, pa.string())) for name in _ROW_FIELDS])


def run_ray(job: CorpusJob, todo: list[tuple[int, CorpusItem]], fresh_after: float | None,
            log: Callable[[str], None]) -> Iterator[tuple[int, ManifestRow]]:
    """(index, row) per item of `todo` as workers finish them (any order); largest items first, so that
    a long video does not start last. Starts a local cluster on 127.0.0.1 unless `job.address` names
    one or Ray is already initialised in this process (then it is left running)."""
    ray = import_ray()
    started = _connect(ray, job.address, log)
    try:
        with _quiet_ray_data(ray):
            workers, per_task, cpus, gpus, threads = _pool(ray, job, len(todo))
            ordered = sorted(todo, key=lambda entry: -(entry[1].size or 0))
            rows = [{"index": index, "source": item.source, "location": item.location, "rel": item.rel,
                     "bytes": item.size} for index, item in ordered]
            dataset = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / per_task))
            results = dataset.map_batches(
                PoseWorker, fn_constructor_kwargs={"job": job.portable(), "fresh_after": fresh_after,
                                                   "threads": threads},
                batch_size=1, batch_format="pyarrow", num_cpus=cpus, num_gpus=gpus or None,
                compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1))
            log(f"ray: {workers} workers x {cpus:g} CPU" + (f" + {gpus:g} GPU" if gpus else "") +
                f", {threads} torch thread(s) each; {len(rows)} items in tasks of {per_task}, largest first")
            try:
                for result in results.iter_rows():
                    yield result["index"], ManifestRow(**{name: result[name] for name in _ROW_FIELDS})
            except Exception as e:
                message = _worker_error(e)
                if message is None:
                    raise
                raise DehrnetError(message) from None
    finally:
        if started:
            ray.shutdown()


@contextmanager
def loopback_only():
    """While in the block, Ray clusters started from this process listen on 127.0.0.1 only.

    Ray's own switch for that is RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (despite its name it works on Linux
    too): with it, the node address is 127.0.0.1 and the GCS, raylet and worker gRPC servers bind there;
    with `_node_ip_address="127.0.0.1"` alone, Ray swaps in the machine's reachable address and listens
    on every interface. Ray reads the switch once, into ray_constants.ENABLE_RAY_CLUSTER, when it is
    imported, so it is set both there (for this process: Ray 2.60 has no public setting for it) and in
    the environment (for the processes Ray starts); both are restored after the block."""
    import_ray()
    from ray._private import ray_constants

    saved_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved_env


def start_local_cluster(num_cpus: int | None = None) -> None:
    """Start a one-machine Ray cluster for this driver that only 127.0.0.1 reaches (`loopback_only`), with
    no dashboard and no usage reporting."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with loopback_only():
        ray.init(num_cpus=num_cpus, include_dashboard=False, **_QUIET)


def check_ray(job: CorpusJob) -> None:
    """What can fail before any listing or work: Ray missing, an --address where nothing answers (Ray
    itself would retry for minutes), a model file that is not there (the workers would find out only
    after Ray's start-up)."""
    import_ray()
    host_port = _host_port(job.address) if job.address else None
    if host_port is not None:
        _check_reachable(job.address, *host_port)
    for flag, path in job.files():
        if not path.exists():
            raise DehrnetError(f"{flag} {path}: no such file (with --engine ray it must be readable here and on "
                               "every worker, at the same path)")


def _connect(ray, address: str | None, log: Callable[[str], None]) -> bool:
    """Connect this driver to Ray; True when this call started or joined it (and must shut it down or
    leave)."""
    if ray.is_initialized():
        return False
    if address is None:
        log("ray: starting a local cluster (127.0.0.1 only, no dashboard, usage stats off)")
        start_local_cluster()
        return True
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    host_port = _host_port(address)
    loopback = host_port is not None and host_port[0] in ("127.0.0.1", "localhost", "::1")
    try:
        with loopback_only() if loopback else nullcontext():  # else Ray swaps 127.0.0.1 for the machine's IP
            ray.init(address=address, **_QUIET)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise DehrnetError(f"--address {address}: cannot connect to a Ray cluster ({e})") from None
    return True


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT; None for "auto" or anything else Ray resolves itself."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int, timeout_s: float = 5.0) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise DehrnetError(f"--address {address}: nothing answers there ({e.strerror or e}); give the head "
                           "node's HOST:PORT (ray start --head prints it) or auto on a cluster node") from None


def _pool(ray, job: CorpusJob, items: int) -> tuple[int, int, float, float, int]:
    """(workers, items per task, CPUs per worker, GPUs per worker, torch threads per worker) for `items`
    items on this cluster: about TASKS_PER_WORKER tasks per worker, no more workers than tasks, the
    CPUs shared out after RESERVED_CPUS (fractions on a small machine) and --threads, else one torch thread
    per whole CPU (fp32 sums depend on the thread count in their last bits: a worker equals a single run
    with as many)."""
    total = ray.cluster_resources()
    total_cpus, total_gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    gpus = job.gpus_per_worker
    if gpus > total_gpus:
        raise DehrnetError(f"--gpus-per-worker {gpus:g}: the Ray cluster has {total_gpus:g} GPUs")
    workers = job.workers or (int(total_gpus // gpus) if gpus else max(1, int(total_cpus)))
    per_task = job.items_per_task or min(MAX_ITEMS_PER_TASK, max(1, math.ceil(items / (TASKS_PER_WORKER * workers))))
    workers = min(workers, math.ceil(items / per_task))  # an actor without a task would only load a model
    cpus = math.floor(100 * max(0.1, (total_cpus - RESERVED_CPUS) / workers)) / 100
    threads = job.runtime.threads or max(1, math.floor(cpus))
    return workers, per_task, cpus, gpus, threads


@contextmanager
def _quiet_ray_data(ray):
    """Ray Data without its own progress bars and execution banners (the driver draws one bar), failing
    fast when actors cannot start; the settings are restored afterwards."""
    context = ray.data.DataContext.get_current()
    settings = {"enable_progress_bars": False, "print_on_execution_start": False, "enable_auto_log_stats": False,
                "max_consecutive_actor_init_deaths": ACTOR_INIT_DEATHS}
    saved = {name: getattr(context, name) for name in settings}
    logger = logging.getLogger("ray.data")
    level = logger.level
    for name, value in settings.items():
        setattr(context, name, value)
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        logger.setLevel(level)


def _worker_error(error: BaseException) -> str | None:
    """The one-line message of the DehrnetError a worker raised (a bad --model, OUT not mounted) under
    Ray's wrappers; None when the failure was not one. An actor whose constructor failed reaches the
    driver as an ActorDiedError that keeps only the text of the worker's traceback, so the message is
    read from its last `DehrnetError: ...` line."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        cause = getattr(error, "cause", None)
        if isinstance(cause, DehrnetError) and type(cause).__module__ != "ray.exceptions":
            return str(cause)
        lines = re.findall(r"DehrnetError: (.+)", str(error))
        if lines:
            return lines[-1].strip()
        error = cause if isinstance(cause, BaseException) else error.__cause__
    return None
