"""Where a corpus item's outputs go under OUT, when they are complete, and the temp files a killed worker
leaves behind.

    OUT/<rel>.json                      the COCO-format file `dehrnet predict ITEM --json` writes
    OUT/<rel folder>/<name>             --save-media, an image: its annotated copy (`--out OUT/<rel folder>`)
    OUT/<rel folder>/<stem>_pose.mp4    --save-media, a video: its annotated video

Every output is written atomically (sinks.atomic) and the JSON last, so an item whose files exist is
complete: a file under its final name is never half written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dehrnet_cli.corpus.items import CorpusItem
from dehrnet_cli.sinks.atomic import final_name_of_temp
from dehrnet_cli.sinks.outputs import annotated_image_name, annotated_video_name


@dataclass(frozen=True)
class ItemOutputs:
    """json: OUT/<rel>.json; media: the annotated image or video (--save-media), else None; video: whether
    the item is a video (its media is a file that `--out` names, an image's is a file in an `--out` folder)."""

    json: Path
    media: Path | None
    video: bool

    @property
    def predict_out(self) -> Path | None:
        """What `dehrnet predict ITEM --out` gets for the same media: the video file, or the image's folder."""
        if self.media is None:
            return None
        return self.media if self.video else self.media.parent

    @property
    def files(self) -> list[Path]:
        """The files that must all exist for the item to be complete."""
        return [self.json] if self.media is None else [self.media, self.json]


def item_outputs(item: CorpusItem, out_dir: Path, save_media: bool) -> ItemOutputs:
    rel = PurePosixPath(item.rel)
    json_path = out_dir.joinpath(*rel.parts[:-1], rel.name + ".json")
    media = None
    if save_media:
        name = annotated_video_name(rel.name) if item.is_video else annotated_image_name(rel.name)
        media = out_dir.joinpath(*rel.parts[:-1], name)
    return ItemOutputs(json_path, media, item.is_video)


def is_complete(outputs: ItemOutputs, fresh_after: float | None = None) -> bool:
    """Whether every output file exists (and, with `fresh_after`, was written at or after that time, as
    os.stat reports it: this job's own output, found again after a worker restart)."""
    for path in outputs.files:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return False
        if fresh_after is not None and mtime < fresh_after:
            return False
    return True


def counts_of(json_path: Path) -> tuple[int, int]:
    """(frames, people) of a finished item, read from its COCO-format file."""
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    return len(doc["images"]), len(doc["annotations"])


class FolderListings:
    """Names in output folders, each folder listed once: the driver checks a million items' outputs with
    one directory read per folder instead of a million stat calls."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def names(self, folder: Path) -> frozenset[str]:
        if folder not in self._names:
            try:
                self._names[folder] = frozenset(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError):
                self._names[folder] = frozenset()
        return self._names[folder]

    def has_all(self, outputs: ItemOutputs) -> bool:
        return all(path.name in self.names(path.parent) for path in outputs.files)


def sweep_temp_files(outputs: Iterable[ItemOutputs]) -> list[Path]:
    """Delete the hidden temp files of these outputs (a worker killed mid-write leaves its
    `.NAME.partial-....ext` behind); return what was deleted. Run it when no worker writes (OUT is locked)."""
    finals: dict[Path, set[str]] = {}
    for item in outputs:
        for path in item.files:
            finals.setdefault(path.parent, set()).add(path.name)
    removed = []
    for folder, names in finals.items():
        try:
            entries = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if final_name_of_temp(entry) in names:
                (folder / entry).unlink(missing_ok=True)
                removed.append(folder / entry)
    return removed
