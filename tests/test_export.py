"""ONNX export: parity with torch, dynamic batch, metadata, opset rule."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import calibrate_bn, randomize

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.export import export_onnx, read_onnx_config
from models import DySample, create_model


@pytest.mark.parametrize("name,overrides", [
    ("dehrnet_w8_128x96", dict(upsample="nearest", dem_stages=())),  # a plain HRNet
    ("dehrnet_w8_128x96", dict(dysample_dyscope=True)),  # DE-HRNet, dynamic scope
    ("dehrnet_w8_128x96", {}),
])
def test_onnx_matches_torch_at_batch_1_and_3(tmp_path, name, overrides):
    model = calibrate_bn(randomize(create_model(name, **overrides)), (128, 96))
    with torch.no_grad():  # heatmap-like outputs of order one, as a trained model gives
        model.final_layer.weight /= model(torch.randn(1, 3, 128, 96)).abs().max()
    offsets = [m.offset.weight.abs().max().item() for m in model.modules() if isinstance(m, DySample)]
    assert not offsets or min(offsets) > 0.1  # DySample really moves its sample points
    report = export_onnx(model, tmp_path / "m.onnx")
    assert report.providers[-1] == "CPUExecutionProvider"
    assert set(report.max_abs_diff) == {1, 3}
    with torch.no_grad():
        scale = model(torch.randn(1, 3, 128, 96)).abs().max().item()
    assert 0.1 < scale < 10  # the difference is measured on a real signal of heatmap size
    assert max(report.max_abs_diff.values()) < 1e-4
    config = read_onnx_config(tmp_path / "m.onnx")
    assert config["name"] == name and config["upsample"] == model.config.upsample
    assert config["keypoints"]["flip_pairs"][0] == [1, 2]


def test_opset_below_16_is_refused_for_dysample(tmp_path):
    with pytest.raises(DehrnetError, match="opset 15.*GridSample"):
        export_onnx(create_model("dehrnet_w8_128x96"), tmp_path / "m.onnx", opset=15)
    assert not (tmp_path / "m.onnx").exists()


def test_export_metadata_is_valid_json(tmp_path):
    import onnx

    export_onnx(create_model("dehrnet_w8_128x96"), tmp_path / "m.onnx", check=False)
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(props["dehrnet_config"])["input_size"] == [96, 128]
    assert props["dehrnet_precision"] == "fp32"
