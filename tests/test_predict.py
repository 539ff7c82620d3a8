"""The top-down pipeline end to end: decoding geometry, flip test, official wiring, COCO JSON, video."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import tiny_estimator
from pycocotools.coco import COCO

import models
from dehrnet_cli.estimator import PoseEstimator
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.geometry import get_affine_transform
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.predict import PredictJob, run_predict
from dehrnet_cli.sinks.video_writer import VideoWriter
from dehrnet_cli.stage_data import Detections

TINY = "dehrnet_w8_128x96"
CONFIG = models.get_config(TINY)
HM_W, HM_H = CONFIG.heatmap_size  # 24 x 32


class FakeBackend:
    """A stand-in network: `fn(batch (N, 3, h, w)) -> heatmaps (N, K, H, W)`."""

    name, device = "fake", "cpu"

    def __init__(self, fn, config=CONFIG) -> None:
        self.fn, self.config = fn, config

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.fn(batch)


def _reference_center_scale(box_xyxy, input_w=96, input_h=128):
    """REFERENCE.md `_xywh2cs`, written out independently of dehrnet_cli.pose.geometry."""
    x1, y1, x2, y2 = box_xyxy
    w, h = x2 - x1, y2 - y1
    center = np.array([x1 + w / 2, y1 + h / 2])
    aspect = input_w / input_h
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    return center, np.array([w, h]) / 200 * 1.25


@pytest.mark.parametrize("flip", [False, True])
def test_planted_heatmap_peaks_land_where_the_inverse_affine_says(flip):
    """Plant a one-pixel peak per joint (mirrored into the flipped half the way a correct model would
    answer); the decoded image keypoint equals REFERENCE.md's closed form within 1e-3 px, for many
    box sizes and aspect ratios."""
    rng = np.random.default_rng(0)
    spec = CONFIG.keypoints
    planted = rng.integers([2, 2], [HM_W - 2, HM_H - 2], size=(spec.num_keypoints, 2))

    def plant(batch):
        n = len(batch) // 2 if flip else len(batch)
        maps = np.zeros((len(batch), spec.num_keypoints, HM_H, HM_W), np.float32)
        for k, (hx, hy) in enumerate(planted):
            maps[:n, k, hy, hx] = 1.0
            # the mirrored crop: joint k appears as its flip partner, at column W - hx (the official
            # flip-back reverses the width and then shifts one pixel right)
            maps[n:, spec.flip_index()[k], hy, HM_W - hx] = 1.0
        return maps

    est = TopDownEstimator(FakeBackend(plant), TopDownSettings(flip=flip, oks_thr=None))
    boxes = np.array([[10, 20, 110, 300], [0, 0, 640, 480], [300.5, 40.25, 310.5, 45.75], [-50, -30, 40, 700],
                      [5, 5, 6, 6], [100, 100, 900, 160]], np.float64)
    image = np.zeros((480, 640, 3), np.uint8)
    poses = est.estimate([image], [Detections(boxes, np.ones(len(boxes), np.float32))])[0]
    for n, box in enumerate(boxes):
        center, scale = _reference_center_scale(box)
        factor = scale[0] * 200 / HM_W
        expected = np.stack([center[0] + (planted[:, 0] - HM_W / 2) * factor,
                             center[1] + (planted[:, 1] - HM_H / 2) * factor], axis=1)
        np.testing.assert_allclose(poses.keypoints_xy[n], expected, atol=1e-3 * max(1, factor))
        np.testing.assert_allclose(poses.kpt_scores[n], 1.0)


def test_a_mirror_symmetric_model_gives_the_same_keypoints_with_and_without_flip_test():
    """A model that answers a dot at input x with a peak at round(x / 4) (the biased grid that the
    official targets teach) is mirror-symmetric under the official flip test with its one-pixel shift."""
    def dot_model(batch):
        gray = batch.sum(axis=1)
        maps = np.zeros((len(batch), CONFIG.num_keypoints, HM_H, HM_W), np.float32)
        yy, xx = np.mgrid[0:HM_H, 0:HM_W]
        for n, img in enumerate(gray):
            y, x = np.unravel_index(np.argmax(img), img.shape)
            maps[n] = np.exp(-((xx - round(x / 4)) ** 2 + (yy - round(y / 4)) ** 2) / 2.0)
        return maps

    crops = np.zeros((6, 128, 96, 3), np.uint8)
    for n, (x, y) in enumerate([(8, 8), (40, 64), (88, 120), (4, 100), (60, 12), (92, 36)]):
        crops[n, y, x] = 255
    plain = TopDownEstimator(FakeBackend(dot_model), TopDownSettings(flip=False))
    flipped = TopDownEstimator(FakeBackend(dot_model), TopDownSettings(flip=True))
    codec = HeatmapCodec(CONFIG.input_size, CONFIG.heatmap_size, CONFIG.sigma)
    kp_plain, _ = codec.decode(plain.heatmaps(crops))
    kp_flip, _ = codec.decode(flipped.heatmaps(crops))
    np.testing.assert_array_equal(kp_plain, kp_flip)


def test_topdown_wiring_equals_the_official_steps_written_out(coco_sample):
    """crop (cv2.warpAffine of get_affine_transform) -> RGB -> ToTensor + Normalize -> model on the crop
    and its width-flip -> flip_back + shift -> average -> decode, done here with torch by hand."""
    torch.manual_seed(0)
    net = models.create_model(TINY).eval()
    image = cv2.imread(str(coco_sample / "000000196141.jpg"))
    boxes = np.array([[250.0, 50.0, 420.0, 380.0], [30.0, 100.0, 200.0, 300.0]])
    est = TopDownEstimator(TorchBackend(net, "cpu"), TopDownSettings(flip=True, oks_thr=None))
    poses = est.estimate([image], [Detections(boxes, np.ones(2, np.float32))])[0]

    codec = HeatmapCodec(CONFIG.input_size, CONFIG.heatmap_size, CONFIG.sigma)
    mean, std = torch.tensor(CONFIG.mean).view(3, 1, 1), torch.tensor(CONFIG.std).view(3, 1, 1)
    for n, box in enumerate(boxes):
        center, scale = _reference_center_scale(box)
        trans = get_affine_transform(center.astype(np.float32), scale.astype(np.float32), 0, (96, 128))
        crop = cv2.warpAffine(image, trans, (96, 128), flags=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        x = ((torch.from_numpy(rgb).permute(2, 0, 1).float() / 255 - mean) / std)[None]
        with torch.no_grad():
            out = net(x)
            out_flip = net(x.flip(3)).flip(3)
        swapped = out_flip.clone()
        for a, b in CONFIG.keypoints.flip_pairs:
            swapped[:, a], swapped[:, b] = out_flip[:, b], out_flip[:, a]
        shifted = swapped.clone()
        shifted[..., 1:] = swapped[..., :-1]
        fused = ((out + shifted) * 0.5).numpy()
        kps, maxvals = codec.decode_to_image(fused, center[None].astype(np.float32), scale[None].astype(np.float32))
        np.testing.assert_allclose(poses.keypoints_xy[n], kps[0], atol=1e-4)
        np.testing.assert_allclose(poses.kpt_scores[n], maxvals[0], rtol=1e-5)


def test_predict_json_loads_in_pycocotools_with_ids_sizes_and_keypoints_inside(coco_sample, tmp_path):
    gt = json.loads((coco_sample / "test_coco.json").read_text())
    size_of = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    # boxes whose 1.25x crop stays inside the image: every decoded keypoint must then be inside too
    dets = []
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        W, H = size_of[ann["image_id"]]
        if x - 0.4 * w > 0 and y - 0.2 * h > 0 and x + 1.4 * w < W and y + 1.2 * h < H and w * h > 900:
            dets.append({"image_id": ann["image_id"], "category_id": 1, "bbox": [x, y, w, h], "score": 0.9})
    assert len(dets) >= 3
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    job = PredictJob(str(coco_sample), json_path=tmp_path / "out" / "pred.json",
                     results_path=tmp_path / "res.json", quiet=True)
    summary = run_predict(tiny_estimator(boxes=tmp_path / "dets.json", oks_thr=None), job)
    assert summary.frames == 4
    coco = COCO(str(tmp_path / "out" / "pred.json"))
    assert {im["id"]: (im["width"], im["height"]) for im in coco.dataset["images"]} == size_of
    assert len(coco.dataset["annotations"]) == len(dets)
    for ann in coco.dataset["annotations"]:
        W, H = size_of[ann["image_id"]]
        kps = np.array(ann["keypoints"]).reshape(-1, 3)
        assert np.all((kps[:, 0] >= 0) & (kps[:, 0] < W) & (kps[:, 1] >= 0) & (kps[:, 1] < H))
        assert set(kps[:, 2]) <= {1, 2} and ann["num_keypoints"] == int((kps[:, 2] > 0).sum())  # COCO: v > 0
        assert len(ann["keypoint_scores"]) == 17 and ann["category_id"] == 1
    results = json.loads((tmp_path / "res.json").read_text())
    assert len(COCO(str(coco_sample / "test_coco.json")).loadRes(results).dataset["annotations"]) == len(dets)


def test_predict_on_ultralytics_sample_images_with_whole_image_boxes(tmp_path):
    import ultralytics

    assets = Path(ultralytics.__file__).parent / "assets"
    images = sorted(assets.glob("*.jpg"))
    if not images:
        pytest.skip("ultralytics ships no sample images in this version")
    job = PredictJob(str(assets), out=tmp_path / "annotated", json_path=tmp_path / "p.json", quiet=True)
    summary = run_predict(tiny_estimator(), job)
    assert summary.frames == len(images) and summary.people == len(images)
    doc = json.loads((tmp_path / "p.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == [p.name for p in images]
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == sorted(p.name for p in images)
    for im in doc["images"]:
        assert (im["height"], im["width"]) == cv2.imread(str(assets / im["file_name"])).shape[:2]


def test_a_synthetic_video_round_trips_with_frame_count_fps_and_size(tmp_path):
    rng = np.random.default_rng(0)
    with VideoWriter(tmp_path / "in.mp4", 25.0, (160, 120)) as writer:
        for _ in range(12):
            writer.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    job = PredictJob(str(tmp_path / "in.mp4"), out=tmp_path / "out.mp4", json_path=tmp_path / "v.json", quiet=True)
    summary = run_predict(tiny_estimator(), job)
    assert summary.frames == 12 and tmp_path / "out.mp4" in summary.outputs
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        assert float(stream.average_rate) == 25.0 and stream.codec_context.name == "h264"
    assert len(frames) == 12 and frames[0].shape == (120, 160, 3)
    doc = json.loads((tmp_path / "v.json").read_text())
    assert [im["id"] for im in doc["images"]] == list(range(1, 13))
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


class _StoppedAfter:
    """An estimator stand-in that yields `n` frames of a source, then sees Ctrl-C."""

    keypoints = CONFIG.keypoints
    backend = SimpleNamespace(name="stand-in", precision="fp32", device="cpu")

    def __init__(self, n: int) -> None:
        self.n = n

    def prepare(self, expected_frames=None):
        return self

    def predict(self, source, video=None, frames_per_batch=4):
        from dehrnet_cli.sinks.result import PoseResult
        from dehrnet_cli.stage_data import Poses

        for frame in source:
            if frame.index == self.n:
                raise KeyboardInterrupt
            yield PoseResult.of_frame(frame, Poses.empty(CONFIG.num_keypoints), self.keypoints, f"cam#{frame.index}")


def test_ctrl_c_ends_a_live_run_and_writes_every_output(tmp_path):
    from dehrnet_cli.sources.threaded import ThreadedSource

    frames = (np.full((48, 64, 3), i, np.uint8) for i in range(1000))
    camera = ThreadedSource("camera", "camera 0", frames, is_live=False, fps=30.0, size=(64, 48))
    camera.is_live = True  # a camera, but one that never drops frames, so the count below is exact
    job = PredictJob("0", out=tmp_path / "cam.mp4", json_path=tmp_path / "cam.json", quiet=True)
    try:
        summary = run_predict(_StoppedAfter(5), job, camera)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C on a live source must end the run and write the outputs, not propagate")
    assert summary.interrupted and summary.frames == 5
    assert len(json.loads((tmp_path / "cam.json").read_text())["images"]) == 5
    with av.open(str(tmp_path / "cam.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5


def test_the_pipeline_defaults_are_the_official_ones_and_come_from_topdown_settings():
    """Rescoring 0.2 and OKS-NMS 0.9 (the official in_vis_thre and oks_thre) live in TopDownSettings; the
    API and the predict options take their defaults from there."""
    import inspect

    from typer.main import get_command

    from dehrnet_cli.cli.app import app

    official = (0.2, 0.9)
    assert (TopDownSettings.kpt_score_thr, TopDownSettings.oks_thr) == official
    api = inspect.signature(PoseEstimator.from_specs).parameters
    assert api["pose"].default == TopDownSettings()
    options = {param.name: param.default for param in get_command(app).commands["predict"].params}
    assert (options["kpt_score_thr"], options["oks_nms"]) == official
