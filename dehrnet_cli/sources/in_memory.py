"""The images a Python user hands to `PoseEstimator(...)(x)`, as frames: a path, a numpy array in OpenCV's channel
order ((H, W, 3) BGR, (H, W) or (H, W, 1) grayscale, (H, W, 4) BGRA, all uint8), or a PIL image (any mode, converted
from RGB). A float or 16-bit array is refused: its value range is a guess (0..1? 0..255? 0..65535?) and a wrong
guess moves keypoints by hundreds of pixels without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sources.images import read_image
from dehrnet_cli.stage_data import Frame

EXPECTED = ("an image path, a PIL image, or a uint8 numpy array of shape (H, W, 3) BGR, (H, W) grayscale or "
            "(H, W, 4) BGRA")


def _from_array(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype != np.uint8:
        hint = " (scale a [0, 1] float image by 255 and round)" if np.issubdtype(array.dtype, np.floating) else ""
        raise DehrnetError(f"{what}: a {array.dtype} array; expected uint8 pixels 0..255{hint}")
    if array.size == 0:
        raise DehrnetError(f"{what}: an empty image of shape {array.shape}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(array.reshape(array.shape[:2])), cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGRA2BGR)
    raise DehrnetError(f"{what}: an array of shape {array.shape}; expected {EXPECTED}")


def _from_pil(image: Any, what: str) -> np.ndarray:
    if image.width == 0 or image.height == 0:
        raise DehrnetError(f"{what}: an empty image ({image.width}x{image.height})")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise DehrnetError(f"{what}: a PIL image of mode {image.mode}; expected 8-bit pixels (convert('RGB'))")
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])


def to_frame(image: Any, index: int = 0) -> Frame:
    """Frame `index` of one user image (see the module docstring); DehrnetError naming what is wrong with it."""
    what = f"image {index}"
    if isinstance(image, (str, Path)):
        path = Path(image).expanduser()
        if not path.is_file():
            raise DehrnetError(f"{path}: no such image file")
        return Frame(index, read_image(path, "exif"), path)  # the picture as the user sees it
    if isinstance(image, np.ndarray):
        return Frame(index, _from_array(image, what))
    if type(image).__module__.startswith("PIL."):
        return Frame(index, _from_pil(image, what))
    raise DehrnetError(f"{what}: a {type(image).__name__}; expected {EXPECTED}")
