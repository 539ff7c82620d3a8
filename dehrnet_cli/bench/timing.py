"""Timing for the bench: host clock on CPU, CUDA events after a synchronisation on GPU, repetitions
after warm-up, round-robin over configurations so that drifting machine load hits them alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def time_call(fn: Callable[[], object], cuda_device: str | None = None) -> float:
    """Seconds one call of `fn` takes. On a CUDA device: synchronise, then CUDA events around the call
    (host work inside it is covered too: the start event fires at once on the idle stream); else the
    host's perf_counter."""
    if cuda_device is not None:
        import torch

        with torch.cuda.device(torch.device(cuda_device)):
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def interleaved(fns: list[Callable[[], object]], warmup: int, repeats: int,
                cuda_devices: list[str | None] | None = None) -> list[tuple[list[float], float]]:
    """Time several functions round-robin, so that a machine whose load drifts during the run slows
    them all alike and their ratios stay meaningful. Per function: (seconds of each of `repeats` timed
    calls after `warmup` untimed ones, seconds of its first call: warm-up costs such as torch.compile
    or cuDNN autotuning show there). With no warm-up the first call is also the first timed one."""
    devices = cuda_devices or [None] * len(fns)
    firsts = [time_call(fn, device) for fn, device in zip(fns, devices)]
    timed: list[list[float]] = [[first] if warmup == 0 else [] for first in firsts]
    for _ in range(warmup - 1):
        for fn in fns:
            fn()
    while len(timed[0]) < repeats:
        for fn, device, seconds in zip(fns, devices, timed):
            seconds.append(time_call(fn, device))
    return list(zip(timed, firsts))


def repeat(fn: Callable[[], object], warmup: int, repeats: int,
           cuda_device: str | None = None) -> tuple[list[float], float]:
    """`interleaved` for one function."""
    return interleaved([fn], warmup, repeats, [cuda_device])[0]


@contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Restore torch's intra-op thread count after the block: ultralytics' select_device sets it to
    cpu_count - 1 on CPU (1 on a 2-core machine), which would slow every later torch stage."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
