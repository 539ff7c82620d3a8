"""The YOLO person detector through ultralytics' OpenVINO export: made once beside the weights, remade when they
change, person boxes per frame, and one-line errors for what it cannot do (random weights: shapes only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.detect.yolo import YoloPersonDetector, openvino_export_dir
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Frame

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """yolo11n from its yaml (random weights) saved as a .pt, as a user's weights file would be."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "tiny.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


def _frames() -> list[Frame]:
    return [Frame(i, np.random.default_rng(i).integers(0, 256, (240, 320, 3), dtype=np.uint8)) for i in range(2)]


def test_the_openvino_engine_exports_beside_the_weights_and_finds_people(weights):
    detector = YoloPersonDetector(str(weights), conf=0.0, max_people=3, device="cpu", engine="openvino")
    folder = openvino_export_dir(weights)
    assert folder == weights.parent / "tiny_openvino_model" and (folder / "tiny.xml").is_file()
    assert not [p for p in weights.parent.iterdir() if p.name.startswith(".")]  # the work folder is gone
    dets = detector(_frames())
    assert len(dets) == 2
    for det in dets:
        assert det.boxes_xyxy.dtype == np.float32 and det.boxes_xyxy.shape == (len(det), 4) and 0 < len(det) <= 3
        assert ((det.scores >= 0) & (det.scores <= 1)).all()


def test_the_export_is_reused_and_remade_when_the_weights_change(weights, monkeypatch):
    YoloPersonDetector(str(weights), device="cpu", engine="openvino")  # exported once (or by the test above)
    exports: list[str] = []
    from ultralytics import YOLO

    original = YOLO.export

    def counted(self, *args, **kwargs):
        exports.append(str(self.ckpt_path))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(YOLO, "export", counted)
    YoloPersonDetector(str(weights), device="cpu", engine="openvino")
    assert exports == []
    later = (openvino_export_dir(weights) / "tiny.xml").stat().st_mtime + 10
    os.utime(weights, (later, later))  # new weights under the same name
    YoloPersonDetector(str(weights), device="cpu", engine="openvino")
    assert len(exports) == 1 and (openvino_export_dir(weights) / "tiny.xml").stat().st_mtime >= later - 10


def test_what_the_openvino_engine_cannot_do_is_one_line(weights):
    with pytest.raises(DehrnetError, match="detector engine 'tensorrt': use one of torch, openvino"):
        YoloPersonDetector(str(weights), engine="tensorrt")
    with pytest.raises(DehrnetError, match="a yaml has no weights to export"):
        YoloPersonDetector("yolo11n.yaml", engine="openvino")
    with pytest.raises(DehrnetError, match="runs on the CPU"):
        YoloPersonDetector(str(weights), device="cuda", engine="openvino")


def test_a_failed_export_is_one_line_and_leaves_nothing(tmp_path, weights, monkeypatch):
    from ultralytics import YOLO

    copy = tmp_path / "broken.pt"
    copy.write_bytes(weights.read_bytes())

    def failing(self, *args, **kwargs):
        raise RuntimeError("exporter exploded\nwith a traceback")

    monkeypatch.setattr(YOLO, "export", failing)
    with pytest.raises(DehrnetError, match="could not export it to OpenVINO \\(exporter exploded\\)"):
        YoloPersonDetector(str(copy), engine="openvino")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt"]
