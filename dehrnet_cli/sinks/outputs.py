"""Where a predict run's annotated media go, checked before any work: the annotated video file, the annotated
image file (one image in, `--out result.jpg`) or the folder of annotated images, which mirrors the sources'
relative folders so that no two images are written to one name; the names frames get in the COCO file;
the --csv / --save-crops locations; whether an OpenCV window can open (--show).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.locations import OutputLocation, check_location
from dehrnet_cli.sources.base import IMAGE_SUFFIXES, Source
from dehrnet_cli.sources.images import ImageSource
from dehrnet_cli.stage_data import Frame

VIDEO_OUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi")

IMAGE_OUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def display_available() -> bool:
    """Whether an OpenCV window can open (a Linux desktop needs DISPLAY or WAYLAND_DISPLAY)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def frame_name(source: Source, frame: Frame) -> str:
    """What a frame is called in the COCO file (`file_name`) and under --out: an image's path relative to the
    images' common folder (`a/bus.jpg`), else `VIDEO#index`."""
    if isinstance(source, ImageSource) and frame.path is not None:
        return source.names[frame.index]
    if frame.path is not None:
        return frame.path.name
    return f"{Path(source.name).name}#{frame.index}"


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


def writes_one_image(out: Path, source: Source) -> bool:
    """One image file in and an --out with an image suffix that is not a folder: the annotated copy is `out`."""
    return isinstance(source, ImageSource) and source.single_file and out.suffix.lower() in IMAGE_SUFFIXES \
        and not out.is_dir()


def annotated_image_name(name: str) -> str:
    """The file name of an image's annotated copy: its own name, or NAME.png when OpenCV cannot write its format."""
    return name if Path(name).suffix.lower() in IMAGE_OUT_SUFFIXES else Path(name).stem + ".png"


def _annotated_name(source: ImageSource, index: int) -> Path:
    """The relative name of image `index`'s annotated copy (`annotated_image_name`, in its source folder)."""
    name = Path(source.names[index])
    return name.with_name(annotated_image_name(name.name))


def plan_image_output(out: Path, source: ImageSource, frame: Frame) -> Path:
    """The annotated copy of an image frame: `out` itself (`writes_one_image`), else its relative name under
    folder `out`."""
    return out if writes_one_image(out, source) else out / _annotated_name(source, frame.index)


def annotated_location(out: Path, source: Source) -> OutputLocation:
    """--out as an output location: the video file, the one annotated image, or the folder of images."""
    if source.kind != "images":
        return OutputLocation("--out", plan_video_output(out, source))
    return OutputLocation("--out", out, folder=not writes_one_image(out, source))


def check_output(out: Path, source: Source) -> None:
    """Refuse an --out of the wrong kind for this source, that would overwrite an input, or that would be written
    twice in this run (two images with one annotated name), before any work. Whether it can be written there is
    `sinks.locations`' check of `annotated_location`."""
    if source.kind != "images":
        video_out = plan_video_output(out, source)
        if source.kind == "video" and video_out.resolve() == Path(source.name).resolve():
            raise DehrnetError(f"--out {out}: is the input video itself; give another file name")
        return
    if out.suffix.lower() in VIDEO_OUT_SUFFIXES:
        raise DehrnetError(f"--out {out}: image sources write annotated copies into a folder; give a folder")
    one_image = writes_one_image(out, source)
    if one_image and out.suffix.lower() not in IMAGE_OUT_SUFFIXES:
        raise DehrnetError(f"--out {out}: cannot write '{out.suffix}' images; use {', '.join(IMAGE_OUT_SUFFIXES)}")
    if not one_image and out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        count = len(source.paths) if isinstance(source, ImageSource) else "several"
        raise DehrnetError(f"--out {out}: names an image file, but {source.name} holds {count} images; give a "
                           f"folder for their annotated copies, e.g. {out.with_suffix('')}/")
    if isinstance(source, ImageSource):
        _check_image_names(out, source)


def _check_image_names(out: Path, source: ImageSource) -> None:
    """No annotated copy lands on an input image, and no two land on one file."""
    inputs = {os.path.normcase(str(p.resolve())) for p in source.paths}
    planned: dict[str, Path] = {}
    one_image, root = writes_one_image(out, source), out.resolve()
    for index, path in enumerate(source.paths):
        target = root if one_image else root / _annotated_name(source, index)
        key = os.path.normcase(str(target))
        if key in inputs:
            what = "the input image itself" if one_image else "the folder of the input images, whose annotated " \
                "copies would overwrite them"
            raise DehrnetError(f"--out {out}: is {what}; give another {'name' if one_image else 'folder'}")
        if key in planned:
            raise DehrnetError(f"--out {out}: {planned[key]} and {path} would both be written as {target}; rename "
                               "one of them or run them separately")
        planned[key] = path


def check_export_paths(csv_path: Path | None, crops_dir: Path | None) -> None:
    """Refuse a --csv or --save-crops that cannot be written, before any work."""
    if csv_path is not None:
        if Path(csv_path).suffix.lower() != ".csv":
            raise DehrnetError(f"--csv {csv_path}: give a file name ending in .csv")
        check_location(OutputLocation("--csv", Path(csv_path)))
    if crops_dir is not None:
        check_location(OutputLocation("--save-crops", Path(crops_dir), folder=True))
