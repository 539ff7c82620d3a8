"""The network: official HRNet layout and forward, DE-HRNet configs, DEM, warm starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO, randomize

import models
from models import create_model, list_models
from models.dem import DetailEnhancement
from models.hrnet import PoseNetConfig

NAMED = [
    "hrnet_w32_256x192", "hrnet_w32_384x288", "hrnet_w48_256x192", "hrnet_w48_384x288",
    "dehrnet_w32_256x192", "dehrnet_w32_384x288", "dehrnet_w48_256x192", "dehrnet_w48_384x288",
    "hrnet_w32_mpii_256x256", "dehrnet_w32_mpii_256x256", "dehrnet_w8_128x96",
]  # fmt: skip


def _is_upsample_key(key: str) -> bool:
    """stageN.M.fuse_layers.i.j.2.* with j > i: the upsampler slot of an upsampling fuse path."""
    if ".fuse_layers." not in key:
        return False
    i, j, index = key.split(".fuse_layers.")[1].split(".")[:3]
    return int(j) > int(i) and index == "2"


def test_models_package_is_ours():
    """A foreign top-level `models` package (some YOLO forks ship one) must not shadow ours."""
    assert Path(models.__file__).resolve().parent == REPO / "models", models.__file__


def test_every_issue_config_is_registered():
    assert set(NAMED) <= set(list_models())


@pytest.mark.parametrize("name", list_models())
def test_output_is_the_configs_heatmap_size(name):
    model = create_model(name).eval()
    cfg = model.config
    w, h = cfg.input_size
    with torch.no_grad():
        out = model(torch.randn(2, 3, h, w))
    assert out.shape == (2, cfg.num_keypoints, cfg.heatmap_size[1], cfg.heatmap_size[0])
    assert cfg.heatmap_size == (w // 4, h // 4)


def test_hrnet_w32_has_the_official_keys_and_counts():
    model = create_model("hrnet_w32_384x288")
    sd = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 28_536_113
    assert len(sd) == 1754
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(bns) == 292 and len(convs) == 293  # 292 conv+BN pairs and final_layer
    assert all(m.momentum == 0.1 and m.eps == 1e-5 for m in bns)
    assert [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None] == [
        "final_layer"]
    assert sd["final_layer.weight"].shape == (17, 32, 1, 1) and "final_layer.bias" in sd
    # transitions: existing branch with a width change, then the new branch from the last one
    assert sd["transition1.0.0.weight"].shape == (32, 256, 3, 3)
    assert sd["transition1.1.0.0.weight"].shape == (64, 256, 3, 3)
    assert sd["transition2.2.0.0.weight"].shape == (128, 64, 3, 3)
    assert sd["transition3.3.0.0.weight"].shape == (256, 128, 3, 3)
    assert not any(k.startswith(("transition2.0", "transition2.1", "transition3.0", "transition3.2")) for k in sd)
    # fuse: no parameters at the upsample index, last stage-4 module outputs branch 0 only
    assert not any(_is_upsample_key(k) for k in sd)
    assert {k.split(".")[3] for k in sd if k.startswith("stage4.2.fuse_layers.")} == {"0"}
    assert sd["stage3.0.fuse_layers.2.0.0.0.weight"].shape == (32, 32, 3, 3)  # intermediate keeps width j
    assert sd["stage3.0.fuse_layers.2.0.1.0.weight"].shape == (128, 32, 3, 3)
    assert sd["stage2.0.fuse_layers.0.1.0.weight"].shape == (32, 64, 1, 1)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1) and "layer1.1.downsample.0.weight" not in sd


# --- an independent functional forward written from REFERENCE.md, used to check ours op for op ---

def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.1, 1e-5)


def _conv(x, sd, p, stride=1):
    w = sd[p + ".weight"]
    return F.conv2d(x, w, sd.get(p + ".bias"), stride, w.shape[-1] // 2)


def _basic(x, sd, p):
    out = F.relu(_bn(_conv(x, sd, p + ".conv1"), sd, p + ".bn1"))
    out = _bn(_conv(out, sd, p + ".conv2"), sd, p + ".bn2")
    return F.relu(out + x)


def _bottleneck(x, sd, p):
    res = _bn(_conv(x, sd, p + ".downsample.0"), sd, p + ".downsample.1") if p + ".downsample.0.weight" in sd else x
    out = F.relu(_bn(_conv(x, sd, p + ".conv1"), sd, p + ".bn1"))
    out = F.relu(_bn(_conv(out, sd, p + ".conv2"), sd, p + ".bn2"))
    return F.relu(_bn(_conv(out, sd, p + ".conv3"), sd, p + ".bn3") + res)


def _reference_hrnet(x, sd, modules=(1, 4, 3)):
    x = F.relu(_bn(_conv(x, sd, "conv1", 2), sd, "bn1"))
    x = F.relu(_bn(_conv(x, sd, "conv2", 2), sd, "bn2"))
    for b in range(4):
        x = _bottleneck(x, sd, f"layer1.{b}")
    ys = [x]
    for stage, n_mod in zip((2, 3, 4), modules):
        xs = []
        for i in range(stage):
            t = f"transition{stage - 1}.{i}"
            if f"{t}.0.weight" in sd:  # existing branch, width change
                xs.append(F.relu(_bn(_conv(ys[i], sd, f"{t}.0"), sd, f"{t}.1")))
            elif f"{t}.0.0.weight" in sd:  # new branch from the last previous one
                xs.append(F.relu(_bn(_conv(ys[-1], sd, f"{t}.0.0", 2), sd, f"{t}.0.1")))
            else:
                xs.append(ys[i])
        for m in range(n_mod):
            p = f"stage{stage}.{m}"
            for i in range(stage):
                for blk in range(4):
                    xs[i] = _basic(xs[i], sd, f"{p}.branches.{i}.{blk}")
            outs = 1 if (stage == 4 and m == n_mod - 1) else stage
            fused = []
            for i in range(outs):
                y = None
                for j in range(stage):
                    f = f"{p}.fuse_layers.{i}.{j}"
                    if j == i:
                        t = xs[j]
                    elif j > i:
                        t = F.interpolate(_bn(_conv(xs[j], sd, f + ".0"), sd, f + ".1"), scale_factor=2 ** (j - i),
                                          mode="nearest")
                    else:
                        t = xs[j]
                        for k in range(i - j):
                            t = _bn(_conv(t, sd, f"{f}.{k}.0", 2), sd, f"{f}.{k}.1")
                            t = F.relu(t) if k < i - j - 1 else t
                    y = t if y is None else y + t
                fused.append(F.relu(y))
            xs = fused
        ys = xs
    return _conv(ys[0], sd, "final_layer")


@pytest.mark.parametrize("name", ["hrnet_w32_384x288"])
def test_forward_matches_an_independent_reading_of_the_official_code(name):
    model = randomize(create_model(name)).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        ours = model(x)
        ref = _reference_hrnet(x, model.state_dict())
    assert ours.abs().mean() > 1e-2  # a real signal, not the near-zero official init
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_the_four_ablation_models_differ_only_where_they_should():
    base = set(create_model("hrnet_w32_384x288").state_dict())
    dem = set(create_model("hrnet_dem_w32_384x288").state_dict())
    dys = set(create_model("hrnet_dysample_w32_384x288").state_dict())
    full = set(create_model("dehrnet_w32_384x288").state_dict())
    assert base < dem and base < dys and base < full
    assert all(k.startswith(("dem2.", "dem3.", "dem4.")) for k in dem - base)
    assert {k.split(".")[0] for k in dem - base} == {"dem2", "dem3", "dem4"}
    assert dys - base and all(_is_upsample_key(k) for k in dys - base)
    assert full == dem | dys


def test_dysample_sits_at_index_2_of_every_upsampling_fuse_path():
    model = create_model("dehrnet_w32_384x288")
    ups = {n: m for n, m in model.named_modules() if isinstance(m, models.DySample)}
    assert "stage4.0.fuse_layers.0.3.2" in ups and ups["stage4.0.fuse_layers.0.3.2"].scale == 8
    # one per (module, i < j) pair: stage2 1x1, stage3 4x3, stage4 2x6 + 1x3
    assert len(ups) == 1 + 12 + 12 + 3
    assert all(m.offset.in_channels == 32 * 2 ** int(n.split(".")[3]) for n, m in ups.items())


def test_dem_starts_as_identity_after_reset_and_as_one_plus_gate_from_scratch():
    torch.manual_seed(0)
    x, higher = torch.randn(2, 16, 8, 6), torch.randn(2, 8, 16, 12)
    top = DetailEnhancement(16, None, "se", 16, 0.1, scale_init=1.0).eval()
    gate = top.attention(x)
    torch.testing.assert_close(top(x), (1 + gate) * x)
    low = randomize(DetailEnhancement(16, 8, "eca", 16, 0.5, scale_init=1.0)).eval()
    low.reset_to_identity()
    assert torch.equal(low(x, higher), x)
    low.train()
    out = low(x, higher)
    out.pow(2).sum().backward()
    assert low.scale.grad.abs().sum() > 0 and low.down[1].weight.grad.abs().sum() > 0


def test_bad_configs_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="upsample"):
        PoseNetConfig(upsample="bicubic")
    with pytest.raises(models.DehrnetError, match="'pl' needs"):
        create_model("dehrnet_w32_384x288", dysample_style="pl")  # C=32 with scale 8
    with pytest.raises(models.DehrnetError, match="did you mean"):
        create_model("dehrnet_w32_384x289")
    with pytest.raises(models.DehrnetError, match="unknown config field"):
        create_model("dehrnet_w8_128x96", widht=16)


def test_config_round_trips_through_a_dict():
    cfg = models.get_config("dehrnet_w32_mpii_256x256", dem_dropout=0.2)
    assert PoseNetConfig.from_dict(cfg.to_dict()) == cfg


def _mirrored(name: str) -> str | None:
    """The other side's name (left_wrist <-> right_wrist, l_hip <-> r_hip), None for a centre joint."""
    for left, right in (("left_", "right_"), ("l_", "r_")):
        if name.startswith(left):
            return right + name[len(left):]
        if name.startswith(right):
            return left + name[len(right):]
    return None


