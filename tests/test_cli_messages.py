"""What `dehrnet` prints, run as a user runs it (a subprocess): Ctrl-C at any moment is one line and exit 130,
results tables keep their full width in a pipe, warnings carry the `dehrnet: warning:` prefix, an impossible
--input-size is a user error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import COCO_SAMPLE, REPO

ENTRY_POINTS = {  # `python -m dehrnet_cli`, and what the `dehrnet` console script runs
    "python -m": [sys.executable, "-m", "dehrnet_cli"],
    "console script": [sys.executable, "-c", "import sys\nfrom dehrnet_cli.cli import main\nsys.exit(main())"],
}


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("COLUMNS", None)  # as in a pipe or a log file: no width given
    return env


def _dehrnet(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ENTRY_POINTS["python -m"], *map(str, args)], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=300)


def _interpreter_start_s() -> float:
    """How long a bare interpreter takes to start here (an interrupt before that reaches no dehrnet code)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_ctrl_c_while_dehrnet_starts_is_one_line_and_exit_130(tmp_path, entry) -> None:
    """The interrupt lands while typer, rich and the commands are imported, while the arguments are parsed, or
    once the command runs (torch being imported); a run that ended before it is not a case."""
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    args = ["predict", "a.png", "--model", "dehrnet_w8_128x96", "--untrained", "--detector", "none", "--json", "r.json"]
    start = 3 * _interpreter_start_s() + 0.05  # past the interpreter's own start, with margin for a loaded machine
    for delay in (start, start + 0.05, start + 0.15, start + 0.3, start + 0.6):
        proc = subprocess.Popen([*ENTRY_POINTS[entry], *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env(), cwd=tmp_path)
        time.sleep(delay)
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        errors = [line for line in stderr.splitlines() if line.startswith("dehrnet: error:")]
        assert (proc.returncode, errors) == (130, ["dehrnet: error: interrupted"]), (delay, stderr)
        assert stderr.strip().endswith("dehrnet: error: interrupted") and "Traceback" not in stderr, (delay, stderr)


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    """The sample's ground truth as a results list, with boxes (so that eval warns about them)."""
    if not (COCO_SAMPLE / "test_coco.json").exists():
        pytest.skip("shared COCO sample data not present")
    doc = json.loads((COCO_SAMPLE / "test_coco.json").read_text())
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0,
                "bbox": a["bbox"]} for a in doc["annotations"] if a.get("num_keypoints", 0) > 0]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return path


def test_a_results_table_in_a_pipe_keeps_every_cell_and_warnings_carry_the_prefix(tmp_path, results_file) -> None:
    """Scored on one image, APm and ARm are -1.000: in rich's default 80 columns the table no longer fits and a
    cell was cut to `-1.0…`."""
    done = _dehrnet("eval", "--coco-results", results_file, "--ann", COCO_SAMPLE / "test_coco.json", "--limit", 1,
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("-1.000") == 2 and "…" not in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 2 and all(line.startswith("dehrnet: warning: ") for line in warnings), done.stderr


def test_an_input_size_no_network_can_have_is_one_line_and_exit_2(tmp_path) -> None:
    import cv2
    import numpy as np

    from models import create_model, save_checkpoint

    save_checkpoint(create_model("dehrnet_w8_128x96"), tmp_path / "tiny.pt")
    cv2.imwrite(str(tmp_path / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    done = _dehrnet("predict", "a.png", "--weights", "tiny.pt", "--detector", "none", "--input-size", "7x7",
                    "--json", "r.json", cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("dehrnet: error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "multiples of 32" in errors[0] and "7x7" in errors[0] and "internal error" not in errors[0]
    assert not (tmp_path / "r.json").exists()


def test_ctrl_c_while_native_libraries_load_is_held_back_until_they_are_loaded() -> None:
    """A KeyboardInterrupt raised inside a pybind11 callback (torch, onnxruntime being imported) aborted the process
    ("terminate called after throwing ... pybind11::error_already_set", exit -6): around those imports Ctrl-C is
    held back and raised once they are done."""
    from dehrnet_cli.env import interrupts_deferred

    reached_the_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a signal handler runs between bytecodes: this is where it would have raised
            reached_the_end = True
    assert reached_the_end and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with interrupts_deferred():  # nothing came: nothing raised
        pass


def test_ctrl_c_during_an_import_is_raised_once_the_import_is_done(tmp_path, monkeypatch) -> None:
    """Raised inside an import, importlib may print a KeyboardInterrupt as "Exception ignored" and go on (the run
    then ended with exit 0), and one raised inside the exec of dataclasses' generated methods made `python -m
    dehrnet_cli` exit by SIGINT (-2) after its own exit 130: the CLI's handler waits until the import is done."""
    from dehrnet_cli.env import interrupts_deferred, raise_outside_imports

    (tmp_path / "slow_to_import.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(0.2)  # without the handler the KeyboardInterrupt lands here and the import fails\n"
        "LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, raise_outside_imports)
    try:
        with pytest.raises(KeyboardInterrupt):
            import slow_to_import  # noqa: F401
            time.sleep(2)  # the redelivered interrupt lands here, after the import
        assert sys.modules["slow_to_import"].LOADED
        with pytest.raises(KeyboardInterrupt):  # outside an import it raises at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
        with pytest.raises(KeyboardInterrupt):  # interrupts_deferred holds it back under this handler too
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
        assert signal.getsignal(signal.SIGINT) is raise_outside_imports
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.modules.pop("slow_to_import", None)


def test_ctrl_c_stops_a_download_while_a_model_is_being_built(tmp_path, monkeypatch) -> None:
    """Building a model holds Ctrl-C back (interrupts_deferred); a download inside it (first use of a checkpoint or
    detector) is pure Python and takes minutes: there Ctrl-C acts at once (env.interruptible)."""
    from dehrnet_cli.env import interruptible, interrupts_deferred
    from dehrnet_cli.weights import download as download_module

    monkeypatch.delenv("DEHRNET_OFFLINE", raising=False)
    reached: list[str] = []

    def slow_transfer(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(2)  # the interrupt lands here
        reached.append("the end of the transfer")

    monkeypatch.setattr(download_module, "_download_locked", slow_transfer)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            download_module.download("http://127.0.0.1:9/w.bin", tmp_path / "w.bin")
            reached.append("after the download")
    assert reached == [] and time.perf_counter() - start < 1.5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # one that came while held back is raised as the block starts
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            with interruptible():
                reached.append("inside")
    assert reached == []
