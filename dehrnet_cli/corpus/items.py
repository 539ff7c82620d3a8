"""The items of a corpus: what `dehrnet predict CORPUS --out-dir OUT` names, listed once on the driver.

CORPUS is a folder tree (every image and video under it, hidden files and folders left out), a glob, a
.txt list of paths (one per line), a single image or video, or a URI that `pyarrow.fs` opens (s3://,
gs://, hdfs://, file://: a folder prefix, a file or a .txt list). Every item gets a POSIX path relative
to the corpus root (`rel`): its outputs go to the same relative path under OUT.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sources.base import IMAGE_SUFFIXES, STREAM_SCHEMES, VIDEO_SUFFIXES

MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_HELP = "give a folder, a glob, a .txt list of paths, an image or video, or a pyarrow.fs URI (s3://, gs://)"


@dataclass(frozen=True)
class CorpusItem:
    """One image or video of a corpus.

    source: as the listing names it (shown in messages and the manifest; the JSON's info.source);
    location: what a worker opens (an absolute local path, or a URI); rel: POSIX path under the corpus
    root, where its outputs go under OUT; size: bytes, None when the file is missing; problem: why it
    cannot be processed at all (missing, not an image or video), None for a good item.
    """

    source: str
    location: str
    rel: str
    size: int | None
    problem: str | None = None

    @property
    def is_video(self) -> bool:
        return PurePosixPath(self.rel).suffix.lower() in VIDEO_SUFFIXES

    @property
    def is_remote(self) -> bool:
        return is_uri(self.location)


def is_uri(text: str) -> bool:
    """Whether `text` is a URI for pyarrow.fs (scheme://...), not a stream URL or a local path."""
    return bool(_URI.match(text)) and not text.lower().startswith(STREAM_SCHEMES)


def _is_media(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in MEDIA_SUFFIXES and not name.startswith(".")


def pyarrow_fs():
    """The pyarrow.fs module, or a one-line error saying how to install it."""
    try:
        from pyarrow import fs
    except ImportError:
        raise DehrnetError("URIs (s3://, gs://, file://) need pyarrow: pip install 'dehrnet[ray]' (or pyarrow)"
                           ) from None
    return fs


def open_uri(uri: str):
    """(pyarrow FileSystem, path inside it) for a URI, with a one-line error naming it."""
    fs = pyarrow_fs()
    try:
        return fs.FileSystem.from_uri(uri)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError or ValueError by scheme
        raise DehrnetError(f"{uri}: cannot open ({type(e).__name__}: {e})") from None


class UriFilesystems:
    """pyarrow filesystems by URI root (scheme://bucket/), made once each: making one can cost a
    network round trip (an S3 region lookup), so a million URIs must not make a million."""

    def __init__(self) -> None:
        self._by_root: dict[str, tuple[object, str]] = {}

    def resolve(self, uri: str) -> tuple[object, str]:
        """(filesystem, path inside it) of `uri`."""
        scheme, rest = uri.split("://", 1)
        netloc, _, key = rest.partition("/")
        root = f"{scheme}://{netloc}/"
        if root not in self._by_root:
            self._by_root[root] = open_uri(root)
        fs, root_path = self._by_root[root]
        return fs, f"{root_path.rstrip('/')}/{key}" if key else root_path


def list_corpus(spec: str, exclude: Path | None = None) -> list[CorpusItem]:
    """Every item CORPUS `spec` names, in a stable order (sorted by path; a list keeps its order).

    `exclude`: a local folder left out of folder and glob listings (the job's OUT). Raises
    DehrnetError naming the corpus when it cannot be listed or names nothing.
    """
    text = str(spec).strip()
    if not text:
        raise DehrnetError(f"empty corpus; {_HELP}")
    if text.lower().startswith(STREAM_SCHEMES):
        raise DehrnetError(f"{text}: a stream is not a corpus; {_HELP}")
    if is_uri(text):
        items = _list_uri(text)
    else:
        items = _list_local(text, exclude.resolve() if exclude is not None else None)
    items = _unique(items, text)
    if not items:
        raise DehrnetError(f"{text}: names no images or videos ({', '.join(sorted(MEDIA_SUFFIXES))}); {_HELP}")
    return items


def _list_local(text: str, exclude: Path | None) -> list[CorpusItem]:
    path = Path(text).expanduser()
    if path.is_dir():
        found = sorted(_walk(path, exclude))
        return [CorpusItem(str(path / rel), str(full), rel, size, problem) for rel, full, size, problem in found]
    if path.is_file():
        if path.suffix.lower() == ".txt":
            return _list_file(path.read_bytes, str(path), path.parent)
        if not _is_media(path.name):
            raise DehrnetError(f"{path}: not an image, video or .txt list; {_HELP}")
        return [CorpusItem(str(path), str(path.resolve()), path.name, path.stat().st_size)]
    if path.exists():
        raise DehrnetError(f"{path}: not a regular file or folder; {_HELP}")
    if glob.has_magic(text):
        return _list_glob(text, exclude)
    raise DehrnetError(f"{path}: no such file or folder; {_HELP}")


def walk_media(root: Path) -> Iterator[tuple[str, Path, int | None, str | None]]:
    """(rel, absolute path, size, problem) of every image and video under folder `root` (hidden entries left
    out)."""
    return _walk(root, None)


def _kind(entry: os.DirEntry) -> tuple[str, str | None]:
    """("dir" | "file" | "other", the problem of a link that leads nowhere) of a folder entry."""
    try:
        if entry.is_dir():
            return "dir", None
        if entry.is_file():
            return "file", None
    except OSError as e:  # a link loop: ELOOP
        return "file", f"a symbolic link that leads nowhere ({e.strerror or e})"
    if entry.is_symlink():
        return "file", "a broken symbolic link (its target does not exist)"
    return "other", None


def _walk(root: Path, exclude: Path | None) -> Iterator[tuple[str, Path, int | None, str | None]]:
    """(rel, absolute path, size, problem) of the media files under `root`; hidden entries and `exclude` left
    out; folder links followed once (a link cycle is not walked again); a media-named link that leads nowhere
    is an item with its problem (an error row, not a failed job)."""
    seen: set[Path] = set()
    stack = [(root.resolve(), "")]
    while stack:
        folder, prefix = stack.pop()
        real = folder.resolve()
        if real in seen or (exclude is not None and real == exclude):
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise DehrnetError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            kind, problem = _kind(entry)
            if kind == "dir":
                subfolders.append((Path(entry.path), f"{prefix}{entry.name}/"))
            elif kind == "file" and _is_media(entry.name):
                size = None if problem else entry.stat().st_size
                yield f"{prefix}{entry.name}", Path(entry.path), size, problem
        stack.extend(reversed(subfolders))


def _list_glob(pattern: str, exclude: Path | None) -> list[CorpusItem]:
    """A glob's media files; rel is relative to the pattern's folder before its first wildcard."""
    expanded = str(Path(pattern).expanduser())
    parts = Path(expanded).parts
    static = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    base = Path(*parts[:static]) if static else Path(".")
    items = []
    for match in sorted(glob.glob(expanded, recursive=True)):
        path = Path(match)
        if not (path.is_file() and _is_media(path.name)):
            continue
        full = path.resolve()
        if exclude is not None and full.is_relative_to(exclude):
            continue
        items.append(CorpusItem(match, str(full), path.relative_to(base).as_posix(), full.stat().st_size))
    if not items:
        raise DehrnetError(f"{pattern}: the pattern matched no images or videos; check it (quote it so the shell "
                           "does not expand it)")
    return items


def _list_uri(uri: str) -> list[CorpusItem]:
    fs_module = pyarrow_fs()
    fs, base = open_uri(uri)
    try:
        info = fs.get_file_info(base)
        infos = fs.get_file_info(fs_module.FileSelector(base, recursive=True)) \
            if info.type == fs_module.FileType.Directory else []
    except OSError as e:
        raise DehrnetError(f"{uri}: cannot list it ({e})") from None
    if info.type == fs_module.FileType.Directory:
        items = []
        for entry in sorted(infos, key=lambda i: i.path):
            rel = PurePosixPath(entry.path).relative_to(PurePosixPath(base)).as_posix()
            if entry.type == fs_module.FileType.File and _is_media(entry.base_name) and \
                    not any(part.startswith(".") for part in rel.split("/")):
                location = f"{uri.rstrip('/')}/{rel}"
                items.append(CorpusItem(location, location, rel, entry.size))
        return items
    if info.type != fs_module.FileType.File:
        raise DehrnetError(f"{uri}: no such file or folder prefix; {_HELP}")
    if base.lower().endswith(".txt"):
        def read() -> bytes:
            with fs.open_input_stream(base) as stream:
                return stream.read()
        return _list_file(read, uri, None, uri.rsplit("/", 1)[0])
    if not _is_media(info.base_name):
        raise DehrnetError(f"{uri}: not an image, video or .txt list; {_HELP}")
    return [CorpusItem(uri, uri, info.base_name, info.size)]


def _list_file(read, name: str, local_base: Path | None, uri_base: str | None = None) -> list[CorpusItem]:
    """The entries of a .txt list (one path or URI per line; blank lines and # comments ignored).
    Relative paths start at the list's folder (a list on a URI: relative entries are URIs beside it);
    a missing file or a file that is neither an
    image nor a video becomes an item with a `problem` (an error row, not a failed job)."""
    try:
        lines = read().decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{name}: cannot read the list ({e})") from None
    entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if uri_base is not None:
        entries = [e if is_uri(e) or Path(e).is_absolute() else f"{uri_base}/{e}" for e in entries]
    if not entries:
        raise DehrnetError(f"{name}: the list names no images or videos (one path or URI per line)")
    remote = [e for e in entries if is_uri(e)]
    sizes = _uri_sizes(remote) if remote else {}
    items = []
    for entry in entries:
        if is_uri(entry):
            size = sizes[entry]
            rel = entry[len(uri_base) + 1:] if uri_base and entry.startswith(uri_base + "/") else \
                entry.split("://", 1)[1].lstrip("/")
            items.append(_checked(CorpusItem(entry, entry, rel, size)))
            continue
        path = Path(entry).expanduser()
        if not path.is_absolute():
            path = local_base / path
        full = Path(os.path.abspath(path))  # normalised, links kept: the path the list names
        size = full.stat().st_size if full.is_file() else None
        items.append(_checked(CorpusItem(str(path), str(full), _rel_for_list(full, local_base), size)))
    return items


def _rel_for_list(full: Path, base: Path | None) -> str:
    """A list entry's place under OUT: relative to the list's folder when inside it, else its absolute
    path without the root (/data/x/a.jpg -> data/x/a.jpg), so that it never depends on other entries."""
    if base is not None:
        base_abs = Path(os.path.abspath(base))
        if full.is_relative_to(base_abs):
            return full.relative_to(base_abs).as_posix()
    return full.relative_to(full.anchor).as_posix()


def _inside_out(rel: str) -> str:
    """`rel` normalised so that it cannot leave OUT: no root, no `..` (a list may name anything)."""
    parts = [part for part in posixpath.normpath(rel).split("/") if part not in ("", ".", "..")]
    return "/".join(parts)


def _checked(item: CorpusItem) -> CorpusItem:
    """A list entry with its place under OUT made safe, and its problem when it cannot be processed."""
    item = replace(item, rel=_inside_out(item.rel))
    name = PurePosixPath(item.rel).name
    if item.size is None:
        return replace(item, problem="no such file")
    if not _is_media(name):
        return replace(item, problem=f"not an image or video ({PurePosixPath(name).suffix or 'no suffix'})")
    return item


def _uri_sizes(uris: list[str]) -> dict[str, int | None]:
    """Byte sizes of URIs (None: missing), one get_file_info call per filesystem."""
    fs_module = pyarrow_fs()
    filesystems = UriFilesystems()
    groups: dict[int, tuple[object, list[tuple[str, str]]]] = {}
    for uri in uris:
        fs, path = filesystems.resolve(uri)
        groups.setdefault(id(fs), (fs, []))[1].append((uri, path))
    sizes: dict[str, int | None] = {}
    for fs, entries in groups.values():
        for (uri, _), info in zip(entries, fs.get_file_info([path for _, path in entries])):
            sizes[uri] = info.size if info.type == fs_module.FileType.File else None
    return sizes


def _unique(items: list[CorpusItem], name: str) -> list[CorpusItem]:
    """Drop repeated entries; two different files with one place under OUT are an error."""
    by_rel: dict[str, CorpusItem] = {}
    for item in items:
        other = by_rel.setdefault(item.rel, item)
        if other.location != item.location:
            raise DehrnetError(f"{name}: {other.source} and {item.source} would both write their outputs to "
                               f"{item.rel} under --out-dir; rename one or list them separately")
    return list(by_rel.values())
