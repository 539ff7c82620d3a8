"""Input sources: image files, folders, globs, .txt lists, video files, cameras and network streams.

`open_source(spec)` returns a `Source`: an iterable of `Frame` (image (H, W, 3) uint8 BGR, image
pixels) with metadata for progress bars and writers. Image sources read lazily, one file at a time.
Video, camera and stream sources decode in a background thread (`FrameReader`) so that decoding
overlaps with inference; they are single-pass, and leaving the loop early closes them.
"""

from __future__ import annotations

import glob
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import av
import cv2
import numpy as np

from .errors import DehrnetError
from .types import Frame

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm"}
)  # fmt: skip
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
FILE_QUEUE_SIZE = 8  # decoded frames buffered ahead of the consumer for video files
LIVE_QUEUE_SIZE = 1  # live sources keep only the newest frame: latency over completeness
STOP_TIMEOUT_S = 2.0  # how long close() waits for the reader thread
STREAM_TIMEOUT_S = (10.0, 5.0)  # (open, read) timeouts of network streams
_HELP = "give an image, a folder, a glob, a .txt list of images, a video, a camera index or a stream URL"

T = TypeVar("T")


def _warn(message: str) -> None:
    print(f"dehrnet: warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- images


class ImageReadError(DehrnetError):
    """An image file that cannot be read; `reason` is the problem without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Convert a decoded image to (H, W, 3) uint8 BGR.

    Grayscale (H, W) or (H, W, 1) is replicated, gray+alpha keeps the gray, BGRA drops alpha (no
    compositing), 16-bit is scaled by 1/257 (65535 -> 255). Other pixel types raise ValueError.
    """
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2] if image.ndim == 3 else 0
    if channels in (1, 2):
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"unsupported image shape {image.shape}")


def read_image(path: Path, exif: bool = False) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR; works with non-ASCII paths.

    EXIF orientation is ignored by default (the stored pixel array, as COCO and the official HRNet
    loader use); `exif=True` applies it. Raises ImageReadError when the file cannot be read.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(path, f"cannot read the file ({e.strerror or e})") from None
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    if exif:
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # applies EXIF orientation, keeps 16 bits
    else:
        flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:
        image = None
    if image is None:
        raise ImageReadError(path, "cannot decode the image (corrupt or unsupported format)")
    try:
        return to_bgr8(image)
    except ValueError as e:
        raise ImageReadError(path, str(e)) from None


