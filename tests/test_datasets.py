"""Training data: augmentation that keeps keypoints on their image content, targets through the codec,
COCO / MPII records as the official loaders, the epoch sampler and the synthetic people."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.datasets.augment import (
    NO_AUGMENT,
    AugmentSettings,
    CropParams,
    half_body_box,
    sample_crop_params,
    warp_training_crop,
)
from dehrnet_cli.datasets.coco import coco_paths, coco_records
from dehrnet_cli.datasets.mpii import mpii_records
from dehrnet_cli.datasets.records import PersonRecord
from dehrnet_cli.datasets.synthetic import JOINT_COLOURS, SyntheticPeople, make_scene
from dehrnet_cli.datasets.topdown_dataset import TopDownDataset
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.codec import HeatmapCodec
from dehrnet_cli.pose.geometry import center_scale_from_xywh, clean_gt_box
from dehrnet_cli.train.sampler import EpochSampler
from models import COCO17, get_config

CONFIG = get_config("dehrnet_w8_128x96")  # crop (w, h) = (96, 128), heatmaps (24, 32), sigma 2
FLIP_INDEX = COCO17.flip_index()
# 17 well separated BGR colours, one per planted keypoint dot
DOT_COLOURS = np.array([[(37 * k) % 256, (91 * k + 60) % 256, (151 * k + 120) % 256] for k in range(17)], np.uint8)


def _dot_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 300 x 400 grey image with a 9 x 9 dot of DOT_COLOURS[k] at keypoint k (integer pixels)."""
    rng = np.random.default_rng(seed)
    image = np.full((300, 400, 3), 40, np.uint8)
    points = np.stack([rng.integers(130, 270, 17), rng.integers(60, 240, 17)], axis=1).astype(np.float64)
    while (np.abs(points[:, None] - points[None]).max(axis=2) + np.eye(17) * 99).min() <= 10:
        # keep the dots apart so that each square is whole
        points = np.stack([rng.integers(130, 270, 17), rng.integers(60, 240, 17)], axis=1).astype(np.float64)
    for k, (x, y) in enumerate(points.astype(int)):
        image[y - 4:y + 5, x - 4:x + 5] = DOT_COLOURS[k]
    return image, points


def _record(points: np.ndarray, visible: np.ndarray | None = None) -> PersonRecord:
    box = np.array([120.0, 50.0, 160.0, 200.0])
    center, scale = center_scale_from_xywh(box[None], CONFIG.input_size)
    vis = np.ones(17, np.float32) if visible is None else visible
    return PersonRecord("dots", 0, box, center[0], scale[0], points, vis)


