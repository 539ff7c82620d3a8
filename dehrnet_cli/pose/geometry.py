"""Crop geometry of the official HRNet test-time protocol (numpy + OpenCV only), shared by training and inference.

Shape letters: N people, K keypoints. Sizes are written (w, h).
A person's crop is given by a `center` (2,) in image pixels and a `scale` (2,) in units of 200 px
(pixel_std), as the official `_xywh2cs` makes them; `get_affine_transform` turns them into the 2x3
matrix that maps image pixels to crop (or heatmap) pixels. See shared/REFERENCE.md, Part 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError

PIXEL_STD = 200.0  # the official box unit: scale = box size / 200


def _as_rows(array: np.ndarray | Sequence, width: int, name: str) -> np.ndarray:
    """`array` as a float64 (N, width) array, or a DehrnetError naming the wrong shape."""
    rows = np.asarray(array, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != width:
        raise DehrnetError(f"{name} has shape {rows.shape}; expected (N, {width}): pass one row per person")
    return rows


def center_scale_from_xywh(
    boxes_xywh: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Crop centers and scales of boxes, exactly as the official `_xywh2cs`.

    boxes_xywh: (N, 4) x, y, w, h in image pixels. input_size: crop (w, h), e.g. (288, 384).
    The box is grown (never shrunk) to the crop's aspect ratio, then scaled by `padding` unless the
    center x is exactly -1 (an official quirk). Returns centers (N, 2) and scales (N, 2) float32, where
    scale = box size / 200.
    """
    boxes = _as_rows(boxes_xywh, 4, "boxes_xywh")
    x, y, w, h = boxes.T
    aspect = input_size[0] * 1.0 / input_size[1]
    centers = np.stack([x + w * 0.5, y + h * 0.5], axis=1).astype(np.float32)
    too_wide = w > aspect * h
    too_tall = w < aspect * h
    fixed_w = np.where(too_tall, h * aspect, w)
    fixed_h = np.where(too_wide, w * 1.0 / aspect, h)
    scales = np.stack([fixed_w / PIXEL_STD, fixed_h / PIXEL_STD], axis=1).astype(np.float32)
    padded = (centers[:, 0] != -1)[:, None]
    scales = np.where(padded, scales * np.float32(padding), scales).astype(np.float32)
    return centers, scales