class Source(ABC):
    """An iterable of `Frame`s with what a progress bar and a video writer need to know.

    kind: "images", "video", "camera" or "stream"; is_live: frames arrive in real time (stale ones
    are dropped); fps, size (w, h) and num_frames: None when unknown; skipped: (path, reason) of
    unreadable images that were left out; name: the source as shown in messages.
    """

    kind: str
    is_live: bool = False
    fps: float | None = None
    size: tuple[int, int] | None = None
    num_frames: int | None = None

    def __init__(self, name: str):
        self.name = name
        self.skipped: list[tuple[Path, str]] = []

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release files, threads and devices; safe to call twice. Image sources hold nothing open."""
        return None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageSource(Source):
    """Image files read one at a time; Frame.index is the position in `paths`, Frame.path the file.

    With `skip_unreadable`, a file that cannot be read is reported on stderr, recorded in `skipped`
    and left out (its index stays unused); otherwise the ImageReadError propagates.
    """

    kind = "images"

    def __init__(self, paths: list[Path], name: str, *, exif: bool = False, skip_unreadable: bool = True):
        super().__init__(name)
        self.paths = paths
        self.exif = exif
        self.skip_unreadable = skip_unreadable
        self.num_frames = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = []
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path, exif=self.exif)
            except ImageReadError as e:
                if not self.skip_unreadable:
                    raise
                _warn(f"skipping {path}: {e.reason}")
                self.skipped.append((path, e.reason))
                continue
            yield Frame(index, image, path)


# ------------------------------------------------------------------------------ threaded reading


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


def _decode_video(container: av.container.InputContainer, name: str
                  ) -> Iterator[tuple[np.ndarray, float | None]]:
    """Decode the first video stream as (BGR image, presentation time in s)."""
    stream = container.streams.video[0]
    index = 0
    try:
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="bgr24"), frame.time  # time: pts x time_base, or None
            index += 1
    except av.FFmpegError as e:
        raise DehrnetError(f"{name}: cannot decode frame {index} ({e}); the file may be truncated or "
                           "corrupt") from None
    if 0 < index < stream.frames:
        _warn(f"{name}: the video ended after {index} of its {stream.frames} frames (truncated?)")


def _video_source(container: av.container.InputContainer, kind: str, name: str,
                  is_live: bool) -> ThreadedSource:
    """A ThreadedSource over an open PyAV container; fps, size and frame count from its metadata."""
    if not container.streams.video:
        container.close()
        raise DehrnetError(f"{name}: has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame- and slice-threaded decoding
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    size = (stream.codec_context.width, stream.codec_context.height)
    num_frames = None
    if not is_live:
        if stream.frames > 0:
            num_frames = stream.frames
        elif fps and stream.duration and stream.time_base:
            num_frames = round(float(stream.duration * stream.time_base) * fps)
        elif fps and container.duration:
            num_frames = round(container.duration / av.time_base * fps)
    return ThreadedSource(kind, name, _decode_video(container, name), is_live=is_live, fps=fps,
                          size=size if all(size) else None, num_frames=num_frames,
                          on_finish=container.close)


def _open_video(path: Path) -> ThreadedSource:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise DehrnetError(f"{path}: cannot read the video ({e}); is it a complete video file?") from None
    return _video_source(container, "video", str(path), is_live=False)


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _open_stream(url: str) -> ThreadedSource:
    """A network stream. Live unless the server reports a duration (an http(s) video file is read
    whole, frame by frame, like a local video)."""
    name = _redact(url)
    options = {"rtsp_transport": "tcp"} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
    try:
        container = av.open(url, options=options, timeout=STREAM_TIMEOUT_S)
    except (av.FFmpegError, OSError) as e:
        reason = str(e).replace(url, name)  # FFmpeg's message repeats the URL, password included
        raise DehrnetError(f"{name}: cannot open the stream ({reason}); check the URL and that the "
                           "server is reachable") from None
    is_live = container.duration is None or url.lower().startswith(("rtsp://", "rtsps://", "rtmp://"))
    return _video_source(container, "stream", name, is_live=is_live)


def _open_camera(index: int) -> ThreadedSource:
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise DehrnetError(f"camera {index}: cannot open it; check that it is connected and not used by "
                           f"another program, or try another index (use ./{index} for a file of that name)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames() -> Iterator[tuple[np.ndarray, float]]:
        start = time.monotonic()
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image, time.monotonic() - start  # time since the camera was opened

    return ThreadedSource("camera", f"camera {index}", frames(), is_live=True,
                          fps=fps if fps > 0 else None, size=size if all(size) else None,
                          on_finish=capture.release)


# ------------------------------------------------------------------------------- image listings


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _open_folder(folder: Path, exif: bool) -> ImageSource:
    """The folder's images (not recursive, hidden files left out), sorted by name."""
    try:
        files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.name)
    except OSError as e:
        raise DehrnetError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    images = [p for p in files if _is_image(p)]
    if not images:
        videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        hint = f"; it holds {len(videos)} video(s): pass one of them directly" if videos else ""
        raise DehrnetError(f"{folder}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                           f"{hint}")
    return ImageSource(images, str(folder), exif=exif)


def _open_glob(pattern: str, exif: bool) -> ImageSource:
    matches = sorted(glob.glob(str(Path(pattern).expanduser()), recursive=True))
    images = [Path(m) for m in matches if _is_image(Path(m)) and Path(m).is_file()]
    if not images:
        what = f"{len(matches)} path(s) but no image files" if matches else "nothing"
        raise DehrnetError(f"{pattern}: the pattern matched {what}; check it (quote it so the shell does "
                           "not expand it)")
    return ImageSource(images, pattern, exif=exif)


def _open_list(list_path: Path, exif: bool) -> ImageSource:
    """A .txt file with one image path per line (blank lines and # comments ignored); relative paths
    are relative to the list's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{list_path}: cannot read the list ({e})") from None
    entries: list[tuple[int, Path]] = []
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            path = Path(text).expanduser()
            entries.append((line_no, path if path.is_absolute() else list_path.parent / path))
    if not entries:
        raise DehrnetError(f"{list_path}: the list names no images (one path per line)")
    missing = [(n, p) for n, p in entries if not p.is_file()]
    if missing:
        line_no, path = missing[0]
        raise DehrnetError(f"{list_path}: line {line_no} names {path}, which is not a file "
                           f"({len(missing)} of {len(entries)} missing; relative paths start at the "
                           "list's folder)")
    return ImageSource([p for _, p in entries], str(list_path), exif=exif)


def open_source(spec: str, *, exif: bool = False) -> Source:
    """Open what `spec` names: a camera index ("0"), an rtsp/rtmp/http(s) URL, a video file, an
    image file, a folder of images, a glob of images or a .txt list of images.

    `exif=True` applies EXIF orientation to images (ignored by default). Raises DehrnetError with
    one line naming the source and the problem when it cannot be opened.
    """
    text = str(spec).strip()
    if not text:
        raise DehrnetError(f"empty source; {_HELP}")
    if text.isdigit():
        return _open_camera(int(text))
    if text.lower().startswith(STREAM_SCHEMES):
        return _open_stream(text)
    path = Path(text).expanduser()
    if path.is_dir():
        return _open_folder(path, exif)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            return _open_video(path)
        if suffix == ".txt":
            return _open_list(path, exif)
        if suffix in IMAGE_SUFFIXES:
            return ImageSource([path], str(path), exif=exif, skip_unreadable=False)
        raise DehrnetError(f"{path}: unknown file type '{path.suffix}'; {_HELP} (videos: "
                           f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    if path.exists():
        raise DehrnetError(f"{path}: not a regular file or folder; {_HELP}")
    if any(c in text for c in "*?["):
        return _open_glob(text, exif)
    raise DehrnetError(f"{path}: no such file or folder; {_HELP}")
