"""Checksummed, resumable downloads with the standard library (urllib): a `.part` file resumed by an HTTP
Range request, the hash checked, then moved into place atomically. One download per target file at a time: a
second process or thread wanting the same file waits on its lock (`filelock`, a hidden `.NAME.lock` beside it,
left in place as lock files must be) and then uses the file the first one verified. No network access at import.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dehrnet_cli import __version__
from dehrnet_cli.env import interruptible, offline
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import note

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks; remembered for the process while the file keeps its size and
    modification time (a run keys exports, verdicts and checks on one checkpoint's hash several times)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}  # (real path, size, mtime_ns) -> sha256


def hash_matches(path: Path, sha256: str | None, sha256_prefix: str | None) -> tuple[bool, str, str]:
    """(matches, which hash was checked, the file's sha256)."""
    got = sha256_file(path)
    if sha256:
        return got == sha256.lower(), "sha256", got
    if sha256_prefix:
        return got.startswith(sha256_prefix.lower()), "sha256 prefix", got
    return True, "none", got


def _human(n_bytes: float) -> str:
    """Decimal units, as shown by download tools: 1.5 MB."""
    if n_bytes < 1000:
        return f"{n_bytes:.0f} B"
    for unit in ("KB", "MB"):
        n_bytes /= 1000
        if n_bytes < 1000:
            return f"{n_bytes:.1f} {unit}"
    return f"{n_bytes / 1000:.1f} GB"


def _manual_hint(url: str, dest: Path) -> str:
    return f"download {url} elsewhere and place it at {dest}, or pass --weights FILE"


def _interrupted(url: str, part: Path, dest: Path, detail: str) -> DehrnetError:
    return DehrnetError(f"download of {url} interrupted after {detail}; run the same command again to "
                        f"resume from {part}, or {_manual_hint(url, dest)}")


def _open(url: str, offset: int, timeout: float, dest: Path) -> http.client.HTTPResponse | None:
    """GET `url` from byte `offset`; None when the server refuses that range (HTTP 416)."""
    headers = {"User-Agent": f"dehrnet/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None
        raise DehrnetError(f"{url} answered HTTP {e.code} {e.reason}; {_manual_hint(url, dest)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DehrnetError(f"cannot reach {url} ({reason}); {_manual_hint(url, dest)}") from None
    except ValueError as e:  # not a URL at all
        raise DehrnetError(f"{url!r} is not a valid download URL ({e}); give an https:// URL") from None


def _body_range(response: http.client.HTTPResponse, offset: int) -> tuple[int, int | None] | None:
    """(first byte of the body, total file size or None); None for a 206 that does not start at `offset`."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if getattr(response, "status", None) == 206:
        match = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not match or int(match.group(1)) != offset:
            return None
        return offset, int(match.group(3)) if match.group(3) != "*" else None
    return 0, length  # 200 (or a file:// URL): the server ignored Range, so start over


@contextlib.contextmanager
def _progress_bar(enabled: bool, label: str, total: int | None, done: int) -> Iterator[Any]:
    """Yield `advance(n_bytes)`: a rich bar on stderr when enabled (and stderr is a terminal), else a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from dehrnet_cli.progress import progress_bar

    with progress_bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


def _stream(response: http.client.HTTPResponse, part: Path, start: int, total: int | None, url: str,
            dest: Path, progress: bool) -> None:
    """Append the body to `part` (truncating first when start is 0); the .part survives interruptions."""
    written = start
    bar = _progress_bar(progress, dest.name, total, start)
    try:
        with open(part, "ab" if start else "wb") as out, bar as advance:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:  # socket errors, timeouts, short reads
                    raise _interrupted(url, part, dest, f"{_human(written)} ({e})") from None
                if not chunk:
                    break
                out.write(chunk)
                written += len(chunk)
                advance(len(chunk))
    except OSError as e:  # writing the .part (the read errors above are DehrnetErrors)
        if e.errno == errno.ENOSPC:
            needed = f"{_human(total)} in all" if total else f"more than {_human(written)}"
            raise DehrnetError(f"disk full in {part.parent} while downloading {url}: it needs {needed}; free "
                               "space (the partial file is kept and resumes) or set DEHRNET_HOME to a larger "
                               "disk") from None
        raise DehrnetError(f"cannot write {part} ({e.strerror or e}); check the folder's permissions or set "
                           "DEHRNET_HOME") from None
    if total is not None and written < total:
        raise _interrupted(url, part, dest, f"{_human(written)} of {_human(total)}")


def _check_space(folder: Path, needed: int | None, url: str) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DehrnetError(f"not enough disk space in {folder} for {url}: needs {_human(needed)}, "
                           f"{_human(free)} free; free space or set DEHRNET_HOME to a larger disk")


def lock_path(dest: Path) -> Path:
    """The lock file of downloads to `dest`."""
    return dest.with_name(f".{dest.name}.lock")


def _stat(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of a file, None when there is none: tells whether a file was replaced."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@contextlib.contextmanager
def _one_download_of(dest: Path) -> Iterator[None]:
    """Hold the lock of `dest` (`.NAME.lock` beside it) for this block, waiting for another holder to finish."""
    from filelock import FileLock, Timeout

    lock = FileLock(lock_path(dest))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            note(f"waiting for another download of {dest.name} to finish")
            lock.acquire()
    except OSError as e:
        raise DehrnetError(f"cannot lock {dest} for the download ({e.strerror or e}); check the folder's "
                           "permissions or set DEHRNET_HOME") from None
    try:
        yield
    finally:
        lock.release()


def download(url: str, dest: Path, sha256: str | None = None, sha256_prefix: str | None = None,
             progress: bool = True, timeout: float = 30) -> Path:
    """Fetch `url` to `dest` through `dest`.part (resumed with an HTTP Range request when it exists),
    check the hash (full sha256 when given, else the prefix) and move it into place atomically.

    One download of `dest` at a time: a second call waits for the first and, when that one put a file with
    the expected hash in place, returns it without downloading.

    Raises DehrnetError (exit 2) when offline (DEHRNET_OFFLINE set or the host unreachable: the message
    names the URL and where to place a manual download), interrupted (the .part is kept for the next
    call to resume), out of disk space, or on a checksum mismatch (the file is removed).
    """
    dest = Path(dest)
    if offline():
        raise DehrnetError(f"offline (DEHRNET_OFFLINE is set): {_manual_hint(url, dest)}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DehrnetError(f"cannot create {dest.parent} ({e.strerror}); set DEHRNET_HOME to a writable "
                           "folder") from None
    before = _stat(dest)
    with interruptible(), _one_download_of(dest):  # Ctrl-C stops a download even while a model is being built
        replaced = _stat(dest) not in (None, before)  # another download put a new file there meanwhile
        if replaced and (sha256 or sha256_prefix) and hash_matches(dest, sha256, sha256_prefix)[0]:
            return dest
        return _download_locked(url, dest, sha256, sha256_prefix, progress, timeout)


def _download_locked(url: str, dest: Path, sha256: str | None, sha256_prefix: str | None, progress: bool,
                     timeout: float) -> Path:
    """`download`'s transfer, check and move, while this process holds the lock of `dest`."""
    part = dest.with_name(dest.name + ".part")
    for _attempt in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        response = _open(url, offset, timeout, dest)
        body = None if response is None else _body_range(response, offset)
        if body is None:  # the server cannot resume this .part: drop it and fetch from the start
            if response is not None:
                response.close()
            part.unlink(missing_ok=True)
            continue
        with response:
            start, total = body
            _check_space(dest.parent, None if total is None else total - start, url)
            _stream(response, part, start, total, url, dest, progress)
        break
    else:
        raise DehrnetError(f"{url} refuses to resume {part}; delete it and retry, or "
                           f"{_manual_hint(url, dest)}")
    matches, checked, got = hash_matches(part, sha256, sha256_prefix)
    if not matches:
        part.unlink(missing_ok=True)
        expected = sha256 or sha256_prefix
        raise DehrnetError(f"checksum mismatch for {url}: expected {checked} {expected}, got {got}; the "
                           "file was removed: retry, or report it if the file changed upstream")
    os.replace(part, dest)
    return dest