def center_scale_from_xyxy(
    boxes_xyxy: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """`center_scale_from_xywh` of (N, 4) x1, y1, x2, y2 boxes (w = x2 - x1, h = y2 - y1, no +1)."""
    boxes = _as_rows(boxes_xyxy, 4, "boxes_xyxy")
    boxes_xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return center_scale_from_xywh(boxes_xywh, input_size, padding)


def clean_gt_box(
    bbox_xywh: Sequence[float] | np.ndarray, image_w: int, image_h: int, area: float | None = None
) -> np.ndarray | None:
    """A COCO ground-truth box cleaned as the official loader does, or None when it is dropped.

    bbox_xywh: (4,) x, y, w, h in image pixels. The box is clipped to the image and made 1 px narrower
    and shorter ([x1, y1, x2 - x1, y2 - y1] with x2 = min(W - 1, x1 + max(0, w - 1))). `area` is the
    annotation's own "area" field: when given, the box is dropped unless it is > 0. Dropping people
    whose keypoints are all zero is the caller's job. Returns (4,) float64 xywh.
    """
    box = np.asarray(bbox_xywh, dtype=np.float64).reshape(-1)
    if box.shape != (4,):
        raise DehrnetError(f"GT bbox {list(box)} has {box.size} numbers; expected 4 (x, y, w, h)")
    x, y, w, h = box
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(image_w - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(image_h - 1.0, y1 + max(0.0, h - 1.0))
    if (area is not None and not area > 0) or not (x2 >= x1 and y2 >= y1):
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point that makes (a, b, result) a right angle at b, turned the official way."""
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def get_affine_transform(
    center: np.ndarray | Sequence[float],
    scale: np.ndarray | Sequence[float] | float,
    rot: float,
    output_size: tuple[int, int],
    shift: tuple[float, float] = (0.0, 0.0),
    inv: bool = False,
) -> np.ndarray:
    """The official 2x3 affine matrix (float64) from image pixels to output pixels (or back if `inv`).

    center (2,) image pixels, scale (2,) or scalar in 200 px units (only scale[0], the width, is used),
    rot in degrees (positive turns the content counter-clockwise on screen), output_size (w, h),
    shift (2,) in box units. The box center maps to (w/2, h/2) with no half-pixel correction.
    """
    scale_arr = np.asarray(scale)
    if scale_arr.ndim == 0:
        scale_arr = np.array([scale_arr, scale_arr])
    center_arr = np.asarray(center)
    shift_arr = np.asarray(shift, dtype=np.float32)
    scale_px = scale_arr * 200.0
    src_w = scale_px[0]
    dst_w, dst_h = output_size[0], output_size[1]
    rot_rad = np.pi * rot / 180
    sin, cos = np.sin(rot_rad), np.cos(rot_rad)
    up = src_w * -0.5  # the source up-vector (0, up), rotated with [[cos, -sin], [sin, cos]]
    src_dir = np.array([-up * sin, up * cos])
    dst_dir = np.array([0, dst_w * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center_arr + scale_px * shift_arr
    src[1, :] = center_arr + src_dir + scale_px * shift_arr
    dst[0, :] = [dst_w * 0.5, dst_h * 0.5]
    dst[1, :] = np.array([dst_w * 0.5, dst_h * 0.5]) + dst_dir
    src[2, :] = _third_point(src[0, :], src[1, :])
    dst[2, :] = _third_point(dst[0, :], dst[1, :])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine `matrix` to points (..., 2); returns (..., 2) float64."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if pts.shape[-1:] != (2,) or m.shape != (2, 3):
        raise DehrnetError(
            f"affine_points got points {pts.shape} and matrix {m.shape}; expected (..., 2), (2, 3)"
        )
    return pts @ m[:, :2].T + m[:, 2]


def warp_crops(
    image: np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    input_size: tuple[int, int],
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """Crops (N, h, w, 3) uint8 of an (H, W, 3) uint8 image, one per center (N, 2) / scale (N, 2).

    cv2.warpAffine with INTER_LINEAR and a constant 0 border, as the official loader; rotations (N,)
    in degrees (default 0). The channel order is kept as given.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise DehrnetError(f"image has shape {image.shape}; expected (H, W, 3)")
    centers_arr = np.asarray(centers)
    scales_arr = np.asarray(scales)
    num = len(centers_arr)
    rots = np.zeros(num) if rotations is None else np.asarray(rotations, dtype=np.float64)
    if scales_arr.shape != (num, 2) or centers_arr.shape != (num, 2) or rots.shape != (num,):
        raise DehrnetError(
            f"warp_crops got centers {centers_arr.shape}, scales {scales_arr.shape}, rotations {rots.shape};"
            " expected (N, 2), (N, 2), (N,)"
        )
    crops = np.zeros((num, input_size[1], input_size[0], 3), dtype=np.uint8)
    for i in range(num):
        matrix = get_affine_transform(centers_arr[i], scales_arr[i], float(rots[i]), input_size)
        crops[i] = cv2.warpAffine(
            image, matrix, (int(input_size[0]), int(input_size[1])), flags=cv2.INTER_LINEAR
        )
    return crops


def heatmap_to_image(
    coords_hm: np.ndarray, centers: np.ndarray, scales: np.ndarray, heatmap_size: tuple[int, int]
) -> np.ndarray:
    """Map heatmap coordinates (N, K, 2) back to image pixels (N, K, 2) float64 (official transform_preds).

    Each person's points go through the inverse of `get_affine_transform(center, scale, 0,
    heatmap_size)`, heatmap_size (w, h).
    """
    coords = np.asarray(coords_hm, dtype=np.float64)
    num = coords.shape[0] if coords.ndim == 3 else -1
    people_ok = np.shape(centers) == (num, 2) and np.shape(scales) == (num, 2)
    if coords.ndim != 3 or coords.shape[2] != 2 or not people_ok:
        raise DehrnetError(
            f"heatmap_to_image got coords {coords.shape}, centers {np.shape(centers)}, scales "
            f"{np.shape(scales)}; expected (N, K, 2), (N, 2), (N, 2)"
        )
    out = np.empty_like(coords)
    for i in range(num):
        matrix = get_affine_transform(centers[i], scales[i], 0, heatmap_size, inv=True)
        out[i] = affine_points(coords[i], matrix)
    return out
