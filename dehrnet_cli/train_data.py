"""Training data: people records of COCO and MPII, the paper's augmentation, and targets through the codec.

One person = one sample, as the official HRNet `JointsDataset`: its crop is warped with the shared
`get_affine_transform` (after half-body, scale, rotation and flip augmentation, in the official order),
normalised by `normalize_crops` (the one preprocessing of training and inference) and its target heatmaps
come from `HeatmapCodec.encode`. Every random draw of a sample comes from its own generator seeded by
(seed, epoch, index), so a sample is the same whichever worker or rank draws it, and a resumed run sees
the same data as an uninterrupted one.

Shape letters: K keypoints, H x W heatmap rows x columns, h x w crop rows x columns. Sizes are (w, h).
Coordinates are 0-based image pixels unless a name says crop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from models import KeypointSpec, PoseNetConfig

from .backends import normalize_crops
from .codec import HeatmapCodec
from .errors import DehrnetError
from .geometry import PIXEL_STD, affine_points, center_scale_from_xywh, clean_gt_box, get_affine_transform, warp_crops
from .sources import read_image
from .topdown import TopDownEstimator

# official USE_DIFFERENT_JOINTS_WEIGHT table (COCO order), used only with AugmentSettings.joint_weights
COCO_JOINT_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5)


@dataclass(frozen=True)
class AugmentSettings:
    """Training augmentation; the defaults are the paper's recipe drawn the official HRNet way.

    scale: s * clip(N(1, scale_factor), 1 - f, 1 + f) ("+-32 %" in the paper; the official COCO yaml has
    0.35). Rotation, with probability `rotation_prob`: clip(N(0, rotation_factor), +-2 x factor) degrees
    (the papers' "+-45 deg" is the official ROT_FACTOR 45). Flip with probability `flip_prob` (flip pairs
    swapped). Half-body with probability `half_body_prob` for people with more than `half_body_min_joints`
    labelled joints: the box of the upper (spec.upper_body) or lower joints, x `half_body_padding`.
    """

    scale_factor: float = 0.32
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip: bool = True
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8
    half_body_padding: float = 1.5
    joint_weights: bool = False  # official per-joint loss weights (COCO only): elbows/knees 1.2, wrists/ankles 1.5

    def __post_init__(self) -> None:
        probs = {"rotation_prob": self.rotation_prob, "flip_prob": self.flip_prob,
                 "half_body_prob": self.half_body_prob}
        bad = [f"{k}={v}" for k, v in probs.items() if not 0 <= v <= 1]
        if not 0 <= self.scale_factor < 1:
            bad.append(f"scale_factor={self.scale_factor} (needs 0 <= f < 1)")
        if self.rotation_factor < 0 or self.half_body_padding <= 0:
            bad.append(f"rotation_factor={self.rotation_factor}, half_body_padding={self.half_body_padding}")
        if bad:
            raise DehrnetError(f"invalid augmentation settings: {', '.join(bad)}; probabilities lie in [0, 1]")


NO_AUGMENT = AugmentSettings(scale_factor=0.0, rotation_prob=0.0, flip=False, half_body_prob=0.0)


@dataclass(frozen=True, eq=False)
class PersonRecord:
    """One annotated person.

    image: the image file (or a generator key, see synthetic.py); box_xywh (4,) the cleaned person box;
    center (2,) and scale (2,) (200 px units, padded) define the un-augmented crop; keypoints_xy (K, 2);
    visible (K,) 1 for labelled joints, 0 otherwise (COCO v=1 and v=2 both count, as the official loader).
    """

    image: str
    image_id: int
    box_xywh: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    keypoints_xy: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True, eq=False)
class CropParams:
    """One sample's crop: center (2,) in the (flipped, if `flip`) image, scale (2,), rotation in degrees."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float = 0.0
    flip: bool = False


def half_body_box(keypoints_xy: np.ndarray, visible: np.ndarray, upper_body: tuple[int, ...], aspect: float,
                  rng: np.random.Generator, padding: float = 1.5) -> tuple[np.ndarray, np.ndarray] | None:
    """Center (2,) and scale (2,) of the upper or lower body's labelled joints, or None (fewer than 2).

    Official choice: the upper body when N(0, 1) < 0.5 (about 69 %) and it has more than 2 labelled joints,
    else the lower body when it has more than 2, else the upper body. The joints' box is grown to `aspect`
    (crop w / h) and multiplied by `padding`.
    """
    labelled = np.asarray(visible) > 0
    upper_mask = np.zeros(len(labelled), bool)
    upper_mask[list(upper_body)] = True
    upper, lower = keypoints_xy[labelled & upper_mask], keypoints_xy[labelled & ~upper_mask]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    else:
        selected = lower if len(lower) > 2 else upper
    if len(selected) < 2:
        return None
    center = selected.mean(axis=0).astype(np.float32)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, (np.array([w, h], np.float32) / PIXEL_STD * padding).astype(np.float32)


