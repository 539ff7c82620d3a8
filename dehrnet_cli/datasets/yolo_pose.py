"""ultralytics pose data sets (a data.yaml, images/ and labels/*.txt) as a COCO keypoint document, so that they
train and evaluate through the same code as COCO files (`datasets.coco.CocoKeypointFile`, `eval.run`).

The YAML keys read: `path` (the root), `train` and `val` (each a folder, a .txt list of images or a list of
either, relative to the root), `kpt_shape` ([K, 2] or [K, 3]), `flip_idx`, `names` (classes), `kpt_names`
(where present), `kpt_oks_sigmas` (where present, COCOeval's scale) and `skeleton` (a dehrnet extension:
0-based [a, b] pairs, for drawing). Images are listed and their label files found as ultralytics does
(`img2label_paths`: the last /images/ becomes /labels/, the suffix .txt). A label line is
`class cx cy w h x1 y1 [v1] ...`, normalised to the image size; every object, whatever its class, becomes one
instance of the keypoint set, with its box. With 2 values per keypoint, a keypoint is labelled unless a
coordinate is negative; with 3, when v > 0 (ultralytics' rules). Annotation areas (the OKS scale) are box
areas x 0.53, as ultralytics' pose validation scales them. EXIF orientation is ignored, as for COCO files.

Written here rather than taken from ultralytics: its reader (`check_det_dataset`, `YOLODataset`) downloads
missing data, resolves roots through its settings and builds caches beside the labels; dehrnet needs only the
listing rules (taken from `ultralytics.data.utils`) and one-line errors naming the file and line.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli.datasets.coco import SIGMA_SCALE, pairs_of_names
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.coco import category as coco_category
from models import KeypointSpec, keypoint_set

AREA_FACTOR = 0.53  # ultralytics' pose validation: OKS area = box area x 0.53
COORD_LIMIT = 1.01  # ultralytics' tolerance for normalised coordinates


@dataclass(frozen=True)
class YoloPoseData:
    """A parsed data.yaml: root folder, image sources per split, keypoint layout and names."""

    yaml_path: Path
    root: Path
    splits: dict[str, list[str]]
    num_keypoints: int
    values_per_keypoint: int
    class_names: tuple[str, ...]
    keypoint_names: tuple[str, ...] | None
    flip_idx: tuple[int, ...] | None
    sigmas: tuple[float, ...] | None
    skeleton: tuple[tuple[int, int], ...]


def _names(value, where: str) -> tuple[str, ...]:
    """`names` as ultralytics writes it: {0: a, 1: b} or [a, b]."""
    if isinstance(value, dict) and sorted(value) == list(range(len(value))):
        return tuple(str(value[k]) for k in range(len(value)))
    if isinstance(value, list) and value:
        return tuple(str(v) for v in value)
    raise DehrnetError(f"{where}: 'names' must list the classes ({{0: name}} or [name, ...])")


def _int_list(value, where: str, key: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise DehrnetError(f"{where}: '{key}' must be a list of integers, got {value!r}")
    return value


def _root(doc: dict, yaml_path: Path) -> Path:
    """The data set root: `path` as given (relative: to the working folder, as ultralytics), else beside the
    YAML, else in ultralytics' datasets folder; no `path`: the YAML's folder."""
    given = doc.get("path")
    if not given:
        return yaml_path.parent
    path = Path(str(given)).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        from ultralytics.utils import DATASETS_DIR

        candidates = [path, yaml_path.parent / path, Path(DATASETS_DIR) / path]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise DehrnetError(f"--data {yaml_path}: path {given}: no such folder (looked in "
                       f"{', '.join(str(c) for c in candidates)})")


def read_data_yaml(path: Path) -> YoloPoseData:
    """The data.yaml of an ultralytics pose data set, checked (one DehrnetError naming the file and key)."""
    import yaml

    where = f"--data {path}"
    if not Path(path).is_file():
        raise DehrnetError(f"{where}: no such file (an ultralytics pose data.yaml)")
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise DehrnetError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise DehrnetError(f"{where}: not a data.yaml (expected keys path, train, val, kpt_shape, names)")
    missing = [k for k in ("train", "val", "kpt_shape", "names") if not doc.get(k)]
    if missing:
        raise DehrnetError(f"{where}: missing {', '.join(missing)} (an ultralytics pose data.yaml has path, train, "
                           "val, kpt_shape, flip_idx and names)")
    shape = _int_list(doc["kpt_shape"], where, "kpt_shape")
    if len(shape) != 2 or shape[0] < 1 or shape[1] not in (2, 3):
        raise DehrnetError(f"{where}: kpt_shape {shape}: expected [K, 2] or [K, 3] (keypoints, values per keypoint)")
    count = shape[0]
    class_names = _names(doc["names"], where)
    kpt_names = doc.get("kpt_names")
    if isinstance(kpt_names, dict) and kpt_names:
        kpt_names = kpt_names.get(0, next(iter(kpt_names.values())))
    if kpt_names is not None and (not isinstance(kpt_names, list) or len(kpt_names) != count):
        raise DehrnetError(f"{where}: kpt_names must give {count} names (kpt_shape), as {{0: [name, ...]}}")
    flip_idx = doc.get("flip_idx")
    if flip_idx is not None:
        flip_idx = _int_list(flip_idx, where, "flip_idx")
        if sorted(flip_idx) != list(range(count)) or any(flip_idx[flip_idx[k]] != k for k in range(count)):
            raise DehrnetError(f"{where}: flip_idx {flip_idx}: expected {count} indices, each keypoint's mirror "
                               "(a permutation that is its own inverse)")
    sigmas = doc.get("kpt_oks_sigmas")
    if sigmas is not None and (not isinstance(sigmas, list) or len(sigmas) != count
                               or not all(isinstance(s, (int, float)) and s > 0 for s in sigmas)):
        raise DehrnetError(f"{where}: kpt_oks_sigmas must be {count} positive numbers")
    skeleton = doc.get("skeleton") or []
    if not isinstance(skeleton, list) or not all(isinstance(p, list) and len(p) == 2 for p in skeleton):
        raise DehrnetError(f"{where}: skeleton must be a list of [a, b] pairs of 0-based keypoint indices")
    splits = {}
    for split in ("train", "val"):
        value = doc[split]
        splits[split] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return YoloPoseData(Path(path), _root(doc, Path(path)), splits, count, shape[1], class_names,
                        None if kpt_names is None else tuple(str(n) for n in kpt_names),
                        None if flip_idx is None else tuple(flip_idx),
                        None if sigmas is None else tuple(float(s) for s in sigmas),
                        tuple(tuple(p) for p in skeleton))


def yolo_keypoint_set(data: YoloPoseData, sigmas: tuple[float, ...] | None = None,
                      flip_pairs: list[tuple[str, str]] | None = None) -> KeypointSpec:
    """The data set's KeypointSpec: kpt_names (else kpt_0, kpt_1, ...), the skeleton, kpt_oks_sigmas x 10 (or
    `sigmas`, COCOeval's scale: --sigmas) and the flip pairs of flip_idx (or of `flip_pairs` names: --flip-pairs;
    neither: found by name)."""
    where = f"--data {data.yaml_path}"
    names = data.keypoint_names or tuple(f"kpt_{k}" for k in range(data.num_keypoints))
    if flip_pairs is not None:
        pairs = pairs_of_names(flip_pairs, names, where)
    elif data.flip_idx is not None:
        pairs = sorted({(min(k, m), max(k, m)) for k, m in enumerate(data.flip_idx) if m != k})
    else:
        pairs = None
    given = sigmas if sigmas is not None else data.sigmas
    name = data.class_names[0] if len(data.class_names) == 1 else data.yaml_path.stem
    return keypoint_set(name, names, data.skeleton, [SIGMA_SCALE * s for s in given or ()], pairs, source=where)


def image_files(data: YoloPoseData, split: str) -> list[Path]:
    """The images of a split, listed as ultralytics lists them: a folder (recursively), a .txt of paths (a line
    starting with ./ is relative to the list), or a list of these; only image suffixes; sorted."""
    from ultralytics.data.utils import IMG_FORMATS

    found: list[str] = []
    for entry in data.splits[split]:
        source = data.root / entry
        if not source.exists() and entry.startswith("../"):
            source = data.root / entry[3:]
        if source.is_dir():
            found += glob.glob(str(Path(glob.escape(str(source))) / "**" / "*.*"), recursive=True)
        elif source.is_file():
            lines = source.read_text(encoding="utf-8-sig").strip().splitlines()
            parent = str(source.parent) + os.sep
            found += [line.replace("./", parent, 1) if line.startswith("./") else line for line in lines]
        else:
            raise DehrnetError(f"--data {data.yaml_path}: {split} {entry}: no such folder or file under {data.root}")
    images = sorted(Path(p) for p in found if p.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not images:
        raise DehrnetError(f"--data {data.yaml_path}: no images for {split} ({', '.join(data.splits[split])})")
    return images


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DehrnetError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DehrnetError(f"{where}: {text!r} is not a finite number")
    return value


def parse_label_line(line: str, where: str, data: YoloPoseData) -> tuple[int, list[float], list[float]]:
    """(class, box [cx, cy, w, h], keypoints [x, y, v] * K) of one label line, normalised; v is 0 for a keypoint
    that is not labelled, else its value (2 when the file gives none). A malformed line: DehrnetError `where`."""
    count, per = data.num_keypoints, data.values_per_keypoint
    parts = line.split()
    if len(parts) != 5 + count * per:
        raise DehrnetError(f"{where}: {len(parts)} values; expected {5 + count * per} (class cx cy w h, then "
                           f"{count} keypoints x {per}: {'x y v' if per == 3 else 'x y'})")
    values = [_number(p, where) for p in parts]
    cls = values[0]
    if cls != int(cls) or not 0 <= cls < len(data.class_names):
        raise DehrnetError(f"{where}: class {parts[0]}: expected an integer in 0..{len(data.class_names) - 1} (names)")
    box = values[1:5]
    if not all(0 <= v <= COORD_LIMIT for v in box) or box[2] <= 0 or box[3] <= 0:
        raise DehrnetError(f"{where}: box {' '.join(parts[1:5])}: expected cx cy w h normalised to [0, 1], "
                           "w and h > 0")
    keypoints: list[float] = []
    for k in range(count):
        x, y = values[5 + k * per:7 + k * per]
        v = values[7 + k * per] if per == 3 else (0.0 if x < 0 or y < 0 else 2.0)
        if per == 3 and v not in (0.0, 1.0, 2.0):
            raise DehrnetError(f"{where}: keypoint {k + 1} visibility {v:g}: expected 0, 1 or 2")
        if v > 0 and not (0 <= x <= COORD_LIMIT and 0 <= y <= COORD_LIMIT):
            raise DehrnetError(f"{where}: keypoint {k + 1} at {x:g} {y:g}: labelled keypoints are normalised to "
                               "[0, 1]")
        keypoints += [x, y, v] if v > 0 else [0.0, 0.0, 0.0]
    return int(cls), box, keypoints


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header (PIL), without decoding it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError) as e:
        raise DehrnetError(f"{path}: cannot read the image ({e})") from None


def coco_document(data: YoloPoseData, split: str, spec: KeypointSpec) -> dict:
    """The split as a COCO keypoint document: images (ids 1..N, file_name the image's path), one annotation per
    label line (bbox and keypoints in pixels, area = box area x AREA_FACTOR) and one category of `spec`. Every
    label line is checked here, before any training."""
    from ultralytics.data.utils import img2label_paths

    paths = image_files(data, split)
    images, annotations = [], []
    for image_id, (image, label) in enumerate(zip(paths, img2label_paths(paths)), start=1):
        width, height = _image_size(image)
        images.append({"id": image_id, "file_name": str(image), "width": width, "height": height})
        label = Path(label)
        if not label.is_file():  # an image without a label file has no objects (ultralytics: a background image)
            continue
        for number, line in enumerate(label.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            _, (cx, cy, w, h), keypoints = parse_label_line(line, f"{label} line {number}", data)
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            pixels = [v * (width if i % 3 == 0 else height) if i % 3 < 2 else v for i, v in enumerate(keypoints)]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": box, "area": box[2] * box[3] * AREA_FACTOR, "keypoints": pixels,
                                "num_keypoints": sum(1 for v in keypoints[2::3] if v > 0)})
    category = coco_category(spec)  # as predict's JSON names it ("person" for the human sets)
    if spec.sigmas:
        category["kpt_oks_sigmas"] = [s / SIGMA_SCALE for s in spec.sigmas]
    return {"images": images, "annotations": annotations, "categories": [category]}
