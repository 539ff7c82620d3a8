"""The weights registry: the manifest of known checkpoints, the cache folder, and checksummed,
resumable downloads (stdlib urllib). No torch, no network and no disk access at import."""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import __version__
from .errors import DehrnetError

# the committed manifest; a module constant so tests can point it elsewhere
MANIFEST_PATH = Path(__file__).absolute().parent.parent / "weights" / "manifest.json"

FORMATS = ("official", "mmpose", "dehrnet")
_NAME_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_URL_RE = re.compile(r"^https?://\S+$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsEntry:
    """One known checkpoint. `input_size` is (w, h) in pixels, like `models` configs."""

    name: str  # "arch.tag", e.g. "hrnet_w32.coco_384x288"
    config: str  # a named config of `models`, e.g. "hrnet_w32_384x288"
    input_size: tuple[int, int]
    urls: tuple[str, ...]  # tried in order
    filename: str  # the file name in the cache folder
    sha256: str | None  # full sha256 when published
    sha256_prefix: str | None  # leading hex digits (openmmlab file names carry 8)
    size_bytes: int | None
    license: str
    source: str  # the page that publishes the file
    format: str  # one of FORMATS: how the state-dict keys are laid out
    description: str = ""

    @property
    def input_label(self) -> str:
        """"HxW" as in the config names, e.g. "384x288"."""
        return f"{self.input_size[1]}x{self.input_size[0]}"


@dataclass(frozen=True)
class DetectorEntry:
    """A YOLO person detector that ultralytics downloads itself (dehrnet only lists it)."""

    filename: str
    url: str
    license: str
    source: str


class CachedWeights(NamedTuple):
    """Result of `verify_cached` for one entry: status is "ok", "mismatch" or "missing"; `checked` says
    which hash was compared ("sha256" or "sha256 prefix"; "" when missing)."""

    name: str
    path: Path
    status: str
    checked: str


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a repeated key (two entries with one name) is an error, not last-one-wins."""
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"repeated name(s) {', '.join(repeated)}")
    return dict(pairs)


def _read_manifest(path: Path | None) -> tuple[Path, dict[str, Any]]:
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except FileNotFoundError:
        raise DehrnetError(f"weights manifest {path} is missing; reinstall dehrnet or restore the file "
                           "from git") from None
    except (OSError, ValueError) as e:  # includes JSONDecodeError and UnicodeDecodeError
        raise DehrnetError(f"weights manifest {path} is unreadable ({e}); restore it from git") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("checkpoints"), dict):
        raise DehrnetError(f"weights manifest {path}: expected an object with a 'checkpoints' object; "
                           "see weights/README.md")
    return path, doc


def _check_hex(value: Any, lengths: tuple[int, int], where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX_RE.match(value) or not lengths[0] <= len(value) <= lengths[1]:
        raise DehrnetError(f"{where}: expected {lengths[0]}-{lengths[1]} lowercase hex digits, got {value!r}")
    return value


def _parse_entry(name: str, raw: Any, where: str) -> WeightsEntry:
    where = f"{where}: entry '{name}'"
    if not _NAME_RE.match(name):
        raise DehrnetError(f"{where}: names are 'arch.tag' in lowercase letters, digits and '_'")
    if not isinstance(raw, dict):
        raise DehrnetError(f"{where}: expected an object")
    required = ("config", "input_size", "urls", "license", "source", "format")
    missing = [k for k in required if k not in raw]
    if missing:
        raise DehrnetError(f"{where}: missing field(s) {', '.join(missing)}")
    size = raw["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise DehrnetError(f"{where}: input_size must be [w, h] positive integers, got {size!r}")
    urls = raw["urls"]
    if not (isinstance(urls, list) and urls and all(isinstance(u, str) and _URL_RE.match(u) for u in urls)):
        raise DehrnetError(f"{where}: urls must be a non-empty list of http(s) URLs, got {urls!r}")
    if raw["format"] not in FORMATS:
        raise DehrnetError(f"{where}: format must be one of {', '.join(FORMATS)}, got {raw['format']!r}")
    sha256 = _check_hex(raw.get("sha256"), (64, 64), f"{where} sha256")
    prefix = _check_hex(raw.get("sha256_prefix"), (8, 63), f"{where} sha256_prefix")
    if sha256 is None and prefix is None:
        raise DehrnetError(f"{where}: give sha256 or sha256_prefix (no entry is downloaded unverified)")
    if sha256 and prefix and not sha256.startswith(prefix):
        raise DehrnetError(f"{where}: sha256_prefix {prefix} does not start sha256 {sha256}")
    filename = raw.get("filename") or Path(urllib.parse.urlparse(urls[0]).path).name
    if not filename or "/" in filename or "\\" in filename or filename.startswith("."):
        raise DehrnetError(f"{where}: filename must be a plain file name, got {filename!r}")
    size_bytes = raw.get("size_bytes")
    if size_bytes is not None and not (isinstance(size_bytes, int) and size_bytes > 0):
        raise DehrnetError(f"{where}: size_bytes must be a positive integer or null, got {size_bytes!r}")
    for key in ("config", "license", "source"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise DehrnetError(f"{where}: {key} must be a non-empty string")
    return WeightsEntry(name=name, config=raw["config"], input_size=(size[0], size[1]), urls=tuple(urls),
                        filename=filename, sha256=sha256, sha256_prefix=prefix, size_bytes=size_bytes,
                        license=raw["license"], source=raw["source"], format=raw["format"],
                        description=str(raw.get("description", "")))


def load_manifest(path: Path | None = None) -> dict[str, WeightsEntry]:
    """The checkpoints of the manifest (default: weights/manifest.json), by name, validated."""
    path, doc = _read_manifest(path)
    entries = {name: _parse_entry(name, raw, f"weights manifest {path}") for name, raw in
               doc["checkpoints"].items()}
    by_file: dict[str, str] = {}
    for entry in entries.values():
        if entry.filename in by_file:
            raise DehrnetError(f"weights manifest {path}: entries '{by_file[entry.filename]}' and "
                               f"'{entry.name}' share the file name {entry.filename}; give one a 'filename'")
        by_file[entry.filename] = entry.name
    return entries


def load_detectors(path: Path | None = None) -> dict[str, DetectorEntry]:
    """The person detectors listed in the manifest's 'detectors' section, by file name."""
    path, doc = _read_manifest(path)
    detectors = {}
    for filename, raw in doc.get("detectors", {}).items():
        fields = ("url", "license", "source")
        if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in fields):
            raise DehrnetError(f"weights manifest {path}: detector '{filename}' needs {', '.join(fields)}")
        detectors[filename] = DetectorEntry(filename, raw["url"], raw["license"], raw["source"])
    return detectors


