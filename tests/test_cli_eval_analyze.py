"""`dehrnet eval --analyze` and `--compare` through typer's CliRunner: the report keys a script reads, the
files written, and bad input (one line, exit 2, before any work)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from analyze_scenes import joints, result, with_errors
from conftest import save_seeded_checkpoint
from test_cli_eval import _run, coco_layout, tiny_weights  # noqa: F401 (fixtures)

from dehrnet_cli.eval.analyze import STEPS


def _sample_results(coco_sample: Path, tmp_path: Path, name: str, noise: float, seed: int = 0) -> Path:
    """The COCO sample's people with `noise` px of Gaussian noise, a miss and an inversion on every other
    person, and a false positive; written to tmp_path / name."""
    rng = np.random.default_rng(seed)
    doc = json.loads((coco_sample / "test_coco.json").read_text())
    results = []
    for n, ann in enumerate(a for a in doc["annotations"] if a["num_keypoints"] > 0):
        errors = {"left_ankle": "miss", "right_knee": "inversion"} if n % 2 else {}
        xy = with_errors(ann, None, errors) + rng.normal(0, noise, (17, 2))
        results.append(result(ann["image_id"], xy, float(rng.uniform(0.3, 1.0))))
    results.append(result(785, joints(doc["annotations"][0])[:, :2] + 300, 0.99))
    (tmp_path / name).write_text(json.dumps(results))
    return tmp_path / name


def test_analyze_writes_the_report_keys_figures_and_page(coco_sample, tmp_path):
    results = _sample_results(coco_sample, tmp_path, "results.json", noise=2.0)
    out = _run("--coco-results", results, "--ann", coco_sample / "test_coco.json", "--analyze",
               "--report", tmp_path / "r.json", "--quiet")
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"stats", "per_keypoint", "settings"} <= report.keys()  # what eval reported before
    analyze = report["analyze"]
    assert {"params", "counts", "ap_steps", "figures"} <= analyze.keys()
    assert {k: analyze["params"][k] for k in ("loc_oks", "jitter_ks", "max_dets")} == \
        {"loc_oks": 0.1, "jitter_ks": [0.5, 0.85], "max_dets": 20}
    assert analyze["params"]["areas"] == {"all": [1024, 1e10], "medium": [1024, 9216], "large": [9216, 1e10]}
    assert list(analyze["counts"]) == list(analyze["ap_steps"]) == ["all", "medium", "large"]
    assert list(analyze["counts"]["all"]) == ["good", "jitter", "inversion", "swap", "miss"]
    assert analyze["counts"]["all"]["inversion"] >= 5 and analyze["counts"]["all"]["miss"] >= 5
    assert list(analyze["ap_steps"]["all"]) == list(STEPS)
    folder = tmp_path / "r_analysis"
    assert analyze["figures"] == [str(folder / n) for n in ("pr_curves.png", "keypoint_errors.png", "analysis.html")]
    for png in ("pr_curves.png", "keypoint_errors.png"):
        data = (folder / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000
    page = (folder / "analysis.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "false_negatives" in page and "<img" in page
    assert "background_fp" in out.output  # the AP-per-step table is printed


@pytest.mark.slow  # builds and runs a tiny model (~30 s on 2 busy cores)
def test_analyze_after_a_model_run(coco_layout, tiny_weights, tmp_path):  # noqa: F811 (fixtures)
    out = _run("--coco", coco_layout, "--gt-boxes", "--weights", tiny_weights, "--device", "cpu", "--analyze",
               "--figures", tmp_path / "figs", "--report", tmp_path / "r.json", "--save-results", tmp_path / "p.json",
               "--quiet")
    assert out.exit_code == 0, out.output
    analyzed = json.loads((tmp_path / "r.json").read_text())["analyze"]
    assert analyzed["figures"][-1] == str(tmp_path / "figs" / "analysis.html")
    assert (tmp_path / "figs" / "analysis.html").is_file()
    again = _run("--coco-results", tmp_path / "p.json", "--ann", coco_layout.parent / "annotations" /
                 "person_keypoints_val2017.json", "--analyze", "--report", tmp_path / "again.json", "--quiet")
    assert again.exit_code == 0, again.output
    from_file = json.loads((tmp_path / "again.json").read_text())["analyze"]
    assert (from_file["counts"], from_file["ap_steps"]) == (analyzed["counts"], analyzed["ap_steps"])


def test_compare_reports_rows_with_intervals(coco_sample, tmp_path):
    noisy = _sample_results(coco_sample, tmp_path, "a.json", noise=4.0)
    clean = _sample_results(coco_sample, tmp_path, "b.json", noise=0.5, seed=1)
    out = _run("--compare", noisy, clean, "--ann", coco_sample / "test_coco.json", "--resamples", 100, "--seed", 3,
               "--report", tmp_path / "c.json")
    assert out.exit_code == 0, out.output
    section = json.loads((tmp_path / "c.json").read_text())["compare"]
    assert {k: section[k] for k in ("a", "b", "resamples", "seed")} == \
        {"a": str(noisy), "b": str(clean), "resamples": 100, "seed": 3}
    rows = {row["metric"]: row for row in section["rows"]}
    assert all(set(row) == {"metric", "a", "b", "diff", "ci95", "verdict"} for row in section["rows"])
    assert {"AP", "AP50", "ARl", "oks/left_wrist", "errors/miss"} <= rows.keys()
    assert rows["AP"]["diff"] == pytest.approx(rows["AP"]["b"] - rows["AP"]["a"])
    assert rows["AP"]["ci95"][0] <= rows["AP"]["diff"] <= rows["AP"]["ci95"][1]


def _one_error_line(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1 and lines[0].startswith("dehrnet: error:"), out.output
    assert "Traceback" not in out.output
    return lines[0]


def test_bad_input_is_one_line_exit_2(coco_sample, tmp_path):
    ann = coco_sample / "test_coco.json"
    good = _sample_results(coco_sample, tmp_path, "good.json", noise=1.0)
    other = tmp_path / "other.json"
    other.write_text(json.dumps([result(42, np.zeros((17, 2)), 1.0)]))
    line = _one_error_line(_run("--coco-results", other, "--ann", ann, "--analyze", "--report", tmp_path / "r.json"))
    assert "are not in the annotation file" in line and not (tmp_path / "r.json").exists()
    no_keypoints = json.loads(ann.read_text())
    for a in no_keypoints["annotations"]:
        a["num_keypoints"], a["keypoints"] = 0, [0] * 51
    (tmp_path / "bare.json").write_text(json.dumps(no_keypoints))
    line = _one_error_line(_run("--coco-results", good, "--ann", tmp_path / "bare.json", "--analyze"))
    assert "no person of the evaluated images has a labelled keypoint" in line
    line = _one_error_line(_run("--compare", good, good, "--ann", tmp_path / "bare.json"))
    assert "no person of the evaluated images has a labelled keypoint" in line
    for a in no_keypoints["annotations"]:
        del a["keypoints"]
    (tmp_path / "bare.json").write_text(json.dumps(no_keypoints))
    line = _one_error_line(_run("--coco-results", good, "--ann", tmp_path / "bare.json", "--analyze"))
    assert "has no keypoints list" in line
    subset = [r for r in json.loads(good.read_text()) if r["image_id"] != 785]
    (tmp_path / "fewer.json").write_text(json.dumps(subset))
    line = _one_error_line(_run("--compare", good, tmp_path / "fewer.json", "--ann", ann))
    assert "cover different images" in line and "1 only in A such as [785]" in line
    line = _one_error_line(_run("--compare", good, other, "--ann", ann))
    assert "are not in the annotation file" in line
    line = _one_error_line(_run("--mpii-results", good, "--ann", ann, "--analyze"))
    assert "--analyze needs COCO keypoints" in line
    line = _one_error_line(_run("--compare", good, good, "--ann", ann, "--resamples", 0))
    assert "--resamples 0" in line
    line = _one_error_line(_run("--coco-results", good, "--ann", ann, "--analyze", "--figures", good))
    assert line.startswith(f"dehrnet: error: --figures {good}")  # a file, not a folder: refused before any work


def test_compare_of_two_models_runs_them_on_the_same_boxes(coco_layout, tmp_path, monkeypatch):  # noqa: F811
    """--coco DIR --compare A.pt B.pt: the detector runs for A only (B gets A's boxes)."""
    from dehrnet_cli.detect.base import WholeImageDetector

    a = save_seeded_checkpoint(tmp_path / "a.pt", seed=0)
    b = save_seeded_checkpoint(tmp_path / "b.pt", seed=1)
    detected: list[int] = []
    real = WholeImageDetector.__call__
    monkeypatch.setattr(WholeImageDetector, "__call__", lambda self, frames: detected.append(len(frames)) or
                        real(self, frames))
    out = _run("--coco", coco_layout, "--compare", a, b, "--detector", "none", "--device", "cpu", "--quiet",
               "--resamples", 20, "--report", tmp_path / "c.json")
    assert out.exit_code == 0, out.output
    assert sum(detected) == 4  # the 4 images once: model B ran on the boxes model A's run found
    report = json.loads((tmp_path / "c.json").read_text())
    assert (report["compare"]["a"], report["compare"]["b"], report["compare"]["images"]) == (str(a), str(b), 4)
    assert [report["runs"][k]["settings"]["weights"] for k in ("a", "b")] == [str(a), str(b)]


def test_compare_of_two_models_gives_the_rows_of_their_results_files(coco_layout, tmp_path):  # noqa: F811
    a = save_seeded_checkpoint(tmp_path / "a.pt", seed=0)
    b = save_seeded_checkpoint(tmp_path / "b.pt", seed=1)
    flags = ["--gt-boxes", "--device", "cpu", "--quiet", "--resamples", 50]
    out = _run("--coco", coco_layout, "--compare", a, b, *flags, "--report", tmp_path / "c.json")
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "c.json").read_text())
    for key, weights, name in (("a", a, "ra.json"), ("b", b, "rb.json")):
        alone = _run("--coco", coco_layout, "--weights", weights, *flags[:4], "--save-results", tmp_path / name,
                     "--report", tmp_path / f"report_{name}")
        assert alone.exit_code == 0, alone.output
        lone = json.loads((tmp_path / f"report_{name}").read_text())
        run = report["runs"][key]
        assert (lone["stats"], lone["per_keypoint"]) == (run["stats"], run["per_keypoint"])
    assert (tmp_path / "ra.json").read_text() != (tmp_path / "rb.json").read_text()  # two different models
    ann = coco_layout.parent / "annotations" / "person_keypoints_val2017.json"
    files = _run("--compare", tmp_path / "ra.json", tmp_path / "rb.json", "--ann", ann, *flags[3:],
                 "--report", tmp_path / "f.json")
    assert files.exit_code == 0, files.output
    rows = report["compare"]["rows"]
    assert json.loads((tmp_path / "f.json").read_text())["compare"]["rows"] == rows


