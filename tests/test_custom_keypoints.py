"""Keypoint sets that the data defines: a 6-keypoint creature (tests/creature_synth.py) in a COCO-format file
and in an ultralytics pose data set trains (the loss falls), predicts (the JSON's category and CSV carry its
names and skeleton), evaluates (COCOeval with its sigmas, the per-keypoint table in its names), exports to
ONNX and runs there, draws its skeleton; a COCO-17 checkpoint warm-starts it; bad labels and ambiguous
categories fail before training with one line.

Everything runs on the CPU with the tiny architecture and a few training steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_errors import error_line
from conftest import save_seeded_checkpoint
from creature_synth import CATEGORY_ID, FLIP_PAIRS, NAMES, SKELETON, creature, write_creature_coco, write_creature_yolo
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from typer.testing import CliRunner

from dehrnet_cli.cli.app import app
from dehrnet_cli.eval.coco import score_coco_results
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.backends import OnnxBackend, TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.sinks.keypoints_csv import read_pose_csv
from dehrnet_cli.sinks.render import LEFT_BGR, RIGHT_BGR, draw_poses
from dehrnet_cli.stage_data import Detections, Poses
from dehrnet_cli.train.config import TrainConfig
from dehrnet_cli.train.loop import train
from dehrnet_cli.train.synthetic_model import SYNTHETIC_AUGMENT
from models import create_model, load_model, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"
CLI_RUN = ["--config", TINY, "--batch", "4", "--workers", "0", "--device", "cpu", "--quiet"]


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def threads_one():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def coco_creatures(tmp_path_factory) -> tuple[Path, Path]:
    return write_creature_coco(tmp_path_factory.mktemp("coco creatures"), 16)


@pytest.fixture(scope="module")
def coco_run(coco_creatures, tmp_path_factory, threads_one) -> tuple[Path, list[float]]:
    """Two epochs (8 steps of 4) on the COCO-format creatures, validated after each: (best.pt, step losses)."""
    images, ann = coco_creatures
    losses: list[float] = []
    config = TrainConfig(model=TINY, data="coco", train_ann=ann, train_images=images, val_ann=ann, val_images=images,
                         batch=4, epochs=2, val_every=1, device="cpu", workers=0, quiet=True,
                         out=tmp_path_factory.mktemp("coco_run"), augment=SYNTHETIC_AUGMENT)
    result = train(config, on_step=lambda step, loss: losses.append(loss))
    return result.best_path, losses


@pytest.fixture(scope="module")
def yolo_creatures(tmp_path_factory) -> Path:
    return write_creature_yolo(tmp_path_factory.mktemp("yolo creatures"), 16, 4)


@pytest.fixture(scope="module")
def yolo_run(yolo_creatures, tmp_path_factory, threads_one) -> Path:
    """`dehrnet train --data data.yaml`: two epochs, validated after each; the run folder."""
    out = tmp_path_factory.mktemp("yolo_run") / "run"
    result = invoke("train", "--data", yolo_creatures, *CLI_RUN, "--epochs", "2", "--val-every", "1", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def _assert_creature_spec(spec) -> None:
    assert spec.names == NAMES and spec.skeleton == SKELETON and spec.flip_pairs == FLIP_PAIRS


# ------------------------------------------------------------------------------------------------- training


def test_coco_format_creatures_train_and_the_checkpoint_carries_their_keypoints(coco_run) -> None:
    best, losses = coco_run
    assert len(losses) == 8 and np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses  # the loss falls
    model = load_model(best)
    _assert_creature_spec(model.config.keypoints)
    assert model.config.name == TINY and model.final_layer.out_channels == 6
    assert model.checkpoint_info.meta["val"]["AP"] >= 0  # validated by COCOeval on the creature category


def test_ultralytics_creatures_train_through_the_cli(yolo_run: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in (yolo_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and records[1]["loss"] < records[0]["loss"]  # the loss falls
    assert all("AP" in r["val"] for r in records)
    spec = load_model(yolo_run / "best.pt").config.keypoints
    _assert_creature_spec(spec)  # flip pairs from flip_idx, names from kpt_names, skeleton from the extension
    assert spec.name == "creature" and spec.sigmas == ()
    import shutil

    resumed = shutil.copytree(yolo_run, tmp_path / "resumed")
    result = invoke("train", "--resume", resumed / "last.pt", "--epochs", "3", "--quiet")
    assert result.exit_code == 0, result.output
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 3


def test_train_help_names_data() -> None:
    help_text = invoke("train", "--help").output
    assert "--data" in help_text and "--category" in help_text and "--sigmas" in help_text


# ----------------------------------------------------------------------------------------- predict, render


@pytest.mark.parametrize("run", ["coco", "yolo"])
def test_predict_writes_the_creature_category_and_six_keypoints(run: str, coco_run, yolo_run, coco_creatures,
                                                                tmp_path: Path) -> None:
    weights = coco_run[0] if run == "coco" else yolo_run / "best.pt"
    images, _ = coco_creatures
    out_json, out_csv = tmp_path / "poses.json", tmp_path / "poses.csv"
    result = invoke("predict", images, "--weights", weights, "--detector", "none", "--json", out_json, "--csv",
                    out_csv, "--out", tmp_path / "drawn", "--quiet")
    assert result.exit_code == 0, result.output
    doc = json.loads(out_json.read_text())
    assert doc["categories"][0]["keypoints"] == list(NAMES)
    assert doc["categories"][0]["skeleton"] == [[a + 1, b + 1] for a, b in SKELETON]
    assert len(doc["annotations"]) == 16 and all(len(a["keypoints"]) == 18 for a in doc["annotations"])
    rows = read_pose_csv(out_csv)
    assert set(rows["keypoint"]) == set(NAMES) and len(rows["keypoint"]) == 16 * 6
    assert len(list((tmp_path / "drawn").iterdir())) == 16


def test_predict_json_names_the_category_after_the_keypoint_set(coco_run, coco_creatures, tmp_path: Path) -> None:
    images, _ = coco_creatures
    result = invoke("predict", images, "--weights", coco_run[0], "--detector", "none", "--json", tmp_path / "p.json",
                    "--quiet")
    assert result.exit_code == 0, result.output
    category = json.loads((tmp_path / "p.json").read_text())["categories"][0]
    assert category["name"] == "creature"


def test_render_draws_the_custom_skeleton(coco_run) -> None:
    """Every bone of the creature is drawn (left bones green, right ones orange); pairs that are no bone are not."""
    spec = load_model(coco_run[0]).config.keypoints
    _, points, box = creature(0, 0)
    points, box = 4 * points, 4 * box  # 512 px: lines 2 px wide, solid at their middle
    blank = np.zeros((512, 512, 3), np.uint8)
    x, y, w, h = box
    poses = Poses(np.array([[x, y, x + w, y + h]], np.float32), np.ones(1, np.float32), points[None].astype(np.float32),
                  np.ones((1, 6), np.float32), np.ones(1, np.float32), np.ones(1, np.float32))
    drawn = draw_poses(blank, poses, spec)

    def midpoint(a: int, b: int) -> np.ndarray:
        mx, my = np.round((points[a] + points[b]) / 2).astype(int)
        return drawn[my, mx]

    assert all(midpoint(a, b).any() for a, b in SKELETON)
    assert tuple(midpoint(0, 2)) == LEFT_BGR and tuple(midpoint(1, 5)) == RIGHT_BGR
    assert not midpoint(2, 4).any() and not midpoint(3, 5).any()  # front paw to hind paw: no bone


# --------------------------------------------------------------------------------------------------- eval


def test_eval_scores_the_creature_category_with_its_names(coco_run, coco_creatures, tmp_path: Path) -> None:
    images, ann = coco_creatures
    report = tmp_path / "report.json"
    result = invoke("eval", "--coco", images, "--ann", ann, "--gt-boxes", "--weights", coco_run[0], "--report",
                    report, "--save-results", tmp_path / "results.json")
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in NAMES)  # the per-keypoint table
    document = json.loads(report.read_text())
    assert list(document["per_keypoint"]) == list(NAMES)
    assert all(0 <= row["count"] <= 16 for row in document["per_keypoint"].values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["category_id"] for r in results} == {CATEGORY_ID} and len(results) == 16
    assert document["stats"]["AP"] >= 0


def test_eval_of_an_ultralytics_val_split(yolo_run: Path, yolo_creatures: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = invoke("eval", "--data", yolo_creatures, "--weights", yolo_run / "best.pt", "--report", report)
    assert result.exit_code == 0, result.output
    document = json.loads(report.read_text())
    assert list(document["per_keypoint"]) == list(NAMES) and document["num_images"] == 4
    assert all(0 <= row["count"] <= 4 for row in document["per_keypoint"].values())
    assert document["stats"]["AP"] == pytest.approx(load_model(yolo_run / "best.pt").checkpoint_info.meta["val"]["AP"])


def test_coco_eval_uses_the_files_sigmas(coco_creatures, tmp_path: Path) -> None:
    """kpt_oks_sigmas in the category reach COCOeval: the same numbers as pycocotools given those sigmas, and
    wider sigmas score a shifted prediction higher; the category --category names is scored, not the first."""
    _, ann = coco_creatures
    doc = json.loads(ann.read_text())
    doc["categories"].insert(0, {"id": 7, "name": "bird", "keypoints": ["beak", "tail"], "skeleton": [[1, 2]]})
    rng = np.random.default_rng(0)
    results = []
    for a in doc["annotations"]:
        kpts = np.asarray(a["keypoints"]).reshape(-1, 3)
        kpts[:, :2] += rng.normal(0, 3, (6, 2))
        results.append({"image_id": a["image_id"], "category_id": CATEGORY_ID, "score": 0.9,
                        "keypoints": kpts.ravel().tolist()})
    doc["annotations"].append({"id": 99, "image_id": 1, "category_id": 7, "iscrowd": 0, "bbox": [5, 5, 40, 40],
                               "area": 800.0, "keypoints": [10, 10, 2, 30, 30, 2], "num_keypoints": 2})  # unscored
    aps = {}
    for sigma in (0.02, 0.1):
        doc["categories"][1]["kpt_oks_sigmas"] = [sigma] * 6
        path = tmp_path / f"ann_{sigma}.json"
        path.write_text(json.dumps(doc))
        aps[sigma] = score_coco_results(results, path, category="creature").stats["AP"]
        gt = COCO(str(path))
        reference = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "keypoints")
        reference.params.kpt_oks_sigmas = np.full(6, sigma)
        reference.params.catIds = [CATEGORY_ID]
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
        assert aps[sigma] == pytest.approx(reference.stats[0], abs=1e-12)
    assert aps[0.1] > aps[0.02]
    perfect = [{**r, "keypoints": a["keypoints"]} for r, a in zip(results, doc["annotations"][:16])]
    scored = score_coco_results(perfect, path, category="creature")
    assert scored.stats["AP"] == pytest.approx(1.0)
    assert scored.per_keypoint == {name: {"oks": 1.0, "accuracy": 1.0, "count": 16} for name in NAMES}
    assert not any("category_id" in w for w in scored.warnings)
    as_person = score_coco_results([{**r, "category_id": 1} for r in perfect], path, category="creature")
    assert as_person.stats["AP"] <= 0  # nothing scored
    assert any("16 results have category_id 1, not 3 ('creature')" in w for w in as_person.warnings)


# ------------------------------------------------------------------------------------------------- export


def test_export_to_onnx_runs_the_creature_model(coco_run, tmp_path: Path) -> None:
    """The export carries the keypoint set in its metadata; ONNX Runtime gives torch's heatmaps and, through the
    top-down stage, six keypoints per creature. (A plain HRNet with the trained run's keypoint set: it exports in
    a third of DE-HRNet's time; tests/test_export.py covers DE-HRNet's graph.)"""
    spec = load_model(coco_run[0]).config.keypoints
    model = load_model(save_seeded_checkpoint(tmp_path / "hrnet.pt", TINY, upsample="nearest", dem_stages=(),
                                              keypoints=spec))
    path = export_onnx(model, tmp_path / "creature.onnx", slim=False, check=False).path
    backend = OnnxBackend(path, "cpu")
    _assert_creature_spec(backend.config.keypoints)
    crops = np.random.default_rng(0).normal(size=(2, 3, 128, 96)).astype(np.float32)
    torch_maps = TorchBackend(model, "cpu")(crops)
    assert torch_maps.shape == (2, 6, 32, 24)
    assert np.abs(backend(crops) - torch_maps).max() < 1e-3 * np.abs(torch_maps).max()  # float rounding only
    image, _, (x, y, w, h) = creature(0, 3)
    boxes = Detections(np.array([[x, y, x + w, y + h]], np.float32), np.ones(1, np.float32))
    poses = TopDownEstimator(backend).estimate([image], [boxes])[0]
    assert poses.keypoints_xy.shape == (1, 6, 2) and np.isfinite(poses.keypoints_xy).all()


# --------------------------------------------------------------------------------------------- warm start


def _coco17_file(folder: Path, kind: str) -> Path:
    """A COCO-17 tiny model: a DE-HRNet as a dehrnet checkpoint, or an HRNet as an official or mmpose file."""
    if kind == "dehrnet":
        return save_seeded_checkpoint(folder / "dehrnet.pt", TINY)
    hrnet = load_model(save_seeded_checkpoint(folder / "hrnet.pt", TINY, seed=1, upsample="nearest", dem_stages=()))
    state = hrnet.state_dict()
    if kind == "mmpose":
        state = {"state_dict": {("keypoint_head." if k.startswith("final_layer") else "backbone.") + k: v
                                for k, v in state.items()}, "meta": {}}
    torch.save(state, folder / f"{kind}.pth")
    return folder / f"{kind}.pth"


@pytest.mark.parametrize("kind", ["dehrnet", "official", "mmpose"])
def test_warm_start_from_coco17_keeps_every_weight_but_the_final_layer(kind: str, coco_creatures, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    source_path = _coco17_file(tmp_path, kind)
    source = load_model(source_path).state_dict()
    images, ann = coco_creatures
    config = TrainConfig(model=TINY, data="coco", train_ann=ann, train_images=images, val_ann=ann, val_images=images,
                         init=source_path, batch=4, epochs=1, max_steps=1, val_every=100, device="cpu", workers=0,
                         out=tmp_path / "run", lr=1e-12)
    losses: list[float] = []
    notes: list[str] = []
    monkeypatch.setattr("dehrnet_cli.train.loop.note", notes.append)
    result = train(config, on_step=lambda step, loss: losses.append(loss))
    lines = [line for line in notes if "initialised from" in line]
    assert len(lines) == 1 and "final layer made new for 6 keypoints (creature)" in lines[0] \
        and "has 17 (coco)" in lines[0], lines
    assert len(losses) == 1 and np.isfinite(losses[0])
    trained = load_model(result.last_path)
    _assert_creature_spec(trained.config.keypoints)
    state = trained.state_dict()
    assert state["final_layer.weight"].shape == (6, 8, 1, 1)
    kept = [k for k in source if not k.startswith("final_layer") and "num_batches_tracked" not in k
            and "running" not in k]  # BN statistics move in the training step
    assert kept and all(torch.allclose(state[k], source[k], atol=1e-6) for k in kept)
    assert float(state["final_layer.weight"].std()) < 0.01  # the official init, not the file's head


def test_without_new_head_a_coco17_file_does_not_fit_six_keypoints(tmp_path: Path) -> None:
    path = save_seeded_checkpoint(tmp_path / "coco17.pt", TINY)
    six = create_model(TINY).config
    from dataclasses import replace

    from models import keypoint_set

    target = replace(six, keypoints=keypoint_set("creature", NAMES, SKELETON))
    with pytest.raises(Exception, match="final_layer"):
        load_model(path, target)
    assert load_model(path, target, new_head=True).checkpoint_info.replaced_head.num_keypoints == 17


# ------------------------------------------------------------------------------------- refused before work


def test_a_malformed_label_line_is_refused_before_training(yolo_creatures: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(yolo_creatures.parent, copy)
    yaml_text = (copy / "data.yaml").read_text().replace(str(yolo_creatures.parent), str(copy))
    (copy / "data.yaml").write_text(yaml_text)
    label = sorted((copy / "labels" / "val").iterdir())[1]
    good = label.read_text().strip()
    label.write_text(good + "\n" + " ".join(good.split()[:-1]) + "\n")  # line 2 lacks one value
    out = tmp_path / "run"
    error_line(invoke("train", "--data", copy / "data.yaml", *CLI_RUN, "--out", out), 2, str(label), "line 2",
               "22 values", "expected 23")
    assert not out.exists()
    label.write_text(good.replace("0 ", "0 1.7 ", 1).rsplit(" ", 1)[0] + "\n")  # cx out of [0, 1]
    error_line(invoke("train", "--data", copy / "data.yaml", *CLI_RUN, "--out", out), 2, str(label), "line 1", "box")


def test_several_keypoint_categories_need_category(tmp_path: Path) -> None:
    bird = {"id": 7, "name": "bird", "keypoints": ["beak", "tail"], "skeleton": [[1, 2]]}
    images, ann = write_creature_coco(tmp_path / "data", 8, extra_categories=[bird])
    doc = json.loads(ann.read_text())
    doc["annotations"].append({"id": 99, "image_id": 1, "category_id": 7, "iscrowd": 0, "bbox": [5, 5, 40, 40],
                               "area": 800.0, "keypoints": [10, 10, 2, 30, 30, 2], "num_keypoints": 2})
    ann.write_text(json.dumps(doc))
    flags = ["--train-ann", ann, "--train-images", images, "--val-ann", ann, "--val-images", images, *CLI_RUN,
             "--max-steps", "1", "--val-every", "100"]
    line = error_line(invoke("train", *flags, "--out", tmp_path / "a"), 2, "2 keypoint categories", "'creature'",
                      "'bird'", "--category")
    assert "6 keypoints" in line and "2 keypoints" in line
    error_line(invoke("train", *flags, "--category", "fish", "--out", tmp_path / "b"), 2, "--category fish", "'bird'")
    result = invoke("train", *flags, "--category", "creature", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    _assert_creature_spec(load_model(tmp_path / "c" / "last.pt").config.keypoints)
    # eval takes the category with the model's keypoint names, and only its people's boxes
    result = invoke("eval", "--coco", images, "--ann", ann, "--gt-boxes", "--weights", tmp_path / "c" / "last.pt",
                    "--save-results", tmp_path / "results.json", "--quiet")
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results) == 8 and {r["category_id"] for r in results} == {CATEGORY_ID}


def test_sigmas_and_flip_pairs_flags_reach_the_checkpoint(coco_creatures, tmp_path: Path) -> None:
    images, ann = coco_creatures
    flags = ["--train-ann", ann, "--train-images", images, "--val-ann", ann, "--val-images", images, *CLI_RUN,
             "--max-steps", "1", "--val-every", "100"]
    result = invoke("train", *flags, "--sigmas", "0.05,0.05,0.03,0.03,0.04,0.04", "--flip-pairs",
                    "left_front_paw:right_front_paw", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    spec = load_model(tmp_path / "run" / "last.pt").config.keypoints
    assert spec.sigmas == pytest.approx((0.5, 0.5, 0.3, 0.3, 0.4, 0.4)) and spec.flip_pairs == ((2, 3),)
    error_line(invoke("train", *flags, "--sigmas", "0.05,0.05", "--out", tmp_path / "bad"), 2, "6 positive numbers")
    error_line(invoke("train", *flags, "--flip-pairs", "head:wing", "--out", tmp_path / "bad"), 2, "wing")


def test_a_coco17_person_file_keeps_the_coco17_model(coco_sample: Path) -> None:
    """The COCO person category gives exactly the COCO-17 set (sigmas, half-body split): the official path."""
    from dehrnet_cli.datasets.coco import CocoKeypointFile
    from models import COCO17

    file = CocoKeypointFile.read(coco_sample / "test_coco.json")
    assert file.keypoint_set(file.category()) == COCO17


def test_saved_custom_checkpoint_round_trips(tmp_path: Path) -> None:
    from dataclasses import replace

    from models import keypoint_set

    net = replace(create_model(TINY).config, keypoints=keypoint_set("creature", NAMES, SKELETON, [0.4] * 6))
    path = save_checkpoint(create_model(net), tmp_path / "c.pt")
    assert load_model(path).config == net


# ------------------------------------------------------------------------------------ keypoint sets by data


def test_flip_pairs_from_names_give_the_coco_and_mpii_pairs() -> None:
    from models import COCO17, MPII16
    from models.keypoints import flip_pairs_from_names

    assert flip_pairs_from_names(COCO17.names) == COCO17.flip_pairs
    assert flip_pairs_from_names(MPII16.names) == MPII16.flip_pairs
    assert flip_pairs_from_names(NAMES) == FLIP_PAIRS
    assert flip_pairs_from_names(("Left_Ear", "nose", "RIGHT_EAR", "left_tail")) == ((0, 2),)


def test_keypoint_set_checks_what_the_data_gives() -> None:
    from dehrnet_cli.errors import DehrnetError
    from models import COCO17, keypoint_set

    assert keypoint_set("person", COCO17.names, COCO17.skeleton) == COCO17
    own_sigmas = keypoint_set("person", COCO17.names, (), [1.0] * 17)
    assert own_sigmas.sigmas == (1.0,) * 17 and own_sigmas.skeleton == COCO17.skeleton
    for names, skeleton, sigmas, pairs, needle in [
        (("a", "a"), (), (), None, "repeated: a"),
        (("a", "b"), ((0, 2),), (), None, r"skeleton entry \[0, 2\]"),
        (("a", "b"), (), (0.5,), None, "2 positive numbers"),
        (("a", "b", "c"), (), (), ((0, 1), (1, 2)), "two flip pairs"),
    ]:
        with pytest.raises(DehrnetError, match=needle):
            keypoint_set("x", names, skeleton, sigmas, pairs, source="here")


def test_ultralytics_image_lists_and_two_values_per_keypoint(tmp_path: Path) -> None:
    """train as a .txt list (./ relative to it), val as a list of folders; kpt_shape [6, 2], where a negative
    coordinate marks a keypoint that is not labelled; no flip_idx: flip pairs by kpt_names."""
    from seeded_images import save_image

    from dehrnet_cli.datasets.yolo_pose import coco_document, read_data_yaml, yolo_keypoint_set

    root = tmp_path / "set"
    for n in range(3):
        image, points, box = creature(1, n)
        save_image(root / "images" / f"{n}.png", image)
        (root / "labels").mkdir(exist_ok=True)
        line = label_line_2d(points, box, hide=n)
        (root / "labels" / f"{n}.txt").write_text(line + "\n")
    (root / "train.txt").write_text("./images/0.png\n./images/1.png\n")
    names = "\n".join(f"    - {n}" for n in NAMES)
    (tmp_path / "data.yaml").write_text(f"path: set\ntrain: train.txt\nval: [images]\nkpt_shape: [6, 2]\n"
                                        f"names: {{0: creature}}\nkpt_names:\n  0:\n{names}\n")
    data = read_data_yaml(tmp_path / "data.yaml")  # a relative root: beside the YAML (not in the working folder)
    assert data.root == root
    spec = yolo_keypoint_set(data)
    assert spec.flip_pairs == FLIP_PAIRS and spec.skeleton == ()
    train_doc, val_doc = coco_document(data, "train", spec), coco_document(data, "val", spec)
    assert [Path(i["file_name"]).name for i in train_doc["images"]] == ["0.png", "1.png"]
    assert len(val_doc["images"]) == 3
    second = np.asarray(train_doc["annotations"][1]["keypoints"]).reshape(6, 3)
    assert second[1].tolist() == [0, 0, 0] and (second[[0, 2, 3, 4, 5], 2] == 2).all()
    _, points, box = creature(1, 1)
    np.testing.assert_allclose(second[0, :2], points[0], atol=1e-3)
    np.testing.assert_allclose(train_doc["annotations"][1]["bbox"], box, atol=1e-3)
    assert train_doc["annotations"][1]["area"] == pytest.approx(box[2] * box[3] * 0.53, rel=1e-5)


def label_line_2d(points: np.ndarray, box: np.ndarray, hide: int) -> str:
    """A [K, 2] label line with keypoint `hide` given as -1 -1 (not labelled)."""
    w, h = 128, 128
    x, y, bw, bh = box
    values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
    for k, (px, py) in enumerate(points):
        values += [-1.0, -1.0] if k == hide else [px / w, py / h]
    return "0 " + " ".join(f"{v:.6f}" for v in values)


def test_no_half_body_crops_for_a_set_without_an_upper_body() -> None:
    """Half-body augmentation needs the upper-body joints; a keypoint set from data has none, so even with
    probability 1 every crop keeps the person's own box."""
    from dehrnet_cli.datasets.augment import AugmentSettings, sample_crop_params
    from dehrnet_cli.datasets.records import PersonRecord
    from models import keypoint_set

    spec = keypoint_set("tenfold", [f"p{k}" for k in range(10)])
    points = np.random.default_rng(0).uniform(50, 150, (10, 2))
    record = PersonRecord("x", 0, np.array([40, 40, 120, 120.0]), np.array([100, 100], np.float32),
                          np.array([0.8, 0.8], np.float32), points, np.ones(10, np.float32))
    settings = AugmentSettings(scale_factor=0.0, rotation_prob=0.0, flip=False, half_body_prob=1.0)
    params = sample_crop_params(np.random.default_rng(0), record, 200, settings, spec, 0.75)
    np.testing.assert_array_equal(params.center, record.center)
    np.testing.assert_array_equal(params.scale, record.scale)
