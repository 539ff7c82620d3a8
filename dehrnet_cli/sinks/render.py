"""Draw poses on an image: skeleton limbs coloured by body side, optional boxes, track ids, banner.

Colours are BGR. Left limbs are green, right limbs orange, centre limbs (and limbs joining left to
right, such as shoulder to shoulder) blue, so a mirrored prediction is visible at a glance.
"""

from __future__ import annotations

import cv2
import numpy as np

from dehrnet_cli.errors import InternalError
from dehrnet_cli.stage_data import Poses
from models.keypoints import KeypointSpec

UNTRAINED_BANNER = "UNTRAINED WEIGHTS - poses are meaningless"

LEFT_BGR = (0, 200, 0)

RIGHT_BGR = (0, 140, 255)

CENTER_BGR = (255, 140, 0)

SIDE_BGR = {"left": LEFT_BGR, "right": RIGHT_BGR, "center": CENTER_BGR}

BOX_BGR = (220, 220, 220)  # boxes without a track id

TRACK_PALETTE_BGR = (
    (255, 56, 56), (56, 56, 255), (255, 157, 151), (0, 194, 255), (255, 112, 31), (72, 249, 10),
    (146, 204, 23), (61, 219, 134), (255, 178, 29), (207, 210, 49), (26, 147, 52), (187, 212, 0),
)  # one colour per track id (id modulo 12)

BANNER_BGR = (0, 0, 170)  # dark red band behind the banner text

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def limb_side(spec: KeypointSpec, a: int, b: int) -> str:
    """'left' or 'right' when the limb's keypoints are on that side (or one is central), else 'center'."""
    sides = {spec.side(a), spec.side(b)} - {"center"}
    return sides.pop() if len(sides) == 1 else "center"


def line_thickness(width: int, height: int) -> int:
    """Limb thickness in pixels for an image of that size: 1 up to ~360 px, 2 at 480p, 5 at 1080p."""
    return max(1, round(min(width, height) / 240))


def _int_pixels(points_xy: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """(P, 2) float pixels as int (x, y) tuples for OpenCV; NaN -> 0, clipped to [-limit, limit]."""
    pixels = np.round(np.clip(np.nan_to_num(points_xy), -limit, limit)).astype(int)
    return [(x, y) for x, y in pixels.tolist()]


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")  # Hershey fonts have no other glyphs


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], scale: float,
           colour: tuple[int, ...], thickness: int) -> None:
    """`text` on a filled `colour` tag whose bottom-left corner is `corner` (moved inside the image
    when it would leave it at the top); black text on light colours, white on dark ones."""
    text = _ascii(text)
    blue, green, red = colour[:3]
    text_colour = (0, 0, 0) if 0.114 * blue + 0.587 * green + 0.299 * red > 150 else (255, 255, 255)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = thickness + 1
    x, y = corner
    y = max(y, text_h + baseline + 2 * pad)
    cv2.rectangle(canvas, (x, y - text_h - baseline - 2 * pad), (x + text_w + 2 * pad, y), colour, -1)
    cv2.putText(canvas, text, (x + pad, y - baseline - pad), _FONT, scale, text_colour, thickness,
                cv2.LINE_AA)


def _draw_banner(canvas: np.ndarray, text: str) -> None:
    """A translucent dark-red band across the top with `text` in white, shrunk to fit the width."""
    text = _ascii(text)
    height, width = canvas.shape[:2]
    pad = max(2, round(min(width, height) / 80))
    scale = max(0.3, min(width, height) / 700)
    thickness = max(1, round(scale * 1.5))
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    if text_w > width - 2 * pad:
        scale *= (width - 2 * pad) / text_w
        (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    band_h = min(height, text_h + baseline + 2 * pad)
    band = canvas[:band_h].astype(np.float32)
    canvas[:band_h] = (0.3 * band + 0.7 * np.array(BANNER_BGR, np.float32)).astype(np.uint8)
    cv2.putText(canvas, text, (pad, pad + text_h), _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def draw_poses(image_bgr: np.ndarray, poses: Poses, spec: KeypointSpec, kpt_thr: float = 0.3,
               draw_boxes: bool = False, draw_ids: bool = True, labels: bool = False,
               banner: str | None = None) -> np.ndarray:
    """Return a copy of `image_bgr` ((H, W, 3) uint8) with the poses drawn; the input is not modified.

    poses.keypoints_xy (N, K, 2) are image pixels, K = spec.num_keypoints. A keypoint whose score
    is below `kpt_thr` is hidden, and so is every limb touching it. `draw_boxes` outlines
    poses.boxes_xyxy; `draw_ids` writes poses.track_ids (when present) at each box's top-left
    corner, coloured per id; `labels` writes the person's number and score there (after the id).
    `banner` is written across the top (e.g. to mark untrained weights).
    """
    if len(poses) and poses.keypoints_xy.shape[1:] != (spec.num_keypoints, 2):
        raise InternalError(f"poses have keypoints of shape {poses.keypoints_xy.shape[1:]}, but the "
                            f"'{spec.name}' skeleton has {spec.num_keypoints} keypoints")
    canvas = np.array(image_bgr, dtype=np.uint8, copy=True, order="C")
    height, width = canvas.shape[:2]
    thickness = line_thickness(width, height)
    radius = thickness + 1
    limb_colours = [SIDE_BGR[limb_side(spec, a, b)] for a, b in spec.skeleton]
    kpt_colours = [SIDE_BGR[spec.side(k)] for k in range(spec.num_keypoints)]
    limit = 4 * max(width, height)  # keeps wild coordinates inside OpenCV's integer range

    for n in range(len(poses)):
        kpts_xy = poses.keypoints_xy[n]
        visible = (poses.kpt_scores[n] >= kpt_thr) & np.isfinite(kpts_xy).all(axis=1)
        points = _int_pixels(kpts_xy, limit)
        for (a, b), colour in zip(spec.skeleton, limb_colours, strict=True):
            if visible[a] and visible[b]:
                cv2.line(canvas, points[a], points[b], colour, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, points[k], radius, kpt_colours[k], -1, cv2.LINE_AA)

        track_id = None if poses.track_ids is None else int(poses.track_ids[n])
        colour = BOX_BGR if track_id is None else TRACK_PALETTE_BGR[track_id % len(TRACK_PALETTE_BGR)]
        (x1, y1), (x2, y2) = _int_pixels(poses.boxes_xyxy[n].reshape(2, 2), limit)
        if draw_boxes:
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        tag = [f"#{track_id}"] if draw_ids and track_id is not None else []
        if labels:
            tag.append(f"p{n} {float(poses.scores[n]):.2f}")
        if tag:  # a tag on the box's top-left corner
            _label(canvas, " ".join(tag), (x1, y1), 0.4 * thickness, colour, thickness)

    if banner:
        _draw_banner(canvas, banner)
    return canvas