def test_compare_of_two_models_refuses_what_would_be_ambiguous(coco_layout, tiny_weights, tmp_path):  # noqa: F811
    results = tmp_path / "r.json"
    results.write_text("[]")
    line = _one_error_line(_run("--coco", coco_layout, "--compare", results, tiny_weights))
    assert "with --coco, --compare runs two models" in line
    line = _one_error_line(_run("--coco", coco_layout, "--compare", tiny_weights, tiny_weights, "--weights",
                                tiny_weights))
    assert "drop --weights / --model" in line
    line = _one_error_line(_run("--coco", coco_layout, "--compare", tiny_weights, tiny_weights, "--save-results",
                                tmp_path / "s.json"))
    assert "--save-results" in line and not (tmp_path / "s.json").exists()
    line = _one_error_line(_run("--coco", coco_layout, "--compare", tiny_weights, tmp_path / "missing.pt"))
    assert "missing.pt" in line


def test_compare_of_two_models_on_a_boxes_file_checks_it_as_a_single_run_does(coco_layout, tmp_path):  # noqa: F811
    """A --boxes file of another split is one clear line (not AP 0 at the end), for --compare of two models too."""
    a = save_seeded_checkpoint(tmp_path / "a.pt", seed=0)
    (tmp_path / "other.json").write_text(json.dumps([{"image_id": 999999, "category_id": 1, "bbox": [1, 1, 50, 80],
                                                      "score": 0.9}]))
    out = _run("--coco", coco_layout, "--compare", a, a, "--boxes", tmp_path / "other.json", "--device", "cpu",
               "--quiet")
    assert out.exit_code == 2 and "other.json" in out.stderr, out.output


def test_analyze_and_compare_refuse_a_keypoint_set_other_than_coco_17(coco_sample, tmp_path):
    """The per-image evaluation scores with COCO's 17 sigmas: another keypoint set (or its own sigmas) is one line,
    not a crash halfway."""
    doc = json.loads((coco_sample / "test_coco.json").read_text())
    results = _sample_results(coco_sample, tmp_path, "r.json", noise=2.0)
    own_sigmas = json.loads(json.dumps(doc))
    own_sigmas["categories"][0]["kpt_oks_sigmas"] = [0.05] * 17
    three = json.loads(json.dumps(doc))
    three["categories"][0]["keypoints"] = ["a", "b", "c"]
    for a in three["annotations"]:
        a["keypoints"] = a["keypoints"][:9]
    for name, ann, needle in (("sigmas.json", own_sigmas, "with their own sigmas"), ("three.json", three, "a, b, c")):
        (tmp_path / name).write_text(json.dumps(ann))
        line = _one_error_line(_run("--coco-results", results, "--ann", tmp_path / name, "--analyze"))
        assert "COCO's 17 person keypoints" in line and needle in line, line
        line = _one_error_line(_run("--compare", results, results, "--ann", tmp_path / name))
        assert "COCO's 17 person keypoints" in line, line
