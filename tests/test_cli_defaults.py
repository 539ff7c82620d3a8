"""The user's command with no flags: the default pose model (local DE-HRNet file, else the HRNet baseline fetched
through the registry once), the default backend (--backend auto: ONNX Runtime or torch by the job's length,
exported once into the cache and reused, torch when the export fails), and bad input refused before torch,
ultralytics or onnxruntime are imported."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, save_seeded_checkpoint
from typer.testing import CliRunner

import dehrnet_cli.precision.backend_factory as backend_factory
from dehrnet_cli.cli.app import app
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.precision.auto_path import (
    EXPORT_PAYS_AFTER_CROPS,
    MachineFacts,
    choose_run_path,
)
from dehrnet_cli.precision.onnx_cache import ExportCosts
from dehrnet_cli.weights import download
from dehrnet_cli.weights import manifest as manifest_module
from dehrnet_cli.weights.model_choice import BASELINE, DEFAULT_WEIGHTS_FILE, choose_model

TINY = "dehrnet_w8_128x96"
HEAVY = ("torch", "onnxruntime", "ultralytics")
AVX2 = MachineFacts(cuda=False, native_bf16=False, openvino=True, nncf=True, torch_bf16_passed=None,
                    where="CPU test (AVX2)")
ZEN4 = MachineFacts(cuda=False, native_bf16=True, openvino=True, nncf=True, torch_bf16_passed=None,
                    where="CPU test (AVX512-BF16)")
CUDA = MachineFacts(cuda=True, native_bf16=False, openvino=False, nncf=False, torch_bf16_passed=None, where="CUDA")
NO_OPENVINO = MachineFacts(cuda=False, native_bf16=True, openvino=False, nncf=False, torch_bf16_passed=None,
                           where="CPU test (AVX512-BF16, no OpenVINO)")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_seeded_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.pt", TINY)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DEHRNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def images(coco_sample, tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for jpg in sorted(coco_sample.glob("*.jpg"))[:2]:
        (folder / jpg.name).symlink_to(jpg)
    return folder


def _predict(*args: object) -> object:
    return CliRunner().invoke(app, ["predict", *map(str, args)])


# ------------------------------------------------------------------------------------ the default model


def test_no_flags_offline_names_the_baseline_and_the_file_to_place(home, images, monkeypatch):
    monkeypatch.setenv("DEHRNET_OFFLINE", "1")
    result = _predict(images, "--detector", "none", "--json", home / "out.json")
    assert result.exit_code == 2
    entry = manifest_module.get_entry(BASELINE)
    line = result.output.strip()
    assert line.startswith("dehrnet: error: ") and "\n" not in line
    assert BASELINE in line and str(home / "weights" / entry.filename) in line and entry.urls[0] in line
    assert "--weights FILE" in line and "--untrained" in line
    assert not (home / "out.json").exists()


def test_the_local_dehrnet_file_is_the_default_when_present(home, tiny_checkpoint):
    (home / "weights").mkdir(parents=True)
    (home / "weights" / DEFAULT_WEIGHTS_FILE).write_bytes(tiny_checkpoint.read_bytes())
    choice = choose_model()
    assert choice.weights == home / "weights" / DEFAULT_WEIGHTS_FILE and choice.registry is None
    assert "local DE-HRNet weights" in choice.note


@pytest.fixture
def baseline_served(server, tmp_path, tiny_checkpoint, monkeypatch) -> object:
    """The registry's baseline entry pointing at the tiny checkpoint on a 127.0.0.1 server, with its checksum."""
    url, state = server
    state.data = tiny_checkpoint.read_bytes()
    entry = {"config": TINY, "input_size": [96, 128], "urls": [url], "filename": "baseline_test.pt",
             "sha256": hashlib.sha256(state.data).hexdigest(), "license": "test", "source": "test",
             "format": "dehrnet"}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"checkpoints": {BASELINE: entry}}))
    monkeypatch.setattr(manifest_module, "MANIFEST_PATH", manifest)
    monkeypatch.delenv("DEHRNET_OFFLINE", raising=False)
    real_urlopen = urllib.request.urlopen

    def local_only(request, *args, **kwargs):
        assert urllib.parse.urlparse(request.full_url).hostname == "127.0.0.1", request.full_url
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(download.urllib.request, "urlopen", local_only)
    return state


