"""OpenCV's HOG people detector: weak, but needs no download (the offline demo and CI use it)."""

from __future__ import annotations

import numpy as np

from dehrnet_cli.detect.base import keep_top
from dehrnet_cli.stage_data import Detections, Frame

HOG_WINDOW_WH = (64, 128)  # the default people detector's window, in pixels

# HOG runs on a copy whose longer side is at most this: its time grows with the pixel count (2 CPU cores here:
# 0.3 s at 640x480, 1.4 s at 1280x960, 3.3 s at 1920x1440; a 10000x8000 photo took over 150 s at full size).
# People shorter than 128 px in the copy are missed, as they would be at any size below the window.
HOG_MAX_SIDE = 1280


class HogDetector:
    """OpenCV's built-in HOG + linear SVM people detector: weak, but needs no download.

    Works on a copy downscaled to HOG_MAX_SIDE (boxes mapped back to the image's pixels). An image smaller
    than its 64x128 window gets no boxes: OpenCV 4's detectMultiScale corrupts memory (segfault, abort) on
    such images instead of raising."""

    def __init__(self, conf: float = 0.0, max_people: int | None = None) -> None:
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.conf = conf
        self.max_people = max_people

    def __call__(self, frames: list[Frame]) -> list[Detections]:
        import cv2

        out = []
        for frame in frames:
            factor = min(1.0, HOG_MAX_SIDE / max(frame.size))
            size = (round(frame.size[0] * factor), round(frame.size[1] * factor))
            if size[0] < HOG_WINDOW_WH[0] or size[1] < HOG_WINDOW_WH[1]:
                out.append(Detections.empty())
                continue
            image = frame.image if factor == 1.0 else cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA)
            rects, weights = self.hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
            back = np.array([frame.size[0] / size[0], frame.size[1] / size[1]] * 2, np.float32)  # copy -> image px
            rects = np.asarray(rects, np.float32).reshape(-1, 4) * back
            scores = 1 / (1 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))  # SVM margin -> (0, 1)
            boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
            keep = scores >= self.conf
            out.append(keep_top(Detections(boxes[keep], scores[keep]), self.max_people))
        return out