def sample_crop_params(rng: np.random.Generator, record: PersonRecord, image_w: int, settings: AugmentSettings,
                       spec: KeypointSpec, aspect: float) -> CropParams:
    """Draw one sample's augmentation in the official order: half-body, scale, rotation, flip."""
    center, scale = record.center.astype(np.float32).copy(), record.scale.astype(np.float32).copy()
    labelled = int((record.visible > 0).sum())
    if labelled > settings.half_body_min_joints and rng.random() < settings.half_body_prob:
        box = half_body_box(record.keypoints_xy, record.visible, spec.upper_body, aspect, rng,
                            settings.half_body_padding)
        if box is not None:
            center, scale = box
    f = settings.scale_factor
    scale = scale * np.float32(np.clip(rng.standard_normal() * f + 1, 1 - f, 1 + f))
    rotation = 0.0
    if rng.random() < settings.rotation_prob:
        r = settings.rotation_factor
        rotation = float(np.clip(rng.standard_normal() * r, -2 * r, 2 * r))
    flip = settings.flip and rng.random() < settings.flip_prob
    if flip:
        center[0] = image_w - center[0] - 1
    return CropParams(center, scale, rotation, flip)


def warp_training_crop(image: np.ndarray, keypoints_xy: np.ndarray, visible: np.ndarray, params: CropParams,
                       input_size: tuple[int, int], flip_index: list[int]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training crop (h, w, 3) uint8, its keypoints (K, 2) in crop pixels and visibility (K,).

    With `params.flip` the image is mirrored first (x -> W - 1 - x), left/right joints swap labels and
    unlabelled joints are zeroed, as the official `fliplr_joints`; then the image is warped with the shared
    geometry (bilinear, zero border) and the labelled joints are moved by the same matrix.
    """
    points = np.asarray(keypoints_xy, np.float64).copy()
    vis = np.asarray(visible, np.float32).copy()
    if params.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        points[:, 0] = image.shape[1] - points[:, 0] - 1
        points, vis = points[flip_index], vis[flip_index]
        points *= vis[:, None]
    crop = warp_crops(image, params.center[None], params.scale[None], input_size,
                      np.array([params.rotation]))[0]
    matrix = get_affine_transform(params.center, params.scale, params.rotation, input_size)
    points_crop = np.where(vis[:, None] > 0, affine_points(points, matrix), points)
    return crop, points_crop, vis


class TopDownDataset(Dataset):
    """Training (or plain validation) samples of person records.

    `dataset[index]` or `dataset[(epoch, index)]` (as `EpochSampler` yields) returns a dict: "image"
    (3, h, w) float32 normalised RGB, "target" (K, H, W) float32, "target_weight" (K,) float32, "index".
    Subclasses change `load_image` (e.g. generated images).
    """

    def __init__(self, records: list[PersonRecord], config: PoseNetConfig, augment: AugmentSettings | None = None,
                 seed: int = 0) -> None:
        self.records = records
        self.config = config
        self.augment = augment
        self.seed = int(seed)
        self.codec = HeatmapCodec(config.input_size, config.heatmap_size, config.sigma)
        self.flip_index = config.keypoints.flip_index()
        self.aspect = config.input_size[0] / config.input_size[1]
        self.joint_weights = None
        if augment is not None and augment.joint_weights:
            if config.num_keypoints != len(COCO_JOINT_WEIGHTS):
                raise DehrnetError("joint_weights is the official COCO-17 table; this model has "
                                   f"{config.num_keypoints} keypoints: turn joint_weights off")
            self.joint_weights = np.asarray(COCO_JOINT_WEIGHTS, np.float32)

    def __len__(self) -> int:
        return len(self.records)

    def load_image(self, record: PersonRecord) -> np.ndarray:
        """(H, W, 3) uint8 BGR image of a record."""
        try:
            return read_image(Path(record.image))
        except DehrnetError as e:  # re-raised by the DataLoader from a worker: keep it one plain message
            raise DehrnetError(f"training image {e}; fix the file or drop it from the annotations") from None

    def crop_params(self, epoch: int, index: int, image_w: int) -> CropParams:
        record = self.records[index]
        if self.augment is None:
            return CropParams(record.center.astype(np.float32), record.scale.astype(np.float32))
        rng = np.random.default_rng([self.seed, epoch, index])
        return sample_crop_params(rng, record, image_w, self.augment, self.config.keypoints, self.aspect)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (0, int(key))
        record = self.records[index]
        image = self.load_image(record)
        params = self.crop_params(epoch, index, image.shape[1])
        crop, points_crop, vis = warp_training_crop(image, record.keypoints_xy, record.visible, params,
                                                    self.config.input_size, self.flip_index)
        target, target_weight = self.codec.encode(points_crop, vis)
        if self.joint_weights is not None:
            target_weight = target_weight * self.joint_weights
        pixels = normalize_crops(crop[None], self.config.mean, self.config.std)[0]
        return {"image": torch.from_numpy(pixels), "target": torch.from_numpy(target),
                "target_weight": torch.from_numpy(target_weight), "index": index}


class EpochSampler(Sampler):
    """One rank's share of a shuffled epoch (torch's DistributedSampler: seed + epoch), yielding
    (epoch, index) keys. `set_epoch(epoch, skip)` starts an epoch, skipping its first `skip` samples
    (a run resumed in the middle of an epoch)."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.inner.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for n, index in enumerate(self.inner):
            if n >= self.skip:
                yield self.epoch, int(index)

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