def test_no_flags_fetches_the_baseline_once_and_says_which_model_runs(home, images, baseline_served):
    for run in (1, 2):
        result = _predict(images, "--detector", "none", "--precision", "fp32", "--json", home / f"out{run}.json")
        assert result.exit_code == 0, result.output
        assert "running the HRNet-W32 384x288 COCO baseline" in result.output and BASELINE in result.output
        assert len(json.loads((home / f"out{run}.json").read_text())["annotations"]) == 2
    assert len(baseline_served.ranges) == 1  # fetched by the first run only
    assert (home / "weights" / "baseline_test.pt").read_bytes() == baseline_served.data


def test_the_api_with_no_arguments_runs_the_same_default(home, baseline_served, coco_sample):
    from dehrnet_cli import PoseEstimator
    from dehrnet_cli.sources.images import read_image

    notes: list[str] = []
    estimator = PoseEstimator(detector="none", precision="fp32", log=notes.append)
    assert estimator.model_choice.registry == BASELINE and estimator.config.name == TINY
    assert any("COCO baseline" in line for line in notes)
    result = estimator(read_image(sorted(coco_sample.glob("*.jpg"))[0]))
    assert result.keypoints_xy.shape == (1, 17, 2)


@pytest.mark.parametrize(("flags", "message"), [
    ({"weights": "absent.pt"}, "no such file"),
    ({"weights": "x.pt", "model": BASELINE}, "not both"),
    ({"model": "dehrnet_w32_384x288"}, "architecture without weights"),
    ({"model": "hrnet_w32.coco_384x28"}, "did you mean"),
    ({"untrained": True}, "--untrained needs --model"),
])
def test_model_flags_that_name_nothing_usable(tmp_path, flags, message):
    with pytest.raises(DehrnetError, match=message):
        choose_model(**{k: tmp_path / v if k == "weights" else v for k, v in flags.items()})


# ------------------------------------------------------------------------------------ the default backend


@pytest.mark.parametrize(("facts", "backend", "precision", "crops", "expected"), [
    (CUDA, "auto", "auto", 10, ("torch", "fp16")),
    (AVX2, "auto", "auto", None, ("openvino", "fp32")),  # unknown length: a long job; no bf16 units
    (AVX2, "auto", "auto", EXPORT_PAYS_AFTER_CROPS, ("openvino", "fp32")),
    (AVX2, "auto", "auto", 8, ("torch", "fp32")),  # a short job: no export
    (ZEN4, "auto", "auto", None, ("openvino", "bf16")),  # checked before it runs
    (ZEN4, "auto", "auto", 8, ("torch", "fp32")),  # torch bf16 never checked for this checkpoint: fp32
    (MachineFacts(False, True, True, True, True, "CPU"), "auto", "auto", 8, ("torch", "bf16")),  # passed before
    (MachineFacts(False, True, True, True, False, "CPU"), "auto", "auto", 8, ("torch", "fp32")),  # refused before
    (NO_OPENVINO, "auto", "auto", None, ("onnx", "fp32")),
    (ZEN4, "torch", "auto", None, ("torch", "fp32")),
    (ZEN4, "auto", "bf16", None, ("openvino", "bf16")),
    (ZEN4, "auto", "bf16", 8, ("torch", "bf16")),
    (AVX2, "auto", "int8", None, ("openvino", "int8")),
    (NO_OPENVINO, "auto", "int8", None, ("onnx", "int8")),
    (NO_OPENVINO, "auto", "bf16", None, ("torch", "bf16")),  # ONNX Runtime runs its export in fp32 only
    (AVX2, "onnx", "auto", 8, ("onnx", "fp32")),
    (AVX2, "openvino", "auto", 8, ("openvino", "fp32")),
])
def test_the_run_path_of_the_flags(facts, backend, precision, crops, expected):
    path = choose_run_path(backend, precision, "cuda" if facts.cuda else "cpu", facts, True, crops)
    assert (path.backend, path.precision) == expected
    assert path.why.startswith(f"{expected[0]} ") and expected[1] in path.why


