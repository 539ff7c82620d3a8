"""Person detectors on their own: the whole image, the top-N rule, a COCO detections file, OpenCV's HOG, YOLO
built from its yaml (random weights: shapes only), the factory, and finding YOLO weights offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dehrnet_cli.detect.base import WholeImageDetector, keep_top
from dehrnet_cli.detect.boxes_file import BoxesFileDetector
from dehrnet_cli.detect.factory import make_detector
from dehrnet_cli.detect.hog import HOG_WINDOW_WH, HogDetector
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.detect.yolo import YoloPersonDetector, locate_yolo_weights
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.stage_data import Detections, Frame


def _frame(w: int = 320, h: int = 240, index: int = 0, path: Path | None = None) -> Frame:
    return Frame(index, np.random.default_rng(index).integers(0, 256, (h, w, 3), dtype=np.uint8), path)


def test_whole_image_is_one_box_of_score_one() -> None:
    dets = WholeImageDetector()([_frame(320, 240), _frame(64, 48, 1)])
    assert [d.boxes_xyxy.tolist() for d in dets] == [[[0, 0, 320, 240]], [[0, 0, 64, 48]]]
    assert all(d.scores.tolist() == [1.0] for d in dets)


def test_keep_top_keeps_the_best_scores_in_stable_order() -> None:
    det = Detections(np.arange(20, dtype=np.float32).reshape(5, 4), np.array([0.5, 0.9, 0.5, 0.1, 0.9], np.float32))
    top = keep_top(det, 3)
    assert top.scores.tolist() == pytest.approx([0.9, 0.9, 0.5]) and top.boxes_xyxy[:, 0].tolist() == [4, 16, 0]
    assert keep_top(det, None) is det and keep_top(det, 9) is det


def _boxes_file(tmp_path: Path, entries: object) -> Path:
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(entries))
    return path


def test_boxes_file_by_image_id_with_threshold_category_and_top_n(tmp_path: Path) -> None:
    path = _boxes_file(tmp_path, [
        {"image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 40], "score": 0.9},
        {"image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.2},
        {"image_id": 7, "category_id": 3, "bbox": [1, 1, 50, 50], "score": 1.0},  # not a person
        {"image_id": 7, "bbox": [100, 100, 10, 10], "score": 0.6},  # category defaults to person
        {"image_id": 8, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.95}])
    frames = [_frame(index=n, path=tmp_path / f"{image_id:012d}.jpg") for n, image_id in enumerate((7, 9, 8))]
    seven, nothing, eight = BoxesFileDetector(path, conf=0.5)(frames)  # ids from the numeric file names
    assert seven.boxes_xyxy.tolist() == [[10, 20, 40, 60], [100, 100, 110, 110]]
    assert seven.scores.tolist() == pytest.approx([0.9, 0.6])
    assert len(nothing) == 0 and nothing.boxes_xyxy.shape == (0, 4)
    assert eight.boxes_xyxy.tolist() == [[1, 2, 4, 6]]
    assert len(BoxesFileDetector(path, max_people=1)(frames[:1])[0]) == 1
    video_frames = [_frame(index=n) for n in range(8)]  # no paths: frame n is image n + 1
    assert [len(d) for d in BoxesFileDetector(path)(video_frames)] == [0] * 6 + [3, 1]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), ("{not json", "not valid JSON"), ('{"image_id": 1}', "expected a COCO detections list"),
    ('[{"image_id": 1, "bbox": [1, 2]}]', "entry 0 lacks")])
def test_bad_boxes_files_are_one_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "dets.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DehrnetError, match=message) as err:
        BoxesFileDetector(path)
    assert str(path) in str(err.value) and "--boxes" in str(err.value)


def test_hog_gives_no_boxes_on_images_smaller_than_its_window() -> None:
    w, h = HOG_WINDOW_WH
    small = [_frame(w - 1, h + 10), _frame(w + 10, h - 1, 1)]  # OpenCV 4 would crash on these
    assert [len(d) for d in HogDetector()(small)] == [0, 0]
    (det,) = HogDetector(max_people=2)([_frame(200, 300)])
    assert det.boxes_xyxy.shape[1:] == (4,) and len(det) <= 2 and ((det.scores > 0) & (det.scores < 1)).all()


def test_factory_boxes_file_wins_and_unknown_kind_is_refused(tmp_path: Path) -> None:
    path = _boxes_file(tmp_path, [])
    assert isinstance(make_detector(DetectorSpec("hog", boxes=path)), BoxesFileDetector)
    assert isinstance(make_detector(DetectorSpec("none")), WholeImageDetector)
    assert isinstance(make_detector(DetectorSpec("hog")), HogDetector)
    with pytest.raises(DehrnetError, match="--detector 'yoloo'.*yolo, none, hog"):
        make_detector(DetectorSpec("yoloo"))


def test_yolo_from_yaml_returns_person_boxes_per_frame() -> None:
    detector = YoloPersonDetector("yolo11n.yaml", conf=0.0, max_people=3, device="cpu")
    dets = detector([_frame(), _frame(index=1)])
    assert len(dets) == 2
    for det in dets:
        assert det.boxes_xyxy.dtype == np.float32 and det.boxes_xyxy.shape == (len(det), 4) and len(det) <= 3


@pytest.mark.parametrize("switch", ["DEHRNET_OFFLINE", "YOLO_OFFLINE"])
def test_missing_yolo_weights_offline_name_the_file_and_the_alternatives(tmp_path: Path, monkeypatch, switch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEHRNET_OFFLINE", raising=False)
    monkeypatch.delenv("YOLO_OFFLINE", raising=False)
    monkeypatch.setenv(switch, "1")
    with pytest.raises(DehrnetError, match="yolo11n.pt: not found in this folder") as err:
        YoloPersonDetector("yolo11n.pt")
    assert str(tmp_path / "home" / "weights" / "yolo11n.pt") in str(err.value)
    assert f"downloads are off ({switch} is set)" in str(err.value)
    assert "--boxes" in str(err.value) and "--detector none" in str(err.value)


def test_yolo_weights_in_the_cache_are_found_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    cached = tmp_path / "home" / "weights" / "yolo11n.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert locate_yolo_weights("yolo11n.pt") == str(cached)


def test_boxes_file_skips_unusable_entries_with_one_warning_and_clips_to_the_image(tmp_path: Path, capsys) -> None:
    path = _boxes_file(tmp_path, [
        {"image_id": 1, "bbox": [300, 200, 50, 60], "score": 0.9},  # partly outside a 320 x 240 image
        {"image_id": 1, "bbox": [400, 10, 20, 20], "score": 0.9},  # entirely outside
        {"image_id": 1, "bbox": [10, 10, 0, 5], "score": 0.9},  # no width
        {"image_id": 1, "bbox": [10, 10, 5, float("nan")], "score": 0.9},
        {"image_id": 1, "bbox": [10, 10, 5, 5], "score": float("inf")}])
    detector = BoxesFileDetector(path)
    assert capsys.readouterr().err.count("dehrnet: warning:") == 1  # one warning for the three unusable entries
    (det,) = detector([_frame()])
    assert det.boxes_xyxy.tolist() == [[300, 200, 320, 240]]
    assert detector.outside == 1
    detector.warn_outside()
    assert "skipped 1 box(es) lying entirely outside" in capsys.readouterr().err


def test_boxes_file_for_other_images_is_refused(tmp_path: Path) -> None:
    detector = BoxesFileDetector(_boxes_file(tmp_path, [{"image_id": 785, "bbox": [1, 1, 5, 5], "score": 1}]))
    detector.for_source([tmp_path / "000000000785.jpg", tmp_path / "000000000786.jpg"], 2, "val2017")  # one match
    detector.for_source(None, None, "a live camera")  # ids unknown up front: nothing to check
    with pytest.raises(DehrnetError, match=r"its image ids \(785\) match none of val2017 \(1..3, 3 ids\)"):
        detector.for_source(None, 3, "val2017")
    with pytest.raises(DehrnetError, match="no person boxes"):
        BoxesFileDetector(_boxes_file(tmp_path, [])).for_source(None, 1, "x")


class _RecordingHog:
    """Stands in for cv2.HOGDescriptor: records the image it is given and finds one person at a fixed place."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def detectMultiScale(self, image, **kwargs):  # noqa: N802 (OpenCV's name)
        self.shapes.append(image.shape)
        return np.array([[100, 50, 64, 128]]), np.array([2.0])


