"""Person boxes from a COCO detections list (--boxes dets.json), looked up by each frame's COCO image id (from
--ann, else the numeric file name, else the frame's position: `sinks.coco.ImageIds`, the rule the COCO outputs
follow too).

Boxes no pose can come from are left out, each kind with one warning that counts them: entries with a NaN or
infinite number or no area when the file is read, and boxes entirely outside their image when the run ends
(`warn_outside`); boxes partly outside are clipped to the image.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import warn
from dehrnet_cli.sinks.coco import ImageIds
from dehrnet_cli.stage_data import Detections, Frame


def _id_range(ids: Collection[int]) -> str:
    """'785..581357, 5000 ids' for messages."""
    ordered = sorted(ids)
    return f"{ordered[0]}" if len(ordered) == 1 else f"{ordered[0]}..{ordered[-1]}, {len(ordered)} ids"


class BoxesFileDetector:
    """Boxes from a COCO detections list (image_id, category_id, bbox [x, y, w, h], score)."""

    def __init__(self, path: Path, conf: float = 0.0, max_people: int | None = None,
                 ann: Path | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise DehrnetError(f"--boxes {path}: no such file")
        try:
            entries = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DehrnetError(f"--boxes {path}: not valid JSON ({e})") from None
        if not isinstance(entries, list):
            raise DehrnetError(f"--boxes {path}: expected a COCO detections list [{{image_id, bbox, score}}, ...]")
        self.by_image: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
        self.image_ids: set[int] = set()  # of every person entry, whatever its score
        unusable: list[int] = []
        for n, entry in enumerate(entries):
            try:
                if entry.get("category_id", 1) != 1:
                    continue
                x, y, w, h = (float(v) for v in entry["bbox"])
                score = float(entry.get("score", 1.0))
                image_id = int(entry["image_id"])
            except (KeyError, TypeError, ValueError, AttributeError):
                raise DehrnetError(f"--boxes {path}: entry {n} lacks image_id/bbox [x, y, w, h]/score") from None
            self.image_ids.add(image_id)
            if not all(math.isfinite(v) for v in (x, y, w, h, score)) or w <= 0 or h <= 0:
                unusable.append(n)
            elif score >= conf:
                self.by_image[image_id].append(([x, y, x + w, y + h], score))
        if unusable:
            warn(f"--boxes {path}: skipped {len(unusable)} of {len(entries)} entries with a NaN or infinite number "
                 f"or no area (the first is entry {unusable[0]})")
        self.path = path
        self.ann = ann
        self.frame_ids = ImageIds(ann)  # the ids of the frames of the source running now (for_source)
        self.max_people = max_people
        self.outside = 0  # boxes met so far that lie entirely outside their image

    def for_source(self, paths: list[Path] | None, num_frames: int | None, name: str,
                   image_ids: ImageIds | None = None) -> None:
        """Look frames up by the image ids of this source (image `paths`, else frames 1..num_frames; `image_ids`:
        the rule, default ImageIds(--ann, paths)), and refuse a file none of whose image ids is among them (every
        frame would get no box, and the run "0 people" after all its work); `name` names the source in messages."""
        self.frame_ids = image_ids or ImageIds(self.ann, paths)
        self._check_image_ids(self.frame_ids.of_source(paths, num_frames), name)

    def _check_image_ids(self, image_ids: Collection[int], images: str) -> None:
        if not image_ids:
            return
        if not self.image_ids:
            raise DehrnetError(f"--boxes {self.path}: the file has no person boxes")
        if not self.image_ids & set(image_ids):
            raise DehrnetError(f"--boxes {self.path}: its image ids ({_id_range(self.image_ids)}) match none of "
                               f"{images} ({_id_range(image_ids)}); image ids come from --ann, else from numeric "
                               "file names (000000000785.jpg is 785), else 1..N in source order")

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        out = []
        for frame in frames:
            rows = self.by_image.get(self.frame_ids(frame.path, frame.index), [])
            boxes = np.array([r[0] for r in rows], np.float64).reshape(-1, 4)
            scores = np.array([r[1] for r in rows], np.float32)
            width, height = frame.size
            boxes = np.clip(boxes, 0, [width, height, width, height])  # partly outside: the part inside
            inside = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            self.outside += int((~inside).sum())
            out.append(keep_top(Detections(boxes[inside], scores[inside]), self.max_people))
        return out

    def warn_outside(self) -> None:
        """One warning counting the boxes left out because they lie entirely outside their image (if any)."""
        if self.outside:
            warn(f"--boxes {self.path}: skipped {self.outside} box(es) lying entirely outside their image")
            self.outside = 0
