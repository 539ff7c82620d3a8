"""The manifest of known checkpoints (weights/manifest.json): entries validated, looked up by name with
close matches, and the person detectors ultralytics fetches itself. No torch, no network at import.
"""

from __future__ import annotations

import difflib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dehrnet_cli.errors import DehrnetError

# the committed manifest; a module constant so tests can point it elsewhere
MANIFEST_PATH = Path(__file__).absolute().parents[2] / "weights" / "manifest.json"

FORMATS = ("official", "mmpose", "dehrnet")

_NAME_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")

_HEX_RE = re.compile(r"^[0-9a-f]+$")

_URL_RE = re.compile(r"^https?://\S+$")


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
    """A YOLO person detector. With a published sha256, a file found under its name is checked against it and
    dehrnet downloads it itself (checked); without one, ultralytics downloads it (the file is still only opened
    in ultralytics' safe-load mode)."""

    filename: str
    url: str
    license: str
    source: str
    sha256: str | None = None


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
        sha256 = _check_hex(raw.get("sha256"), (64, 64), f"weights manifest {path}: detector '{filename}' sha256")
        detectors[filename] = DetectorEntry(filename, raw["url"], raw["license"], raw["source"], sha256)
    return detectors


def get_entry(name: str, manifest: Path | None = None) -> WeightsEntry:
    """The manifest entry called `name`; an unknown name raises DehrnetError with close matches."""
    entries = load_manifest(manifest)
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DehrnetError(f"unknown weights '{name}'; {hint}`dehrnet weights list` shows the known names "
                       "(or pass --weights FILE for a local checkpoint)")