def test_only_automatic_precisions_fall_back_to_fp32():
    assert choose_run_path("auto", "auto", "cuda", CUDA, True, 10).fall_back  # fp16 refused: fp32 on CUDA
    assert not choose_run_path("auto", "fp16", "cuda", CUDA, True, 10).fall_back
    assert choose_run_path("auto", "auto", "cpu", ZEN4, True, None).fall_back
    assert not choose_run_path("auto", "bf16", "cpu", ZEN4, True, None).fall_back


def test_measured_costs_decide_between_torch_and_onnx_runtime():
    slow_session = ExportCosts(export_s=20, session_s=5.0, ort_s_per_crop=0.30, torch_s_per_crop=0.40)
    assert choose_run_path("auto", "auto", "cpu", AVX2, True, 20, True, slow_session).backend == "torch"
    assert choose_run_path("auto", "auto", "cpu", AVX2, True, 100, True, slow_session).backend == "openvino"
    assert choose_run_path("auto", "auto", "cpu", NO_OPENVINO, True, 100, True, slow_session).backend == "onnx"
    path = choose_run_path("auto", "auto", "cpu", AVX2, False, None, False, None)
    assert path.backend == "torch" and "random weights" in path.why
    hint = choose_run_path("auto", "auto", "cpu", NO_OPENVINO, True, 8).why
    assert "pip install openvino" in hint


def test_auto_exports_once_then_reuses_the_cached_export(home, tiny_checkpoint, images, monkeypatch):
    """On a machine without OpenVINO, ONNX Runtime's export and its measured costs."""
    from dehrnet_cli import PoseEstimator

    monkeypatch.setattr(backend_factory, "find_spec", lambda name: None if name == "openvino" else find_spec(name))
    notes: list[str] = []
    estimator = PoseEstimator(tiny_checkpoint, detector="none", device="cpu", log=notes.append)
    assert notes == []  # building is cheap: nothing is loaded or exported until the job's length is known
    assert estimator.prepare().backend.name == "onnx" and any("exporting" in line for line in notes)  # unknown: long
    (export,) = (home / "weights" / "onnx").glob("*.onnx")
    costs = export.with_name(export.name.replace(".onnx", ".costs.json"))
    assert ExportCosts.read(costs) is not None and hashlib.sha256(tiny_checkpoint.read_bytes()).hexdigest()[:12] \
        in export.name
    stamp = export.stat().st_mtime_ns
    # a short CLI job with costs that favour ONNX Runtime: the cached export runs, nothing is exported again
    costs.write_text(json.dumps({"export_s": 1, "session_s": 0, "ort_s_per_crop": 0.001, "torch_s_per_crop": 1}))
    result = _predict(images, "--weights", tiny_checkpoint, "--detector", "none", "--json", home / "r.json")
    assert result.exit_code == 0, result.output
    assert "onnx precision fp32" in result.output and "measured here" in result.output
    assert "exporting" not in result.output and export.stat().st_mtime_ns == stamp
    assert [p.name for p in (home / "weights" / "onnx").glob("*.onnx")] == [export.name]


