"""One person = one training sample, as the official HRNet `JointsDataset`: its crop is warped with the
shared geometry (after the augmentation of `datasets.augment`), normalised by `normalize_crops` (the one
preprocessing of training and inference), and its target heatmaps come from `HeatmapCodec.encode`. Every
random draw of a sample comes from its own generator seeded by (seed, epoch, index), so a sample is the same
whichever worker or rank draws it, and a resumed run sees the same data as an uninterrupted one.

Shape letters: K keypoints, H x W heatmap rows x columns, h x w crop rows x columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dehrnet_cli.datasets.augment import AugmentSettings, CropParams, sample_crop_params, warp_training_crop
from dehrnet_cli.datasets.records import PersonRecord
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import normalize_crops
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.sources.images import read_image
from models import PoseNetConfig

# official USE_DIFFERENT_JOINTS_WEIGHT table (COCO order), used only with AugmentSettings.joint_weights
COCO_JOINT_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5)


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
