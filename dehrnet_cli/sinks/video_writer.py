"""Annotated outputs: H.264 videos (PyAV) and image files (OpenCV), both written atomically.

A video is encoded into a hidden temp file beside its final path and renamed onto it only once the
encoder is flushed and the container closed. If the `with` block fails (Ctrl-C included), the video
so far is finalised and kept, playable, as `<stem>.partial<suffix>`; the final path is never
touched, so an earlier output stays as it was.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import warn
from dehrnet_cli.sinks.atomic import StagedFile, write_bytes_atomic, write_error

VIDEO_OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")

_FASTSTART_SUFFIXES = (".mp4", ".m4v", ".mov")  # moov atom moved to the front: browsers stream it

_CRF_CODECS = ("libx264", "libx265")

_NTSC_BASES = (24, 30, 48, 60, 120, 240)  # rates sold as 23.976, 29.97, 59.94...


def exact_rate(fps: float) -> Fraction:
    """The frame rate as an exact fraction: NTSC rates (29.97 -> 30000/1001), integers (25.0 -> 25),
    others to the nearest fraction with a denominator up to 1001 (12.5 -> 25/2)."""
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    for base in _NTSC_BASES:
        if abs(value - base * 1000 / 1001) < 0.005:
            return Fraction(base * 1000, 1001)
    if abs(value - round(value)) < 1e-3:
        return Fraction(round(value))
    return Fraction(value).limit_denominator(1001)


def has_encoder(codec: str) -> bool:
    """Whether the PyAV build has an encoder named `codec`."""
    try:
        av.Codec(codec, "w")
    except ValueError:  # av's UnknownCodecError
        return False
    return True


class VideoWriter:
    """Write (H, W, 3) uint8 BGR frames to an H.264 (yuv420p) video at `path`; a context manager.

    `size` is the frames' (w, h). A frame of another size is resized to it. H.264 in yuv420p needs
    an even width and height, so an odd size is padded by one replicated column on the right and/or
    row at the bottom: the video is (w + w % 2, h + h % 2) and `video_size` says so. `crf` is the
    x264/x265 quality (lower is better, 23 is the default). When the PyAV build has no `codec`
    encoder, OpenCV's VideoWriter (MPEG-4 part 2, 'mp4v') is used instead, with a warning.

    frames_written counts the frames encoded; partial_path is where the playable partial video
    was kept after a failure inside the `with` block (None otherwise, or when no frame was written).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int], codec: str = "libx264",
                 crf: int = 23, what: str | None = None):
        self._staged = StagedFile(path, what)
        self.path = self._staged.final
        if self.path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
            raise DehrnetError(f"{self.path}: a video output must end in "
                               f"{', '.join(VIDEO_OUTPUT_SUFFIXES)}")
        width, height = int(size[0]), int(size[1])
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {size}")
        try:
            self.rate = exact_rate(fps)
        except ValueError as e:
            raise DehrnetError(f"{self.path}: {e}; give the output frame rate explicitly") from None
        self.size = (width, height)
        self.video_size = (width + width % 2, height + height % 2)
        self.frames_written = 0
        self.partial_path: Path | None = None
        self._tmp = self._staged.temp
        self._closed = False
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._cv_writer: cv2.VideoWriter | None = None
        if has_encoder(codec):
            self._open_pyav(codec, crf)
        else:
            warn(f"PyAV has no {codec} encoder; writing {self.path.name} with OpenCV (mp4v), which "
                  "browsers may not play")
            self._open_opencv()

    def _open_pyav(self, codec: str, crf: int) -> None:
        suffix = self.path.suffix.lower()
        options = {"movflags": "+faststart"} if suffix in _FASTSTART_SUFFIXES else {}
        try:
            self._container = av.open(str(self._tmp), "w", container_options=options)
            self._stream = self._container.add_stream(codec, rate=self.rate)
            self._stream.width, self._stream.height = self.video_size
            self._stream.pix_fmt = "yuv420p"
            if codec in _CRF_CODECS:
                self._stream.options = {"crf": str(crf)}
        except (av.FFmpegError, OSError, ValueError) as e:
            self._discard()
            raise DehrnetError(f"{self.path}: cannot start a {codec} video ({e})") from None

    def _open_opencv(self) -> None:
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._cv_writer = cv2.VideoWriter(str(self._tmp), fourcc, float(self.rate), self.video_size)
        if not self._cv_writer.isOpened():
            self._discard()
            raise DehrnetError(f"{self.path}: OpenCV cannot write this video; install a PyAV build "
                               "with libx264")

    def write(self, image_bgr: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 BGR frame."""
        if self._closed:
            raise ValueError(f"{self.path}: write() after the video was closed")
        if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 BGR frame, got {image_bgr.shape} "
                             f"{image_bgr.dtype}")
        image = image_bgr
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        pad_w, pad_h = self.video_size[0] - self.size[0], self.video_size[1] - self.size[1]
        if pad_w or pad_h:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        if self._cv_writer is not None:
            self._cv_writer.write(image)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts = self.frames_written  # in units of 1/rate
            frame.time_base = 1 / self.rate
            try:
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
            except OSError as e:
                raise write_error(self._staged.what, e) from None
            except av.FFmpegError as e:
                raise DehrnetError(f"{self.path}: cannot write frame {self.frames_written} ({e})") from None
        self.frames_written += 1

    def _finish_encoder(self) -> None:
        """Flush the encoder and close the container (the temp file is then a complete video)."""
        self._closed = True
        if self._cv_writer is not None:
            self._cv_writer.release()
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def _discard(self) -> None:
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass
        if self._cv_writer is not None:
            self._cv_writer.release()
        self._staged.discard()

    def close(self) -> None:
        """Finish the video and move it onto `path`; safe to call twice."""
        if self._closed:
            return
        try:
            self._finish_encoder()
        except OSError as e:
            self._staged.discard()
            raise write_error(self._staged.what, e) from None
        except av.FFmpegError as e:
            self._staged.discard()
            raise DehrnetError(f"{self.path}: cannot finish the video ({e})") from None
        except BaseException:
            self._staged.discard()
            raise
        self._staged.publish()

    def abort(self) -> None:
        """Finish the video so far and keep it as `<stem>.partial<suffix>` (set in partial_path);
        nothing is kept when no frame was written or the encoder cannot be flushed."""
        if self._closed:
            return
        try:
            self._finish_encoder()
        except Exception:
            self._staged.discard()
            return
        except BaseException:  # a second Ctrl-C during the flush: no partial video, just stop
            self._staged.discard()
            raise
        if self.frames_written == 0:
            self._staged.discard()
            return
        self.partial_path = self._staged.keep_partial()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_image(path: Path, image_bgr: np.ndarray, what: str | None = None) -> Path:
    """Write an (H, W, 3) uint8 BGR image atomically, in the format its extension names; return the path. `what`
    names the output in a write error (default: the path)."""
    path = Path(path).expanduser()
    try:
        ok, encoded = cv2.imencode(path.suffix.lower(), image_bgr)
    except cv2.error:
        ok = False
    if not ok:
        raise DehrnetError(f"{path}: cannot write an image with extension '{path.suffix}'; use .jpg, "
                           ".png, .bmp, .tif or .webp")
    return write_bytes_atomic(path, encoded.tobytes(), what)
