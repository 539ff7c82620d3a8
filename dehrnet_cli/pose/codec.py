"""The heatmap codec: Gaussian training targets (encode) and keypoints from heatmaps (decode).

One object serves training and inference, so the two cannot drift. The default ("msra") is the
official HRNet protocol (JointsDataset.generate_target, get_max_preds, get_final_preds with
POST_PROCESS); "dark" is the optional DARK refinement (Zhang et al., CVPR 2020).

Shape letters: N people, K keypoints, H x W heatmap rows x columns. Sizes are written (w, h).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.flip import is_tensor
from dehrnet_cli.pose.geometry import heatmap_to_image

DECODERS = ("msra", "dark")

DARK_MAX_OFFSET = 1.0  # heatmap pixels: a DARK step never moves a keypoint further from the argmax


@dataclass(frozen=True)
class HeatmapCodec:
    """Gaussian heatmap codec.

    input_size: crop (w, h) in pixels, e.g. (288, 384). heatmap_size: (w, h), e.g. (72, 96).
    sigma: Gaussian sigma in heatmap pixels (2 at 256x192, 3 at 384x288). decoder: "msra" | "dark".
    """

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float
    decoder: str = "msra"

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise DehrnetError(f"unknown heatmap decoder {self.decoder!r}; use one of {', '.join(DECODERS)}")
        sizes = (*self.input_size, *self.heatmap_size)
        if len(self.input_size) != 2 or len(self.heatmap_size) != 2 or min(sizes) <= 0:
            raise DehrnetError(
                f"codec sizes input {self.input_size}, heatmap {self.heatmap_size} are invalid;"
                " give two positive (w, h) pairs"
            )
        if not self.sigma > 0:
            raise DehrnetError(f"codec sigma {self.sigma} is invalid; it must be > 0 (2 or 3 usually)")

    @property
    def stride(self) -> np.ndarray:
        """(2,) float64 input pixels per heatmap pixel along x and y."""
        return np.asarray(self.input_size, dtype=np.float64) / np.asarray(self.heatmap_size, dtype=np.float64)

    def encode(self, keypoints_xy: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training target of one crop, exactly as the official `generate_target` (gaussian).

        keypoints_xy (K, 2) in crop-input pixels, visible (K,) (0/1). Returns heatmaps (K, H, W)
        float32 (a peak-1 Gaussian at the grid point int(joint / stride + 0.5), cut to radius
        3 sigma and to the map) and target_weight (K,) float32: the visibility, or 0 when the patch
        lies completely outside the map. A joint with weight <= 0.5 gets an all-zero heatmap.
        """
        joints = np.asarray(keypoints_xy, dtype=np.float64)
        num = joints.shape[0] if joints.ndim == 2 else -1
        if joints.ndim != 2 or joints.shape[1] != 2 or np.shape(visible) != (num,):
            raise DehrnetError(
                f"encode got keypoints {joints.shape} and visibility {np.shape(visible)};"
                " expected (K, 2), (K,)"
            )
        hm_w, hm_h = self.heatmap_size
        heatmaps = np.zeros((num, hm_h, hm_w), dtype=np.float32)
        target_weight = np.asarray(visible).astype(np.float32)
        radius = self.sigma * 3
        size = 2 * radius + 1
        grid = np.arange(0, size, 1, np.float32)
        middle = size // 2
        gaussian = np.exp(-((grid - middle) ** 2 + (grid[:, None] - middle) ** 2) / (2 * self.sigma**2))
        stride = self.stride
        for k in range(num):
            # int() truncates toward zero, as the official code does (not floor)
            mu_x = int(joints[k, 0] / stride[0] + 0.5)
            mu_y = int(joints[k, 1] / stride[1] + 0.5)
            left, top = int(mu_x - radius), int(mu_y - radius)
            right, bottom = int(mu_x + radius + 1), int(mu_y + radius + 1)
            if left >= hm_w or top >= hm_h or right < 0 or bottom < 0:
                target_weight[k] = 0
                continue
            if target_weight[k] > 0.5:
                heatmaps[k, max(0, top) : min(bottom, hm_h), max(0, left) : min(right, hm_w)] = gaussian[
                    max(0, -top) : min(bottom, hm_h) - top, max(0, -left) : min(right, hm_w) - left
                ]
        return heatmaps, target_weight

    def _check_heatmaps(self, heatmaps: np.ndarray) -> np.ndarray:
        maps = np.asarray(heatmaps)
        hm_w, hm_h = self.heatmap_size
        if maps.ndim != 4 or maps.shape[2:] != (hm_h, hm_w):
            raise DehrnetError(
                f"heatmaps have shape {maps.shape}; the codec expects (N, K, {hm_h}, {hm_w}):"
                " the weights and the codec's heatmap_size disagree"
            )
        return maps

    def decode(self, heatmaps: Any) -> tuple[Any, Any]:
        """Keypoints of heatmaps (N, K, H, W) in heatmap pixels.

        Official get_max_preds (first maximum wins; maxval <= 0 gives (0, 0)) followed by the
        quarter-pixel shift toward the higher neighbour (only when 1 < px < W-1 and 1 < py < H-1),
        or by DARK with decoder "dark". Returns coords_hm (N, K, 2) float32 and maxvals (N, K) float32:
        numpy arrays for numpy heatmaps; torch tensors for torch heatmaps, decoded on their device with the
        same float32 operations ("msra"; DARK runs on the host, its blur is written for numpy).
        """
        if is_tensor(heatmaps):
            if self.decoder == "msra":
                return _decode_msra_torch(heatmaps)
            import torch

            coords, maxvals = self.decode(heatmaps.float().cpu().numpy())
            return torch.from_numpy(coords), torch.from_numpy(maxvals)
        maps = self._check_heatmaps(heatmaps)
        num, num_k, hm_h, hm_w = maps.shape
        flat = maps.reshape(num, num_k, hm_h * hm_w)
        index = np.argmax(flat, axis=2)
        maxvals = np.take_along_axis(flat, index[..., None], axis=2)[..., 0].astype(np.float32)
        index_f = index.astype(np.float32)
        coords = np.stack([index_f % hm_w, np.floor(index_f / hm_w)], axis=2)
        coords *= np.greater(maxvals, 0.0)[..., None].astype(np.float32)
        if self.decoder == "dark":
            return self._refine_dark(maps, coords), maxvals
        return self._refine_quarter(maps, coords), maxvals

    def decode_to_image(
        self, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) float32 in image pixels and maxvals (N, K) float32 of heatmaps (N, K, H, W).

        centers (N, 2) and scales (N, 2) are each crop's, as given to the warp (official get_final_preds).
        """
        coords_hm, maxvals = self.decode(heatmaps)
        keypoints_xy = heatmap_to_image(coords_hm, centers, scales, self.heatmap_size)
        return keypoints_xy.astype(np.float32), maxvals

    @staticmethod
    def _refine_quarter(maps: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """Official POST_PROCESS: move 0.25 px toward the higher neighbour, strict interior only."""
        hm_h, hm_w = maps.shape[2:]
        px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
        py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
        inside = (px > 1) & (px < hm_w - 1) & (py > 1) & (py < hm_h - 1)
        xs, ys = np.clip(px, 1, hm_w - 2), np.clip(py, 1, hm_h - 2)
        n_idx, k_idx = np.indices(px.shape)
        diff_x = maps[n_idx, k_idx, ys, xs + 1] - maps[n_idx, k_idx, ys, xs - 1]
        diff_y = maps[n_idx, k_idx, ys + 1, xs] - maps[n_idx, k_idx, ys - 1, xs]
        offset = np.stack([np.sign(diff_x), np.sign(diff_y)], axis=2).astype(np.float32) * 0.25
        return coords + np.where(inside[..., None], offset, np.float32(0))

    def _blur_kernel_size(self) -> int:
        """DARK's odd blur size, from sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8 (11 for 2, 17 for 3)."""
        return 2 * max(1, round((self.sigma - 0.8) / 0.3 + 1)) + 1

    def _refine_dark(self, maps: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """DARK: blur (zero border, peak value kept), log, one Newton step of the 2nd-order Taylor series.

        Applied where 1 < px < W-2 and 1 < py < H-2 and the Hessian is invertible; the step is clipped
        to +-DARK_MAX_OFFSET heatmap pixels per axis.
        """
        num, num_k, hm_h, hm_w = maps.shape
        size = self._blur_kernel_size()
        pad = (size - 1) // 2
        kernel = cv2.getGaussianKernel(size, 0).ravel()
        padded = np.pad(maps.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        rows = sum(kernel[i] * padded[:, :, i : i + hm_h, :] for i in range(size))
        blurred = sum(kernel[i] * rows[:, :, :, i : i + hm_w] for i in range(size))
        peak = maps.reshape(num, num_k, hm_h * hm_w).max(axis=2, initial=-np.inf).astype(np.float64)
        blurred_peak = blurred.reshape(num, num_k, hm_h * hm_w).max(axis=2, initial=-np.inf)
        positive = (peak > 0) & (blurred_peak > 0)
        rescale = np.where(positive, peak / np.where(positive, blurred_peak, 1), 1)
        log_maps = np.log(np.maximum(blurred * rescale[..., None, None], 1e-10))

        px = coords[..., 0].astype(np.int64)
        py = coords[..., 1].astype(np.int64)
        inside = (px > 1) & (px < hm_w - 2) & (py > 1) & (py < hm_h - 2)
        xs, ys = np.clip(px, 2, hm_w - 3), np.clip(py, 2, hm_h - 3)
        n_idx, k_idx = np.indices(px.shape)

        def at(dy: int, dx: int) -> np.ndarray:
            return log_maps[n_idx, k_idx, ys + dy, xs + dx]

        dx = 0.5 * (at(0, 1) - at(0, -1))
        dy = 0.5 * (at(1, 0) - at(-1, 0))
        dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
        dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
        dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
        det = dxx * dyy - dxy**2
        usable = inside & (det != 0)
        safe_det = np.where(usable, det, 1.0)
        # offset = -H^-1 g with H = [[dxx, dxy], [dxy, dyy]], g = [dx, dy]
        step_x = -(dyy * dx - dxy * dy) / safe_det
        step_y = -(dxx * dy - dxy * dx) / safe_det
        step = np.clip(np.stack([step_x, step_y], axis=2), -DARK_MAX_OFFSET, DARK_MAX_OFFSET)
        return (coords + np.where(usable[..., None], step, 0.0)).astype(np.float32)


def _decode_msra_torch(heatmaps: Any) -> tuple[Any, Any]:
    """`HeatmapCodec.decode` ("msra") of torch heatmaps (N, K, H, W) float32 on their device, the numpy path's
    float32 operations in the same order: coords (N, K, 2) and maxvals (N, K)."""
    import torch

    num, num_k, hm_h, hm_w = heatmaps.shape
    flat = heatmaps.reshape(num, num_k, hm_h * hm_w)
    maxvals, index = flat.max(dim=2)  # the first maximum, as np.argmax
    index_f = index.to(torch.float32)
    coords = torch.stack([torch.remainder(index_f, hm_w), torch.floor(index_f / hm_w)], dim=2)
    coords = coords * (maxvals > 0).unsqueeze(2).to(torch.float32)
    px = torch.floor(coords[..., 0] + 0.5).long()
    py = torch.floor(coords[..., 1] + 0.5).long()
    inside = (px > 1) & (px < hm_w - 1) & (py > 1) & (py < hm_h - 1)
    xs, ys = px.clamp(1, hm_w - 2), py.clamp(1, hm_h - 2)

    def at(dy: int, dx: int) -> Any:
        return flat.gather(2, ((ys + dy) * hm_w + xs + dx).unsqueeze(2)).squeeze(2)

    offset = torch.stack([torch.sign(at(0, 1) - at(0, -1)), torch.sign(at(1, 0) - at(-1, 0))], dim=2) * 0.25
    return coords + torch.where(inside.unsqueeze(2), offset, torch.zeros_like(offset)), maxvals
