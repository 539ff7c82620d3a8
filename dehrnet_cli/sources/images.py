"""Image files as a source: reading one image (any depth and channel count -> (H, W, 3) uint8 BGR, as stored or
as viewers show it: `sources.orientation`), and the image listings a user names: a folder, a glob, a .txt list.
Image sources read lazily, one file at a time.
"""

from __future__ import annotations

import errno
import glob
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import warn
from dehrnet_cli.sources.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES, Source
from dehrnet_cli.sources.orientation import check_orientation
from dehrnet_cli.stage_data import Frame


class ImageReadError(DehrnetError):
    """An image file that cannot be read; `reason` is the problem without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Convert a decoded image to (H, W, 3) uint8 BGR.

    Grayscale (H, W) or (H, W, 1) is replicated, gray+alpha keeps the gray, BGRA drops alpha (no
    compositing), 16-bit is scaled by 1/257 (65535 -> 255). Other pixel types raise ValueError.
    """
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2] if image.ndim == 3 else 0
    if channels in (1, 2):
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"unsupported image shape {image.shape}")


def _unreadable(path: Path, error: OSError) -> str:
    """Why the file at `path` cannot be opened: a symbolic link that leads nowhere, or the system's reason."""
    if error.errno == errno.ELOOP:
        return "a symbolic link loop"
    if path.is_symlink() and not path.exists():
        return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return f"cannot read the file ({error.strerror or error})"


def read_image(path: Path, orientation: str = "stored") -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR; works with non-ASCII paths.

    orientation "stored" (the default): the stored pixel array, EXIF orientation ignored, as COCO annotations
    were made and the official HRNet loader reads them; "exif": EXIF orientation applied (the picture as viewers
    show it). Raises ImageReadError when the file cannot be read.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(path, _unreadable(path, e)) from None
    if data.size == 0:
        raise ImageReadError(path, "the file is empty")
    if check_orientation(orientation) == "exif":
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # applies EXIF orientation, keeps 16 bits
    else:
        flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error:
        image = None
    if image is None:
        raise ImageReadError(path, "cannot decode the image (corrupt or unsupported format)")
    try:
        return to_bgr8(image)
    except ValueError as e:
        raise ImageReadError(path, str(e)) from None


def relative_names(paths: list[Path]) -> list[str]:
    """Each path relative to the deepest folder holding them all, with '/' separators: a folder's images keep
    their file names, `shots/a/bus.jpg` and `shots/b/bus.jpg` become `a/bus.jpg` and `b/bus.jpg`."""
    if not paths:
        return []
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return [Path(os.path.relpath(p, root)).as_posix() for p in absolute]


class ImageSource(Source):
    """Image files read one at a time; Frame.index is the position in `paths`, Frame.path the file, and
    `names[index]` its name relative to the images' common folder (`relative_names`: what the COCO file_name
    and the annotated copy under --out are called). `single_file`: the user named one image file. `orientation`:
    how each image is read (`read_image`: "stored" or "exif").

    With `skip_unreadable`, a file that cannot be read is reported on stderr, recorded in `skipped`
    and left out (its index stays unused); otherwise the ImageReadError propagates.
    """

    kind = "images"

    def __init__(self, paths: list[Path], name: str, *, orientation: str = "stored", skip_unreadable: bool = True,
                 single_file: bool = False):
        super().__init__(name)
        self.paths = paths
        self.names = relative_names(paths)
        self.orientation = check_orientation(orientation)
        self.skip_unreadable = skip_unreadable
        self.single_file = single_file
        self.num_frames = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = []
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path, self.orientation)
            except ImageReadError as e:
                if not self.skip_unreadable:
                    raise
                warn(f"skipping {path}: {e.reason}")
                self.skipped.append((path, e.reason))
                continue
            yield Frame(index, image, path)


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _file_or_dead_link(path: Path) -> bool:
    """A file, or a symbolic link that leads nowhere (dangling or looping): listed, so that reading it fails with a
    warning that names it and the summary counts it, like any unreadable image."""
    return path.is_file() or (path.is_symlink() and not path.exists())


def open_folder(folder: Path, orientation: str = "stored") -> ImageSource:
    """The folder's images, sorted by name: its own files only (hidden ones left out), with one warning that
    counts the subfolders left out and gives the recursive glob that reads them. Not recursive by default: a
    folder is the images in it, as `ls` shows them, and a tree of thousands is one quoted glob away."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DehrnetError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    files = [p for p in entries if _file_or_dead_link(p)]
    subfolders = sum(1 for p in entries if not p.name.startswith(".") and p.is_dir())
    recursive = f"'{Path(folder) / '**' / '*'}'"
    images = [p for p in files if _is_image(p)]
    if not images:
        videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
        hint = f"; it holds {len(videos)} video(s): pass one of them directly" if videos else ""
        if subfolders:
            hint += f"; its {subfolders} subfolder(s) may hold some: give a recursive glob, {recursive}"
        raise DehrnetError(f"{folder}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                           f"{hint}")
    if subfolders:
        warn(f"{folder}: reading the images of its top level only; {subfolders} subfolder(s) left out (to read "
             f"them too, give a recursive glob: {recursive})")
    return ImageSource(images, str(folder), orientation=orientation)


def open_glob(pattern: str, orientation: str = "stored") -> ImageSource:
    matches = sorted(glob.glob(str(Path(pattern).expanduser()), recursive=True))
    images = [Path(m) for m in matches if _is_image(Path(m)) and _file_or_dead_link(Path(m))]
    if not images:
        what = f"{len(matches)} path(s) but no image files" if matches else "nothing"
        raise DehrnetError(f"{pattern}: the pattern matched {what}; check it (quote it so the shell does "
                           "not expand it)")
    return ImageSource(images, pattern, orientation=orientation)


def open_list(list_path: Path, orientation: str = "stored") -> ImageSource:
    """A .txt file with one image path per line (blank lines and # comments ignored); relative paths
    are relative to the list's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{list_path}: cannot read the list ({e})") from None
    entries: list[tuple[int, Path]] = []
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            path = Path(text).expanduser()
            entries.append((line_no, path if path.is_absolute() else list_path.parent / path))
    if not entries:
        raise DehrnetError(f"{list_path}: the list names no images (one path per line)")
    first_line: dict[str, int] = {}
    for line_no, path in entries:
        key = os.path.normcase(os.path.abspath(path))
        if key in first_line:
            raise DehrnetError(f"{list_path}: lines {first_line[key]} and {line_no} both name {path}; list each "
                               "image once")
        first_line[key] = line_no
    missing = [(n, p) for n, p in entries if not p.is_file()]
    if missing:
        line_no, path = missing[0]
        raise DehrnetError(f"{list_path}: line {line_no} names {path}, which is not a file "
                           f"({len(missing)} of {len(entries)} missing; relative paths start at the "
                           "list's folder)")
    return ImageSource([p for _, p in entries], str(list_path), orientation=orientation)
