"""Atomic output files, written once for every writer: a `StagedFile` is written under a hidden temp name beside
its final path, then either published onto the final name (one rename) or kept as `NAME.partial.EXT`.

A reader never sees a half-written file under the final name: it is either the old file, the new file, or
absent. The temp name (`.name.partial-HOST-PID-XXXXXXXX.ext`) is hidden, says that it is partial and who writes
it, and keeps the real extension last so that encoders (OpenCV, FFmpeg) pick the right format. A write that
fails (a full disk, a folder gone read-only) raises `OutputWriteError` naming the output and the cause, and
leaves no temp file. A process killed outright (SIGKILL, the OOM killer) cannot clean up: the first output a
later run stages in the same folder removes the temp files of this machine's dead processes there.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dehrnet_cli.errors import DehrnetError, InternalError

# temp_path_for's names: .STEM.partial-HOST-PID-XXXXXXXX.SUFFIX (HOST and PID absent in older versions' names)
TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.partial-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[0-9a-f]{8}"
                       r"(?P<suffix>\.[^.]*)?$")

_swept_folders: set[str] = set()  # folders this process has swept of dead processes' temp files


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


class OutputWriteError(InternalError):
    """An output that could not be written (disk full, permissions changed during the run): exit 1, with the
    output and the cause named, not a traceback."""


def temp_path_for(final: Path) -> Path:
    """A fresh temp path beside `final`, e.g. `out/.video.partial-5d41402a-4242-1f3a9c2e.mp4` (not created)."""
    final = Path(final)
    return final.with_name(f".{final.stem}.partial-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def sweep_dead_temps(folder: Path) -> list[Path]:
    """Remove the temp files in `folder` that processes of this machine left when they were killed (their PID is
    gone), once per folder and process; returns what was removed."""
    key = os.path.abspath(folder)
    if key in _swept_folders:
        return []
    _swept_folders.add(key)
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return []
    host = _host_tag()
    for name in entries:
        match = TEMP_NAME.match(name)
        if match and match["host"] == host and not _alive(int(match["pid"])):
            (Path(folder) / name).unlink(missing_ok=True)
            removed.append(Path(folder) / name)
    return removed


def partial_path_for(final: Path) -> Path:
    """Where an interrupted or failed run keeps an output's frames so far: `out/r.json` -> `out/r.partial.json`."""
    final = Path(final)
    return final.with_name(f"{final.stem}.partial{final.suffix}")


def final_name_of_temp(name: str) -> str | None:
    """The final file name a temp name (`temp_path_for`) stands for, or None for any other name."""
    match = TEMP_NAME.match(name)
    return None if match is None else f"{match['stem']}{match['suffix'] or ''}"


def write_error(what: str, error: OSError) -> OutputWriteError:
    """The one line for an output that failed to write: `what` names it (`--json out.json`)."""
    cause = "no space left on the device" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return OutputWriteError(f"{what}: cannot write it ({cause})")


def prepare_output(final: Path) -> Path:
    """Check that `final` can be written as a file and create its parent folder; return it as a Path. (Commands
    check their outputs before the work, naming the flag: sinks.plan.)"""
    final = Path(final).expanduser()
    if final.is_dir():
        raise DehrnetError(f"{final}: is a folder; give a file name for this output")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DehrnetError(f"{final}: cannot create the output folder {final.parent} ({e.strerror or e})") from None
    return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StagedFile:
    """One output file on its way to `final`: its content goes to `temp` (a hidden name beside it); then
    `publish()` moves it onto `final`, `keep_partial()` onto `partial` (NAME.partial.EXT), or `discard()`
    deletes it. `what` names the output in messages (default: its path)."""

    def __init__(self, final: Path, what: str | None = None) -> None:
        self.final = prepare_output(final)
        sweep_dead_temps(self.final.parent)
        self.temp = temp_path_for(self.final)
        self.partial = partial_path_for(self.final)
        self.what = what or str(self.final)

    def write_bytes(self, data: bytes) -> None:
        """Replace the temp file's content with `data` (flushed to disk)."""
        try:
            with open(self.temp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self.discard()
            raise write_error(self.what, e) from None

    def _move(self, target: Path) -> Path:
        try:
            _fsync(self.temp)
            os.replace(self.temp, target)
        except OSError as e:
            self.discard()
            raise write_error(self.what, e) from None
        return target

    def publish(self) -> Path:
        """Move the complete temp file onto the final name; returns it."""
        return self._move(self.final)

    def keep_partial(self) -> Path | None:
        """Move the temp file onto NAME.partial.EXT and return that path; None when there is no temp file."""
        if not self.temp.exists():
            return None
        return self._move(self.partial)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


@contextmanager
def atomic_path(final: Path, what: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `final`; move it onto `final` on success, delete it on any exception (Ctrl-C
    included). The body creates the file at the yielded path; an existing `final` stays untouched unless the
    body succeeds."""
    staged = StagedFile(final, what)
    try:
        yield staged.temp
    except OSError as e:
        staged.discard()
        raise write_error(staged.what, e) from None
    except BaseException:
        staged.discard()
        raise
    staged.publish()


def write_bytes_atomic(path: Path, data: bytes, what: str | None = None) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename); return the path."""
    staged = StagedFile(path, what)
    staged.write_bytes(data)
    return staged.publish()


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8", what: str | None = None) -> Path:
    """Write `text` to `path` atomically; return the path."""
    return write_bytes_atomic(path, text.encode(encoding), what)


def _json_default(value: Any) -> Any:
    """Let numpy scalars and arrays through json.dumps."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_bytes(obj: Any, indent: int | None = None, allow_nan: bool = True) -> bytes:
    """`obj` as UTF-8 JSON with a final newline (numpy values converted). With `allow_nan=False` a NaN or infinity
    raises ValueError instead of becoming a bare `NaN`, which JSON does not have (pycocotools and browsers refuse
    the file)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=allow_nan)
    return (text + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any, indent: int | None = None, allow_nan: bool = True,
                      what: str | None = None) -> Path:
    """Write `obj` as JSON (`json_bytes`) to `path` atomically; return the path."""
    return write_bytes_atomic(path, json_bytes(obj, indent, allow_nan), what)
