"""The process environment dehrnet runs in: the environment variables it reads, in one place, read at call time
(never at import), the default thread count, Ctrl-C held back while native libraries load
(`interrupts_deferred`, except in downloads and waits: `interruptible`) and, in the CLI, while any module is
imported (`raise_outside_imports`).

DEHRNET_OFFLINE: never touch the network (downloads fail fast and say what to place where).
YOLO_OFFLINE: ultralytics' own switch; the YOLO detector honours it too.
DEHRNET_HOME: the weights cache is $DEHRNET_HOME/weights (see weights.cache.weights_dir).
DEHRNET_DEBUG: internal errors print their traceback.
OMP_WAIT_POLICY: OpenMP's idle threads spin (ACTIVE) or sleep (PASSIVE); the CLI makes PASSIVE the default
(`prefer_passive_openmp`), see docs/reliability.md "Threads".
OMP_NUM_THREADS: the default CPU threads of a command (`default_threads`).
DEHRNET_TENSORRT: ONNX models on CUDA try onnxruntime's TensorRT provider first (engines cached in
<weights>/tensorrt); off by default until measured faster than the CUDA provider (docs/gpu.md).
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_FALSE = ("", "0", "false", "no")


def flag(name: str) -> bool:
    """Whether the environment variable `name` is set to something other than empty, 0, false or no."""
    return os.environ.get(name, "").strip().lower() not in _FALSE


def offline(include_yolo: bool = False) -> bool:
    """DEHRNET_OFFLINE is set (or, with `include_yolo`, ultralytics' YOLO_OFFLINE)."""
    return flag("DEHRNET_OFFLINE") or (include_yolo and flag("YOLO_OFFLINE"))


def debug() -> bool:
    """DEHRNET_DEBUG is set: internal failures show their traceback."""
    return flag("DEHRNET_DEBUG")


def prefer_passive_openmp() -> None:
    """Make OpenMP threads sleep instead of spinning while they wait (OMP_WAIT_POLICY=PASSIVE) unless the user
    chose a policy. Must run before torch is imported (OpenMP reads it once): on a 2-core machine with other work
    running, torch with 2 spinning threads ran 9x slower than with 1, with passive threads no slower
    (docs/reliability.md, "Threads")."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def home() -> str | None:
    """$DEHRNET_HOME, or None when unset or empty."""
    return os.environ.get("DEHRNET_HOME") or None


def tensorrt() -> bool:
    """DEHRNET_TENSORRT is set: prefer onnxruntime's TensorRT provider on CUDA."""
    return flag("DEHRNET_TENSORRT")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: what `taskset`, cgroups and schedulers allow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """The CLI's --threads default: $OMP_NUM_THREADS when set, else `usable_cores()`."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return usable_cores()


def raise_outside_imports(signum: int, frame: FrameType | None) -> None:
    """The CLI's SIGINT handler once a command runs: KeyboardInterrupt, except while the main thread imports a
    module, where it waits until the import is done (a watcher thread delivers it again then). Raised inside an
    import, importlib may report it as "Exception ignored" and go on (the run then ends with exit 0), and inside the
    `exec` of code an import runs (dataclasses' generated methods) it makes `python -m` exit by SIGINT after
    dehrnet's own exit 130 (CPython remembers any KeyboardInterrupt an exec of a string saw)."""
    if not _in_import(frame):
        raise KeyboardInterrupt
    if _redelivery.acquire(blocking=False):  # one watcher at a time, however many interrupts come
        threading.Thread(target=_redeliver_after_import, name="dehrnet-sigint", daemon=True).start()


_redelivery = threading.Lock()  # held from the interrupt a watcher was started for until it delivered it


def _in_import(frame: FrameType | None) -> bool:
    """Whether `frame` or a caller of it is importlib's (a module is being imported)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _redeliver_after_import() -> None:
    """Wait until the main thread is out of every import, then deliver SIGINT to it again (`_redelivery`, taken
    by the handler that started this thread, is released here)."""
    try:
        main = threading.main_thread()
        while main.is_alive() and _in_import(sys._current_frames().get(main.ident)):
            time.sleep(0.005)
        if main.is_alive():
            _thread.interrupt_main(signal.SIGINT)
    finally:
        _redelivery.release()


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run the block with Ctrl-C held back, then raise KeyboardInterrupt if one came: for imports of native
    libraries and model building (torch, onnxruntime, ultralytics), where a KeyboardInterrupt raised inside a
    C++ callback aborts the process ("terminate called after throwing an instance of pybind11::error_already_set")
    instead of reaching the command's cleanup. Only in the main thread, and only where Ctrl-C raises
    KeyboardInterrupt (Python's default handler or the CLI's raise_outside_imports; not when it is ignored)."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or \
            previous not in (signal.default_int_handler, raise_outside_imports):
        yield
        return
    came: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    _deferred.append((previous, came))
    try:
        yield
    finally:
        _deferred.pop()
        signal.signal(signal.SIGINT, previous)
    if came:
        raise KeyboardInterrupt


_deferred: list[tuple[object, list[int]]] = []  # the open interrupts_deferred blocks: (handler held back, SIGINTs)


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside interrupts_deferred, let Ctrl-C raise again for this block (a download, a wait for another process:
    pure Python, no native callback to abort), at once if one came before it; elsewhere nothing changes."""
    if not _deferred or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, came = _deferred[-1]
    if came:
        raise KeyboardInterrupt
    holding = signal.signal(signal.SIGINT, previous)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, holding)