# --------------------------------------------------------------------------------------------- datasets


def _read_json(path: Path, flag: str) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DehrnetError(f"{flag} {path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{flag} {path}: cannot be read as JSON ({e})") from None


def coco_records(ann_file: Path, images_dir: Path, config: PoseNetConfig, flag: str = "--train-ann"
                 ) -> list[PersonRecord]:
    """Training people of a COCO keypoint file, as the official loader: category 1, not crowd, box cleaned
    (`clean_gt_box`, area > 0), at least one labelled keypoint; center/scale by `_xywh2cs`."""
    doc = _read_json(ann_file, flag)
    if not (isinstance(doc, dict) and isinstance(doc.get("images"), list)
            and isinstance(doc.get("annotations"), list)):
        raise DehrnetError(f"{flag} {ann_file}: not a COCO annotation file (needs 'images' and 'annotations' lists, "
                           "like person_keypoints_train2017.json)")
    num_k = config.num_keypoints
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    records = []
    try:
        for image in doc["images"]:
            for ann in by_image.get(image["id"], []):
                if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0) or max(ann["keypoints"]) == 0:
                    continue
                box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
                if box is None:
                    continue
                kpts = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
                if len(kpts) != num_k:
                    raise DehrnetError(f"{flag} {ann_file}: annotation {ann.get('id')} has {len(kpts)} keypoints; "
                                       f"the model {config.name} predicts {num_k}")
                center, scale = center_scale_from_xywh(box[None], config.input_size)
                records.append(PersonRecord(str(Path(images_dir) / image["file_name"]), int(image["id"]), box,
                                            center[0], scale[0], kpts[:, :2].copy(),
                                            np.minimum(kpts[:, 2], 1).astype(np.float32)))
    except (KeyError, TypeError, ValueError) as e:
        raise DehrnetError(f"{flag} {ann_file}: malformed COCO annotation ({type(e).__name__}: {e})") from None
    return records


def mpii_records(ann_file: Path, images_dir: Path, config: PoseNetConfig) -> list[PersonRecord]:
    """People of an MPII per-person json (annot/train.json): the official crop (center moved down 15 x scale,
    scale x1.25, 1-based -> 0-based, `evaluation.mpii_center_scale`) and 0-based joints."""
    from .evaluation import load_mpii_annotations, mpii_center_scale

    if config.num_keypoints != 16:
        raise DehrnetError(f"MPII has 16 keypoints; the model {config.name} predicts {config.num_keypoints}: "
                           "use an MPII config such as dehrnet_w32_mpii_256x256")
    records = []
    for n, person in enumerate(load_mpii_annotations(ann_file)):
        center, scale = mpii_center_scale(person)
        side = scale[0] / 1.25 * PIXEL_STD  # the annotated person size, as a square box around the crop center
        box = np.array([center[0] - side / 2, center[1] - side / 2, side, side])
        records.append(PersonRecord(str(Path(images_dir) / person["image"]), n, box, center.astype(np.float32),
                                    scale.astype(np.float32), np.asarray(person["joints"], np.float64) - 1.0,
                                    (np.asarray(person["joints_vis"]) > 0).astype(np.float32)))
    return records


