"""The top-down pose stage: person boxes -> crops -> heatmaps (with flip test) -> keypoints -> poses.

With default settings this is the official HRNet test-time protocol (shared/REFERENCE.md): crops by
`_xywh2cs` + `get_affine_transform` + bilinear warpAffine, RGB ImageNet normalisation, flip test with
the one-pixel shift, argmax + quarter offset, rescoring and OKS-NMS. All crops of all given frames go
through the network together, in batches of `batch` crops (2 x batch with the flip test).

Where the crops are made (`crops_on`): "host" warps them with cv2 and decodes with numpy; "device" uploads
each frame once and warps, runs, flip-merges and decodes on the network's device (`pose.device_stage`);
"auto" (default) takes the device path for a torch backend on CUDA, the host path everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, TorchBackend, normalize_crops
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.flip import flip_tested
from dehrnet_cli.pose.geometry import center_scale_from_xyxy, heatmap_to_image, warp_crops
from dehrnet_cli.pose.settings import TopDownSettings
from dehrnet_cli.postprocess.nms import oks_nms
from dehrnet_cli.postprocess.oks import oks_sigmas
from dehrnet_cli.postprocess.rescore import box_areas, rescore
from dehrnet_cli.stage_data import Detections, Poses

if TYPE_CHECKING:
    from dehrnet_cli.pose.device_stage import DeviceKeypoints

class TopDownEstimator:
    """Poses of people in given boxes. `estimate(images, detections)` works on any number of frames."""

    def __init__(self, backend: Backend, settings: TopDownSettings = TopDownSettings()) -> None:
        self.backend = backend
        self.settings = settings
        cfg = backend.config
        self.config = cfg
        self.spec = cfg.keypoints
        self.codec = HeatmapCodec(cfg.input_size, cfg.heatmap_size, cfg.sigma, settings.decoder)
        self.flip_index = self.spec.flip_index()
        self.sigmas = oks_sigmas(self.spec)
        self.device_path = self._device_path(settings.crops_on)

    def _device_path(self, crops_on: str) -> DeviceKeypoints | None:
        """The device path (`device_stage.DeviceKeypoints`) when `crops_on` asks for it, else None."""
        is_torch = isinstance(self.backend, TorchBackend)
        if crops_on == "device" and not is_torch:
            raise DehrnetError(f"crops on the device need the torch backend, not {self.backend.name}")
        if crops_on == "host" or not is_torch or (crops_on == "auto" and not self.backend.device.startswith("cuda")):
            return None
        from dehrnet_cli.pose.device_stage import DeviceKeypoints

        return DeviceKeypoints(self.backend, self.codec, self.flip_index, self.settings.flip, self.settings.batch)

    def heatmaps(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR crops -> (N, K, H, W) float32 heatmaps, flip-tested if enabled."""
        cfg = self.config
        batch = normalize_crops(crops_bgr, cfg.mean, cfg.std)
        out = list(flip_tested(batch, self.backend, self.flip_index if self.settings.flip else None,
                               self.settings.batch))
        hm_w, hm_h = cfg.heatmap_size
        return np.concatenate(out) if out else np.zeros((0, self.spec.num_keypoints, hm_h, hm_w), np.float32)

    def _coords(self, images: list[np.ndarray], centers: list[np.ndarray], scales: list[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
        """(coords_hm (N, K, 2) heatmap pixels, maxvals (N, K)) of the crops of every image at its centers
        (n_i, 2) and scales (n_i, 2), in order: on the device path, or cv2 crops + `heatmaps` + numpy decode."""
        if self.device_path is not None:
            return self.device_path(images, centers, scales)
        w, h = self.config.input_size
        crops = [warp_crops(image, c, s, (w, h)) for image, c, s in zip(images, centers, scales) if len(c)]
        return self.codec.decode(self.heatmaps(np.concatenate(crops) if crops else np.zeros((0, h, w, 3), np.uint8)))

    def estimate(self, images: list[np.ndarray], detections: list[Detections]) -> list[Poses]:
        """Poses of every frame: images (H, W, 3) uint8 BGR and their person boxes (image pixels)."""
        cfg = self.config
        centers, scales, owner = [], [], []
        for i, det in enumerate(detections):
            c, s = center_scale_from_xyxy(det.boxes_xyxy.reshape(-1, 4), cfg.input_size)
            centers.append(c)
            scales.append(s)
            owner.append(np.full(len(det), i))
        if not any(len(c) for c in centers):
            return [Poses.empty(self.spec.num_keypoints) for _ in images]
        centers_all, scales_all = np.concatenate(centers), np.concatenate(scales)
        owner_all = np.concatenate(owner)
        coords_hm, kpt_scores = self._coords(images, centers, scales)
        keypoints_xy = heatmap_to_image(coords_hm, centers_all, scales_all, self.codec.heatmap_size).astype(np.float32)
        areas = box_areas(scales_all)
        results = []
        for i, det in enumerate(detections):
            rows = np.flatnonzero(owner_all == i)
            if len(rows) == 0:
                results.append(Poses.empty(self.spec.num_keypoints))
                continue
            scores = rescore(kpt_scores[rows], det.scores, self.settings.kpt_score_thr)
            poses = Poses(det.boxes_xyxy.astype(np.float32), det.scores.astype(np.float32), keypoints_xy[rows],
                          kpt_scores[rows], scores.astype(np.float32), areas[rows].astype(np.float32))
            results.append(self.suppress(poses, scores))
        return results

    def suppress(self, poses: Poses, scores: np.ndarray | None = None) -> Poses:
        """One frame's poses after OKS-NMS (settings.oks_thr; None keeps all), ordered by the float64 rescored
        `scores` (N,) (default: rescored here from poses.kpt_scores and box_scores) with the enlarged-box areas."""
        if self.settings.oks_thr is None or len(poses) <= 1:
            return poses
        if scores is None:
            scores = rescore(poses.kpt_scores, poses.box_scores, self.settings.kpt_score_thr)
        keep = oks_nms(poses.keypoints_xy, scores, poses.areas, self.settings.oks_thr, self.sigmas)
        return poses.select(keep)

    def keypoints_at(self, image: np.ndarray, centers: np.ndarray, scales: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The crops of one (H, W, 3) uint8 BGR image at given centers (N, 2) and scales (N, 2) (200 px units)
        through the network and the codec: (coords_hm (N, K, 2) heatmap pixels, keypoints_xy (N, K, 2)
        float32 image pixels, kpt_scores (N, K) float32). For crops that come from annotations, not boxes."""
        coords_hm, kpt_scores = self._coords([image], [np.asarray(centers)], [np.asarray(scales)])
        keypoints_xy = heatmap_to_image(coords_hm, centers, scales, self.codec.heatmap_size).astype(np.float32)
        return coords_hm, keypoints_xy, kpt_scores
