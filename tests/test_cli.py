"""The CLI surface: version, help with examples, info, export, weights convert, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.main import get_command
from typer.testing import CliRunner

import models
from dehrnet_cli import __version__
from dehrnet_cli.cli.app import app, main

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_version_and_help_list_the_commands():
    result = _run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"dehrnet {__version__}"
    result = _run("--help")
    assert result.exit_code == 0
    for name in ("predict", "info", "export", "weights"):
        assert name in result.output


def _all_commands():
    root = get_command(app)
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        if subs:
            yield from ((name, sub) for sub in subs)
        else:
            yield (name,)


@pytest.mark.parametrize("path", list(_all_commands()), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = _run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "example" in result.output.lower()


def test_info_prints_the_official_counts_in_the_papers_unit_and_refuses_unknown_names(conv_input_devices):
    """The paper-unit figure (multiply-adds / 2**30, what the HRNet paper calls "GFLOPs") labelled as such,
    next to decimal GMACs and GFLOPs; a named model is counted on the meta device, with no real forward."""
    result = _run("info", "hrnet_w32_384x288")
    assert result.exit_code == 0
    assert "28.536" in result.output and "96x72" in result.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.output.splitlines()
            if line.count("│") == 3}
    assert rows["paper GFLOPs (MACs / 2^30)"] == "16.0"
    assert rows["GMACs"] == "17.20" and rows["GFLOPs (2 x MAC)"] == "34.40"
    assert conv_input_devices == {"meta"}
    result = _run("info", "hrnet_w32_384x289")
    assert result.exit_code == 2
    assert "neither a named model" in result.output


def test_info_reads_a_checkpoint_file_and_export_writes_a_checked_onnx(tmp_path):
    torch.manual_seed(0)
    path = models.save_checkpoint(models.create_model("dehrnet_w8_128x96"), tmp_path / "dir with space" / "t.pt")
    result = _run("info", str(path))
    assert result.exit_code == 0 and "dehrnet_w8_128x96" in result.output and "2.181" in result.output
    result = _run("export", "--weights", str(path), "--out", str(tmp_path / "t.onnx"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.onnx").is_file() and "batch 3: max |diff|" in result.output
    result = _run("export", "--weights", str(path), "--out", str(tmp_path / "old.onnx"), "--opset", "15",
                  "--sampler", "grid_sample")
    assert result.exit_code == 2 and "GridSample" in result.output
    assert not (tmp_path / "old.onnx").exists()
    result = _run("export", "--weights", str(path), "--out", str(tmp_path / "old.onnx"), "--opset", "15")
    assert result.exit_code == 0 and (tmp_path / "old.onnx").is_file()  # the gather sampler needs no GridSample


def test_weights_convert_warm_starts_and_the_result_loads(tmp_path):
    hrnet = models.create_model("dehrnet_w8_128x96", upsample="nearest", dem_stages=())
    torch.save(hrnet.state_dict(), tmp_path / "hrnet.pth")
    result = _run("weights", "convert", str(tmp_path / "hrnet.pth"), str(tmp_path / "de.pt"),
                  "--to", "dehrnet_w8_128x96")
    assert result.exit_code == 0, result.output
    loaded = models.load_model(tmp_path / "de.pt")
    assert loaded.config.name == "dehrnet_w8_128x96" and loaded.checkpoint_info.meta["source_kind"] == "official"
    result = _run("weights", "convert", str(tmp_path / "missing.pth"), str(tmp_path / "x.pt"))
    assert result.exit_code == 2 and "missing.pth: no such" in result.output


def test_commands_never_write_over_the_checkpoint_they_read(tmp_path):
    """export --out w.pt and weights convert A A would replace the checkpoint they read (once, exit 0)."""
    torch.manual_seed(0)
    path = models.save_checkpoint(models.create_model("dehrnet_w8_128x96"), tmp_path / "w.pt")
    before = path.read_bytes()
    os.link(path, tmp_path / "hard-link.pt")  # one inode under two names
    for out in (path, tmp_path / "hard-link.pt", tmp_path / "." / "w.pt"):
        result = _run("export", "--weights", str(path), "--out", str(out))
        assert result.exit_code == 2, result.output
        assert "is the --weights" in result.output and "would overwrite" in result.output
    result = _run("weights", "convert", str(path), str(path), "--to", "dehrnet_w8_128x96")
    assert result.exit_code == 2 and "is the source checkpoint" in result.output, result.output
    assert path.read_bytes() == before


def test_the_console_script_runs_in_a_subprocess(tmp_path):
    """The real entry point (python -m dehrnet_cli), from a folder with a space in its name."""
    cwd = tmp_path / "a folder"
    cwd.mkdir()
    done = subprocess.run([sys.executable, "-m", "dehrnet_cli", "info", "nope"], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dehrnet: error: nope: neither a named model (dehrnet info --all lists them) nor an existing file"]
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------- usage errors through the console script's main


@pytest.fixture
def run_main(capsys):
    """Call `dehrnet_cli.cli.main(argv)` in-process (what the console script runs, unlike CliRunner on the app):
    returns (exit code, stdout, stderr). The SIGTERM handler main installs is restored afterwards."""
    previous = signal.getsignal(signal.SIGTERM)

    def run(*argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    yield run
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(("argv", "needles"), [
    (("predict", "photo.jpg", "--jsn", "r.json"), ("predict", "--jsn", "did you mean --json")),
    (("predict",), ("predict", "missing argument", "source")),
    (("predict", "photo.jpg", "--batch", "abc"), ("--batch", "abc", "integer")),
    (("predcit", "photo.jpg"), ("predcit", "did you mean 'predict'")),
    (("weights", "lst"), ("weights", "lst", "did you mean 'list'")),
    (("--versoin",), ("--versoin", "did you mean --version")),
], ids=["unknown-flag", "missing-argument", "not-an-integer", "unknown-command", "unknown-subcommand",
        "unknown-root-flag"])
def test_usage_errors_are_one_line_with_a_suggestion(run_main, argv, needles):
    code, out, err = run_main(*argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dehrnet: error: "), err  # no usage box, no traceback
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_main_runs_commands_and_help_without_bool_noise(run_main, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert run_main("--version")[:2] == (0, f"dehrnet {__version__}\n")
    for path in [(), *_all_commands()]:
        code, out, _ = run_main(*path, "--help")
        assert code == 0 and "Usage" in out
        assert "<bool>" not in out, path  # typer prints it beside every flag
        if path[:1] != ("bench",):  # bench's help still cuts words at 80 columns (its --precision-pipeline flag)
            assert "…" not in out, path  # no help text cut short
    code, out, _ = run_main("predict", "--help")
    assert "--draw-boxes" in out and "--no-flip" in out


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--conf", "1.5", "between 0 and 1"), ("--conf", "-0.1", "between 0 and 1"), ("--conf", "nan", "between"),
    ("--iou", "1.2", "between 0 and 1"), ("--kpt-thr", "-1", "between 0 and 1"),
    ("--kpt-score-thr", "2", "between 0 and 1"), ("--oks-nms", "1.01", "between 0 and 1"),
    ("--batch", "0", "at least 1"), ("--max-people", "0", "at least 1"), ("--threads", "0", "at least 1")])
def test_predict_numbers_out_of_range_are_usage_errors(run_main, flag, value, needle):
    code, _, err = run_main("predict", "photo.jpg", flag, value, "--json", "r.json")
    assert code == 2
    assert err.strip() == err.strip().splitlines()[0]
    assert f"{flag} '{value}'" in err and needle in err, err


@pytest.mark.parametrize(("flags", "needle"), [
    (["--det-engine", "tensorrt"], "--det-engine 'tensorrt': use one of auto, torch, openvino"),
    (["--det-engine", "openvino", "--detector", "none"], "--detector none is not YOLO"),
    (["--det-engine", "openvino", "--det-model", "yolo11n.yaml"], "a yaml has no weights to export")])
def test_detector_engine_refusals_come_before_any_work(run_main, tmp_path, flags, needle):
    import cv2
    import numpy as np

    image = tmp_path / "photo.jpg"
    cv2.imwrite(str(image), np.zeros((64, 48, 3), np.uint8))
    code, _, err = run_main("predict", str(image), "--model", "dehrnet_w8_128x96", "--untrained", *flags,
                            "--json", str(tmp_path / "r.json"))
    assert code == 2 and err.strip().startswith("dehrnet: error: ") and len(err.strip().splitlines()) == 1, err
    assert needle in err and not (tmp_path / "r.json").exists(), err


def test_the_estimator_refuses_a_detector_engine_when_made_not_when_first_called(tmp_path):
    from dehrnet_cli.errors import DehrnetError
    from dehrnet_cli.estimator import PoseEstimator

    with pytest.raises(DehrnetError, match="a yaml has no weights to export"):
        PoseEstimator(model="dehrnet_w8_128x96", untrained=True, det_engine="openvino", det_model="yolo11n.yaml")
    (tmp_path / "own.pt").write_bytes(b"not opened yet")
    with pytest.raises(DehrnetError, match="runs on the CPU"):
        PoseEstimator(model="dehrnet_w8_128x96", untrained=True, det_engine="openvino", device="cuda:0",
                      det_model=str(tmp_path / "own.pt"))


def test_device_index_means_cuda_as_in_ultralytics(monkeypatch):
    from dehrnet_cli.errors import DehrnetError
    from dehrnet_cli.pose.device import normalize_device, resolve_device

    assert [normalize_device(d) for d in ("0", 1, " CUDA:1 ", "cpu", None)] == ["cuda:0", "cuda:1", "cuda:1", "cpu",
                                                                                "auto"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("0") == "cuda:0" and resolve_device("cuda:2") == "cuda:2"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DehrnetError, match="--device 0: torch sees no CUDA device"):
        resolve_device("0")
    with pytest.raises(DehrnetError, match="use auto, cpu, cuda, cuda:N or N"):
        resolve_device("gpu")


def test_main_makes_openmp_threads_sleep_unless_the_user_chose(run_main, monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    run_main("--version")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    run_main("--version")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_predict_threads_flag_reaches_torch(tmp_path, monkeypatch, run_main):
    import cv2

    from dehrnet_cli.pose import onnx_session

    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((48, 64, 3), np.uint8))
    try:
        for flag, expected in ((["--threads", "3"], 3), ([], 1)):
            monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the default follows it
            code, _, err = run_main("predict", str(image), "--model", "dehrnet_w8_128x96", "--untrained", "--no-flip",
                                    "--detector", "none", "--precision", "fp32", "--json", str(tmp_path / "r.json"),
                                    *flag)
            assert code == 0, err
            assert (torch.get_num_threads(), cv2.getNumThreads(), onnx_session._intra_op_threads) == (expected,) * 3
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        onnx_session.set_ort_threads(None)


def test_sigterm_before_a_command_runs_is_143_not_ctrl_c(run_main, monkeypatch):
    """SIGTERM is a KeyboardInterrupt to the cleanups; where the CLI itself catches it (the arguments being parsed,
    before a command's own handling) it is still a SIGTERM: its own line and 143."""
    from dehrnet_cli.cli import Terminated

    def terminated() -> None:
        raise Terminated()

    monkeypatch.setattr("dehrnet_cli.cli.app.resume_interrupts", terminated)
    code, _, err = run_main("info")
    assert (code, err.strip()) == (143, "dehrnet: error: terminated (SIGTERM)")
