"""Corpus mode on the local engine (issue 15): per-item JSON equal to `dehrnet predict ITEM --json`, the
manifest and its error row, resume (a rerun does nothing, a deleted output redoes exactly that item, a
failed item whose file changed is retried), --overwrite, --save-media, listings (glob, .txt list, file://
URI), Ctrl-C, and the flag errors. The Ray engine: test_corpus_ray.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from cli_errors import error_line
from corpus_synth import (
    BROKEN,
    GOOD,
    IMAGES,
    ITEMS,
    MODEL_FLAGS,
    VIDEO,
    VIDEO_FRAMES,
    build_corpus,
    dehrnet,
    file_identities,
    json_outputs,
    manifest_rows,
    predict_corpus,
    rows_by_rel,
    save_tiny_checkpoint,
    single_item_json,
    temp_leftovers,
)

import dehrnet_cli.corpus.item_job as item_job_module
import dehrnet_cli.corpus.local_engine as local_engine_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return build_corpus(tmp_path / "corpus")


@pytest.fixture
def estimator_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the estimators (detector + pose model loads) the local engine builds."""
    builds: list[int] = []
    real = local_engine_module.PoseEstimator.from_specs

    def counted(*args, **kwargs):
        builds.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(local_engine_module.PoseEstimator, "from_specs", staticmethod(counted))
    return builds


def test_local_corpus_writes_what_single_item_predict_writes(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    result = predict_corpus(corpus, out, checkpoint)
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'manifest.jsonl'}" in result.stdout
    outputs = json_outputs(out)
    assert sorted(outputs) == sorted(GOOD)  # the hidden image, the text file and the broken one: no output
    for rel in GOOD:
        assert outputs[rel] == single_item_json(corpus / rel, checkpoint, tmp_path / "single.json"), rel
    video_doc = json.loads(outputs[VIDEO])
    assert len(video_doc["images"]) == VIDEO_FRAMES  # one image entry per frame
    rows = rows_by_rel(out, corpus)
    assert sorted(rows) == ITEMS
    assert rows[BROKEN]["status"] == "error" and "cannot decode the image" in rows[BROKEN]["reason"]
    assert str(corpus) not in rows[BROKEN]["reason"]  # the row names the item once, in `path`
    for rel in GOOD:
        row = rows[rel]
        assert row["status"] == "ok" and row["reason"] is None and row["worker"] and row["seconds"] > 0
        assert row["frames"] == (VIDEO_FRAMES if rel == VIDEO else 1)
        assert row["people"] == len(json.loads(outputs[rel])["annotations"])
        assert row["bytes"] == (corpus / rel).stat().st_size
    assert f"error {corpus / BROKEN}: cannot decode" in result.stderr
    assert not temp_leftovers(out)


def test_rerun_does_nothing_and_says_so(tmp_path: Path, corpus: Path, checkpoint: Path,
                                        estimator_builds: list[int]) -> None:
    out = tmp_path / "out"
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    before = file_identities(out)
    estimator_builds.clear()
    result = predict_corpus(corpus, out, checkpoint)
    assert result.exit_code == 0, result.output
    assert f"nothing to do: all {len(ITEMS)} items" in result.stderr
    assert f"{len(GOOD)} with outputs, 1 failed before" in result.stderr
    assert estimator_builds == []  # no model loaded
    assert file_identities(out) == before  # not one file touched, the manifest included