def _assert_dots_under_keypoints(crop: np.ndarray, points_crop: np.ndarray, visible: np.ndarray,
                                 flipped: bool) -> int:
    """Each labelled keypoint inside the crop sits on the dot it marked (its partner's dot after a flip)."""
    h, w = crop.shape[:2]
    checked = 0
    for k in np.flatnonzero(visible > 0):
        x, y = np.round(points_crop[k]).astype(int)
        if not (1 <= x < w - 1 and 1 <= y < h - 1):
            continue
        expected = DOT_COLOURS[FLIP_INDEX[k] if flipped else k].astype(int)
        assert np.abs(crop[y, x].astype(int) - expected).max() <= 3, (k, crop[y, x], expected)
        checked += 1
    return checked


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("rotation, zoom", [(0.0, 1.0), (30.0, 0.8), (-45.0, 1.3), (80.0, 1.0)])
def test_warp_keeps_keypoints_on_their_dots(flip: bool, rotation: float, zoom: float) -> None:
    image, points = _dot_image()
    record = _record(points)
    center = record.center.copy()
    if flip:
        center[0] = image.shape[1] - center[0] - 1
    params = CropParams(center, record.scale * np.float32(zoom), rotation, flip)
    crop, points_crop, vis = warp_training_crop(image, points, record.visible, params, CONFIG.input_size,
                                                FLIP_INDEX)
    assert crop.shape == (128, 96, 3)
    assert _assert_dots_under_keypoints(crop, points_crop, vis, flip) >= 12


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("rotation", [0.0, 30.0])
def test_zoomed_warp_is_exact_to_a_fraction_of_a_pixel(flip: bool, rotation: float) -> None:
    """At 3x magnification, each keypoint lands on the centroid of its dot within a crop pixel (1/3 image px)."""
    image, points = _dot_image(1)
    record = _record(points)
    k0 = int(np.argmin(np.abs(points - points.mean(axis=0)).sum(axis=1)))  # a dot near the middle
    center = points[k0].astype(np.float32).copy()
    if flip:
        center[0] = image.shape[1] - center[0] - 1
    params = CropParams(center, np.float32([32 / 200, 32 / 200 * 128 / 96]), rotation, flip)
    crop, points_crop, vis = warp_training_crop(image, points, record.visible, params, CONFIG.input_size, FLIP_INDEX)
    checked = 0
    for k in range(17):
        expected = DOT_COLOURS[FLIP_INDEX[k] if flip else k].astype(int)
        ys, xs = np.nonzero(np.abs(crop.astype(int) - expected).max(axis=2) <= 3)
        x, y = points_crop[k]
        if len(xs) < 100 or not (15 <= x < 81 and 15 <= y < 113):
            continue  # not wholly inside the crop
        assert np.hypot(xs.mean() - x, ys.mean() - y) < 1.0, k
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("seed", range(4))
def test_half_body_crop_keeps_keypoints_on_their_dots(seed: int) -> None:
    image, points = _dot_image(seed)
    record = _record(points)
    box = half_body_box(points, record.visible, COCO17.upper_body, 96 / 128, np.random.default_rng(seed))
    assert box is not None
    center, scale = box
    selected = points[:11] if np.all(np.abs(center - points[:11].mean(0)) < 1e-3) else points[11:]
    np.testing.assert_allclose(center, selected.mean(axis=0), atol=1e-3)  # the center of one half's joints
    for flip in (False, True):
        c = center.copy()
        if flip:
            c[0] = image.shape[1] - c[0] - 1
        crop, points_crop, vis = warp_training_crop(image, points, record.visible, CropParams(c, scale, 20.0, flip),
                                                    CONFIG.input_size, FLIP_INDEX)
        assert _assert_dots_under_keypoints(crop, points_crop, vis, flip) >= 5


def test_flip_swaps_labels_and_zeroes_unlabelled() -> None:
    image, points = _dot_image()
    visible = np.ones(17, np.float32)
    visible[9] = 0  # left wrist unlabelled -> after the flip, the *right* wrist (10) is unlabelled
    record = _record(points, visible)
    center = record.center.copy()
    center[0] = image.shape[1] - center[0] - 1
    _, points_crop, vis = warp_training_crop(image, points, visible, CropParams(center, record.scale, 0.0, True),
                                             CONFIG.input_size, FLIP_INDEX)
    assert vis[10] == 0 and vis[9] == 1
    np.testing.assert_array_equal(points_crop[10], [0, 0])


def test_augmentation_draws_follow_the_recipe() -> None:
    _, points = _dot_image()
    record = _record(points)
    settings = AugmentSettings()
    rng = np.random.default_rng(0)
    draws = [sample_crop_params(rng, record, 400, settings, COCO17, 0.75) for _ in range(3000)]
    rotations = np.array([d.rotation for d in draws])
    flips = np.array([d.flip for d in draws])
    ratio = np.array([d.scale[0] for d in draws]) / record.scale[0]
    whole = np.array([np.allclose(d.center if not d.flip else [399 - d.center[0], d.center[1]], record.center)
                      for d in draws])
    assert 0.57 < np.mean(rotations != 0) < 0.63  # rotation with probability 0.6
    assert np.abs(rotations).max() <= 90 and 40 < np.std(rotations[rotations != 0]) < 50  # N(0, 45) clipped to +-90
    assert 0.47 < flips.mean() < 0.53
    assert 0.27 < 1 - whole.mean() < 0.33  # half-body with probability 0.3 (17 labelled joints > 8)
    plain = ratio[whole]
    # N(1, 0.32) clipped at one sigma: about a third of the draws sit on a bound, std about 0.71 x 0.32
    assert plain.min() >= 0.68 - 1e-6 and plain.max() <= 1.32 + 1e-6 and 0.21 < np.std(plain) < 0.25
    assert 0.27 < np.mean(np.isclose(plain, 0.68) | np.isclose(plain, 1.32)) < 0.37


