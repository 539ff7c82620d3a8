"""ONNX export: parity with torch, dynamic batch, metadata, opset rule."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import calibrate_bn, randomize

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.onnx_session import read_onnx_config
from models import DySample, create_model


@pytest.mark.parametrize("name,overrides,sampler,slim", [
    ("dehrnet_w8_128x96", dict(upsample="nearest", dem_stages=()), "gather", False),  # a plain HRNet
    ("dehrnet_w8_128x96", dict(dysample_dyscope=True), "gather", False),  # DE-HRNet, dynamic scope
    ("dehrnet_w8_128x96", {}, "gather", True),  # the default export: simplified by onnxslim
    ("dehrnet_w8_128x96", {}, "grid_sample", False),
])
def test_onnx_matches_torch_at_batch_1_and_3(tmp_path, name, overrides, sampler, slim):
    model = calibrate_bn(randomize(create_model(name, **overrides)), (128, 96))
    with torch.no_grad():  # heatmap-like outputs of order one, as a trained model gives
        model.final_layer.weight /= model(torch.randn(1, 3, 128, 96)).abs().max()
    offsets = [m.offset.weight.abs().max().item() for m in model.modules() if isinstance(m, DySample)]
    assert not offsets or min(offsets) > 0.1  # DySample really moves its sample points
    report = export_onnx(model, tmp_path / "m.onnx", sampler=sampler, slim=slim)
    assert report.providers[-1] == "CPUExecutionProvider"
    assert set(report.max_abs_diff) == {1, 3}
    with torch.no_grad():
        scale = model(torch.randn(1, 3, 128, 96)).abs().max().item()
    assert 0.1 < scale < 10  # the difference is measured on a real signal of heatmap size
    assert max(report.max_abs_diff.values()) < 1e-4
    config = read_onnx_config(tmp_path / "m.onnx")
    assert config["name"] == name and config["upsample"] == model.config.upsample
    assert config["keypoints"]["flip_pairs"][0] == [1, 2]


def test_opset_below_16_is_refused_for_the_grid_sample_op(tmp_path):
    with pytest.raises(DehrnetError, match="opset 15.*GridSample"):
        export_onnx(create_model("dehrnet_w8_128x96"), tmp_path / "m.onnx", opset=15, sampler="grid_sample")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("sampler", ["gather", "grid_sample"])
def test_the_sampler_decides_whether_the_graph_has_grid_sample(tmp_path, sampler):
    import onnx

    model = create_model("dehrnet_w8_128x96")
    grid_ops = sum(isinstance(m, DySample) for m in model.modules()) if sampler == "grid_sample" else 0
    export_onnx(model, tmp_path / "m.onnx", opset=16, check=False, sampler=sampler, slim=False)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert ops.count("GridSample") == grid_ops
    assert all(m.sampler == "grid_sample" for m in model.modules() if isinstance(m, DySample))  # restored


def test_the_gather_sampler_is_grid_sample_with_border_padding():
    torch.manual_seed(0)
    up = DySample(16, scale=4, groups=2, dyscope=True)
    with torch.no_grad():  # offsets of several pixels: many points fall outside and get clamped
        up.offset.weight.normal_(0, 1.0)
        up.offset.bias.normal_(0, 3.0)
        up.scope.weight.normal_(0, 1.0)
    x = torch.randn(2, 16, 7, 5)
    reference = up(x)
    up.sampler = "gather"
    torch.testing.assert_close(up(x), reference, atol=1e-5, rtol=0)


def test_export_metadata_is_valid_json(tmp_path):
    import onnx

    export_onnx(create_model("dehrnet_w8_128x96"), tmp_path / "m.onnx", check=False, slim=False)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(props["dehrnet_config"])["input_size"] == [96, 128]
    assert props["dehrnet_precision"] == "fp32"


def test_the_simplified_export_is_smaller_and_computes_the_same(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = calibrate_bn(randomize(create_model("dehrnet_w8_128x96")), (128, 96))
    traced = export_onnx(model, tmp_path / "traced.onnx", check=False, slim=False).path
    slimmed = export_onnx(model, tmp_path / "slim.onnx", check=False).path
    nodes = {p: len(onnx.load(str(p)).graph.node) for p in (traced, slimmed)}
    assert nodes[slimmed] < 0.6 * nodes[traced]  # 7,719 -> 2,841 for this architecture when measured
    x = np.random.default_rng(0).standard_normal((2, 3, 128, 96)).astype(np.float32)
    outs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            for p in (traced, slimmed)]
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-4)  # float rounding of folded ops (values ~5)
    assert read_onnx_config(slimmed)["name"] == "dehrnet_w8_128x96"  # the metadata survives


def test_an_export_onnxslim_cannot_simplify_stays_as_traced(tmp_path, monkeypatch, capsys):
    import onnxslim

    def fails(model):
        raise ValueError("unsupported pattern")

    monkeypatch.setattr(onnxslim, "slim", fails)
    report = export_onnx(create_model("dehrnet_w8_128x96"), tmp_path / "m.onnx", check=True)
    warning = "dehrnet: warning: onnxslim could not simplify the export (ValueError: unsupported pattern)"
    assert capsys.readouterr().err.startswith(warning)
    assert max(report.max_abs_diff.values()) < 1e-4 and read_onnx_config(report.path)["width"] == 8
