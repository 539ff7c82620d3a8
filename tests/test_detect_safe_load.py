"""YOLO detector files are opened without running code from them: a hostile pickle given with --det-model, or
planted as ./yolo26n.pt or in the weights cache, is refused and its payload never runs (the marker file it would
create stays absent); genuine ultralytics checkpoints, ONNX and OpenVINO exports still load; a known name with a
published sha256 is checked against it, and downloaded by dehrnet (checked) when missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from local_http import DATA, DATA_SHA256

from dehrnet_cli.detect.yolo import DEFAULT_YOLO, YoloPersonDetector, locate_yolo_weights
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Frame
from dehrnet_cli.weights import manifest as manifest_module

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this creates `marker`: what a hostile checkpoint would do instead (run any command)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return open, (self.marker, "w")


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    """A .pt shaped like an ultralytics checkpoint whose model entry runs code when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(marker), "train_args": {}}, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PAYLOAD_RAN"


@pytest.fixture
def yolo_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and weights cache; ultralytics' safe-load variable restored afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ULTRALYTICS_SAFE_LOAD", raising=False)
    return tmp_path / "home" / "weights"


def test_det_model_flag_with_a_hostile_file_is_refused_without_running_it(tmp_path, marker, yolo_home) -> None:
    evil = hostile_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(DehrnetError, match="refused: it holds Python objects") as err:
        YoloPersonDetector(str(evil))
    assert not marker.exists()
    message = str(err.value)
    assert "\n" not in message and "format=onnx" in message and "(it names io.open)" in message
    assert "weights_only" not in message and "SAFE_LOAD" not in message  # never the advice to turn safety off


@pytest.mark.parametrize("where", ["working folder", "weights cache"])
def test_a_planted_default_detector_is_refused_without_running_it(tmp_path, marker, yolo_home, where) -> None:
    folder = Path.cwd() if where == "working folder" else yolo_home
    hostile_checkpoint(folder / DEFAULT_YOLO, marker)
    with pytest.raises(DehrnetError, match="refused"):
        YoloPersonDetector()  # no --det-model at all
    assert not marker.exists()


def test_ultralytics_imported_earlier_without_safe_mode_still_loads_safely(tmp_path, marker) -> None:
    """A script that imported ultralytics before dehrnet (its safe-load variable unset) is protected too."""
    evil = hostile_checkpoint(tmp_path / "evil.pt", marker)
    code = ("import ultralytics.nn.tasks as t; assert not t.SAFE_LOAD\n"
            "from dehrnet_cli.detect.yolo import YoloPersonDetector\n"
            "from dehrnet_cli.errors import DehrnetError\n"
            f"try:\n    YoloPersonDetector({str(evil)!r})\nexcept DehrnetError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "ULTRALYTICS_SAFE_LOAD"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "refused" in done.stdout, done.stdout + done.stderr
    assert not marker.exists()


def test_predict_with_a_hostile_det_model_exits_2_in_one_line(tmp_path, marker) -> None:
    evil = hostile_checkpoint(tmp_path / "evil.pt", marker)
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), np.full((48, 64, 3), 90, np.uint8))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ULTRALYTICS_SAFE_LOAD", None)
    done = subprocess.run([sys.executable, "-m", "dehrnet_cli", "predict", str(image), "--det-model", str(evil),
                           "--model", "dehrnet_w8_128x96", "--untrained", "--json", str(tmp_path / "r.json")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("dehrnet: error:")]
    assert len(errors) == 1 and "refused" in errors[0] and "Traceback" not in done.stderr
    assert not marker.exists() and not (tmp_path / "r.json").exists()


@pytest.fixture(scope="module")
def genuine_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ultralytics checkpoint: YOLO11n from its yaml (random weights), saved by ultralytics."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("yolo") / "tiny_yolo.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


def _detect(detector: YoloPersonDetector) -> list:
    frame = Frame(0, np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    return detector([frame])


def test_a_genuine_ultralytics_checkpoint_loads_in_safe_mode(genuine_checkpoint, yolo_home) -> None:
    detector = YoloPersonDetector(str(genuine_checkpoint), conf=0.0, max_people=2, device="cpu")
    (det,) = _detect(detector)
    assert det.boxes_xyxy.shape[1:] == (4,) and len(det) <= 2


def test_an_onnx_export_loads_and_detects_without_writing_to_stdout(genuine_checkpoint, tmp_path, capfd) -> None:
    from ultralytics import YOLO

    onnx_path = YOLO(str(genuine_checkpoint)).export(format="onnx", imgsz=64)
    capfd.readouterr()
    detector = YoloPersonDetector(onnx_path, conf=0.0, max_people=2, device="cpu")
    (det,) = _detect(detector)
    assert det.boxes_xyxy.shape[1:] == (4,)
    assert capfd.readouterr().out == ""  # ultralytics' notes on loading an export stay off dehrnet's stdout


@pytest.mark.slow
def test_an_openvino_export_loads_and_detects(genuine_checkpoint) -> None:
    pytest.importorskip("openvino")
    from ultralytics import YOLO

    folder = YOLO(str(genuine_checkpoint)).export(format="openvino", imgsz=64)
    (det,) = _detect(YoloPersonDetector(folder, conf=0.0, max_people=2, device="cpu"))
    assert det.boxes_xyxy.shape[1:] == (4,)


def test_formats_that_cannot_be_loaded_safely_are_refused(tmp_path) -> None:
    script = tmp_path / "det.torchscript"
    script.write_bytes(b"PK")
    with pytest.raises(DehrnetError, match=r"\.pt \(in ultralytics' safe mode\), \.onnx or an OpenVINO"):
        YoloPersonDetector(str(script))


def test_a_missing_detector_path_is_named_as_missing_not_offline(tmp_path) -> None:
    with pytest.raises(DehrnetError, match="no such file or folder") as err:
        locate_yolo_weights(str(tmp_path / "models" / "mine.pt"))
    assert "offline" not in str(err.value)


# -- a known name with a published sha256 ----------------------------------------------------------------------


@pytest.fixture
def detector_with_sum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server) -> str:
    """A manifest whose detector `yolo26n.pt` is served by the local server with the sha256 of its bytes."""
    url, _ = server
    doc = json.loads(manifest_module.MANIFEST_PATH.read_text())
    doc["detectors"] = {DEFAULT_YOLO: {"url": url, "license": "AGPL-3.0", "source": url, "sha256": DATA_SHA256}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", path)
    return url


def test_a_planted_file_that_is_not_the_published_one_is_refused_before_it_is_opened(tmp_path, marker, yolo_home,
                                                                                     detector_with_sum) -> None:
    hostile_checkpoint(yolo_home / DEFAULT_YOLO, marker)
    with pytest.raises(DehrnetError, match=f"is not the published {DEFAULT_YOLO}"):
        YoloPersonDetector()
    assert not marker.exists()
    (yolo_home / DEFAULT_YOLO).write_bytes(DATA)  # the published bytes pass the check
    assert locate_yolo_weights(DEFAULT_YOLO) == str(yolo_home / DEFAULT_YOLO)


def test_a_known_name_with_a_sum_is_downloaded_by_dehrnet_and_checked(yolo_home, detector_with_sum,
                                                                       monkeypatch) -> None:
    monkeypatch.delenv("DEHRNET_OFFLINE", raising=False)
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    path = Path(locate_yolo_weights(DEFAULT_YOLO))
    assert path == yolo_home / DEFAULT_YOLO and path.read_bytes() == DATA
