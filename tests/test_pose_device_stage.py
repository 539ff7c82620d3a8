"""The device path of the top-down stage (pose.device_stage, TopDownSettings.crops_on) run on the CPU: the
same poses as the host path (cv2 crops, numpy decode), which path "auto" picks, and the frame uploader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import calibrate_bn, randomize

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.frame_upload import FrameUploader
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.stage_data import Detections
from models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"  # input (w, h) = (96, 128)


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(calibrate_bn(randomize(create_model(TINY)), (128, 96)), "cpu", precision="fp32")


def _frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [cv2.GaussianBlur(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8), (0, 0), 3) for _ in range(count)]


def _grid_boxes(centers_scale_factors: list[tuple[float, float, int]]) -> Detections:
    """Boxes whose crops map frame pixels to crop pixels by a factor 1 or 2 about whole-pixel centers: every
    source position lies on cv2's 1/32-pixel grid, so both paths see bit-identical crops (and a network fed
    the same crops gives the same heatmaps whatever its weights)."""
    boxes = []
    for cx, cy, factor in centers_scale_factors:
        width = 96 / factor / 1.25  # the crop (96 px wide) covers 96 / factor frame pixels: the box grown x1.25
        height = width / 0.75
        boxes.append([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])
    return Detections(np.array(boxes, np.float32), np.linspace(1.0, 0.5, len(boxes)).astype(np.float32))


@pytest.mark.parametrize("flip", [True, False])
@pytest.mark.parametrize("decoder", ["msra", "dark"])
def test_device_path_gives_the_host_paths_poses(backend: TorchBackend, flip: bool, decoder: str) -> None:
    """Three frames, one without people, five crops in forward batches of 2 (chunks cross frames), people
    partly outside the frame: keypoints, scores and NMS identical."""
    frames = _frames(3)
    detections = [_grid_boxes([(60, 70, 1), (200, 100, 2)]), Detections.empty(),
                  _grid_boxes([(10, 20, 1), (130, 100, 2), (250, 190, 1)])]
    host = TopDownEstimator(backend, TopDownSettings(flip=flip, decoder=decoder, batch=2, crops_on="host"))
    device = TopDownEstimator(backend, TopDownSettings(flip=flip, decoder=decoder, batch=2, crops_on="device"))
    assert host.device_path is None and device.device_path is not None
    for expected, got in zip(host.estimate(frames, detections), device.estimate(frames, detections), strict=True):
        assert len(got) == len(expected)
        np.testing.assert_array_equal(got.keypoints_xy, expected.keypoints_xy)
        np.testing.assert_array_equal(got.kpt_scores, expected.kpt_scores)
        np.testing.assert_array_equal(got.scores, expected.scores)
    centers = np.array([[60.0, 70.0], [130.0, 100.0]], np.float32)
    scales = np.array([[96 / 200, 128 / 200], [48 / 200, 64 / 200]], np.float32)
    for a, b in zip(host.keypoints_at(frames[0], centers, scales), device.keypoints_at(frames[0], centers, scales)):
        np.testing.assert_array_equal(a, b)
    for topdown in (host, device):  # no crops at all
        shapes = [a.shape for a in topdown.keypoints_at(frames[0], centers[:0], scales[:0])]
        assert shapes == [(0, 17, 2), (0, 17, 2), (0, 17)]


def test_auto_picks_the_device_path_only_for_torch_on_cuda(backend: TorchBackend) -> None:
    auto = TopDownEstimator(backend, TopDownSettings())
    assert auto.device_path is None  # torch on the CPU: cv2 crops and numpy decode
    with pytest.raises(DehrnetError, match="crops_on 'gpu'"):
        TopDownEstimator(backend, TopDownSettings(crops_on="gpu"))

    class OnnxLike:
        name, device, config = "onnx", "cuda", backend.config

    with pytest.raises(DehrnetError, match="torch backend"):
        TopDownEstimator(OnnxLike(), TopDownSettings(crops_on="device"))
    assert TopDownEstimator(OnnxLike(), TopDownSettings()).device_path is None


def test_uploader_on_the_cpu_wraps_frames_without_copying() -> None:
    frames = _frames(2)
    uploaded = FrameUploader("cpu").upload(frames)
    for frame, image in zip(uploaded, frames, strict=True):
        frame.ready()
        assert frame.tensor.data_ptr() == image.ctypes.data and frame.tensor.dtype == torch.uint8