def test_half_body_needs_more_than_eight_labelled_joints() -> None:
    _, points = _dot_image()
    visible = np.zeros(17, np.float32)
    visible[:8] = 1
    record = _record(points, visible)
    rng = np.random.default_rng(1)
    settings = AugmentSettings(half_body_prob=1.0, scale_factor=0.0, rotation_prob=0.0, flip=False)
    draws = [sample_crop_params(rng, record, 400, settings, COCO17, 0.75) for _ in range(50)]
    assert all(np.allclose(d.center, record.center) for d in draws)
    visible[:9] = 1
    half = sample_crop_params(rng, _record(points, visible), 400, settings, COCO17, 0.75)
    assert not np.allclose(half.center, record.center)


class _DotDataset(TopDownDataset):
    def __init__(self, augment: AugmentSettings | None) -> None:
        self.image, points = _dot_image()
        super().__init__([_record(points)], CONFIG, augment, seed=3)

    def load_image(self, record: PersonRecord) -> np.ndarray:
        return self.image


def test_sample_target_is_the_codec_encoding_of_the_warped_keypoints() -> None:
    dataset = _DotDataset(AugmentSettings())
    codec = HeatmapCodec(CONFIG.input_size, CONFIG.heatmap_size, CONFIG.sigma)
    for epoch in range(6):
        sample = dataset[(epoch, 0)]
        params = dataset.crop_params(epoch, 0, 400)
        record = dataset.records[0]
        crop, points_crop, vis = warp_training_crop(dataset.image, record.keypoints_xy, record.visible, params,
                                                    CONFIG.input_size, FLIP_INDEX)
        target, weight = codec.encode(points_crop, vis)
        np.testing.assert_array_equal(sample["target"].numpy(), target)
        np.testing.assert_array_equal(sample["target_weight"].numpy(), weight)
        assert sample["image"].shape == (3, 128, 96)
        # the target's peaks lie on the dots they name, in the crop the network sees (to the stride's rounding)
        rgb = sample["image"].numpy().transpose(1, 2, 0) * np.float32(CONFIG.std) + np.float32(CONFIG.mean)
        seen_bgr = np.round(rgb[..., ::-1] * 255).astype(int)
        found = 0
        for k in np.flatnonzero(weight > 0):
            expected = DOT_COLOURS[FLIP_INDEX[k] if params.flip else k].astype(int)
            ys, xs = np.nonzero(np.abs(seen_bgr - expected).max(axis=2) <= 3)
            if len(xs) < 4:
                continue  # the dot is outside the crop
            y, x = np.unravel_index(np.argmax(target[k]), target[k].shape)
            assert np.hypot(x * 4 - xs.mean(), y * 4 - ys.mean()) <= 3.0, (epoch, k)
            found += 1
        assert found >= 8


def test_samples_are_reproducible_per_epoch_and_index() -> None:
    dataset = _DotDataset(AugmentSettings())
    a, b, c = dataset[(2, 0)], dataset[(2, 0)], dataset[(3, 0)]
    assert np.array_equal(a["image"].numpy(), b["image"].numpy())
    assert not np.array_equal(a["image"].numpy(), c["image"].numpy())
    plain = _DotDataset(None)
    assert np.array_equal(plain[(0, 0)]["image"].numpy(), plain[(5, 0)]["image"].numpy())
    assert NO_AUGMENT.flip is False


