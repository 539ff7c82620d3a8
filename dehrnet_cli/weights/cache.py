"""The weights cache: where checkpoints live, which are there and intact, and fetching one on first use."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import NamedTuple

from dehrnet_cli import env
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.weights import manifest as manifest_module
from dehrnet_cli.weights.download import download, hash_matches
from dehrnet_cli.weights.manifest import WeightsEntry, get_entry, load_manifest


class CachedWeights(NamedTuple):
    """Result of `verify_cached` for one entry: status is "ok", "mismatch" or "missing"; `checked` says
    which hash was compared ("sha256" or "sha256 prefix"; "" when missing)."""

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


def check_entry(entry: WeightsEntry, path: Path | None = None) -> CachedWeights:
    """Hash the file at `path` (default: the cached file) against `entry`: ok, mismatch or missing."""
    path = entry_path(entry) if path is None else Path(path)
    if not path.is_file():
        return CachedWeights(entry.name, path, "missing", "")
    matches, checked, _ = hash_matches(path, entry.sha256, entry.sha256_prefix)
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
