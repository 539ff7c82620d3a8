"""The run plan: every file a command reads and every file it will write, made before any heavy import or model
work, and one check that refuses a write onto a read or onto another write.

    plan = RunPlan()
    plan.read("source", "clip.mp4"); plan.read("--weights", "best.pt")
    plan.write("--json", "out.json")                                   # and its partial name out.partial.json
    plan.write("--out", "annotated/", folder=True, files=[...])        # the files a folder output will hold
    plan.check()                                                       # DehrnetError naming both files, or None

Two paths are the same file when they resolve to one path (relative or absolute spellings, symlinks) or, for
files that exist, when they are one inode (hard links). Every output must also be writable where it is asked
for: its folder exists or can be created and is writable, and it is of the right kind (a file, or a folder).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import partial_path_for


@dataclass(frozen=True)
class PlannedRead:
    what: str  # "--weights", "source", "the annotation file"
    path: Path


@dataclass(frozen=True)
class PlannedWrite:
    """One output: `flag` names it in messages; `folder`: a folder of files (annotated images, crops), else one
    file, which has a partial twin NAME.partial.EXT when `partial`. A folder's `files` are the files it will hold
    when they are known before the work; `claims(relative_name)` says whether a file of another name may be
    written there (crops: their number is known only at the end)."""

    flag: str
    path: Path
    folder: bool = False
    partial: bool = True
    files: tuple[Path, ...] = ()
    claims: Callable[[str], bool] | None = None

    def targets(self) -> list[tuple[Path, str]]:
        """(file, how it relates to the output) of every file this output may write, known up front."""
        if self.folder:
            return [(f, "holds") for f in self.files]
        found = [(self.path, "is")]
        if self.partial:
            found.append((partial_path_for(self.path), "keeps its partial output in"))
        return found

    def describe(self, target: Path, relation: str) -> str:
        named = f"{self.flag} {self.path}"
        return named if relation == "is" else f"{named} (which {relation} {target})"


def same_file_key(path: Path) -> str:
    """A key equal for two spellings of one path (relative or absolute, through symlinks; a link that loops is
    taken as it is written)."""
    path = Path(path).expanduser()
    try:
        return os.path.normcase(str(path.resolve()))
    except (OSError, RuntimeError):  # a symlink loop
        return os.path.normcase(os.path.abspath(path))


def inode_key(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file (hard links share it), else None."""
    try:
        info = os.stat(Path(path).expanduser())
    except OSError:
        return None
    return info.st_dev, info.st_ino


def nearest_existing(path: Path) -> Path:
    """`path` itself when it exists, else its closest existing ancestor (the folder a mkdir starts in)."""
    current = Path(os.path.abspath(Path(path).expanduser()))
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


def check_writable(flag: str, path: Path, folder: bool = False) -> None:
    """Refuse (DehrnetError naming the flag) an output that cannot be written as asked: a file output naming a
    folder, a folder output naming a file, a parent that is a file, or a folder that cannot be written."""
    path = Path(path).expanduser()
    if path.is_dir() and not folder:
        raise DehrnetError(f"{flag} {path}: is a folder; give a file name")
    if path.exists() and not path.is_dir() and folder:
        raise DehrnetError(f"{flag} {path}: exists and is not a folder; give a folder")
    start = nearest_existing(path if folder else path.parent)
    if not start.is_dir():
        raise DehrnetError(f"{flag} {path}: {start} is a file, so no folder can be created there")
    error = _probe_writable(start)
    if error is not None:
        raise DehrnetError(f"{flag} {path}: cannot write in {start} ({error.strerror or error})")


@dataclass
class RunPlan:
    """What a run reads and writes (see the module docstring)."""

    reads: list[PlannedRead] = field(default_factory=list)
    writes: list[PlannedWrite] = field(default_factory=list)

    def read(self, what: str, path: str | Path | None) -> None:
        if path is not None:
            self.reads.append(PlannedRead(what, Path(path).expanduser()))

    def read_all(self, what: str, paths: Iterable[Path]) -> None:
        for path in paths:
            self.read(what, path)

    def write(self, flag: str, path: str | Path | None, *, folder: bool = False, partial: bool = True,
              files: Iterable[Path] = (), claims: Callable[[str], bool] | None = None) -> Path | None:
        """Add an output; returns its path (None when not asked for)."""
        if path is None:
            return None
        path = Path(path).expanduser()
        self.writes.append(PlannedWrite(flag, path, folder, partial, tuple(files), claims))
        return path

    def check(self) -> None:
        """Refuse an output that cannot be written where asked, that would overwrite a file this run reads, or
        that would overwrite another output (all in one line naming both)."""
        for write in self.writes:
            check_writable(write.flag, write.path, write.folder)
        reads_by_path = {same_file_key(r.path): r for r in self.reads}
        reads_by_inode = {key: r for r in self.reads if (key := inode_key(r.path)) is not None}
        written: dict[str, tuple[PlannedWrite, Path, str]] = {}
        for write in self.writes:
            for target, relation in write.targets():
                read = reads_by_path.get(same_file_key(target)) or reads_by_inode.get(inode_key(target) or (-1, -1))
                if read is not None:
                    raise DehrnetError(f"{write.describe(target, relation)}: is the {read.what} {read.path}, which "
                                       "this run reads and would overwrite; give another name")
                key = same_file_key(target)
                if key in written:
                    other, other_target, other_relation = written[key]
                    raise DehrnetError(f"{other.describe(other_target, other_relation)} and "
                                       f"{write.describe(target, relation)}: name the same path, so one output "
                                       "would overwrite the other; give each its own")
                written[key] = (write, target, relation)
        self._check_folders(written)

    def _check_folders(self, written: dict[str, tuple[PlannedWrite, Path, str]]) -> None:
        """Folder outputs: no two on one folder, and none whose unplanned names (`claims`) may hit a file this
        run reads or another output's file."""
        folders = [w for w in self.writes if w.folder]
        seen: dict[str, PlannedWrite] = {}
        for write in folders:
            key = same_file_key(write.path)
            if key in seen:
                raise DehrnetError(f"{seen[key].flag} {seen[key].path} and {write.flag} {write.path}: name the same "
                                   "folder, so their files would mix; give each its own")
            seen[key] = write
        claimed = [w for w in folders if w.claims is not None]
        if not claimed:
            return
        others = [(r.path, f"the {r.what} {r.path}, which this run reads") for r in self.reads]
        others += [(target, f"{w.describe(target, rel)}") for w, target, rel in written.values()]
        for write in claimed:
            root = Path(same_file_key(write.path))
            for path, described in others:
                resolved = Path(same_file_key(path))
                if resolved.is_relative_to(root) and write.claims(resolved.relative_to(root).as_posix()):
                    raise DehrnetError(f"{write.flag} {write.path}: may write {resolved}, which is {described}; "
                                       "give another folder")