@pytest.mark.parametrize("input_size,sigma", [((192, 256), 2.0), ((288, 384), 3.0)])
def test_an_official_file_trains_with_the_sigma_of_its_input_size(tmp_path: Path, input_size, sigma) -> None:
    """An official HRNet file carries no config: at 256x192 it gets sigma 2, at 384x288 sigma 3 (the official
    yamls), and the training targets have that width (measured on the target itself)."""
    import torch

    from models import create_model, load_model

    torch.save(create_model("dehrnet_w8_128x96", upsample="nearest", dem_stages=()).state_dict(),
               tmp_path / "pose_hrnet.pth")
    config = load_model(tmp_path / "pose_hrnet.pth", input_size=input_size).config
    assert config.sigma == sigma
    box = np.array([40.0, 30.0, 150.0, 200.0])
    center, scale = center_scale_from_xywh(box[None], config.input_size)
    points = np.tile(center, (17, 1))  # every joint at the crop centre: a whole Gaussian on the map
    record = PersonRecord("blank", 0, box, center[0], scale[0], points, np.ones(17, np.float32))

    class Blank(TopDownDataset):
        def load_image(self, record: PersonRecord) -> np.ndarray:
            return np.zeros((300, 300, 3), np.uint8)

    target = Blank([record], config, None)[0]["target"].numpy()[0]
    y, x = np.unravel_index(np.argmax(target), target.shape)
    assert target[y, x] == 1.0
    measured = np.sqrt(-1 / (2 * np.log(target[y, x + 1])))  # exp(-1 / (2 sigma^2)) one column over
    assert measured == pytest.approx(sigma, rel=1e-5)


def test_joint_weights_scale_the_target_weight() -> None:
    dataset = _DotDataset(AugmentSettings(joint_weights=True, flip=False, rotation_prob=0, scale_factor=0,
                                          half_body_prob=0))
    weight = dataset[0]["target_weight"].numpy()
    np.testing.assert_allclose(weight[[0, 7, 9, 11, 13, 15]], [1.0, 1.2, 1.5, 1.0, 1.2, 1.5])


def test_epoch_sampler_splits_and_skips() -> None:
    data = list(range(10))
    whole = EpochSampler(data, 1, 0, seed=5)
    whole.set_epoch(1)
    order = [i for _, i in whole]
    assert sorted(order) == data and all(e == 1 for e, _ in whole)
    ranks = []
    for rank in range(2):
        s = EpochSampler(data, 2, rank, seed=5)
        s.set_epoch(1)
        ranks.append([i for _, i in s])
    assert ranks[0] == order[0::2] and ranks[1] == order[1::2]  # rank r: every world-th of the same order
    whole.set_epoch(1, skip=4)
    assert [i for _, i in whole] == order[4:] and len(whole) == 6
    whole.set_epoch(2)
    assert [i for _, i in whole] != order


# --------------------------------------------------------------------------------------------- datasets


def test_coco_records_follow_the_official_loader(coco_sample: Path) -> None:
    ann_file = coco_sample / "test_coco.json"
    records = coco_records(ann_file, coco_sample, CONFIG)
    doc = json.loads(ann_file.read_text())
    kept = [a for a in doc["annotations"] if max(a["keypoints"]) > 0 and not a["iscrowd"]]
    assert len(records) == len(kept) == 12
    images = {i["id"]: i for i in doc["images"]}
    for record, ann in zip(records, kept):
        image = images[ann["image_id"]]
        box = clean_gt_box(ann["bbox"], image["width"], image["height"], ann["area"])
        center, scale = center_scale_from_xywh(box[None], CONFIG.input_size)
        np.testing.assert_array_equal(record.center, center[0])
        np.testing.assert_array_equal(record.scale, scale[0])
        kpts = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        np.testing.assert_array_equal(record.visible, np.minimum(kpts[:, 2], 1))
        assert Path(record.image) == coco_sample / image["file_name"]
    sample = TopDownDataset(records, CONFIG, AugmentSettings())[(0, 3)]
    assert sample["target"].shape == (17, 32, 24) and float(sample["target"].max()) == 1.0


