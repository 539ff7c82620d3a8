"""ultralytics YOLO as the person detector (class 0 only, batched over frames). Its file is found offline first
(a path, ./NAME, the weights cache), a known name is checked against its published sha256 when the manifest has
one, and every file is opened without running code from it (`detect.safe_load`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.detect.safe_load import ALTERNATIVES, load_yolo, verify_published
from dehrnet_cli.env import flag, offline
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections, Frame

PERSON_CLASS = 0  # COCO class index of 'person' in YOLO models
# yolo26n rather than yolo11n: 40.9 vs 39.5 COCO mAP by ultralytics' docs, NMS-free, and on the 2-core EPYC (from
# their yamls, random weights, 1280x720, 1 thread, interleaved) 85-258 ms a frame against 93-309 ms (docs/benchmarks.md)
DEFAULT_YOLO = "yolo26n.pt"
DEFAULT_YOLO_CONF = 0.25


def locate_yolo_weights(weights: str) -> str:
    """A path or name for `load_yolo`: a yaml; a file or export folder that exists; a bare name found as ./NAME or
    in the weights cache (a known name checked against its published sha256); a known name with a published sha256
    downloaded into the cache and checked; else the name, which ultralytics downloads itself. DehrnetError for a
    path that does not exist, a file that is not the published one, and a name not found while downloads are off."""
    if weights.endswith((".yaml", ".yml")):
        return weights
    from dehrnet_cli.weights.cache import weights_dir
    from dehrnet_cli.weights.manifest import load_detectors

    bare = "/" not in weights and os.sep not in weights  # a name, not a path (./yolo26n.pt is a path)
    known = load_detectors().get(weights) if bare else None
    if Path(weights).exists():
        if known is not None:
            verify_published(Path(weights), known)
        return weights
    if not bare:
        raise DehrnetError(f"--det-model {weights}: no such file or folder; {ALTERNATIVES}")
    cached = weights_dir() / weights
    if cached.exists():
        if known is not None:
            verify_published(cached, known)
        return str(cached)
    if offline(include_yolo=True):
        switch = "DEHRNET_OFFLINE" if flag("DEHRNET_OFFLINE") else "YOLO_OFFLINE"
        fetch = f"download {known.url} on a machine with network access and place it" if known else "place it"
        raise DehrnetError(f"--det-model {weights}: not found in this folder nor in {cached.parent}, and downloads "
                           f"are off ({switch} is set): {fetch} at {cached} or ./{weights}, {ALTERNATIVES}")
    if known is not None and known.sha256 is not None:
        from dehrnet_cli.weights.download import download

        return str(download(known.url, cached, known.sha256))
    return weights  # ultralytics downloads its published assets itself (no sha256 to check them against)


class YoloPersonDetector:
    """ultralytics YOLO, person class only, batched over frames."""

    def __init__(self, weights: str = DEFAULT_YOLO, conf: float = DEFAULT_YOLO_CONF, iou: float = 0.7,
                 max_people: int | None = None, device: str = "auto") -> None:
        self.model = load_yolo(locate_yolo_weights(weights))
        self.conf, self.iou, self.max_people = conf, iou, max_people
        self.device = None if device == "auto" else device

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        import logging

        import torch
        from ultralytics.utils import LOGGER

        threads = torch.get_num_threads()  # ultralytics' select_device lowers it to cores - 1 for good
        level = LOGGER.level  # its notes on loading an export go to stdout, which holds dehrnet's results
        LOGGER.setLevel(logging.WARNING)
        try:
            results = self.model.predict([f.image for f in frames], classes=[PERSON_CLASS], conf=self.conf,
                                         iou=self.iou, max_det=self.max_people or 300, device=self.device,
                                         verbose=False)
        finally:
            torch.set_num_threads(threads)
            LOGGER.setLevel(level)
        out = []
        for r in results:
            boxes = r.boxes.xyxy.cpu().numpy().astype(np.float32)
            scores = r.boxes.conf.cpu().numpy().astype(np.float32)
            out.append(keep_top(Detections(boxes, scores), self.max_people))
        return out
