"""Checkpoints: round trip, official and mmpose files, warm starts, clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import calibrate_bn, randomize

import models
from models import DehrnetError, create_model, load_model, save_checkpoint
from models.dem import SEAttention

TINY = "dehrnet_w8_128x96"
TINY_INPUT = (96, 128)


def _tiny_hrnet(joints: int = 17) -> models.PoseHRNet:
    spec = models.COCO17 if joints == 17 else models.MPII16
    return randomize(create_model(TINY, upsample="nearest", dem_stages=(), keypoints=spec)).eval()


def _run(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(torch.randn(2, 3, 128, 96))


def test_round_trip_keeps_weights_config_and_metadata(tmp_path):
    model = randomize(create_model(TINY, dem_dropout=0.2)).eval()
    path = save_checkpoint(model, tmp_path / "sub dir" / "tiny.pt", meta={"note": "test"})
    loaded = load_model(path)
    assert loaded.config == model.config
    assert loaded.config.keypoints.flip_pairs == models.COCO17.flip_pairs
    assert loaded.checkpoint_info.kind == "dehrnet" and loaded.checkpoint_info.meta["note"] == "test"
    assert "dehrnet_version" in loaded.checkpoint_info.meta
    assert torch.equal(_run(loaded), _run(model))
    assert not loaded.training
    assert [p.name for p in path.parent.iterdir()] == ["tiny.pt"]  # no temp file left behind


def test_official_bare_state_dict_loads_and_infers_the_architecture(tmp_path):
    hrnet = _tiny_hrnet(16)
    torch.save(hrnet.state_dict(), tmp_path / "pose_hrnet_w8_mpii.pth")
    loaded = load_model(tmp_path / "pose_hrnet_w8_mpii.pth", input_size=TINY_INPUT)
    assert loaded.config.width == 8 and loaded.config.keypoints == models.MPII16
    assert loaded.checkpoint_info.kind == "official"
    assert torch.equal(_run(loaded), _run(hrnet))
    # a 16-joint file without an input size defaults to MPII's 256x256
    assert load_model(tmp_path / "pose_hrnet_w8_mpii.pth").config.input_size == (256, 256)


@pytest.mark.parametrize("layout", ["module", "training", "mmpose0", "mmpose1"])
def test_wrapped_and_prefixed_state_dicts_load(tmp_path, layout):
    hrnet = _tiny_hrnet()
    sd = hrnet.state_dict()
    if layout == "module":
        obj = {"module." + k: v for k, v in sd.items()}
    elif layout == "training":
        obj = {"epoch": 3, "perf": 0.7, "state_dict": dict(sd)}
    else:
        head = "keypoint_head." if layout == "mmpose0" else "head."
        obj = {"meta": {"mmpose_version": "1.3.0"}, "state_dict": {
            (head + k if k.startswith("final_layer") else "backbone." + k): v for k, v in sd.items()}}
        obj["state_dict"]["data_preprocessor.mean"] = torch.zeros(3)
    torch.save(obj, tmp_path / "file.pth")
    loaded = load_model(tmp_path / "file.pth", input_size=TINY_INPUT)
    assert loaded.checkpoint_info.kind == ("mmpose" if layout.startswith("mmpose") else "official")
    assert torch.equal(_run(loaded), _run(hrnet))


def _mmengine_checkpoint(hrnet: models.PoseHRNet) -> dict:
    """A checkpoint as mmengine's runner writes one for mmpose 1.x: `meta` with the dataset metadata in numpy
    arrays (sigmas, colours, keypoint weights) and numpy scalars, `state_dict` with `backbone.` and
    `head.final_layer.` keys and the `data_preprocessor` mean/std buffers."""
    names = list(models.COCO17.names)
    dataset_meta = {
        "dataset_name": "coco", "num_keypoints": 17, "keypoint_id2name": dict(enumerate(names)),
        "keypoint_name2id": {n: k for k, n in enumerate(names)}, "upper_body_ids": list(range(11)),
        "lower_body_ids": list(range(11, 17)), "flip_indices": models.COCO17.flip_index(),
        "flip_pairs": [list(p) for p in models.COCO17.flip_pairs],
        "keypoint_colors": np.tile(np.array([[51, 153, 255]], np.uint8), (17, 1)),
        "num_skeleton_links": 19, "skeleton_links": [list(p) for p in models.COCO17.skeleton],
        "skeleton_link_colors": np.tile(np.array([[0, 255, 0]], np.uint8), (19, 1)),
        "dataset_keypoint_weights": np.ones(17, np.float32), "sigmas": np.asarray(models.COCO17.sigmas) / 10,
    }
    meta = {"mmengine_version": "0.10.4", "cfg": "model = dict(type='TopdownPoseEstimator', ...)", "seed": 21,
            "experiment_name": "td-hm_hrnet-w32_8xb64-210e_coco-256x192", "time": "20220909_120000",
            "epoch": np.int64(210), "iter": np.int64(491400), "best_ap": np.float64(0.749),
            "lr": np.float32(1e-5), "dataset_meta": dataset_meta}
    state = {("head." + k if k.startswith("final_layer.") else "backbone." + k): v
             for k, v in hrnet.state_dict().items()}
    state["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    state["data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    return {"meta": meta, "state_dict": state}


def test_mmpose1_checkpoint_with_numpy_metadata_loads_with_a_safe_load(tmp_path):
    """mmengine's numpy metadata loads with weights_only=True (only the numpy types it needs are allowed);
    a numpy object array (pickled Python objects) is still refused."""
    hrnet = _tiny_hrnet()
    torch.save(_mmengine_checkpoint(hrnet), tmp_path / "td-hm_hrnet_mmpose1.pth")
    loaded = load_model(tmp_path / "td-hm_hrnet_mmpose1.pth", input_size=TINY_INPUT)
    assert loaded.checkpoint_info.kind == "mmpose" and loaded.config.keypoints == models.COCO17
    assert torch.equal(_run(loaded), _run(hrnet))
    meta = models.read_checkpoint(tmp_path / "td-hm_hrnet_mmpose1.pth")["meta"]
    assert meta["dataset_meta"]["sigmas"].dtype == np.float64 and meta["lr"] == np.float32(1e-5)
    torch.save({"meta": {"hook": np.array([print], dtype=object)}, "state_dict": hrnet.state_dict()},
               tmp_path / "objects.pth")
    with pytest.raises(DehrnetError, match="objects.pth: not a pose checkpoint: .*safe load refuses"):
        load_model(tmp_path / "objects.pth", input_size=TINY_INPUT)


def test_numpy_metadata_written_by_either_numpy_major_loads(tmp_path):
    """numpy 2 pickles arrays and scalars through numpy._core.multiarray, numpy 1 through numpy.core.multiarray:
    a file from either loads. (The numpy 1 file is made by renaming the module in a legacy-format pickle.)"""
    hrnet = _tiny_hrnet()
    for path in (tmp_path / "numpy2.pth", tmp_path / "numpy1.pth"):
        buffer = io.BytesIO()
        torch.save(_mmengine_checkpoint(hrnet), buffer, _use_new_zipfile_serialization=False)
        data = buffer.getvalue()
        if path.name == "numpy1.pth":
            assert b"numpy._core.multiarray" in data
            data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        path.write_bytes(data)
        meta = models.read_checkpoint(path)["meta"]
        assert meta["dataset_meta"]["keypoint_colors"].dtype == np.uint8 and meta["epoch"] == 210
        assert torch.equal(_run(load_model(path, input_size=TINY_INPUT)), _run(hrnet))


def test_warm_start_with_nearest_reproduces_hrnet_exactly(tmp_path):
    hrnet = _tiny_hrnet()
    torch.save(hrnet.state_dict(), tmp_path / "hrnet.pth")
    warm = load_model(tmp_path / "hrnet.pth", TINY, upsample="nearest")
    assert warm.checkpoint_info.warm_start and warm.config.dem_stages == (2, 3, 4)
    reference = _run(hrnet)
    assert reference.abs().mean() > 1e-2
    assert torch.equal(_run(warm), reference)


@pytest.mark.parametrize("name", [TINY, "dehrnet_w32_384x288"])
def test_warm_start_with_dysample_equals_hrnet(tmp_path, name):
    """DySample on (style 'lp', static scope, scales 2, 4 and 8 in stage 4): the warm-started DE-HRNet
    computes its HRNet to float rounding (eval mode). W32 runs at 128x96 to stay fast."""
    config = models.get_config(name, input_size=TINY_INPUT)
    assert config.upsample == "dysample" and config.dysample_style == "lp" and not config.dysample_dyscope
    hrnet = calibrate_bn(randomize(create_model(config.baseline())), (128, 96))
    torch.save(hrnet.state_dict(), tmp_path / "hrnet.pth")
    warm = load_model(tmp_path / "hrnet.pth", config)
    assert warm.checkpoint_info.warm_start
    reference = _run(hrnet)
    largest = reference.abs().max().item()
    assert largest > 1
    assert (_run(warm) - reference).abs().max().item() < 1e-4 * largest


def test_from_scratch_dysample_keeps_the_official_init():
    """Only a warm start moves the offset bias: from scratch it is the official N(0, 0.001) weight, bias 0."""
    ups = [m for m in create_model(TINY).modules() if isinstance(m, models.DySample)]
    assert {m.scale for m in ups} == {2, 4, 8}
    assert all(torch.all(m.offset.bias == 0) for m in ups)
    weights = torch.cat([m.offset.weight.flatten() for m in ups])
    assert 0.0008 < weights.std().item() < 0.0012


def test_every_new_parameter_trains_after_a_warm_start(tmp_path):
    """One step is not enough to see it: g = 0 and D's BN gamma = 0 block the first gradient of the SE
    layers and of D's conv. After one optimiser step (the recipe's Adam) every new parameter has a gradient."""
    torch.save(_tiny_hrnet().state_dict(), tmp_path / "hrnet.pth")
    torch.manual_seed(0)
    warm = load_model(tmp_path / "hrnet.pth", TINY).train()
    new = set(warm.state_dict()) - set(create_model(warm.config.baseline()).state_dict())
    params = {k: p for k, p in warm.named_parameters() if k in new}
    assert len(params) > 50 and any(".fc1." in k for k in params) and any(".offset." in k for k in params)
    with torch.no_grad():
        # The tiny model's SE layers have one hidden unit, dead for every input when its random pre-activation
        # is negative. SE inputs are about >= 0 (post-ReLU features): nonnegative fc1 weights and bias 1 keep
        # it alive, so that only the warm start could block a gradient here.
        for m in warm.modules():
            if isinstance(m, SEAttention):
                m.fc1.weight.abs_()
                m.fc1.bias.fill_(1.0)
    optimizer = torch.optim.Adam(warm.parameters(), lr=1e-3)
    grads = []
    for _ in range(2):
        optimizer.zero_grad()
        warm(torch.randn(2, 3, 128, 96)).pow(2).mean().backward()
        grads.append({k: p.grad.abs().sum().item() if p.grad is not None else 0.0 for k, p in params.items()})
        optimizer.step()
    first, second = grads
    assert first["dem2.branches.0.attention.fc1.weight"] == 0 and first["dem3.branches.2.down.0.weight"] == 0
    assert first["dem4.branches.0.scale"] > 0 and first["stage2.0.fuse_layers.0.1.2.offset.weight"] > 0
    assert [k for k, g in second.items() if g == 0] == []


def test_a_state_dict_that_fits_no_architecture_names_the_key_and_both_shapes(tmp_path):
    torch.save(_tiny_hrnet(16).state_dict(), tmp_path / "mpii.pth")
    with pytest.raises(DehrnetError) as e:
        load_model(tmp_path / "mpii.pth", "hrnet_w32_384x288")
    msg = str(e.value)
    assert "mpii.pth" in msg and "'conv1.weight'" not in msg
    assert "shape" in msg and "in the file but" in msg and "\n" not in msg
    sd = _tiny_hrnet().state_dict()
    sd["final_layer.extra"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(DehrnetError, match="unexpected key 'final_layer.extra'"):
        load_model(tmp_path / "extra.pth", input_size=TINY_INPUT)


def test_truncated_foreign_and_missing_files_get_one_clear_line(tmp_path):
    path = save_checkpoint(_tiny_hrnet(), tmp_path / "ok.pt")
    data = path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled_module.pt")  # like a YOLO .pt: a pickled object
    torch.save({"model": "yolo", "epoch": 1}, tmp_path / "other.pt")
    cases = {"truncated.pt": "truncated or corrupt", "notes.txt": "not a PyTorch checkpoint",
             "pickled_module.pt": "safe load refuses", "other.pt": "not a pose checkpoint",
             "missing.pt": "no such file"}
    for name, expected in cases.items():
        with pytest.raises(DehrnetError, match=expected) as e:
            load_model(tmp_path / name)
        assert name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DehrnetError, match="is a folder"):
        load_model(tmp_path)


class _Payload:
    """Unpickling this creates `marker` (a hostile checkpoint would run any command instead)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return open, (self.marker, "w")