def weights_dir() -> Path:
    """Where downloaded weights live: $DEHRNET_HOME/weights, else <repo>/weights in a writable source
    checkout, else $XDG_CACHE_HOME/dehrnet/weights (default ~/.cache/dehrnet/weights). Read at call time."""
    home = os.environ.get("DEHRNET_HOME")
    if home:
        return Path(home).expanduser() / "weights"
    repo_weights = MANIFEST_PATH.parent
    if MANIFEST_PATH.is_file() and os.access(repo_weights, os.W_OK):
        return repo_weights
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "dehrnet" / "weights"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_matches(path: Path, sha256: str | None, sha256_prefix: str | None) -> tuple[bool, str, str]:
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


def _offline() -> bool:
    return os.environ.get("DEHRNET_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


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
    """Yield `advance(n_bytes)`: a rich bar on stderr when enabled, else a no-op."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


def _stream(response: http.client.HTTPResponse, part: Path, start: int, total: int | None, url: str,
            dest: Path, progress: bool) -> None:
    """Append the body to `part` (truncating first when start is 0); the .part survives interruptions."""
    written = start
    bar = _progress_bar(progress and sys.stderr.isatty(), dest.name, total, start)
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


def download(url: str, dest: Path, sha256: str | None = None, sha256_prefix: str | None = None,
             progress: bool = True, timeout: float = 30) -> Path:
    """Fetch `url` to `dest` through `dest`.part (resumed with an HTTP Range request when it exists),
    check the hash (full sha256 when given, else the prefix) and move it into place atomically.

    Raises DehrnetError (exit 2) when offline (DEHRNET_OFFLINE set or the host unreachable: the message
    names the URL and where to place a manual download), interrupted (the .part is kept for the next
    call to resume), out of disk space, or on a checksum mismatch (the file is removed).
    """
    dest = Path(dest)
    if _offline():
        raise DehrnetError(f"offline (DEHRNET_OFFLINE is set): {_manual_hint(url, dest)}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DehrnetError(f"cannot create {dest.parent} ({e.strerror}); set DEHRNET_HOME to a writable "
                           "folder") from None
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
    matches, checked, got = _hash_matches(part, sha256, sha256_prefix)
    if not matches:
        part.unlink(missing_ok=True)
        expected = sha256 or sha256_prefix
        raise DehrnetError(f"checksum mismatch for {url}: expected {checked} {expected}, got {got}; the "
                           "file was removed: retry, or report it if the file changed upstream")
    os.replace(part, dest)
    return dest


def get_entry(name: str, manifest: Path | None = None) -> WeightsEntry:
    """The manifest entry called `name`; an unknown name raises DehrnetError with close matches."""
    entries = load_manifest(manifest)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DehrnetError(f"unknown weights '{name}'; {hint}`dehrnet weights list` shows the known names "
                       "(or pass --weights FILE for a local checkpoint)")


def entry_path(entry: WeightsEntry) -> Path:
    """Where `entry` is cached (it may not exist yet)."""
    return weights_dir() / entry.filename


def check_entry(entry: WeightsEntry, path: Path | None = None) -> CachedWeights:
    """Hash the file at `path` (default: the cached file) against `entry`: ok, mismatch or missing."""
    path = entry_path(entry) if path is None else Path(path)
    if not path.is_file():
        return CachedWeights(entry.name, path, "missing", "")
    matches, checked, _ = _hash_matches(path, entry.sha256, entry.sha256_prefix)
    return CachedWeights(entry.name, path, "ok" if matches else "mismatch", checked)


def fetch(entry: WeightsEntry, dest: Path | None = None, progress: bool = True) -> Path:
    """Download `entry` to `dest` (default: the cache), trying its URLs in order; the last error is raised."""
    dest = entry_path(entry) if dest is None else Path(dest)
    *mirrors, last = entry.urls
    for url in mirrors:
        with contextlib.suppress(DehrnetError):
            return download(url, dest, entry.sha256, entry.sha256_prefix, progress=progress)
    return download(last, dest, entry.sha256, entry.sha256_prefix, progress=progress)


def resolve(name: str, manifest: Path | None = None, progress: bool = True) -> Path:
    """Registry name -> the cached checkpoint file, downloaded (and verified) on first use.

    An existing cached file is returned without hashing it again (`dehrnet weights verify` does that).
    """
    entry = get_entry(name, manifest)
    path = entry_path(entry)
    return path if path.is_file() else fetch(entry, path, progress=progress)


def verify_cached(manifest: Path | None = None) -> list[CachedWeights]:
    """Hash every manifest entry's cached file: ok, mismatch or missing, with the hash that was checked."""
    return [check_entry(entry) for entry in load_manifest(manifest).values()]
