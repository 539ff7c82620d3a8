"""Where a predict run's outputs go, checked before any work: the annotated video file or image folder, and
the --csv / --save-crops locations; whether an OpenCV window can open (--show).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sources.base import Source
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.stage_data import Frame

VIDEO_OUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")

IMAGE_OUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def display_available() -> bool:
    """Whether an OpenCV window can open (a Linux desktop needs DISPLAY or WAYLAND_DISPLAY)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def plan_video_output(out: Path, source: Source) -> Path:
    """The annotated video's path: `out` itself when it names a video file, else a file in folder `out`."""
    if out.suffix.lower() in VIDEO_OUT_SUFFIXES:
        return out
    if out.suffix:
        raise DehrnetError(f"--out {out}: a video source needs a video file ({', '.join(VIDEO_OUT_SUFFIXES)}) "
                           "or a folder")
    return out / annotated_video_name(source.name if source.kind == "video" else source.kind)


def annotated_video_name(name: str) -> str:
    """The file name of a video's annotated copy in an --out folder: walk.mov -> walk_pose.mp4."""
    return f"{Path(name).stem}_pose.mp4"


def check_output(out: Path, source: Source) -> None:
    """Refuse an --out that cannot hold this source's output, before any work."""
    if source.kind != "images":
        plan_video_output(out, source)
    elif out.suffix.lower() in VIDEO_OUT_SUFFIXES:
        raise DehrnetError(f"--out {out}: image sources write annotated copies into a folder; give a folder")
    if out.exists() and not out.is_dir() and source.kind == "images":
        raise DehrnetError(f"--out {out}: exists and is not a folder")
    if isinstance(source, ImageSource) and out.resolve() in {p.parent.resolve() for p in source.paths}:
        raise DehrnetError(f"--out {out}: is the folder of the input images, whose annotated copies would "
                           "overwrite them; give another folder")
    if source.kind == "video" and plan_video_output(out, source).resolve() == Path(source.name).resolve():
        raise DehrnetError(f"--out {out}: is the input video itself; give another file name")


def annotated_image_name(name: str) -> str:
    """The file name of an image's annotated copy: its own name, or NAME.png when OpenCV cannot write
    its format."""
    return name if Path(name).suffix.lower() in IMAGE_OUT_SUFFIXES else Path(name).stem + ".png"


def plan_image_output(out: Path, frame: Frame) -> Path:
    name = frame.path.name if frame.path is not None else f"frame_{frame.index:06d}.jpg"
    return out / annotated_image_name(name)


def check_export_paths(csv_path: Path | None, crops_dir: Path | None) -> None:
    """Refuse a --csv or --save-crops that cannot be written, before any work."""
    if csv_path is not None:
        if Path(csv_path).suffix.lower() != ".csv":
            raise DehrnetError(f"--csv {csv_path}: give a file name ending in .csv")
        if Path(csv_path).is_dir():
            raise DehrnetError(f"--csv {csv_path}: is a folder; give a file name, e.g. {Path(csv_path) / 'poses.csv'}")
    if crops_dir is not None and Path(crops_dir).exists() and not Path(crops_dir).is_dir():
        raise DehrnetError(f"--save-crops {crops_dir}: exists and is not a folder; give a folder")