class _EvalPayload(_Payload):
    def __reduce__(self) -> tuple:
        return eval, (f"open({self.marker!r}, 'w')",)


@pytest.mark.parametrize("payload", [_Payload, _EvalPayload])
@pytest.mark.parametrize("layout", ["top level", "in a dict", "beside a state dict"])
def test_hostile_checkpoints_are_refused_without_advice_to_load_them_unsafely(tmp_path, payload, layout):
    """The refusal names what the file holds and never passes on torch's hint (load with weights_only=False, or
    allow-list the global), which would run the file's code."""
    marker = tmp_path / "PAYLOAD_RAN"
    obj = {"top level": payload(marker), "in a dict": {"model": payload(marker)},
           "beside a state dict": {"state_dict": {"conv1.weight": torch.zeros(1)}, "x": payload(marker)}}[layout]
    torch.save(obj, tmp_path / "evil.pt")
    with pytest.raises(DehrnetError) as e:
        load_model(tmp_path / "evil.pt")
    msg = str(e.value)
    assert "evil.pt: not a pose checkpoint: it holds Python objects that a safe load refuses" in msg
    assert "open" in msg or "eval" in msg  # the refused global is named
    for hint in ("weights_only", "safe_globals", "trust", "Re-running"):
        assert hint not in msg
    assert "\n" not in msg and not marker.exists()


def test_an_input_size_no_network_can_have_is_a_user_error(tmp_path):
    path = save_checkpoint(_tiny_hrnet(), tmp_path / "ok.pt")
    torch.save(_tiny_hrnet().state_dict(), tmp_path / "official.pth")
    for name in ("ok.pt", "official.pth"):
        with pytest.raises(DehrnetError, match=r"must be positive multiples of 32, got \(7, 7\) \(as HxW 7x7"):
            load_model(tmp_path / name, input_size=(7, 7))
    assert DehrnetError(path).exit_code == 2


def test_convert_writes_a_dehrnet_checkpoint_that_loads_alone(tmp_path):
    torch.save(_tiny_hrnet().state_dict(), tmp_path / "hrnet.pth")
    out = models.convert_checkpoint(tmp_path / "hrnet.pth", tmp_path / "de.pt", TINY)
    loaded = load_model(out)
    assert loaded.config.name == TINY and loaded.checkpoint_info.meta["warm_start"] is True
