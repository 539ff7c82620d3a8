"""The device path on CUDA: GPU crops against cv2, frames through pinned slots on the copy stream, and the
top-down stage's GPU path against its host path on the same CUDA network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import GPU

from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.frame_upload import FrameUploader
from dehrnet_cli.pose.geometry import center_scale_from_xyxy, warp_crops
from dehrnet_cli.pose.gpu_crops import crop_matrices, frame_to_planes, warp_crops_torch
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.stage_data import Detections
from models import create_model

pytestmark = GPU

INPUT = (288, 384)


def _frames(count: int, h: int = 1080, w: int = 1920) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2) for _ in range(count)]


def test_gpu_crops_match_cv2_to_within_its_rounding(record_property) -> None:
    image = _frames(1)[0]
    boxes = np.array([[100.3, 200.7, 400.1, 900.9], [-60.5, 100.2, 320.3, 1100.7], [1500.2, 10.1, 1990.9, 700.3]])
    centers, scales = center_scale_from_xyxy(boxes, INPUT)
    expected = warp_crops(image, centers, scales, INPUT).astype(np.float32)
    planes = frame_to_planes(torch.from_numpy(image).cuda())
    crops = warp_crops_torch(planes, crop_matrices(centers, scales, INPUT), INPUT)
    got = crops.flip(1).permute(0, 2, 3, 1).cpu().numpy()  # BGR (N, h, w, 3), as cv2's
    diff = np.abs(got - expected)
    record_property("gpu_crops_equal_fraction", float((diff == 0).mean()))
    record_property("gpu_crops_max_diff", float(diff.max()))
    assert (diff == 0).mean() > 0.998 and (diff <= 1).mean() > 0.9999


def test_uploads_through_pinned_slots_land_intact_while_the_gpu_works() -> None:
    """More frames than slots, uploads queued while a long kernel runs on the compute stream, each frame read
    after its own event: every byte arrives, and reused slots are not overwritten before they are read."""
    frames = _frames(12, 270, 480)
    uploader = FrameUploader("cuda", slots=4)
    busy = torch.randn(4096, 4096, device="cuda")
    for start in (0, 6):
        _ = busy @ busy  # keep the compute stream busy while the copies are queued
        uploaded = uploader.upload(frames[start:start + 6])
        sums = []
        for frame in uploaded:
            frame.ready()
            sums.append(frame.tensor.to(torch.int64).sum())
        uploader.release()
        expected = [int(f.astype(np.int64).sum()) for f in frames[start:start + 6]]
        assert [int(s) for s in sums] == expected
    assert uploaded[0].tensor.device.type == "cuda" and uploader._slots[0].host.is_pinned()


@pytest.mark.parametrize("flip", [True, False])
def test_gpu_path_gives_the_host_paths_poses_on_grid_crops(flip: bool) -> None:
    """On boxes whose crops lie on cv2's 1/32-pixel grid both paths feed the same CUDA network the same
    crops: keypoints and scores are identical (fp32, the network's own kernels)."""
    net = create_model("dehrnet_w8_128x96").eval()
    backend = TorchBackend(net, "cuda", precision="fp32")
    width = 96 / 1.25
    boxes = np.array([[cx - width / 2, cy - width / 1.5, cx + width / 2, cy + width / 1.5]
                      for cx, cy in ((200, 300), (900, 500), (1900, 1070))], np.float32)
    detections = [Detections(boxes, np.ones(3, np.float32))] * 2
    frames = _frames(2)
    host = TopDownEstimator(backend, TopDownSettings(flip=flip, crops_on="host", batch=4))
    gpu = TopDownEstimator(backend, TopDownSettings(flip=flip, batch=4))
    assert gpu.device_path is not None  # auto on CUDA
    for expected, got in zip(host.estimate(frames, detections), gpu.estimate(frames, detections), strict=True):
        np.testing.assert_array_equal(got.keypoints_xy, expected.keypoints_xy)
        np.testing.assert_array_equal(got.kpt_scores, expected.kpt_scores)
