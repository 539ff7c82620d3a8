"""Atomic output files: write a temp file in the same folder, then os.replace it onto the final name.

A reader never sees a half-written file under the final name: it is either the old file, the new
file, or absent. The temp name (`.name.partial-XXXXXXXX.ext`) is hidden, says that it is partial,
and keeps the real extension last so that encoders (OpenCV, FFmpeg) pick the right format.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dehrnet_cli.errors import DehrnetError


def temp_path_for(final: Path) -> Path:
    """A fresh temp path beside `final`, e.g. `out/.video.partial-1f3a9c2e.mp4` (not created)."""
    final = Path(final)
    return final.with_name(f".{final.stem}.partial-{secrets.token_hex(4)}{final.suffix}")


def partial_path_for(final: Path) -> Path:
    """Where an interrupted or failed run keeps an output's frames so far: `out/r.json` -> `out/r.partial.json`."""
    final = Path(final)
    return final.with_name(f"{final.stem}.partial{final.suffix}")


def prepare_output(final: Path) -> Path:
    """Check that `final` can be written as a file and create its parent folder; return it as a Path. (Commands
    check their outputs before the work, naming the flag: sinks.locations.)"""
    final = Path(final).expanduser()
    if final.is_dir():
        raise DehrnetError(f"{final}: is a folder; give a file name for this output")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DehrnetError(f"{final}: cannot create the output folder {final.parent} ({e.strerror or e})") from None
    return final


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; move it onto `final` on success, delete it on any exception.

    The body must create the file at the yielded path. KeyboardInterrupt also removes the temp file,
    and an existing file at `final` stays untouched unless the body succeeds.
    """
    final = prepare_output(final)
    tmp = temp_path_for(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename); return the path."""
    final = Path(path).expanduser()
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return final


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; return the path."""
    return write_bytes_atomic(path, text.encode(encoding))


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


def write_json_atomic(path: Path, obj: Any, indent: int | None = None, allow_nan: bool = True) -> Path:
    """Write `obj` as JSON (UTF-8, numpy values converted) to `path` atomically; return the path. With
    `allow_nan=False` a NaN or infinity raises ValueError instead of becoming a bare `NaN`, which JSON does not
    have (pycocotools and browsers refuse the file)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=allow_nan)
    return write_text_atomic(path, text + "\n")
