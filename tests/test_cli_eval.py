"""`dehrnet eval` through typer's CliRunner on an app built here with `add_commands(app, eval_command)`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from conftest import save_seeded_checkpoint
from typer.testing import CliRunner

import models
from dehrnet_cli.cli.command import add_commands
from dehrnet_cli.cli.eval import eval_command
from dehrnet_cli.eval.coco import STAT_NAMES
from dehrnet_cli.eval.run import run_coco_eval
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator
from models.keypoints import COCO17, MPII16

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


def _app() -> typer.Typer:
    app = typer.Typer()
    add_commands(app, eval_command)

    @app.callback()
    def _root() -> None:
        """A root callback keeps `eval` a subcommand."""

    return app


def _run(*args: str):
    return CliRunner().invoke(_app(), ["eval", *map(str, args)])


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return save_seeded_checkpoint(tmp_path_factory.mktemp("weights") / "tiny.pt", TINY)


@pytest.fixture
def coco_layout(coco_sample, tmp_path) -> Path:
    """The standard layout: <root>/val2017/*.jpg and <root>/annotations/person_keypoints_val2017.json."""
    images = tmp_path / "coco root" / "val2017"
    images.mkdir(parents=True)
    for jpg in coco_sample.glob("*.jpg"):
        (images / jpg.name).symlink_to(jpg)
    (tmp_path / "coco root" / "annotations").mkdir()
    (tmp_path / "coco root" / "annotations" / "person_keypoints_val2017.json").symlink_to(
        coco_sample / "test_coco.json")
    return images


def test_coco_gt_boxes_run_saves_what_the_library_computes(coco_layout, tiny_weights, tmp_path):
    result = _run("--coco", coco_layout, "--gt-boxes", "--weights", tiny_weights, "--device", "cpu",
                  "--precision", "fp32", "--save-results", tmp_path / "out" / "preds.json", "--report",
                  tmp_path / "report.json", "-q")
    assert result.exit_code == 0, result.output
    assert "AP50" in result.output and "ARl" in result.output
    saved = json.loads((tmp_path / "out" / "preds.json").read_text())
    topdown = TopDownEstimator(TorchBackend(models.load_model(tiny_weights), "cpu"))
    ann = coco_layout.parent / "annotations" / "person_keypoints_val2017.json"
    expected = run_coco_eval(topdown, coco_layout, ann, "gt", progress=False)
    assert saved == expected.results and len(saved) > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stats"] == expected.stats
    assert list(report["per_keypoint"]) == list(COCO17.names)
    assert report["settings"]["boxes"] == "gt" and report["settings"]["flip"] is True
    assert report["num_images"] == 4


def test_scoring_an_existing_results_file(coco_sample, tmp_path):
    doc = json.loads((coco_sample / "test_coco.json").read_text())
    gt_results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
                  for a in doc["annotations"] if a["num_keypoints"]]
    (tmp_path / "gt.json").write_text(json.dumps(gt_results))
    result = _run("--coco-results", tmp_path / "gt.json", "--ann", coco_sample / "test_coco.json",
                  "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert result.output.count("1.000") >= 10
    assert json.loads((tmp_path / "r.json").read_text())["stats"] == dict.fromkeys(STAT_NAMES, 1.0)


def test_results_of_another_dataset_exit_2_with_one_line(coco_sample, tmp_path):
    (tmp_path / "other.json").write_text(json.dumps([{"image_id": 42, "category_id": 1, "keypoints": [0] * 51,
                                                      "score": 1.0}]))
    result = _run("--coco-results", tmp_path / "other.json", "--ann", coco_sample / "test_coco.json")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert len(errors) == 1 and "another dataset" in errors[0] and "Traceback" not in result.output


def test_missing_inputs_exit_2(coco_sample, coco_layout, tiny_weights, tmp_path):
    bare = tmp_path / "bare" / "val2017"
    bare.mkdir(parents=True)
    result = _run("--coco", bare, "--gt-boxes", "--weights", tiny_weights)
    assert result.exit_code == 2 and "person_keypoints_val2017.json: no such file" in result.output
    result = _run("--coco", tmp_path / "absent", "--ann", coco_sample / "test_coco.json", "--gt-boxes",
                  "--weights", tiny_weights)
    assert result.exit_code == 2 and "absent: no such folder" in result.output
    assert _run("--coco-results", tmp_path / "nope.json", "--ann", coco_sample / "test_coco.json").exit_code == 2
    assert _run("--weights", tiny_weights).exit_code == 2  # no mode
    result = _run("--coco", coco_layout, "--gt-boxes", "--boxes", tmp_path / "d.json", "--weights", tiny_weights)
    assert result.exit_code == 2 and "not both" in result.output


def _head_boxes_file(mpii_sample: Path, tmp_path: Path) -> Path:
    people = json.loads((mpii_sample / "test_mpii.json").read_text())
    boxes = {p["image"]: [[p["center"][0], p["center"][1]], [p["center"][0] + 30, p["center"][1] + 40]]
             for p in people}
    (tmp_path / "headboxes.json").write_text(json.dumps(boxes))
    return tmp_path / "headboxes.json"


def test_mpii_results_file_gt_scores_100(mpii_sample, tmp_path):
    ann = mpii_sample / "test_mpii.json"
    result = _run("--mpii-results", ann, "--ann", ann, "--headboxes", _head_boxes_file(mpii_sample, tmp_path),
                  "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pckh"]["PCKh@0.5"]["Mean"] == 100.0 and report["pckh"]["PCKh@0.1"]["Wrist"] == 100.0
    result = _run("--mpii-results", ann, "--ann", ann, "--headboxes", tmp_path / "headboxes.json", "--limit", 2,
                  "--report", tmp_path / "r2.json")
    assert result.exit_code == 0 and json.loads((tmp_path / "r2.json").read_text())["pckh"]["num_people"] == 2
    result = _run("--mpii-results", ann, "--ann", ann)
    assert result.exit_code == 2 and "--headboxes" in result.output


def test_mpii_run_writes_predictions(mpii_sample, tmp_path):
    weights = tmp_path / "mpii_tiny.pt"
    save_seeded_checkpoint(weights, TINY, keypoints=MPII16)
    result = _run("--mpii", mpii_sample, "--ann", mpii_sample / "test_mpii.json", "--headboxes",
                  _head_boxes_file(mpii_sample, tmp_path), "--weights", weights, "--device", "cpu",
                  "--save-results", tmp_path / "preds.json", "--limit", "3", "-q")
    assert result.exit_code == 0, result.output
    preds = json.loads((tmp_path / "preds.json").read_text())
    assert [p["image"] for p in preds] == ["005808361.jpg", "052475643.jpg", "051423444.jpg"]
    assert all(len(p["joints"]) == 16 for p in preds) and "PCKh@0.5" in result.output


def test_boxes_of_another_split_exit_2_before_any_image(coco_layout, tiny_weights, tmp_path):
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": 7, "category_id": 1, "bbox": [1, 2, 30, 40],
                                                     "score": 0.9}]))
    result = _run("--coco", coco_layout, "--boxes", tmp_path / "dets.json", "--weights", tiny_weights, "--quiet")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dehrnet: error:")]
    assert len(errors) == 1 and f"--boxes {tmp_path / 'dets.json'}" in errors[0] and "match none" in errors[0]


def test_a_bad_results_entry_names_the_file(coco_sample, tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": 40083, "category_id": 1, "score": 1.0}]))
    result = _run("--coco-results", tmp_path / "bad.json", "--ann", coco_sample / "test_coco.json")
    assert result.exit_code == 2
    assert f"dehrnet: error: --coco-results {tmp_path / 'bad.json'}: entry 0 is not a keypoint result" in result.stderr


def test_eval_outputs_are_checked_before_any_work(coco_sample, tmp_path):
    (tmp_path / "a_file").write_text("")
    gt = tmp_path / "gt.json"
    gt.write_text("[]")
    for flag in ("--report", "--save-results"):
        target = tmp_path / "a_file" / "r.json"
        result = _run("--coco-results", gt, "--ann", coco_sample / "test_coco.json", flag, target)
        assert result.exit_code == 2 and f"dehrnet: error: {flag} {target}: " in result.stderr, result.output
    result = _run("--coco-results", gt, "--ann", coco_sample / "test_coco.json", "--report", gt)
    assert result.exit_code == 2 and "is the --coco-results" in result.stderr and gt.read_text() == "[]"


@pytest.mark.parametrize("flag", ["--report", "--save-results"])
def test_an_output_on_the_annotation_file_found_by_convention_is_refused(coco_layout, tiny_weights, flag):
    """--coco DIR finds <root>/annotations/person_keypoints_<DIR>.json by itself: no output may overwrite it."""
    ann = coco_layout.parent / "annotations" / "person_keypoints_val2017.json"
    before = ann.read_bytes()
    result = _run("--coco", coco_layout, "--gt-boxes", "--weights", tiny_weights, "--device", "cpu", flag, ann)
    assert result.exit_code == 2, result.output
    assert f"dehrnet: error: {flag} {ann}: is the annotation file" in result.stderr
    assert ann.read_bytes() == before