def test_a_failed_export_says_so_and_runs_torch(home, tiny_checkpoint, monkeypatch):
    from dehrnet_cli import PoseEstimator

    def broken(*args, **kwargs):
        raise RuntimeError("tracer exploded")

    monkeypatch.setattr("dehrnet_cli.export.onnx.export_onnx", broken)
    notes: list[str] = []
    estimator = PoseEstimator(tiny_checkpoint, detector="none", device="cpu", log=notes.append).prepare()
    assert estimator.backend.name == "torch" and estimator.backend.precision == "fp32"
    assert any("ONNX export failed (RuntimeError: tracer exploded): running torch fp32 instead" in n for n in notes)
    assert not list((home / "weights" / "onnx").glob("*.onnx"))
    # asked for explicitly, the same failure is an error
    with pytest.raises(DehrnetError, match="tracer exploded"):
        PoseEstimator(tiny_checkpoint, detector="none", device="cpu", backend="onnx", log=notes.append).prepare()


# ---------------------------------------------------------------------------------- fail fast, start fast


def _cli_in_subprocess(args: list[str], env: dict[str, str]) -> dict:
    """Run `dehrnet ARGS` in a fresh interpreter; its exit code, stderr and which heavy modules it imported."""
    script = ("import json, sys\nfrom dehrnet_cli.cli import main\nsys.argv = ['dehrnet', *json.loads(sys.argv[1])]\n"
              "code = 0\ntry:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
              f"print(json.dumps({{'code': code, 'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **env}, timeout=120)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, tiny_checkpoint) -> dict[str, tuple[list[str], str]]:
    root = tmp_path_factory.mktemp("bad inputs")
    (root / "empty").mkdir()
    (root / "broken.mp4").write_bytes(b"not a video at all" * 10)
    image = root / "one.png"
    image.write_bytes(b"")  # never read: the failures come first
    (root / "a folder.json").mkdir()
    out = str(root / "o.json")
    model = ["--weights", str(tiny_checkpoint), "--detector", "none"]
    return {  # the arguments, and what the one line must say
        "missing path": (["predict", str(root / "absent.jpg"), *model, "--json", out], "no such file or folder"),
        "empty folder": (["predict", str(root / "empty"), *model, "--json", out], "has no images"),
        "unreadable video": (["predict", str(root / "broken.mp4"), *model, "--json", out], "cannot read the video"),
        "output that cannot be written": (["predict", str(image), *model, "--json", str(root / "a folder.json")],
                                          "is a folder"),
        "conflicting flags": (["predict", str(image), *model, "--model", BASELINE, "--json", out], "not both"),
        "no flags offline": (["predict", str(image), "--detector", "none", "--json", out], BASELINE),
        "eval without annotations": (["eval", "--coco", str(root / "empty"), *model[:2]], "annotation file"),
    }


@pytest.mark.parametrize("case", ["missing path", "empty folder", "unreadable video", "output that cannot be written",
                                  "conflicting flags", "no flags offline", "eval without annotations"])
def test_bad_input_fails_before_the_heavy_imports(bad_inputs, tmp_path, case):
    args, says = bad_inputs[case]
    result = _cli_in_subprocess(args, {"DEHRNET_OFFLINE": "1", "DEHRNET_HOME": str(tmp_path / "home")})
    assert result["code"] == 2 and result["stderr"].startswith("dehrnet: error: ") and says in result["stderr"], result
    assert result["heavy"] == [], f"{case}: imported {result['heavy']} before refusing the input"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["predict", "--help"], ["eval", "--help"]])
def test_help_and_version_load_nothing_heavy(args):
    result = _cli_in_subprocess(args, {})
    assert result["code"] == 0 and result["heavy"] == []


def test_a_good_run_does_load_torch(bad_inputs, tmp_path, tiny_checkpoint, coco_sample):
    """The check above can fail: a run that gets past the input checks imports torch."""
    image = sorted(coco_sample.glob("*.jpg"))[0]
    result = _cli_in_subprocess(["predict", str(image), "--weights", str(tiny_checkpoint), "--detector", "none",
                                 "--precision", "fp32", "--json", str(tmp_path / "r.json")],
                                {"DEHRNET_HOME": str(tmp_path / "home")})
    assert result["code"] == 0 and "torch" in result["heavy"], result
    assert np.asarray(json.loads((tmp_path / "r.json").read_text())["annotations"][0]["keypoints"]).size == 51
