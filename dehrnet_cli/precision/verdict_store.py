"""A JSON file of verdicts by key, {key: verdict.to_dict()}, as the precision check and the guard cache them,
and the library versions such a key names.

A missing, unreadable or corrupt file reads as empty and a malformed entry as absent, so a damaged cache costs a
re-measurement, never a crash; every write replaces the file atomically and keeps the other keys.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from dehrnet_cli.sinks.atomic import write_json_atomic


class _Verdict(Protocol):
    def to_dict(self) -> dict: ...


V = TypeVar("V", bound=_Verdict)


class VerdictStore(Generic[V]):
    """Verdicts of type V in the JSON file `path()` (called at each access: the weights folder can move with
    DEHRNET_HOME); `from_dict` rebuilds one from its entry and raises KeyError, TypeError or ValueError on a
    malformed one."""

    def __init__(self, path: Callable[[], Path], from_dict: Callable[[dict], V]) -> None:
        self.path, self.from_dict = path, from_dict

    def _read(self) -> dict:
        try:
            entries = json.loads(self.path().read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def load(self, key: str) -> V | None:
        """The verdict stored under `key`, or None (also when its entry is malformed)."""
        entry = self._read().get(key)
        try:
            return self.from_dict(entry) if isinstance(entry, dict) else None
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, key: str, verdict: V) -> None:
        """Store `verdict` under `key`, keeping the other keys (a corrupt file is rewritten)."""
        entries = self._read()
        entries[key] = verdict.to_dict()
        write_json_atomic(self.path(), entries, indent=2)


def installed_versions(dists_by_name: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """{name: the installed version of the first of its distributions found, else "none"}: the versions of the
    engines whose kernels a verdict depends on (e.g. {"onnxruntime": ("onnxruntime", "onnxruntime-gpu")})."""
    def installed(dists: tuple[str, ...]) -> str:
        for dist in dists:
            try:
                return importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        return "none"

    return {name: installed(dists) for name, dists in dists_by_name.items()}