def test_mpii_records_follow_the_official_conventions(mpii_sample: Path) -> None:
    config = get_config("dehrnet_w32_mpii_256x256")
    ann_file = mpii_sample / "test_mpii.json"
    records = mpii_records(ann_file, mpii_sample, config)
    people = json.loads(ann_file.read_text())
    assert len(records) == len(people) == 5
    for record, person in zip(records, people):
        s = person["scale"]
        np.testing.assert_allclose(record.center, [person["center"][0] - 1, person["center"][1] + 15 * s - 1],
                                   rtol=1e-6)
        np.testing.assert_allclose(record.scale, [1.25 * s, 1.25 * s], rtol=1e-6)
        np.testing.assert_allclose(record.keypoints_xy, np.asarray(person["joints"]) - 1)
        np.testing.assert_array_equal(record.visible, person["joints_vis"])
    sample = TopDownDataset(records, config, AugmentSettings())[(0, 0)]
    assert sample["target"].shape == (16, 64, 64)
    with pytest.raises(DehrnetError, match="16 keypoints"):
        mpii_records(ann_file, mpii_sample, CONFIG)


def test_missing_coco_pieces_are_named_together(tmp_path: Path) -> None:
    (tmp_path / "train2017").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "person_keypoints_train2017.json").write_text("{}")
    with pytest.raises(DehrnetError) as info:
        coco_paths(tmp_path)
    message = str(info.value)
    assert "val2017" in message and "person_keypoints_val2017.json" in message
    assert "train2017 (" not in message and "\n" not in message
    (tmp_path / "val2017").mkdir()
    (tmp_path / "annotations" / "person_keypoints_val2017.json").write_text("{}")
    assert coco_paths(tmp_path).val_images == tmp_path / "val2017"


# -------------------------------------------------------------------------------------------- synthetic


def test_synthetic_scenes_are_reproducible_and_drawn_where_labelled() -> None:
    a, b = make_scene(7, 3), make_scene(7, 3)
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, make_scene(7, 4).image)
    checked = 0
    for seed in range(6):
        scene = make_scene(seed, 0)
        assert scene.keypoints_xy.shape[1:] == (17, 2) and set(np.unique(scene.visible)) <= {0, 2}
        for p in range(len(scene.boxes_xywh)):
            # facing the camera: the person's left shoulder and hip are on the image's right
            kp = scene.keypoints_xy[p]
            assert kp[5, 0] > kp[6, 0] and kp[11, 0] > kp[12, 0]
            if len(scene.boxes_xywh) > 1:
                continue  # another figure may cover some dots
            for k in np.flatnonzero(scene.visible[p] > 0):
                if (np.hypot(*(kp[k + 1:] - kp[k]).T) < 10).any():
                    continue  # a later dot may cover this one
                x, y = np.round(kp[k]).astype(int)
                assert np.abs(scene.image[y, x].astype(int) - JOINT_COLOURS[k]).max() <= 40, (seed, k)
                checked += 1
    assert checked > 30


def test_synthetic_dataset_has_the_training_interface() -> None:
    dataset = SyntheticPeople(5, CONFIG, AugmentSettings(), seed=2)
    assert len(dataset) >= 5 and all(r.image_id < 5 for r in dataset.records)
    sample = dataset[(0, 1)]
    assert sample["image"].shape == (3, 128, 96) and sample["target"].shape == (17, 32, 24)
    assert float(sample["target_weight"].sum()) > 5
    with pytest.raises(DehrnetError, match="17 COCO keypoints"):
        SyntheticPeople(5, get_config("dehrnet_w32_mpii_256x256"))
