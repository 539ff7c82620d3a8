"""OpenCV's HOG people detector: weak, but needs no download (the offline demo and CI use it)."""

from __future__ import annotations

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.stage_data import Detections, Frame

HOG_WINDOW_WH = (64, 128)  # the default people detector's window, in pixels


class HogDetector:
    """OpenCV's built-in HOG + linear SVM people detector: weak, but needs no download.

    An image smaller than its 64x128 window gets no boxes: OpenCV 4's detectMultiScale corrupts
    memory (segfault, abort) on such images instead of raising."""

    def __init__(self, conf: float = 0.0, max_people: int | None = None) -> None:
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.conf = conf
        self.max_people = max_people

    def __call__(self, frames: list[Frame], image_ids: list[int]) -> list[Detections]:
        out = []
        for frame in frames:
            if frame.size[0] < HOG_WINDOW_WH[0] or frame.size[1] < HOG_WINDOW_WH[1]:
                out.append(Detections.empty())
                continue
            rects, weights = self.hog.detectMultiScale(frame.image, winStride=(8, 8), padding=(8, 8), scale=1.05)
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            scores = 1 / (1 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))  # SVM margin -> (0, 1)
            boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            keep = scores >= self.conf
            out.append(keep_top(Detections(boxes[keep], scores[keep]), self.max_people))
        return out
