"""`make demo`: offline it runs every stage with labelled untrained weights; with real weights it tracks."""

from __future__ import annotations

import json

import pytest

from dehrnet_cli import demo
from dehrnet_cli.estimator import PoseEstimator


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if not demo.sample_images():
        pytest.skip("ultralytics ships no sample images")
    return tmp_path


def _tiny(**kwargs):
    return PoseEstimator(model="dehrnet_w8_128x96", untrained=True, device="cpu", detector="none")


def test_offline_demo_labels_untrained_outputs_and_exits_0(in_tmp, monkeypatch, capsys):
    real = demo.PoseEstimator

    def fast_fallback(**kwargs):  # the registry path really fails (offline); the fallback gets a tiny model
        return _tiny() if kwargs.get("untrained") else real(**kwargs)

    monkeypatch.setattr(demo, "PoseEstimator", fast_fallback)
    assert demo.main() == 0
    err = capsys.readouterr().err
    assert "real weights unavailable" in err and "UNTRAINED WEIGHTS" in err
    outputs = sorted(p.name for p in (in_tmp / "demo_out").iterdir())
    assert {"images_untrained", "images_untrained.json", "pan_untrained.mp4", "pan_untrained.json"} <= set(outputs)


def test_demo_with_real_weights_tracks_the_video(in_tmp, monkeypatch):
    monkeypatch.setattr(demo, "_real_estimator", _tiny)  # stands in for the downloaded HRNet baseline
    assert demo.main() == 0
    doc = json.loads((in_tmp / "demo_out" / "pan_hrnet_w32.json").read_text())
    assert doc["annotations"] and all("track_id" in a for a in doc["annotations"])
    assert (in_tmp / "demo_out" / "pan_hrnet_w32.mp4").is_file()
