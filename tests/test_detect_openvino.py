"""The YOLO person detector through ultralytics' OpenVINO export: made once beside the weights, remade when they
change, person boxes per frame, one-line errors for what it cannot do, and `--det-engine auto` following the pose
network onto OpenVINO (random weights: shapes only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.detect.factory import follow_pose_engine, make_detector
from dehrnet_cli.detect.spec import DetectorSpec
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
    with pytest.raises(DehrnetError, match="--det-engine 'tensorrt': use one of torch, openvino"):
        YoloPersonDetector(str(weights), engine="tensorrt")
    with pytest.raises(DehrnetError, match="a yaml has no weights to export"):
        YoloPersonDetector("yolo11n.yaml", engine="openvino")
    with pytest.raises(DehrnetError, match="already an onnx export"):
        YoloPersonDetector("tiny.onnx", engine="openvino")
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


@pytest.mark.parametrize(("engine", "pose_engine", "pose_precision", "moves"), [
    ("auto", "openvino", "auto", True), ("auto", "openvino", "bf16", True),
    ("auto", "torch", "auto", False), ("auto", "onnx", "auto", False),
    ("auto", "openvino", "fp32", False),  # OpenVINO's detector would compute in bf16 on a bf16 CPU
    ("torch", "openvino", "auto", False)])
def test_auto_follows_the_pose_network_onto_openvino(weights, engine, pose_engine, pose_precision, moves):
    spec = DetectorSpec(model=str(weights), engine=engine)
    detector, notes = make_detector(spec, "cpu"), []
    assert detector.engine == "torch"
    follow_pose_engine(detector, spec, pose_engine, pose_precision, notes.append)
    assert detector.engine == ("openvino" if moves else "torch")
    assert notes == (["detector: OpenVINO (ultralytics' export of the YOLO weights, cached beside them), as the pose "
                      "network"] if moves else [])
    if moves:
        assert len(detector(_frames())) == 2


def test_auto_stays_on_torch_for_random_weights_and_when_the_export_fails(weights, tmp_path, monkeypatch):
    spec = DetectorSpec(model="yolo11n.yaml")
    detector, notes = make_detector(spec, "cpu"), []
    follow_pose_engine(detector, spec, "openvino", "auto", notes.append)
    assert detector.engine == "torch" and notes == []

    from ultralytics import YOLO

    copy = tmp_path / "other.pt"
    copy.write_bytes(weights.read_bytes())
    monkeypatch.setattr(YOLO, "export", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("no space")))
    spec = DetectorSpec(model=str(copy))
    detector = make_detector(spec, "cpu")
    follow_pose_engine(detector, spec, "openvino", "auto", notes.append)
    assert detector.engine == "torch" and len(detector(_frames())) == 2
    assert len(notes) == 1 and notes[0].startswith("detector: torch (--det-model") and "no space" in notes[0]


def test_the_estimator_runs_the_detector_where_the_pose_network_runs(weights):
    from dehrnet_cli.estimator import PoseEstimator

    notes: list[str] = []
    estimator = PoseEstimator(model="dehrnet_w8_128x96", untrained=True, backend="openvino", device="cpu",
                              det_model=str(weights), log=notes.append)
    assert estimator.backend.name == "openvino" and estimator.detector.engine == "openvino"
    assert any(n.startswith("detector: OpenVINO") for n in notes)
    torch_run = PoseEstimator(model="dehrnet_w8_128x96", untrained=True, backend="torch", device="cpu",
                              det_model=str(weights), log=notes.append)
    assert torch_run.detector.engine == "torch"
