"""The Python API as a notebook user meets it: PoseEstimator built cheaply from a checkpoint, called on what a user
has (paths, BGR arrays, PIL images, grayscale, BGRA, lists), and the PoseResult it returns (plot, to_coco, to_df,
save, len, indexing, repr), on the COCO sample and a short video with tracking."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import save_seeded_checkpoint
from PIL import Image

from dehrnet_cli import PoseEstimator, PoseResult
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.video_writer import VideoWriter
from dehrnet_cli.video.settings import VideoSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return save_seeded_checkpoint(tmp_path_factory.mktemp("api") / "tiny.pt")


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_building_loads_nothing_and_one_image_runs_without_an_export(tiny, empty_cache, coco_sample, model_loads):
    notes: list[str] = []
    est = PoseEstimator(weights=tiny, detector="none", log=notes.append)
    assert model_loads == [] and notes == []  # nothing loaded, exported or said until a job comes
    image = sorted(coco_sample.glob("*.jpg"))[0]
    result = est(image)
    assert isinstance(result, PoseResult) and est.backend.name == "torch"  # one image: no ONNX export pays off
    assert not list(empty_cache.rglob("*.onnx"))
    assert model_loads == ["detector", "pose model"]


def test_a_long_job_exports_once_and_the_line_names_the_model_that_runs(tiny, empty_cache):
    notes: list[str] = []
    est = PoseEstimator(weights=tiny, detector="none", log=notes.append).prepare()  # length unknown: a long job
    assert est.backend.name == "openvino" and len(list(empty_cache.rglob("*.onnx"))) == 1
    exporting = [line for line in notes if line.startswith("exporting")]
    assert len(exporting) == 1 and "dehrnet_w8_128x96" in exporting[0] and "W32" not in exporting[0]


def test_random_weights_on_openvino_run_dysample_as_grid_sample(empty_cache):
    """OpenVINO runs DySample as its GridSample kernel (the gather graph is 1.5x slower there in bf16), random
    weights included: their export is OpenVINO's, not ONNX Runtime's."""
    import onnx

    est = PoseEstimator(model="dehrnet_w8_128x96", untrained=True, detector="none", backend="openvino").prepare()
    exports = sorted(empty_cache.rglob("*.onnx"))
    assert est.backend.name == "openvino" and [f.name for f in exports] == [
        "dehrnet_w8_128x96-untrained.grid_sample.onnx"]
    assert "GridSample" in {node.op_type for node in onnx.load(str(exports[0])).graph.node}


def test_a_result_plots_exports_and_indexes(tiny, empty_cache, coco_sample, tmp_path):
    est = PoseEstimator(weights=tiny, detector="none")
    image_path = sorted(coco_sample.glob("*.jpg"))[0]
    result = est(str(image_path))
    image = cv2.imread(str(image_path))
    assert len(result) == 1 and result.size == (image.shape[1], image.shape[0]) and result.path == image_path
    assert repr(result) == (f"PoseResult({image_path.name}, {image.shape[1]}x{image.shape[0]}, 1 person, "
                            "coco 17 keypoints)")
    drawn = result.plot(kpt_thr=-1, boxes=True, labels=True)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8 and (drawn != image).any()
    assert result.plot(kpt_thr=np.inf).tolist() == image.tolist()  # every keypoint hidden: nothing drawn
    (coco,) = result.to_coco()
    assert coco["image_id"] == int(image_path.stem) and len(coco["keypoints"]) == 51
    assert result.to_coco(image_id=7)[0]["image_id"] == 7
    table = result.to_df()
    assert list(table.columns) == ["frame", "time", "track_id", "person", "keypoint", "x", "y", "score"]
    assert len(table) == 17 and table["keypoint"].tolist()[:2] == ["nose", "left_eye"]
    np.testing.assert_allclose(table[["x", "y"]].to_numpy(), result.keypoints_xy[0], rtol=1e-6)
    saved = result.save(tmp_path / "out" / "annotated.png", kpt_thr=-1)
    assert cv2.imread(str(saved)).tolist() == result.plot(kpt_thr=-1).tolist()
    person = result[0]
    assert len(person) == 1 and person.scores.tolist() == result.scores.tolist() and result[-1].index == 0
    with pytest.raises(IndexError):
        result[1]


def test_to_df_uses_polars_when_pandas_is_missing_and_says_what_to_install(tiny, empty_cache, coco_sample,
                                                                           monkeypatch):
    result = PoseEstimator(weights=tiny, detector="none")(sorted(coco_sample.glob("*.jpg"))[0])
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    table = result.to_df()
    assert type(table).__module__.startswith("polars") and table.shape == (17, 8)
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(DehrnetError, match="pip install pandas"):
        result.to_df()


def test_the_inputs_a_python_user_has(tiny, empty_cache, coco_sample):
    est = PoseEstimator(weights=tiny, detector="none")
    paths = sorted(coco_sample.glob("*.jpg"))[:2]
    bgr = cv2.imread(str(paths[0]))
    reference = est(bgr)
    rgb_pil = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    np.testing.assert_array_equal(est(rgb_pil).keypoints_xy, reference.keypoints_xy)  # PIL is RGB: converted
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(est(bgra).keypoints_xy, reference.keypoints_xy)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert est(gray).keypoints_xy.shape == (1, 17, 2) and est(gray[..., None]).size == reference.size
    batch = est([paths[0], bgr, rgb_pil])
    assert isinstance(batch, list) and [r.index for r in batch] == [0, 1, 2]
    np.testing.assert_array_equal(batch[1].keypoints_xy, reference.keypoints_xy)  # batched = one at a time


@pytest.mark.parametrize(("image", "needle"), [
    (np.zeros((48, 64, 3), np.float32) + 0.5, "float32 array; expected uint8"),
    (np.zeros((48, 64, 3), np.uint16), "uint16 array; expected uint8"),
    (np.zeros((0, 64, 3), np.uint8), "empty image"),
    (np.zeros((48, 64, 2), np.uint8), "shape (48, 64, 2)"),
    ([[1, 2], [3, 4]], "a list"),
])
def test_images_of_unknown_range_or_shape_are_refused_in_one_line(tiny, empty_cache, image, needle):
    est = PoseEstimator(weights=tiny, detector="none")
    with pytest.raises(DehrnetError, match=needle.replace("(", r"\(").replace(")", r"\)")) as refused:
        est(image if not isinstance(image, list) else [image])
    assert "\n" not in str(refused.value)


def test_predict_yields_results_with_frame_facts_and_track_ids_everywhere(tiny, empty_cache, coco_sample, tmp_path):
    frame = cv2.imread(str(sorted(coco_sample.glob("*.jpg"))[0]))[:240, :320]
    with VideoWriter(tmp_path / "clip.mp4", 10.0, (320, 240)) as writer:
        for _ in range(5):
            writer.write(frame)
    est = PoseEstimator(weights=tiny, detector="none")
    results = list(est.predict(tmp_path / "clip.mp4", video=VideoSettings(track=True)))
    assert [r.index for r in results] == list(range(5)) and results[0].name == "clip.mp4#0"
    np.testing.assert_allclose([r.time_s for r in results], np.arange(5) / 10.0, atol=1e-6)
    track = results[-1].track_ids[0]
    assert results[-1].to_coco()[0]["track_id"] == track
    assert set(results[-1].to_df()["track_id"]) == {track}
    assert "tracked" in repr(results[-1])
    with_ids, without = results[-1].plot(kpt_thr=np.inf), results[-1].plot(kpt_thr=np.inf, track_ids=False)
    assert (with_ids != without).any()  # the id tag is drawn


def test_a_long_job_runs_the_checked_reduced_precision_and_caches_the_verdict(learned_model_path, empty_cache):
    """The default path of a long job on a CPU: OpenVINO, in bf16 where the CPU has bf16 units once the precision
    check passed it on this checkpoint (else fp32); the verdict is cached, so the next run only reads it."""
    from dehrnet_cli.precision.cpu import native_bf16

    notes: list[str] = []
    est = PoseEstimator(weights=learned_model_path, detector="none", log=notes.append).prepare()
    assert est.backend.name == "openvino"
    checks = [line for line in notes if line.startswith("precision check")]
    if not native_bf16():
        assert est.backend.precision == "fp32" and not checks
        return
    assert len(checks) == 1 and "bf16 openvino cpu vs fp32" in checks[0]
    assert est.backend.precision == ("bf16" if checks[0].endswith("s)") and ": passed" in checks[0] else "fp32")
    again: list[str] = []
    second = PoseEstimator(weights=learned_model_path, detector="none", log=again.append).prepare()
    assert second.backend.precision == est.backend.precision
    assert [line for line in again if line.startswith("precision check")] == [checks[0] + " [cached]"]
    assert not any(line.startswith("exporting") for line in again)


def test_an_onnx_file_runs_on_openvino_checked_or_on_onnx_runtime_when_asked(learned_model_path, empty_cache,
                                                                             tmp_path):
    """An fp32 ONNX export of a trained model runs on OpenVINO by default, in bf16 where the CPU has bf16 units
    once the precision check passed it against the file's own fp32 (refused: fp32); --backend onnx keeps ONNX
    Runtime."""
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.precision.cpu import native_bf16
    from models import load_model

    onnx_file = export_onnx(load_model(learned_model_path), tmp_path / "learned.onnx", check=False).path
    notes: list[str] = []
    est = PoseEstimator(weights=onnx_file, detector="none", log=notes.append).prepare()
    assert est.backend.name == "openvino"
    checks = [line for line in notes if line.startswith("precision check")]
    if native_bf16():
        assert len(checks) == 1 and "bf16 openvino cpu vs fp32 openvino" in checks[0]
        assert est.backend.precision == ("bf16" if ": passed" in checks[0] else "fp32")
    else:
        assert est.backend.precision == "fp32" and not checks
    ort = PoseEstimator(weights=onnx_file, detector="none", backend="onnx").prepare()
    assert ort.backend.name == "onnx" and ort.backend.precision == "fp32"
    with pytest.raises(DehrnetError, match="OpenVINO runs fp32, bf16 or int8"):
        PoseEstimator(weights=onnx_file, detector="none", backend="openvino", precision="fp16").prepare()
