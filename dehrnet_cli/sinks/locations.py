"""Output locations checked before any work starts: every output can be written where it is asked for (its
folder exists or can be created, and is writable), is of the right kind (one file, or a folder of files), and
no two outputs, nor an output and an input, name the same path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli.errors import DehrnetError


@dataclass(frozen=True)
class OutputLocation:
    """One output a command will write: `flag` names it in messages ("--json"); `folder`: a folder of files
    (annotated images, crops), else one file."""

    flag: str
    path: Path
    folder: bool = False


def _same_path_key(path: Path) -> str:
    """A key equal for two spellings of one path (relative or absolute, through symlinks)."""
    return os.path.normcase(str(Path(path).expanduser().resolve()))


def _nearest_existing(path: Path) -> Path:
    """`path` itself when it exists, else its closest existing ancestor (the folder a mkdir starts in)."""
    current = Path(os.path.abspath(path))
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _probe_writable(folder: Path) -> OSError | None:
    """Create and delete an unnamed temp file in `folder` (what really writing there needs: permission bits,
    read-only mounts and ACLs alike); the error, or None when it can be written."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as e:
        return e


def check_location(location: OutputLocation) -> None:
    """Refuse (DehrnetError naming the flag) an output that cannot be written as asked: a file output naming a
    folder, a folder output naming a file, a parent that is a file, or a folder that cannot be written."""
    flag, path = location.flag, Path(location.path).expanduser()
    if path.is_dir() and not location.folder:
        raise DehrnetError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and not path.is_dir() and location.folder:
        raise DehrnetError(f"{flag} {path}: exists and is not a folder; give a folder")
    start = _nearest_existing(path if location.folder else path.parent)
    if not start.is_dir():
        raise DehrnetError(f"{flag} {path}: {start} is a file, so no folder can be created there")
    error = _probe_writable(start)
    if error is not None:
        raise DehrnetError(f"{flag} {path}: cannot write in {start} ({error.strerror or error})")


def check_locations(outputs: Iterable[OutputLocation], inputs: Iterable[tuple[str, Path]] = ()) -> None:
    """`check_location` for every output, then refuse two outputs naming one path and an output naming an input
    (`inputs`: (what it is, e.g. "--boxes", path) of the files the command reads)."""
    outputs = list(outputs)
    for location in outputs:
        check_location(location)
    read: dict[str, str] = {_same_path_key(path): what for what, path in inputs if path is not None}
    written: dict[str, OutputLocation] = {}
    for location in outputs:
        key = _same_path_key(location.path)
        if key in read:
            raise DehrnetError(f"{location.flag} {location.path}: is the {read[key]} input, which this would "
                               "overwrite; give another name")
        if key in written:
            other = written[key]
            raise DehrnetError(f"{other.flag} {other.path} and {location.flag} {location.path}: name the same "
                               "path, so one output would overwrite the other; give each its own")
        written[key] = location
