"""Person boxes from a COCO detections list (--boxes dets.json), looked up by image id."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections, Frame


class BoxesFileDetector:
    """Boxes from a COCO detections list (image_id, category_id, bbox [x, y, w, h], score)."""

    def __init__(self, path: Path, conf: float = 0.0, max_people: int | None = None) -> None:
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
        for n, entry in enumerate(entries):
            try:
                if entry.get("category_id", 1) != 1:
                    continue
                x, y, w, h = (float(v) for v in entry["bbox"])
                score = float(entry.get("score", 1.0))
                image_id = int(entry["image_id"])
            except (KeyError, TypeError, ValueError, AttributeError):
                raise DehrnetError(f"--boxes {path}: entry {n} lacks image_id/bbox [x, y, w, h]/score") from None
            if score >= conf:
                self.by_image[image_id].append(([x, y, x + w, y + h], score))
        self.path = path
        self.max_people = max_people

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        out = []
        for image_id in image_ids:
            rows = self.by_image.get(image_id, [])
            boxes = np.array([r[0] for r in rows], np.float64).reshape(-1, 4)
            out.append(keep_top(Detections(boxes, np.array([r[1] for r in rows], np.float32)), self.max_people))
        return out
