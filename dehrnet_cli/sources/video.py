"""Video files, network streams and cameras, decoded by PyAV (cameras: OpenCV) on a reader thread
(`sources.threaded`), with fps and frame count from the container's metadata. Frames come out as the video is
displayed: a display matrix (portrait phone videos) is applied to every frame (`sources.orientation`), and the
source's size is the displayed one.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import av
import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import warn
from dehrnet_cli.sources.orientation import AS_STORED, DisplayTransform, display_transform
from dehrnet_cli.sources.threaded import ThreadedSource

STREAM_TIMEOUT_S = (10.0, 5.0)  # (open, read) timeouts of network streams


def _cannot_decode(name: str, index: int, error: av.FFmpegError) -> DehrnetError:
    return DehrnetError(f"{name}: cannot decode frame {index} ({error}); the file may be truncated or corrupt")


def frame_display_transform(frame: av.VideoFrame, name: str) -> DisplayTransform:
    """How `frame` is displayed, from its display-matrix side data (AS_STORED without one). A matrix that is
    not a multiple of 90 degrees is not applied, with a warning."""
    for side_data in frame.side_data:
        if side_data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            matrix = struct.unpack("=9i", bytes(side_data))
            transform = display_transform(matrix)
            if transform is None:
                warn(f"{name}: its display matrix {matrix} is not a rotation by a multiple of 90 degrees; its "
                     "frames are used as stored")
                return AS_STORED
            return transform
    return AS_STORED


def _decode_video(frames: Iterator[av.VideoFrame], stream: av.video.stream.VideoStream, name: str,
                  transform: DisplayTransform) -> Iterator[tuple[np.ndarray, float | None]]:
    """The decoded frames as displayed: (BGR image, presentation time in s)."""
    index = 0
    try:
        for frame in frames:
            yield transform.apply(frame.to_ndarray(format="bgr24")), frame.time  # time: pts x time_base, or None
            index += 1
    except av.FFmpegError as e:
        raise _cannot_decode(name, index, e) from None
    if 0 < index < stream.frames:
        warn(f"{name}: the video ended after {index} of its {stream.frames} frames (truncated?)")


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
    frames = container.decode(stream)
    try:
        first = next(frames, None)  # its side data says how the video is displayed
    except av.FFmpegError as e:
        container.close()
        raise _cannot_decode(name, 0, e) from None
    if first is None:
        transform, size = AS_STORED, (stream.codec_context.width, stream.codec_context.height)
    else:
        transform = frame_display_transform(first, name)
        size = transform.size(first.width, first.height)
    num_frames = None
    if not is_live:
        if stream.frames > 0:
            num_frames = stream.frames
        elif fps and stream.duration and stream.time_base:
            num_frames = round(float(stream.duration * stream.time_base) * fps)
        elif fps and container.duration:
            num_frames = round(container.duration / av.time_base * fps)
    decoded = itertools.chain([] if first is None else [first], frames)
    return ThreadedSource(kind, name, _decode_video(decoded, stream, name, transform), is_live=is_live, fps=fps,
                          size=size if all(size) else None, num_frames=num_frames,
                          on_finish=container.close)


def open_video(path: Path) -> ThreadedSource:
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


def open_stream(url: str) -> ThreadedSource:
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


def open_camera(index: int) -> ThreadedSource:
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