# ---------------------------------------------------------------------------------------- folder layout


@dataclass(frozen=True)
class DataPaths:
    """The four pieces of a dataset: training/validation annotation files and image folders."""

    train_ann: Path
    train_images: Path
    val_ann: Path
    val_images: Path

    def check(self, what: str) -> None:
        """One DehrnetError naming every missing piece."""
        missing = [f"{p} ({name})" for name, p, ok in (
            ("training annotations", self.train_ann, self.train_ann.is_file()),
            ("training images", self.train_images, self.train_images.is_dir()),
            ("validation annotations", self.val_ann, self.val_ann.is_file()),
            ("validation images", self.val_images, self.val_images.is_dir())) if not ok]
        if missing:
            raise DehrnetError(f"{what} is incomplete, missing: {'; '.join(map(str, missing))}")


def coco_paths(root: Path | None, train_ann: Path | None = None, train_images: Path | None = None,
               val_ann: Path | None = None, val_images: Path | None = None) -> DataPaths:
    """COCO layout `root/{train2017,val2017}/` + `root/annotations/person_keypoints_{train,val}2017.json`
    (the official `root/images/train2017` also works); explicit paths override the parts. Checked."""
    if root is None and None in (train_ann, train_images, val_ann, val_images):
        raise DehrnetError("give --coco DIR, or all four of --train-ann, --train-images, --val-ann, --val-images")

    def images(split: str) -> Path:
        official = Path(root) / "images" / split
        return official if not (Path(root) / split).exists() and official.is_dir() else Path(root) / split

    paths = DataPaths(
        Path(train_ann or Path(root) / "annotations" / "person_keypoints_train2017.json"),
        Path(train_images or images("train2017")),
        Path(val_ann or Path(root) / "annotations" / "person_keypoints_val2017.json"),
        Path(val_images or images("val2017")))
    paths.check(f"COCO folder {root}" if root is not None else "the COCO data given")
    return paths


def mpii_paths(root: Path | None, train_ann: Path | None = None, train_images: Path | None = None,
               val_ann: Path | None = None, val_images: Path | None = None) -> DataPaths:
    """MPII layout of the official code: `root/images/`, `root/annot/{train,valid}.json`. Checked."""
    if root is None and None in (train_ann, train_images, val_ann, val_images):
        raise DehrnetError("give --mpii DIR, or all four of --train-ann, --train-images, --val-ann, --val-images")
    paths = DataPaths(Path(train_ann or Path(root) / "annot" / "train.json"),
                      Path(train_images or Path(root) / "images"),
                      Path(val_ann or Path(root) / "annot" / "valid.json"),
                      Path(val_images or Path(root) / "images"))
    paths.check(f"MPII folder {root}" if root is not None else "the MPII data given")
    return paths


def evaluate_pck(topdown: TopDownEstimator, dataset: TopDownDataset, thr: float = 0.1) -> float:
    """PCK@thr of a model on a dataset's people, each cropped by its own (un-augmented) center and scale.

    A labelled joint counts as found when the decoded keypoint (flip test per `topdown.settings`) lies within
    thr x max(box w, box h) of the truth, in image pixels. Returns the found fraction of all labelled joints.
    """
    by_image: dict[str, list[int]] = {}
    for n, record in enumerate(dataset.records):
        by_image.setdefault(record.image, []).append(n)
    found = labelled = 0
    for rows in by_image.values():
        records = [dataset.records[n] for n in rows]
        image = dataset.load_image(records[0])
        centers = np.stack([r.center for r in records]).astype(np.float32)
        scales = np.stack([r.scale for r in records]).astype(np.float32)
        heatmaps = topdown.heatmaps(warp_crops(image, centers, scales, topdown.config.input_size))
        preds, _ = topdown.codec.decode_to_image(heatmaps, centers, scales)
        for record, pred in zip(records, preds):
            vis = record.visible > 0
            size = max(record.box_xywh[2], record.box_xywh[3])
            errors = np.linalg.norm(pred.astype(np.float64) - record.keypoints_xy, axis=1)
            found += int(((errors <= thr * size) & vis).sum())
            labelled += int(vis.sum())
    return found / max(labelled, 1)
