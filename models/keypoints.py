"""Keypoint sets: names, flip pairs, skeleton and OKS sigmas, defined once for the whole project.

The COCO facts (order, 1-based skeleton, sigmas) and the MPII order and flip pairs are those of the
official HRNet code (see shared/REFERENCE.md). Any other set comes from the data (`keypoint_set`: a COCO
category, an ultralytics data.yaml). A checkpoint stores its `KeypointSpec`, so a model trained on another
keypoint set carries its own metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .errors import DehrnetError


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


_SIDE_PREFIXES = (("left_", "right_"), ("l_", "r_"))


def flip_pairs_from_names(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Left/right pairs (0-based, lower index first, sorted) found by name: `left_X` with `right_X` and `l_X`
    with `r_X` (case-insensitive), the rule the COCO and MPII names follow. Unpaired names stay in place."""
    index = {name.lower(): k for k, name in enumerate(names)}
    pairs = set()
    for k, name in enumerate(names):
        for left, right in _SIDE_PREFIXES:
            if name.lower().startswith(left):
                other = index.get(right + name.lower()[len(left):])
                if other is not None and other != k:
                    pairs.add((min(k, other), max(k, other)))
    return tuple(sorted(pairs))


def _check_pairs(pairs: Sequence[Sequence[int]], count: int, what: str, source: str) -> tuple[tuple[int, int], ...]:
    """Index pairs as a tuple of int pairs, each index in [0, count) and the two different."""
    checked = []
    for pair in pairs:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < count for v in pair)
        if not ok or pair[0] == pair[1]:
            raise DehrnetError(f"{source}: {what} entry {list(pair) if isinstance(pair, (list, tuple)) else pair!r} "
                               f"is not a pair of two different keypoints among the {count}")
        checked.append((int(pair[0]), int(pair[1])))
    return tuple(checked)


def keypoint_set(name: str, names: Sequence[str], skeleton: Sequence[Sequence[int]] = (),
                 sigmas: Sequence[float] = (), flip_pairs: Sequence[Sequence[int]] | None = None,
                 source: str = "the keypoint set") -> KeypointSpec:
    """The KeypointSpec of a keypoint set that data defines, checked (a DehrnetError starting with `source`).

    names (K,); skeleton: 0-based index pairs; sigmas: (K,) OKS sigmas on the KeypointSpec scale (before /10),
    or empty for the default (`postprocess.oks_sigmas`); flip_pairs: 0-based pairs, None to find them by name
    (`flip_pairs_from_names`). Names equal to a known set's (COCO-17, MPII-16) give that set, with only what
    the data states differently replaced, so a COCO person file trains exactly the COCO-17 model.
    """
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise DehrnetError(f"{source}: keypoint names must be a non-empty list of non-empty strings, got {list(names)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DehrnetError(f"{source}: keypoint names must be distinct; repeated: {', '.join(repeated)}")
    count = len(names)
    bones = _check_pairs(skeleton, count, "skeleton", source)
    sigma_values = tuple(float(s) for s in sigmas)
    if sigma_values and (len(sigma_values) != count or not all(0 < s < float("inf") for s in sigma_values)):
        raise DehrnetError(f"{source}: OKS sigmas must be {count} positive numbers (one per keypoint), "
                           f"got {len(sigma_values)}: {list(sigma_values)}")
    pairs = flip_pairs_from_names(names) if flip_pairs is None else _check_pairs(flip_pairs, count, "flip pair", source)
    flat = [k for pair in pairs for k in pair]
    if len(flat) != len(set(flat)):
        raise DehrnetError(f"{source}: a keypoint appears in two flip pairs: {[list(p) for p in pairs]}")
    known = next((spec for spec in KEYPOINT_SPECS.values() if spec.names == names), None)
    if known is not None:
        return replace(known, skeleton=bones or known.skeleton, sigmas=sigma_values or known.sigmas,
                       flip_pairs=known.flip_pairs if flip_pairs is None else pairs)
    return KeypointSpec(name=str(name), names=names, flip_pairs=pairs, skeleton=bones, sigmas=sigma_values)
