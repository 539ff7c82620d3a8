"""Crops -> keypoints on the network's device (the GPU path of `pose.topdown`): frames uploaded once each,
crops warped there (`gpu_crops`), the flip test (`flip.flip_tested`) and the decode (`codec.HeatmapCodec`) there,
with the host path's own code on torch tensors; only the
(N, K, 2) coordinates and (N, K) scores come back to the host.

The numbers are the host path's: the same crop matrices, cv2's 1/32-pixel rounding of source positions, the
same normalisation, flip merge and decode in float32 (crop pixels may differ from cv2's by rounding, see
`gpu_crops`). The DARK decoder runs on the host (its blur is written for numpy): heatmaps come back for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.flip import flip_tested
from dehrnet_cli.pose.frame_upload import FrameUploader
from dehrnet_cli.pose.gpu_crops import crop_matrices, frame_to_planes, normalize_crops_torch, warp_crops_torch


class DeviceKeypoints:
    """Keypoints in heatmap pixels of crops of whole frames, computed on `backend`'s device."""

    def __init__(self, backend: TorchBackend, codec: HeatmapCodec, flip_index: Sequence[int], flip: bool,
                 batch: int) -> None:
        self.backend, self.codec, self.flip_index, self.flip, self.batch = backend, codec, flip_index, flip, batch
        self.config = backend.config
        self.device = torch.device(backend.device)
        self.uploader = FrameUploader(self.device)

    def crops(self, images: Sequence[np.ndarray], centers: Sequence[np.ndarray],
              scales: Sequence[np.ndarray]) -> torch.Tensor:
        """Normalised crops (N, 3, h, w) in the backend's dtype, channels_last, on the device: the crops of
        every image (H, W, 3) uint8 BGR at its centers (n_i, 2) and scales (n_i, 2), in order."""
        cfg = self.config
        w, h = cfg.input_size
        used = [i for i, c in enumerate(centers) if len(c)]
        frames = self.uploader.upload([images[i] for i in used])
        parts = []
        with torch.inference_mode():
            for i, frame in zip(used, frames):
                frame.ready()
                warped = warp_crops_torch(frame_to_planes(frame.tensor), crop_matrices(centers[i], scales[i],
                                                                                       cfg.input_size), cfg.input_size)
                parts.append(normalize_crops_torch(warped, cfg.mean, cfg.std, self.backend.dtype))
            self.uploader.release()
        if not parts:
            return torch.zeros((0, 3, h, w), dtype=self.backend.dtype, device=self.device)
        return torch.cat(parts)

    def decode(self, crops: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(coords_hm (N, K, 2) float32 heatmap pixels, maxvals (N, K) float32) of normalised device crops
        (N, 3, h, w): forward passes of `batch` crops (2 x batch with the flip test), flip merge, decode."""
        coords, maxvals = [], []
        with torch.inference_mode():
            for heatmaps in flip_tested(crops, self.backend.forward, self.flip_index if self.flip else None,
                                        self.batch):
                chunk_coords, chunk_maxvals = self.codec.decode(heatmaps)
                coords.append(chunk_coords)
                maxvals.append(chunk_maxvals)
        num_k = self.config.keypoints.num_keypoints
        if not coords:
            return np.zeros((0, num_k, 2), np.float32), np.zeros((0, num_k), np.float32)
        return torch.cat([c.cpu() for c in coords]).numpy(), torch.cat([m.cpu() for m in maxvals]).numpy()

    def __call__(self, images: Sequence[np.ndarray], centers: Sequence[np.ndarray],
                 scales: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(coords_hm (N, K, 2), maxvals (N, K)) of the crops of every image, in order (see `crops`)."""
        return self.decode(self.crops(images, centers, scales))