def test_hog_works_on_a_downscaled_copy_and_maps_boxes_back() -> None:
    from dehrnet_cli.detect.hog import HOG_MAX_SIDE

    detector = HogDetector()
    detector.hog = _RecordingHog()
    big = Frame(0, np.zeros((3000, 4000, 3), np.uint8))  # 4000 x 3000: HOG time grows with the pixel count
    (det,) = detector([big])
    assert detector.hog.shapes == [(960, 1280, 3)] and HOG_MAX_SIDE == 1280
    np.testing.assert_allclose(det.boxes_xyxy, [[312.5, 156.25, 512.5, 556.25]])  # x 3.125 back to the image
    detector([_frame(640, 480)])
    assert detector.hog.shapes[-1] == (480, 640, 3)  # small images are used as they are


def test_recorded_boxes_are_given_again_for_the_same_frames_only():
    from dehrnet_cli.detect.base import WholeImageDetector
    from dehrnet_cli.detect.recorded import RecordingDetector
    from dehrnet_cli.errors import InternalError

    frames = [Frame(i, np.zeros((20 + i, 30, 3), np.uint8)) for i in range(3)]
    recorder = RecordingDetector(WholeImageDetector())
    first = recorder(frames[:2]) + recorder(frames[2:])
    replay = recorder.replay()
    again = replay([frames[2], frames[0]]) + replay([frames[1]])
    assert [d.boxes_xyxy.tolist() for d in again] == [first[2].boxes_xyxy.tolist(), first[0].boxes_xyxy.tolist(),
                                                      first[1].boxes_xyxy.tolist()]
    with pytest.raises(InternalError, match=r"no recorded boxes for frames \[3\]"):
        replay([Frame(3, np.zeros((8, 8, 3), np.uint8))])
