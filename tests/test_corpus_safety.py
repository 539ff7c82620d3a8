"""Corpus mode never destroys a source or another job's work, and a crash loses no finished item: an OUT inside
the corpus whose planned outputs would overwrite the user's files, two items with one annotated name, a job
killed with SIGKILL (the manifest holds every finished item, a rerun keeps their counts), two jobs on one OUT,
and the partial files of an interrupted item removed once it finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_errors import error_line
from corpus_synth import MODEL_FLAGS, build_corpus, manifest_rows, predict_corpus, save_tiny_checkpoint
from seeded_images import save_image, scene

from dehrnet_cli.corpus.lock import OutDirLock

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_an_out_dir_inside_the_corpus_never_overwrites_a_source(tmp_path: Path, checkpoint: Path) -> None:
    """predict X --out-dir X/a --save-media: the annotated copy of X/b/p.png would land on X/a/b/p.png, the
    user's own picture (left out of the listing because it lies under OUT)."""
    corpus = tmp_path / "X"
    save_image(corpus / "b" / "p.png", scene(1))
    save_image(corpus / "a" / "b" / "p.png", scene(2))
    original = (corpus / "a" / "b" / "p.png").read_bytes()
    result = predict_corpus(corpus, corpus / "a", checkpoint, "--save-media")
    error_line(result, 2, str(corpus / "a" / "b" / "p.png"), "exists", str(corpus / "b" / "p.png"))
    assert (corpus / "a" / "b" / "p.png").read_bytes() == original
    assert "left out 1 image(s)" in result.stderr  # not silently


def test_two_items_with_one_annotated_name_are_refused(tmp_path: Path, checkpoint: Path) -> None:
    corpus = tmp_path / "corpus"
    save_image(corpus / "x.png", scene(1))
    save_image(corpus / "x.pgm", scene(2)[:, :, 0])  # a gray PGM: its annotated copy is a PNG, x.png
    result = predict_corpus(corpus, tmp_path / "out", checkpoint, "--save-media")
    error_line(result, 2, "x.pgm", "x.png", "would both write")
    assert not (tmp_path / "out" / "x.png").exists()


def test_a_second_job_on_the_same_out_refuses_naming_the_holder(tmp_path: Path, checkpoint: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    out.mkdir()
    with OutDirLock(out):  # a job running here (this process)
        error_line(predict_corpus(corpus, out, checkpoint), 2, "another dehrnet job", f":{os.getpid()}")
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0  # released: the next job runs


def test_a_lock_left_by_a_killed_job_is_taken_over(tmp_path: Path, checkpoint: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom dehrnet_cli.corpus.lock import "
                               "OutDirLock\nwith OutDirLock(sys.argv[1]):\n    print('held', flush=True)\n"
                               "    time.sleep(600)", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        error_line(predict_corpus(corpus, out, checkpoint), 2, "another dehrnet job", f":{holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0


def test_sigkill_mid_job_leaves_a_manifest_of_every_finished_item(tmp_path: Path, checkpoint: Path) -> None:
    corpus = tmp_path / "corpus"
    for n in range(30):
        save_image(corpus / f"{n:03d}.png", scene(n))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dehrnet_cli", "predict", str(corpus), "--weights", str(checkpoint),
               *MODEL_FLAGS, "--threads", "1", "--out-dir", str(out), "--quiet"]
    job = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.poll() is None:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= 3:
            job.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    finished = {row["path"]: row for row in rows if row["status"] == "ok"}
    assert len(finished) >= 3
    for path in finished:  # every finished item's output is there, complete
        json.loads((out / (Path(path).relative_to(corpus).as_posix() + ".json")).read_text())
    done = predict_corpus(corpus, out, checkpoint, "--threads", "1")
    assert done.exit_code == 0, done.output
    after = {row["path"]: row for row in manifest_rows(out)}
    assert len(after) == 30 and all(row["status"] in ("ok", "skipped") for row in after.values())
    for path, row in finished.items():  # resumed items keep the counts of the run that did them
        assert after[path]["status"] == "skipped" and after[path]["people"] == row["people"] == 1
        assert after[path]["frames"] == 1


def test_the_partial_outputs_of_an_interrupted_item_go_once_it_finishes(tmp_path: Path, checkpoint: Path) -> None:
    corpus = tmp_path / "corpus"
    save_image(corpus / "a.png", scene(1))
    out = tmp_path / "out"
    stale = out / "a.png.partial.json"  # what a run stopped on this item kept
    stale.parent.mkdir(parents=True)
    stale.write_text('{"images": []}')
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    assert (out / "a.png.json").is_file() and not stale.exists()


def test_links_that_lead_nowhere_are_error_rows_not_a_failed_job(tmp_path: Path, checkpoint: Path) -> None:
    corpus = tmp_path / "corpus"
    save_image(corpus / "good.png", scene(1))
    (corpus / "a.jpg").symlink_to("b.jpg")
    (corpus / "b.jpg").symlink_to("a.jpg")  # a loop
    (corpus / "gone.jpg").symlink_to("missing.jpg")
    result = predict_corpus(corpus, tmp_path / "out", checkpoint)
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: row for row in manifest_rows(tmp_path / "out")}
    assert rows["good.png"]["status"] == "ok"
    assert rows["a.jpg"]["status"] == rows["b.jpg"]["status"] == rows["gone.jpg"]["status"] == "error"
    assert "leads nowhere" in rows["a.jpg"]["reason"] and "broken symbolic link" in rows["gone.jpg"]["reason"]


def test_the_manifest_is_there_from_the_start_of_a_job(tmp_path: Path) -> None:
    """A job killed after an item's outputs but before its row leaves a manifest, so the next run takes those
    outputs for a dehrnet job's, not the user's; a job that ends with no row leaves OUT as it was."""
    from dehrnet_cli.corpus.manifest import ManifestLog, ManifestRow

    path = tmp_path / "manifest.jsonl"
    log = ManifestLog(path)
    assert path.exists()  # what a kill at this instant leaves
    log.close()
    assert not path.exists()  # nothing finished: as it was
    log = ManifestLog(path)
    log.append(ManifestRow("a.png", "ok"))
    log.close()
    kept = path.read_text()
    ManifestLog(path).close()  # a later job with no row does not remove the earlier rows
    assert path.read_text() == kept and "a.png" in kept
