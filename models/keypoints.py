"""Keypoint sets: names, flip pairs, skeleton and OKS sigmas, defined once for the whole project.

The COCO facts (order, 1-based skeleton, sigmas) and the MPII order and flip pairs are those of the
official HRNet code (see shared/REFERENCE.md). A checkpoint stores its `KeypointSpec`, so a model
trained on another keypoint set carries its own metadata.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypointSpec:
    """Everything the pipeline needs to know about a keypoint set.

    `flip_pairs` and `skeleton` are 0-based index pairs; `sigmas` are the COCO OKS sigmas (before
    the /10 of the COCO code) or empty when the dataset has none.
    """

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] = ()
    upper_body: tuple[int, ...] = ()

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_index(self) -> list[int]:
        """Channel permutation that swaps left and right: flipped[k] = original[flip_index[k]]."""
        index = list(range(self.num_keypoints))
        for a, b in self.flip_pairs:
            index[a], index[b] = b, a
        return index

    def side(self, k: int) -> str:
        """'left', 'right' or 'center' by name, used to colour limbs."""
        name = self.names[k]
        if name.startswith(("left", "l_")):
            return "left"
        if name.startswith(("right", "r_")):
            return "right"
        return "center"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "names": list(self.names),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "skeleton": [list(p) for p in self.skeleton],
            "sigmas": list(self.sigmas),
            "upper_body": list(self.upper_body),
        }

    @classmethod
    def from_dict(cls, d: dict) -> KeypointSpec:
        return cls(
            name=str(d["name"]),
            names=tuple(d["names"]),
            flip_pairs=tuple(tuple(p) for p in d["flip_pairs"]),
            skeleton=tuple(tuple(p) for p in d["skeleton"]),
            sigmas=tuple(float(s) for s in d.get("sigmas", ())),
            upper_body=tuple(d.get("upper_body", ())),
        )


_COCO_SKELETON_1_BASED = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

COCO17 = KeypointSpec(
    name="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=tuple((a - 1, b - 1) for a, b in _COCO_SKELETON_1_BASED),
    sigmas=(
        0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
        1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
    ),
    upper_body=tuple(range(11)),
)  # fmt: skip

MPII16 = KeypointSpec(
    name="mpii",
    names=(
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
        "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow",
        "l_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12),
        (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    upper_body=(7, 8, 9, 10, 11, 12, 13, 14, 15),
)  # fmt: skip

KEYPOINT_SPECS = {"coco": COCO17, "mpii": MPII16}