def test_deleting_one_output_redoes_exactly_that_item(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    first = json_outputs(out)
    redo = "a/b/person.jpg"
    (out / f"{redo}.json").unlink()
    before = file_identities(out)
    result = predict_corpus(corpus, out, checkpoint)
    assert result.exit_code == 0, result.output
    assert f"{len(ITEMS)} items: 1 to do, {len(GOOD) - 1} done before and 1 failed before" in result.stderr
    after = file_identities(out)
    changed = {rel for rel in after if before.get(rel) != after[rel]}
    assert changed == {f"{redo}.json", "manifest.jsonl"}
    assert json_outputs(out) == first
    rows = rows_by_rel(out, corpus)
    assert rows[redo]["status"] == "ok"
    assert {rel: row["status"] for rel, row in rows.items() if rel != redo} == \
        {rel: "skipped" for rel in ITEMS if rel != redo}
    assert rows[BROKEN]["reason"].startswith("cannot decode")  # a skipped failure keeps its reason
    assert rows[VIDEO]["frames"] == VIDEO_FRAMES  # and a skipped item the counts of the run that did it


def test_a_failed_item_is_retried_when_its_file_changes(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    shutil.copy(corpus / "top.png", corpus / BROKEN)  # repaired (a PNG under a .jpg name decodes the same)
    result = predict_corpus(corpus, out, checkpoint)
    assert result.exit_code == 0, result.output
    assert rows_by_rel(out, corpus)[BROKEN]["status"] == "ok"
    assert (out / f"{BROKEN}.json").is_file()


def test_overwrite_redoes_every_item(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    first, before = json_outputs(out), file_identities(out)
    result = predict_corpus(corpus, out, checkpoint, "--overwrite")
    assert result.exit_code == 0, result.output
    after = file_identities(out)
    assert all(after[rel] != before[rel] for rel in before)  # every output written again
    assert json_outputs(out) == first
    assert {rel: row["status"] for rel, row in rows_by_rel(out, corpus).items()} == \
        {rel: "error" if rel == BROKEN else "ok" for rel in ITEMS}


def test_save_media_writes_what_single_item_out_writes(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    out = tmp_path / "out"
    assert predict_corpus(corpus, out, checkpoint, "--save-media").exit_code == 0
    image = "a/b/person.jpg"
    single = tmp_path / "single"
    result = dehrnet("predict", corpus / image, "--weights", checkpoint, *MODEL_FLAGS, "--out", single, "-q")
    assert result.exit_code == 0, result.output
    assert (out / image).read_bytes() == (single / "person.jpg").read_bytes()
    video = out / "clips" / "walk_pose.mp4"
    import av

    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == VIDEO_FRAMES
    video.unlink()  # a missing annotated video makes the item incomplete: redone, JSON and all
    result = predict_corpus(corpus, out, checkpoint, "--save-media")
    assert f"{len(ITEMS)} items: 1 to do" in result.stderr, result.stderr
    assert video.is_file() and rows_by_rel(out, corpus)[VIDEO]["status"] == "ok"


def test_out_dir_inside_the_corpus_is_left_out_of_the_listing(corpus: Path, checkpoint: Path) -> None:
    out = corpus / "poses"
    assert predict_corpus(corpus, out, checkpoint, "--save-media").exit_code == 0
    assert (out / "top.png").is_file()  # an annotated copy inside the corpus: not an item next time
    result = predict_corpus(corpus, out, checkpoint, "--save-media")
    assert f"nothing to do: all {len(ITEMS)} items" in result.stderr, result.stderr


def test_glob_list_and_file_uri_listings(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    pytest.importorskip("pyarrow")
    reference = tmp_path / "reference"
    assert predict_corpus(corpus, reference, checkpoint).exit_code == 0
    expected = {rel: json.loads(data) for rel, data in json_outputs(reference).items()}

    glob_out = tmp_path / "glob"
    assert predict_corpus(f"{corpus}/a/**/*.png", glob_out, checkpoint).exit_code == 0
    assert json_outputs(glob_out) == {rel.removeprefix("a/"): data for rel, data in json_outputs(reference).items()
                                      if rel.startswith("a/") and rel.endswith(".png")}  # under the pattern's folder

    listing = corpus / "list.txt"
    listing.write_text(f"# a comment\ntop.png\n\n{corpus / VIDEO}\nmissing.png\n")
    list_out = tmp_path / "list"
    assert predict_corpus(listing, list_out, checkpoint).exit_code == 0
    assert json_outputs(list_out) == {rel: data for rel, data in json_outputs(reference).items()
                                      if rel in ("top.png", VIDEO)}
    rows = {Path(row["path"]).name: row for row in manifest_rows(list_out)}
    assert rows["missing.png"]["status"] == "error" and rows["missing.png"]["reason"] == "no such file"

    uri_out = tmp_path / "uri"
    result = predict_corpus(f"file://{corpus}", uri_out, checkpoint)
    assert result.exit_code == 0, result.output
    for rel, doc in json_outputs(uri_out).items():
        doc = json.loads(doc)
        assert doc["info"]["source"] == f"file://{corpus}/{rel}"  # fetched, but named as listed
        assert {k: v for k, v in doc.items() if k != "info"} == \
            {k: v for k, v in expected[rel].items() if k != "info"}, rel
    assert sorted(json_outputs(uri_out)) == sorted(GOOD)


def test_ctrl_c_keeps_every_finished_item_and_a_rerun_goes_on(tmp_path: Path, corpus: Path, checkpoint: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    real_call = item_job_module.ItemRunner.__call__
    calls: list[str] = []

    def interrupted_third(self, item):
        calls.append(item.rel)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third item runs
        return real_call(self, item)

    monkeypatch.setattr(item_job_module.ItemRunner, "__call__", interrupted_third)
    result = predict_corpus(corpus, out, checkpoint)
    assert result.exit_code == 130, result.output
    assert "stopped after 2 of 6 items" in result.stderr
    finished = calls[:2]
    assert sorted(r["path"] for r in manifest_rows(out)) == sorted(str(corpus / rel) for rel in finished)
    monkeypatch.setattr(item_job_module.ItemRunner, "__call__", real_call)
    result = predict_corpus(corpus, out, checkpoint)
    assert f"{len(ITEMS)} items: {len(ITEMS) - 2} to do" in result.stderr, result.stderr
    rows = rows_by_rel(out, corpus)
    assert sorted(rows) == ITEMS and all(rows[rel]["status"] == "skipped" for rel in finished)


@pytest.mark.parametrize("flags, needles", [
    (["--out", "x.mp4"], ["--out", "not with --out-dir"]),
    (["--json", "x.json"], ["--json", "not with --out-dir"]),
    (["--workers", "2"], ["--workers", "only with --engine ray"]),
    (["--engine", "spark"], ["--engine 'spark'", "local, ray"]),
])
def test_corpus_flag_errors_before_any_work(tmp_path: Path, corpus: Path, checkpoint: Path, flags: list[str],
                                            needles: list[str], estimator_builds: list[int]) -> None:
    out = tmp_path / "out"
    error_line(predict_corpus(corpus, out, checkpoint, *flags), 2, *needles)
    assert estimator_builds == [] and not (out / "manifest.jsonl").exists()


def test_corpus_only_flags_need_out_dir(corpus: Path, checkpoint: Path, tmp_path: Path) -> None:
    result = dehrnet("predict", corpus / "top.png", "--weights", checkpoint, *MODEL_FLAGS, "--json",
                     tmp_path / "r.json", "--engine", "ray")
    error_line(result, 2, "--engine", "--out-dir")


def test_bad_corpus_and_out_dir(tmp_path: Path, corpus: Path, checkpoint: Path, estimator_builds: list[int]) -> None:
    error_line(predict_corpus(tmp_path / "nowhere", tmp_path / "out", checkpoint), 2, "nowhere", "no such file")
    error_line(predict_corpus(corpus, corpus, checkpoint), 2, "--out-dir", "the corpus folder itself")
    (tmp_path / "file").write_text("")
    error_line(predict_corpus(corpus, tmp_path / "file", checkpoint), 2, "--out-dir", "not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    error_line(predict_corpus(empty, tmp_path / "out", checkpoint), 2, str(empty), "no images or videos")
    assert estimator_builds == []


def test_engine_ray_without_ray_says_how_to_install(tmp_path: Path, corpus: Path, checkpoint: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    estimator_builds: list[int]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    result = predict_corpus(corpus, tmp_path / "out", checkpoint, "--engine", "ray")
    error_line(result, 2, "--engine ray", "pip install 'dehrnet[ray]'")
    assert estimator_builds == []


def test_a_killed_writer_s_temp_files_are_swept(tmp_path: Path, corpus: Path, checkpoint: Path) -> None:
    """A worker killed mid-write leaves `.NAME.partial-XXXXXXXX.ext`; the run that redoes the item removes it
    (and nothing that is not a temp file of an item's output)."""
    out = tmp_path / "out"
    stale = out / "a" / ".000007.png.partial-0123abcd.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{")
    other = out / "a" / ".unrelated.partial-0123abcd.json"
    other.write_text("{")
    assert predict_corpus(corpus, out, checkpoint).exit_code == 0
    assert not stale.exists() and other.exists()
    assert sorted(json_outputs(out)) == sorted([*IMAGES, VIDEO])
