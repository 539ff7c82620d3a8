"""Corpus mode on the Ray engine (issue 15), on one local Ray session shared by the module (Ray's start-up
costs seconds): the per-item JSONs equal the local engine's and plain `dehrnet predict ITEM --json`; the
manifest has the error row; a worker process killed mid-item loses nothing and writes nothing twice; the
local cluster listens on 127.0.0.1 only. The 2-node cluster run: test_corpus_cluster.py (slow)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from corpus_synth import (
    BROKEN,
    GOOD,
    ITEMS,
    VIDEO,
    build_corpus,
    file_identities,
    json_outputs,
    predict_corpus,
    rows_by_rel,
    save_tiny_checkpoint,
    single_item_json,
    temp_leftovers,
)
from seeded_images import save_image

from dehrnet_cli.corpus import CorpusJob, run_corpus
from dehrnet_cli.detect.spec import DetectorSpec
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.weights.model_choice import ModelSpec

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KILL_VIDEO_FRAMES = 150  # long enough (seconds) for the test to catch the worker in the middle of it
BIG = ["big/noise1.png", "big/noise2.png"]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray cluster for the module, started the way `--engine ray` starts one (2 CPUs)."""
    from dehrnet_cli.corpus.ray_engine import start_local_cluster

    start_local_cluster(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_ray_engine_writes_what_the_local_engine_and_single_item_predict_write(
        ray_session, tmp_path: Path, checkpoint: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    # a worker on 0.75 CPU runs one torch thread; fp32 sums differ in their last bits with the thread count
    assert predict_corpus(corpus, local, checkpoint, "--threads", 1).exit_code == 0
    result = predict_corpus(corpus, distributed, checkpoint, "--engine", "ray")
    assert result.exit_code == 0, result.output
    assert "ray: 2 workers x 0.75 CPU, 1 torch thread(s) each" in result.stderr  # 0.5 CPU stays with Ray Data
    outputs = json_outputs(distributed)
    assert outputs == json_outputs(local) and sorted(outputs) == sorted(GOOD)
    for rel in GOOD:
        assert outputs[rel] == single_item_json(corpus / rel, checkpoint, tmp_path / "single.json", "--threads", 1), rel
    rows = rows_by_rel(distributed, corpus)
    assert sorted(rows) == ITEMS  # in listing order, whatever order the workers finished in
    assert rows[BROKEN]["status"] == "error" and rows[BROKEN]["reason"].startswith("cannot decode the image")
    local_rows = rows_by_rel(local, corpus)
    for rel in ITEMS:
        assert {k: rows[rel][k] for k in ("status", "reason", "people", "frames", "bytes")} == \
            {k: local_rows[rel][k] for k in ("status", "reason", "people", "frames", "bytes")}, rel
    assert all(rows[rel]["worker"].split(":")[1] != str(os.getpid()) for rel in ITEMS)  # ran in the actors
    assert not temp_leftovers(distributed)


@pytest.mark.parametrize("flags, needles", [
    (["--model", "nosuchmodel", "--untrained"], ["--model 'nosuchmodel'"]),  # raised in the actors
    (["--weights", "missing.pt"], ["--weights missing.pt", "no such file"]),  # found before Ray starts work
    (["--weights", "CHECKPOINT", "--gpus-per-worker", "1"], ["--gpus-per-worker 1", "0 GPUs"]),
])
def test_bad_model_flags_fail_in_one_line_without_a_manifest(ray_session, tmp_path: Path, checkpoint: Path,
                                                              flags: list[str], needles: list[str]) -> None:
    from corpus_synth import MODEL_FLAGS, dehrnet

    corpus = build_corpus(tmp_path / "corpus")
    flags = [str(checkpoint) if flag == "CHECKPOINT" else flag for flag in flags]
    result = dehrnet("predict", corpus, *flags, *MODEL_FLAGS, "--out-dir", tmp_path / "out", "--engine", "ray")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("dehrnet: error: ")]
    assert len(errors) == 1 and "Traceback" not in errors[0], result.stderr
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert not (tmp_path / "out" / "manifest.jsonl").exists()  # no item ran


def _pids_reading(path: Path) -> list[int]:
    """Processes (not this one) with `path` open: a worker decoding that video."""
    target, pids = str(path.resolve()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in os.listdir(f"/proc/{pid}/fd")):
                pids.append(int(pid))
        except OSError:  # the process ended, or is not ours
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the worker through /proc (Linux)")
def test_a_killed_worker_loses_nothing_and_writes_nothing_twice(ray_session, tmp_path: Path,
                                                                checkpoint: Path) -> None:
    corpus = build_corpus(tmp_path / "corpus", video_frames=KILL_VIDEO_FRAMES)
    rng = np.random.default_rng(0)
    for name in BIG:  # noise PNGs larger than the video: first in the task, done before the video starts
        save_image(corpus / name, rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8))
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert predict_corpus(corpus, local, checkpoint, "--save-media", "--threads", 1).exit_code == 0
    killed: list[tuple[int, dict]] = []

    def kill_the_video_worker() -> None:
        """Once the annotated video is half written (its temp file has frames), kill the process decoding it."""
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            writing = [p for p in (distributed / "clips").glob(".walk_pose.partial-*") if p.stat().st_size > 0] \
                if (distributed / "clips").is_dir() else []
            for pid in _pids_reading(corpus / VIDEO) if writing else []:
                snapshot = file_identities(distributed) if distributed.exists() else {}
                os.kill(pid, signal.SIGKILL)  # the actor's process dies mid-video
                killed.append((pid, snapshot))
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_video_worker, daemon=True)
    killer.start()
    items = sorted([*ITEMS, *BIG])
    # one task holds every item, largest first: the big images, the video (killed), the rest; Ray retries
    # the whole task on the restarted actor
    job = CorpusJob(str(corpus), distributed, ModelSpec(weights=checkpoint), RuntimeSpec("torch", precision="fp32"),
                    DetectorSpec("none"), engine="ray", save_media=True, quiet=True, items_per_task=len(items))
    summary = run_corpus(job, log=lambda line: None)
    killer.join(timeout=1)
    assert killed, "the video finished before the test could kill its worker"
    pid, written_before_kill = killed[0]
    assert {f"{name}.json" for name in BIG} <= set(written_before_kill)  # the retried task had finished them
    rows = rows_by_rel(distributed, corpus)
    assert sorted(rows) == items  # nothing lost: every item has its row, once
    assert (summary.ok, summary.errors) == (len(GOOD) + len(BIG), 1)
    assert rows[VIDEO]["status"] == "ok" and rows[VIDEO]["worker"] != f"{os.uname().nodename}:{pid}"
    assert json_outputs(distributed) == json_outputs(local)  # the video redone in full by the new actor
    after = file_identities(distributed)
    for rel, identity in written_before_kill.items():
        if ".partial-" not in rel and rel != "manifest.jsonl":  # the manifest is the job's log: appended to
            assert after[rel] == identity, f"{rel} was written again"  # what was done stays as it was
    assert (distributed / "clips" / "walk_pose.mp4").is_file()
    assert any(".walk_pose.partial-" in rel for rel in written_before_kill)  # killed mid-write...
    assert not temp_leftovers(distributed)  # ...and its temp video swept


def _listening_addresses(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state that processes `pids` hold."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.append(fields[1])
    return addresses


def _descendants(root: int) -> set[int]:
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(pid)] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads the socket tables of /proc (Linux)")
def test_the_local_cluster_listens_on_loopback_only(ray_session) -> None:
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    addresses = _listening_addresses(_descendants(os.getpid()))
    assert addresses, "found none of Ray's listening sockets"
    loopback = ("0100007F:", "0000000000000000FFFF00000100007F:", "00000000000000000000000001000000:")
    assert [a for a in addresses if not a.startswith(loopback)] == []
