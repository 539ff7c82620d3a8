"""Seeded synthetic test images (not a test module): what the predict and corpus tests feed the CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

W, H = 64, 48  # small enough that a tiny model runs each in milliseconds


def scene(seed: int, width: int = W, height: int = H) -> np.ndarray:
    """A (height, width, 3) uint8 BGR image: a person-sized ellipse, a corner block and seeded texture."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.ellipse(image, (width // 2, height // 2), (width // 5, height // 3), 0, 0, 360, (40, 160, 220), -1)
    cv2.rectangle(image, (2, 2), (width // 4, height // 4), (200, 60, 30), -1)
    noise = rng.integers(-20, 20, image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


def save_image(path: Path, image: np.ndarray) -> Path:
    """`image` encoded by `path`'s suffix (.png, .jpg, ...) and written there, its folders made; returns `path`."""
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok, path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encoded.tobytes())
    return path
