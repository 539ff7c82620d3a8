"""The picture as the user sees it. A video's display matrix (every portrait phone video is stored sideways and
tagged to be shown rotated) is applied to its frames as players apply it; an image is read either as viewers show
it ("exif": its EXIF orientation applied) or as stored ("stored": the pixel array, on which COCO and other
annotations were made).

The display matrix is FFmpeg's (libavutil/display.h): a point (x, y) of the stored frame goes to
(a x + c y, b x + d y) of the displayed one, with 16.16 fixed-point a, b, c, d. Here only its axis-aligned cases
(rotations by multiples of 90 degrees, with or without a mirror: the eight EXIF orientations) are applied, by
transposing and flipping the array, which is exact and what ffmpeg's own autorotation does; FFmpeg and PyAV
leave this to the player, so it is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dehrnet_cli.errors import DehrnetError

ORIENTATIONS = ("exif", "stored")  # how images are read: as viewers show them, or the stored pixels


def check_orientation(orientation: str) -> str:
    """`orientation` if it is one of ORIENTATIONS, else a DehrnetError naming them."""
    if orientation not in ORIENTATIONS:
        raise DehrnetError(f"image orientation {orientation!r}: use 'exif' (as viewers show the image) or 'stored' "
                           "(the stored pixels, as COCO annotations were made)")
    return orientation


class DisplayTransform(NamedTuple):
    """Stored frame -> displayed frame: transpose first (`swap`: x and y trade places), then flip the rows
    (`flip_rows`: upside down) and the columns (`flip_cols`: mirrored)."""

    swap: bool
    flip_rows: bool
    flip_cols: bool

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) stored -> (H', W', C) displayed, contiguous (W' = H when `swap`)."""
        out = image.transpose(1, 0, *range(2, image.ndim)) if self.swap else image
        if self.flip_rows:
            out = out[::-1]
        if self.flip_cols:
            out = out[:, ::-1]
        return np.ascontiguousarray(out)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The displayed (w, h) of a stored (w, h) frame."""
        return (height, width) if self.swap else (width, height)


AS_STORED = DisplayTransform(False, False, False)


def display_transform(matrix: Sequence[int]) -> DisplayTransform | None:
    """The transform of a display matrix (9 int32 in FFmpeg's layout; AS_STORED for the identity); None when it
    is not axis-aligned (a rotation by other than a multiple of 90 degrees), which this does not apply."""
    a, b, c, d = (matrix[i] / 65536 for i in (0, 1, 3, 4))
    tiny = 1e-3
    if abs(b) < tiny and abs(c) < tiny and abs(a) > tiny and abs(d) > tiny:  # x stays x: flips only
        transform = DisplayTransform(False, d < 0, a < 0)
    elif abs(a) < tiny and abs(d) < tiny and abs(b) > tiny and abs(c) > tiny:  # x' from y, y' from x
        transform = DisplayTransform(True, b < 0, c < 0)
    else:
        return None
    return transform
