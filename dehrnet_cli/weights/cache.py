"""The weights cache: where checkpoints live, which are there and intact, and fetching one on first use."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import NamedTuple

from dehrnet_cli import env
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.weights import manifest as manifest_module
from dehrnet_cli.weights.download import download, hash_matches, sha256_file
from dehrnet_cli.weights.manifest import WeightsEntry, get_entry, load_manifest

RECORDED = "sha256 (recorded at download)"


class CachedWeights(NamedTuple):
    """Result of `verify_cached` for one entry: status is "ok", "mismatch" or "missing"; `checked` says
    which hash was compared ("sha256" from the manifest, RECORDED, or "sha256 prefix"; "" when missing)."""

    name: str
    path: Path
    status: str
    checked: str


def weights_dir() -> Path:
    """Where downloaded weights live: $DEHRNET_HOME/weights, else <repo>/weights in a writable source
    checkout, else $XDG_CACHE_HOME/dehrnet/weights (default ~/.cache/dehrnet/weights). Read at call time."""
    home = env.home()
    if home:
        return Path(home).expanduser() / "weights"
    repo_weights = manifest_module.MANIFEST_PATH.parent  # read at call time: tests point it elsewhere
    if manifest_module.MANIFEST_PATH.is_file() and os.access(repo_weights, os.W_OK):
        return repo_weights
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "dehrnet" / "weights"


def entry_path(entry: WeightsEntry) -> Path:
    """Where `entry` is cached (it may not exist yet)."""
    return weights_dir() / entry.filename


def _record_path(path: Path) -> Path:
    """Where the full sha256 of a download verified only by its prefix is recorded: NAME.sha256 beside it."""
    return path.with_name(path.name + ".sha256")


def _record_sha256(path: Path) -> None:
    """Write `sha256sum`'s line for `path` (so `sha256sum -c NAME.sha256` checks it too), atomically."""
    record = _record_path(path)
    tmp = record.with_name(f".{record.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(f"{sha256_file(path)}  {path.name}\n")
        os.replace(tmp, record)
    finally:
        tmp.unlink(missing_ok=True)


def _recorded_sha256(entry: WeightsEntry, path: Path) -> str | None:
    """The full sha256 recorded when `path` was downloaded and verified, if it agrees with the entry's prefix."""
    try:
        recorded = _record_path(path).read_text().split()[0].lower()
    except (OSError, IndexError):
        return None
    prefix_ok = entry.sha256_prefix is None or recorded.startswith(entry.sha256_prefix.lower())
    return recorded if re.fullmatch(r"[0-9a-f]{64}", recorded) and prefix_ok else None


def check_entry(entry: WeightsEntry, path: Path | None = None) -> CachedWeights:
    """Hash the file at `path` (default: the cached file) against `entry`: ok, mismatch or missing. An entry
    with only a sha256 prefix is checked against the full sha256 recorded at its verified download, when
    there is one (a file placed by hand has none: then the prefix is all that can be checked)."""
    path = entry_path(entry) if path is None else Path(path)
    if not path.is_file():
        return CachedWeights(entry.name, path, "missing", "")
    recorded = None if entry.sha256 else _recorded_sha256(entry, path)
    matches, checked, _ = hash_matches(path, entry.sha256 or recorded, entry.sha256_prefix)
    return CachedWeights(entry.name, path, "ok" if matches else "mismatch", RECORDED if recorded else checked)


def _download_first(entry: WeightsEntry, dest: Path, progress: bool) -> Path:
    """Download `entry` to `dest`, trying its URLs in order; the last error is raised."""
    *mirrors, last = entry.urls
    for url in mirrors:
        with contextlib.suppress(DehrnetError):
            return download(url, dest, entry.sha256, entry.sha256_prefix, progress=progress)
    return download(last, dest, entry.sha256, entry.sha256_prefix, progress=progress)


def fetch(entry: WeightsEntry, dest: Path | None = None, progress: bool = True) -> Path:
    """Download `entry` to `dest` (default: the cache), trying its URLs in order; the last error is raised.
    When the manifest has only a sha256 prefix, the verified file's full sha256 is recorded beside it."""
    dest = entry_path(entry) if dest is None else Path(dest)
    _record_path(dest).unlink(missing_ok=True)  # a record belongs to the file it was made for
    path = _download_first(entry, dest, progress)
    if entry.sha256 is None:
        _record_sha256(path)
    return path


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