@pytest.mark.parametrize("spec", list(models.KEYPOINT_SPECS.values()), ids=list(models.KEYPOINT_SPECS))
def test_flip_pairs_join_each_left_joint_to_its_right_twin_by_name(spec):
    """The flip test swaps the channels of every pair: each pair must be a left joint and the right joint of
    the same name, every sided joint in exactly one pair, centre joints in none."""
    expected = {frozenset((k, spec.names.index(_mirrored(name)))) for k, name in enumerate(spec.names)
                if _mirrored(name) is not None}
    assert {frozenset(pair) for pair in spec.flip_pairs} == expected
    assert len(spec.flip_pairs) == len(expected) == sum(_mirrored(n) is not None for n in spec.names) // 2
    assert all(spec.side(a) != spec.side(b) != "center" for a, b in spec.flip_pairs)


def test_unknown_model_names_point_to_a_real_info_flag():
    from typer.main import get_command

    from dehrnet_cli.cli.app import app

    with pytest.raises(models.DehrnetError) as error:
        create_model("dehrnet_w32_384x289")
    message = str(error.value)
    assert "did you mean dehrnet_w32_384x288" in message
    flag = re.search(r"dehrnet info (--[a-z-]+)", message).group(1)
    info_flags = {opt for param in get_command(app).commands["info"].params for opt in param.opts}
    assert flag in info_flags, (flag, info_flags)
