"""ultralytics YOLO as the person detector (class 0 only, batched over frames), found offline first:
a local file, the weights cache, else ultralytics' own download on first use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.env import offline
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections, Frame

PERSON_CLASS = 0  # COCO class index of 'person' in YOLO models
# yolo26n rather than yolo11n: 40.9 vs 39.5 COCO mAP by ultralytics' docs, NMS-free, and on the 2-core EPYC (from
# their yamls, random weights, 1280x720, 1 thread, interleaved) 85-258 ms a frame against 93-309 ms (docs/benchmarks.md)
DEFAULT_YOLO = "yolo26n.pt"
DEFAULT_YOLO_CONF = 0.25
ALTERNATIVES = "or take boxes from a file with --boxes dets.json, or use --detector none (whole image) or hog"


def locate_yolo_weights(weights: str) -> str:
    """A usable path or name for YOLO(): a yaml, an existing file, the copy in the weights cache, or a name that
    ultralytics downloads itself; offline and nowhere to be found, a DehrnetError naming the file to place."""
    if weights.endswith((".yaml", ".yml")) or Path(weights).exists():
        return weights
    from dehrnet_cli.weights.cache import weights_dir
    from dehrnet_cli.weights.manifest import load_detectors

    cached = weights_dir() / Path(weights).name
    if cached.exists():
        return str(cached)
    if Path(weights).parent != Path(".") or offline(include_yolo=True):
        where = weights if Path(weights).parent != Path(".") else f"./{weights} or {cached}"
        known = load_detectors().get(Path(weights).name)
        source = f" (download it from {known.url})" if known else ""
        raise DehrnetError(f"detector weights {weights} not found and dehrnet is offline: place the file at "
                           f"{where}{source}, {ALTERNATIVES}")
    return weights  # ultralytics downloads its own assets on first use


class YoloPersonDetector:
    """ultralytics YOLO, person class only, batched over frames."""

    def __init__(self, weights: str = DEFAULT_YOLO, conf: float = DEFAULT_YOLO_CONF, iou: float = 0.7,
                 max_people: int | None = None, device: str = "auto") -> None:
        weights = locate_yolo_weights(weights)
        from ultralytics import YOLO

        try:
            self.model = YOLO(weights)
        except Exception as e:  # ultralytics raises many types for missing/corrupt files and failed downloads
            reason = str(e).replace("❌", "").strip().splitlines()[0][:160]
            raise DehrnetError(f"--det-model {weights}: cannot load it ({reason}): place the file in this folder "
                               f"or give its path, {ALTERNATIVES}") from None
        self.conf, self.iou, self.max_people = conf, iou, max_people
        self.device = None if device == "auto" else device

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        import torch

        threads = torch.get_num_threads()  # ultralytics' select_device lowers it to cores - 1 for good
        try:
            results = self.model.predict([f.image for f in frames], classes=[PERSON_CLASS], conf=self.conf,
                                         iou=self.iou, max_det=self.max_people or 300, device=self.device,
                                         verbose=False)
        finally:
            torch.set_num_threads(threads)
        out = []
        for r in results:
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            out.append(keep_top(Detections(boxes, scores), self.max_people))
        return out
