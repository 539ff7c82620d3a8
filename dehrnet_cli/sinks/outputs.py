"""Where a predict run's outputs go, decided once, before any work, from the flags and the source: the COCO file,
the results list, the CSV, the crops folder, and the annotated media (one video file; or one image file, when
one image comes in and `--out` names an image; or a folder of images that mirrors the sources' relative folders,
so that no two images are written to one name). The same `PredictOutputs` fills the run plan (every path it
will write, checked against what the run reads) and opens the sinks that write them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.crops import may_write_crop
from dehrnet_cli.sinks.plan import RunPlan
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


def annotated_video_name(name: str) -> str:
    """The file name of a video's annotated copy in an --out folder: walk.mov -> walk_pose.mp4."""
    return f"{Path(name).stem}_pose.mp4"


def annotated_image_name(name: str) -> str:
    """The file name of an image's annotated copy: its own name, or NAME.png when OpenCV cannot write its format."""
    return name if Path(name).suffix.lower() in IMAGE_OUT_SUFFIXES else Path(name).stem + ".png"


@dataclass(frozen=True)
class PredictOutputs:
    """Every path a predict run writes. json: the COCO file (--json); results: the results list (--save-results);
    csv (--csv); crops: the crops folder (--save-crops); video: the annotated video; images: the annotated copy
    of each image, by frame index; out: --out as given (the annotated video, image file or folder)."""

    json: Path | None = None
    results: Path | None = None
    csv: Path | None = None
    crops: Path | None = None
    video: Path | None = None
    images: dict[int, Path] = field(default_factory=dict)
    out: Path | None = None

    def add_to(self, plan: RunPlan) -> None:
        """Every file these outputs write (and their partial names), into the run plan."""
        plan.write("--json", self.json)
        plan.write("--save-results", self.results)
        plan.write("--csv", self.csv)
        plan.write("--save-crops", self.crops, folder=True, claims=may_write_crop)
        plan.write("--out", self.video)
        if self.images:
            folder = self.out if not _one_image_file(self.out, self.images) else None
            if folder is not None:
                plan.write("--out", folder, folder=True, files=self.images.values())
            else:
                plan.write("--out", self.out, partial=False)


def _one_image_file(out: Path | None, images: dict[int, Path]) -> bool:
    return out is not None and len(images) == 1 and next(iter(images.values())) == out


def plan_outputs(source: Source, out: Path | None = None, json: Path | None = None, results: Path | None = None,
                 csv: Path | None = None, crops: Path | None = None) -> PredictOutputs:
    """The PredictOutputs of these flags for `source`; refuses an --out of the wrong kind for the source, a
    --csv that is not a .csv, and two images whose annotated copies would get one name."""
    if csv is not None and Path(csv).suffix.lower() != ".csv":
        raise DehrnetError(f"--csv {csv}: give a file name ending in .csv")
    found = PredictOutputs(json=_path(json), results=_path(results), csv=_path(csv), crops=_path(crops),
                           out=_path(out))
    if found.out is None:
        return found
    if source.kind != "images":
        return replace(found, video=_video_output(found.out, source))
    return replace(found, images=_image_outputs(found.out, source))


def _path(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def _video_output(out: Path, source: Source) -> Path:
    """The annotated video's path: `out` itself when it names a video file, else a file in folder `out`."""
    if out.suffix.lower() in VIDEO_OUT_SUFFIXES:
        return out
    if out.suffix:
        raise DehrnetError(f"--out {out}: a video source needs a video file ({', '.join(VIDEO_OUT_SUFFIXES)}) "
                           "or a folder")
    return out / annotated_video_name(source.name if source.kind == "video" else source.kind)


def _writes_one_image(out: Path, source: Source) -> bool:
    """One image file in and an --out with an image suffix that is not a folder: the annotated copy is `out`."""
    return isinstance(source, ImageSource) and source.single_file and out.suffix.lower() in IMAGE_SUFFIXES \
        and not out.is_dir()


def _image_outputs(out: Path, source: Source) -> dict[int, Path]:
    """The annotated copy of each image of `source`, by index: `out` itself (one image in, an image name out),
    else its relative name (`annotated_image_name`, in its source folder) under folder `out`."""
    if out.suffix.lower() in VIDEO_OUT_SUFFIXES:
        raise DehrnetError(f"--out {out}: image sources write annotated copies into a folder; give a folder")
    if not isinstance(source, ImageSource):
        return {}
    if _writes_one_image(out, source):
        if out.suffix.lower() not in IMAGE_OUT_SUFFIXES:
            raise DehrnetError(f"--out {out}: cannot write '{out.suffix}' images; use {', '.join(IMAGE_OUT_SUFFIXES)}")
        return {0: out}
    if out.suffix.lower() in IMAGE_SUFFIXES and not out.is_dir():
        raise DehrnetError(f"--out {out}: names an image file, but {source.name} holds {len(source.paths)} images; "
                           f"give a folder for their annotated copies, e.g. {out.with_suffix('')}/")
    paths: dict[int, Path] = {}
    first_of: dict[str, int] = {}
    for index, name in enumerate(source.names):
        relative = Path(name)
        target = out / relative.with_name(annotated_image_name(relative.name))
        key = os.path.normcase(os.path.abspath(target))
        if key in first_of:
            raise DehrnetError(f"--out {out}: {source.paths[first_of[key]]} and {source.paths[index]} would both be "
                               f"written as {target}; rename one of them or run them separately")
        first_of[key] = index
        paths[index] = target
    return paths
