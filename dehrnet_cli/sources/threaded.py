"""Reading frames in a background thread so that decoding overlaps with inference: `FrameReader` hands
items to one consumer in order (files: nothing lost; live sources: only the newest kept), and
`ThreadedSource` makes a `Source` of any frame iterator.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import numpy as np

from dehrnet_cli.sources.base import Source
from dehrnet_cli.stage_data import Frame

FILE_QUEUE_SIZE = 8  # decoded frames buffered ahead of the consumer for video files

LIVE_QUEUE_SIZE = 1  # live sources keep only the newest frame: latency over completeness

STOP_TIMEOUT_S = 2.0  # how long close() waits for the reader thread

T = TypeVar("T")


class FrameReader(Generic[T]):
    """Pulls `items` (any iterator) in a daemon thread and hands them to one consumer in order.

    Files (live=False): up to `maxsize` items wait in the buffer and the producer blocks when it is
    full, so nothing is lost. Live: the buffer keeps the newest `maxsize` items and drops older ones
    (counted in `dropped`). An exception raised by `items` is re-raised in the consumer after the
    items before it. `on_finish` (e.g. closing a container) runs in the reader thread at its end,
    so the thread that uses a decoder is the one that closes it.
    """

    def __init__(self, items: Iterator[T], *, live: bool, maxsize: int, name: str,
                 on_finish: Callable[[], None] | None = None):
        self._items = items
        self._live = live
        self._maxsize = max(1, maxsize)
        self._on_finish = on_finish
        self._buffer: deque[T] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._finished = False
        self._error: BaseException | None = None
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, name=f"dehrnet-reader {name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                with self._cond:
                    while not self._live and len(self._buffer) >= self._maxsize and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        break
                    if len(self._buffer) >= self._maxsize:  # live only: drop the stalest
                        self._buffer.popleft()
                        self.dropped += 1
                    self._buffer.append(item)
                    self._cond.notify_all()
        except BaseException as e:  # handed to the consumer, never lost in this thread
            self._error = e
        finally:
            self._finish()

    def _finish(self) -> None:
        try:
            close_items = getattr(self._items, "close", None)
            if close_items is not None:
                close_items()
            if self._on_finish is not None:
                self._on_finish()
        except BaseException as e:
            self._error = self._error or e
        finally:  # whatever happened, the consumer must not wait forever
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[T]:
        while True:
            with self._cond:
                while not self._buffer and not self._finished:
                    self._cond.wait()
                if not self._buffer:
                    if self._error is not None and not self._stopping:
                        error, self._error = self._error, None
                        raise error
                    return
                item = self._buffer.popleft()
                self._cond.notify_all()
            yield item

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the thread to stop, drop what is buffered and wait up to `timeout` s for it to end.

        A thread stuck in a blocking read (a silent network stream) is left to end on its own:
        it is a daemon and closes its source itself.
        """
        with self._cond:
            self._stopping = True
            self._buffer.clear()
            self._cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)


def _numbered(frames: Iterable[np.ndarray | tuple[np.ndarray, float | None]]
              ) -> Iterator[tuple[int, np.ndarray, float | None]]:
    """Number frames as they are produced (so dropped live frames leave gaps in Frame.index)."""
    try:
        for index, item in enumerate(frames):
            image, time_s = item if isinstance(item, tuple) else (item, None)
            yield index, image, time_s
    finally:  # run the producer's own cleanup in the reader thread
        close_frames = getattr(frames, "close", None)
        if close_frames is not None:
            close_frames()


class ThreadedSource(Source):
    """Frames produced in a background thread by `frames`, an iterator of images (H, W, 3) uint8 BGR
    or of (image, time_s) pairs. Used for video files, cameras and streams, and by tests with a
    plain generator. Frame.index counts produced frames; a live source may skip some."""

    def __init__(self, kind: str, name: str,
                 frames: Iterable[np.ndarray | tuple[np.ndarray, float | None]], *, is_live: bool,
                 fps: float | None = None, size: tuple[int, int] | None = None,
                 num_frames: int | None = None, on_finish: Callable[[], None] | None = None,
                 queue_size: int | None = None):
        super().__init__(name)
        self.kind = kind
        self.is_live = is_live
        self.fps = fps
        self.size = size
        self.num_frames = num_frames
        maxsize = queue_size or (LIVE_QUEUE_SIZE if is_live else FILE_QUEUE_SIZE)
        self.reader = FrameReader(_numbered(frames), live=is_live, maxsize=maxsize, name=name,
                                  on_finish=on_finish)

    def __iter__(self) -> Iterator[Frame]:
        try:
            for index, image, time_s in self.reader:
                yield Frame(index, image, None, time_s)
        finally:  # also on `break`: the generator is closed as soon as the loop drops it
            self.close()

    def close(self) -> None:
        self.reader.stop()
