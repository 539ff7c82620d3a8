"""Person crops to calibrate int8 ranges on: cut from the user's images (or the two images bundled with
ultralytics) with the inference crop, at seeded person-shaped boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
from dehrnet_cli.sources.base import IMAGE_SUFFIXES
from dehrnet_cli.sources.images import read_image
from models import PoseNetConfig

BOX_HEIGHTS = (0.2, 1.0)  # person box height as a fraction of the image height

BOX_ASPECTS = (0.65, 0.85)  # person box width / height (about 3:4)


def _bundled_images() -> list[Path]:
    """The sample images shipped inside the ultralytics package (bus.jpg, zidane.jpg)."""
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    images = sorted(p for p in assets.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DehrnetError(f"{assets}: the ultralytics package has no bundled images; pass --calib DIR")
    return images


def _image_files(source: Path | None) -> list[Path]:
    """The calibration images: a folder's image files (not recursive, hidden files left out), one image
    file, or the bundled images when `source` is None."""
    if source is None:
        return _bundled_images()
    source = Path(source).expanduser()
    if source.is_file():
        if source.suffix.lower() not in IMAGE_SUFFIXES:
            raise DehrnetError(f"{source}: not an image file; give a folder of images (jpg, png, bmp, webp)")
        return [source]
    if not source.is_dir():
        raise DehrnetError(f"{source}: no such folder; give a folder of images to calibrate on")
    try:
        images = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                        and not p.name.startswith("."))
    except OSError as e:
        raise DehrnetError(f"{source}: cannot list the folder ({e.strerror or e})") from None
    if not images:
        raise DehrnetError(f"{source}: the folder has no images (jpg, png, bmp, webp); add some people photos")
    return images


def _person_boxes(rng: np.random.Generator, image_w: int, image_h: int, count: int) -> np.ndarray:
    """`count` boxes (count, 4) x1, y1, x2, y2 in image pixels: the whole image first, then random
    upright person-shaped boxes (about 3:4, 20-100 % of the image height) lying inside the image."""
    boxes = np.zeros((count, 4), dtype=np.float64)
    boxes[:1] = (0, 0, image_w, image_h)
    for i in range(1, count):
        box_h = rng.uniform(*BOX_HEIGHTS) * image_h
        box_w = min(rng.uniform(*BOX_ASPECTS) * box_h, image_w)
        x1 = rng.uniform(0, image_w - box_w)
        y1 = rng.uniform(0, image_h - box_h)
        boxes[i] = (x1, y1, x1 + box_w, y1 + box_h)
    return boxes


def calibration_crops(source: Path | None, config: PoseNetConfig, count: int = 256, seed: int = 0) -> np.ndarray:
    """Person crops to calibrate int8 ranges on: (count, h, w, 3) uint8 BGR at config.input_size (w, h).

    `source`: a folder of images (or one image file); None takes the images bundled with ultralytics.
    The crops are spread round-robin over the images (crop i comes from image i mod n); each image gives
    its whole frame first, then seeded person-shaped boxes, cut with the inference crop
    (`center_scale_from_xyxy` + `warp_crops`). The same seed gives the same crops.
    """
    if count < 1:
        raise DehrnetError(f"calibration count {count}: use at least 1 crop (a few hundred calibrate well)")
    images = _image_files(source)
    rng = np.random.default_rng(seed)
    w, h = config.input_size
    crops = np.zeros((count, h, w, 3), dtype=np.uint8)
    for index, path in enumerate(images[:count]):
        image = read_image(path)  # raises a DehrnetError naming the path
        rows = np.arange(index, count, len(images))
        boxes_xyxy = _person_boxes(rng, image.shape[1], image.shape[0], len(rows))
        centers, scales = center_scale_from_xyxy(boxes_xyxy, config.input_size)
        crops[rows] = warp_crops(image, centers, scales, config.input_size)
    return crops
