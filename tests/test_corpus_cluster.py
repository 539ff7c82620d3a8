"""Corpus mode on a 2-node Ray cluster (issue 15): `ray.cluster_utils.Cluster` starts two nodes of one CPU
each on this machine (127.0.0.1 only), `--address` connects to it, and the two pose workers land on
different nodes; the outputs equal the local engine's. Slow: two nodes start in ~30 s."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from corpus_synth import GOOD, ITEMS, build_corpus, json_outputs, predict_corpus, rows_by_rel, save_tiny_checkpoint

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    from dehrnet_cli.corpus.ray_engine import loopback_only

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with loopback_only():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_two_node_cluster_run_equals_the_local_engine(two_nodes, tmp_path: Path) -> None:
    checkpoint = save_tiny_checkpoint(tmp_path / "tiny.pt")
    corpus = build_corpus(tmp_path / "corpus")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert predict_corpus(corpus, local, checkpoint, "--threads", 1).exit_code == 0  # as the 0.75-CPU workers
    result = predict_corpus(corpus, distributed, checkpoint, "--engine", "ray", "--address", two_nodes.address,
                            "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "ray: 2 workers x 0.75 CPU" in result.stderr  # 0.75 + 0.75 > 1: one worker per node
    assert json_outputs(distributed) == json_outputs(local) and sorted(json_outputs(local)) == sorted(GOOD)
    rows = rows_by_rel(distributed, corpus)
    assert sorted(rows) == ITEMS
    assert len({rows[rel]["worker"] for rel in ITEMS}) == 2  # both nodes' workers ran items
    assert not ray.is_initialized()  # the driver disconnected; the cluster runs on
