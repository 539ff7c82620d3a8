"""Training: the loss, exact resume, DDP = one process on the combined batch, a real run on the COCO sample
through the CLI, clear errors before training, and (slow) learning on synthetic people."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from dehrnet_cli.cli.command import add_commands
from dehrnet_cli.cli.train import train_command
from dehrnet_cli.datasets.synthetic import SyntheticPeople
from dehrnet_cli.eval.coco import load_coco_gt
from dehrnet_cli.eval.pck import evaluate_pck
from dehrnet_cli.eval.run import GroundTruthBoxes
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.stage_data import Frame
from dehrnet_cli.train.config import TrainConfig
from dehrnet_cli.train.loop import train
from dehrnet_cli.train.loss import JointsMSELoss
from dehrnet_cli.train.resume import resume_config
from dehrnet_cli.train.synthetic_model import SYNTHETIC_AUGMENT, train_synthetic_model
from models import create_model, load_model, save_checkpoint
from models.checkpoint import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = "dehrnet_w8_128x96"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    add_commands(app, train_command)
    return app


def _synthetic(out: Path, **overrides) -> TrainConfig:
    """A tiny CPU run: 4 generated images (5 people: 3 steps an epoch), batch 2, lr x0.1 after epoch 1."""
    values = dict(model=TINY, data="synthetic", synthetic_images=4, synthetic_val_images=1, epochs=3, batch=2,
                  lr_steps=(1,), workers=0, device="cpu", val_every=1, out=out, quiet=True)
    return TrainConfig(**{**values, **overrides})


# ---------------------------------------------------------------------------------------------------- loss


def test_loss_is_the_official_joints_mse_with_target_weights() -> None:
    g = torch.Generator().manual_seed(0)
    output = torch.rand(2, 3, 8, 6, generator=g, requires_grad=True)
    target = torch.rand(2, 3, 8, 6, generator=g)
    weight = torch.tensor([[1.0, 0.0, 1.5], [1.0, 1.0, 0.0]])
    loss = JointsMSELoss()(output, target, weight)
    # official: for each joint 0.5 x MSELoss(mean)(pred x w, gt x w), averaged over joints
    official = sum(0.5 * torch.nn.functional.mse_loss(output[:, k] * weight[:, k, None, None],
                                                      target[:, k] * weight[:, k, None, None]) for k in range(3)) / 3
    torch.testing.assert_close(loss, official)
    loss.backward()
    assert torch.all(output.grad[0, 1] == 0) and torch.all(output.grad[1, 2] == 0)  # weight 0: no gradient
    assert torch.all(output.grad[0, 0] != 0)
    changed = output.detach().clone()
    changed[0, 1] += 5.0  # a weight-0 joint's prediction does not matter
    torch.testing.assert_close(JointsMSELoss()(changed, target, weight), loss.detach())
    assert float(JointsMSELoss()(target, target, weight)) == 0.0


# -------------------------------------------------------------------------------------------------- resume


def test_resume_continues_exactly(tmp_path: Path) -> None:
    """Stopped at an epoch end and in the middle of an epoch, then resumed: the same losses, weights and
    metrics as one uninterrupted run (dropout on, the lr drop and a validation in between)."""
    whole: dict[int, float] = {}
    train(_synthetic(tmp_path / "whole", epochs=2), on_step=lambda step, loss: whole.__setitem__(step, loss))
    parts: dict[int, float] = {}
    run, last = tmp_path / "parts", tmp_path / "parts" / "last.pt"
    first = train(_synthetic(run, epochs=2, max_steps=3), on_step=lambda step, loss: parts.__setitem__(step, loss))
    assert first.stopped_early and first.epochs_done == 1 and (run / "best.pt").exists()
    second = train(resume_config(last, max_steps=4), resume=last,
                   on_step=lambda step, loss: parts.__setitem__(step, loss))
    assert second.stopped_early and second.global_step == 4
    state = torch.load(last, weights_only=True)["train_state"]  # the training state loads safely
    assert (state["epoch"], state["step_in_epoch"]) == (1, 1)
    third = train(resume_config(last), resume=last, on_step=lambda step, loss: parts.__setitem__(step, loss))
    assert third.epochs_done == 2 and not third.stopped_early
    assert sorted(parts) == sorted(whole) == list(range(1, 7))
    assert parts == whole  # bit-identical losses
    a, b = read_checkpoint(tmp_path / "whole" / "last.pt"), read_checkpoint(last)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    whole_lines = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and [r["lr"] for r in lines] == [1e-3, 1e-4]
    assert [r["loss"] for r in lines] == [r["loss"] for r in whole_lines]
    assert [r["val"] for r in lines] == [r["val"] for r in whole_lines]


def test_resume_refuses_a_changed_recipe_and_foreign_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_synthetic(run, max_steps=1))
    with pytest.raises(Exception, match="lr"):
        train(replace(resume_config(run / "last.pt"), lr=0.01), resume=run / "last.pt")
    with pytest.raises(Exception, match="already holds a training run"):
        train(_synthetic(run))
    runner = CliRunner()
    result = runner.invoke(_app(), ["train", "--resume", str(run / "last.pt"), "--lr", "0.01"])
    assert result.exit_code == 2 and "--lr" in result.output
    best_like = tmp_path / "weights.pt"
    from models import save_checkpoint

    save_checkpoint(create_model(TINY), best_like)
    result = runner.invoke(_app(), ["train", "--resume", str(best_like)])
    assert result.exit_code == 2 and "not the last.pt of a dehrnet training run" in result.output


def test_amp_autocast_step_runs_and_is_recorded(tmp_path: Path) -> None:
    """--amp on the CPU: bf16 autocast (the CUDA default picks bf16, or fp16 with a GradScaler)."""
    losses: list[float] = []
    result = train(_synthetic(tmp_path / "amp", amp=True, max_steps=1), on_step=lambda step, loss: losses.append(loss))
    assert len(losses) == 1 and np.isfinite(losses[0]) and losses[0] > 0
    assert json.loads((result.run_dir / "config.json").read_text())["amp"] == "bfloat16"


# ----------------------------------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, config: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(TrainConfig.from_dict(config))


@pytest.mark.slow  # two spawned processes: about 20 s here
def test_ddp_two_gloo_processes_equal_one_process_on_the_combined_batch(tmp_path: Path) -> None:
    """BatchNorm statistics frozen (each rank normalises its own half) and DEM dropout off, so the two runs
    compute the same function; gradients are averaged across ranks, the loss is a per-sample mean."""
    common = dict(synthetic_images=6, epochs=1, max_steps=2, val_every=100, freeze_bn=True,
                  model_overrides={"dem_dropout": 0.0})
    single = train(_synthetic(tmp_path / "one", batch=4, **common))
    config = _synthetic(tmp_path / "two", batch=2, **common).to_dict()
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), config), nprocs=2, join=True)
    one, two = read_checkpoint(single.last_path), read_checkpoint(tmp_path / "two" / "last.pt")
    start = create_model(TINY).state_dict()
    assert two["train_state"]["world_size"] == 2 and len(two["train_state"]["rng"]) == 2
    moved = 0.0
    for key, value in one["state_dict"].items():
        if value.is_floating_point():
            torch.testing.assert_close(two["state_dict"][key], value, atol=2e-6, rtol=1e-4, msg=key)
            moved = max(moved, float((value - start[key]).abs().max()))
    assert moved > 1e-3  # the weights did train


# ------------------------------------------------------------------------------------------------ COCO data


def test_two_epochs_on_the_coco_sample_write_the_run_folder(coco_sample: Path, tmp_path: Path) -> None:
    ann, out = coco_sample / "test_coco.json", tmp_path / "run with spaces"
    args = ["train", "--config", TINY, "--train-ann", str(ann), "--train-images", str(coco_sample),
            "--val-ann", str(ann), "--val-images", str(coco_sample), "--epochs", "2", "--batch", "6",
            "--workers", "1", "--device", "cpu", "--val-every", "1", "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert {"last.pt", "best.pt", "metrics.jsonl", "config.json", "curves.png"} <= {p.name for p in out.iterdir()}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("AP" in r["val"] and r["loss"] > 0 for r in records)
    assert all(r["samples_per_s"] > 0 for r in records)
    assert json.loads((out / "config.json").read_text())["train"]["model"] == TINY
    assert cv2.imread(str(out / "curves.png")) is not None
    model = load_model(out / "best.pt")  # predict/eval/export load it like any checkpoint
    assert model.config.name == TINY and model.checkpoint_info.meta["val"]["AP"] == records[0]["val"]["AP"]
    gt = load_coco_gt(ann)
    image_id = gt.getImgIds()[0]
    path = coco_sample / gt.imgs[image_id]["file_name"]
    frame = Frame(0, cv2.imread(str(path)), path)
    poses = TopDownEstimator(TorchBackend(model, "cpu")).estimate([frame.image], GroundTruthBoxes(gt)([frame]))
    assert poses[0].keypoints_xy.shape[1:] == (17, 2)


def test_a_run_folder_that_would_replace_its_init_checkpoint_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    torch.manual_seed(0)
    init = save_checkpoint(create_model(TINY), out / "best.pt")  # e.g. an earlier run's best, as --init
    before = init.read_bytes()
    result = CliRunner().invoke(_app(), ["train", "--synthetic", "4", "--config", TINY, "--init", str(init),
                                         "--out", str(out), "--device", "cpu", "--workers", "0", "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"is the --init {init}" in result.stderr and init.read_bytes() == before


def test_missing_coco_pieces_fail_before_training(tmp_path: Path) -> None:
    coco = tmp_path / "coco"
    (coco / "train2017").mkdir(parents=True)
    result = CliRunner().invoke(_app(), ["train", "--coco", str(coco), "--out", str(tmp_path / "run"),
                                         "--device", "cpu"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "val2017" in lines[0] and "person_keypoints_train2017.json" in lines[0]
    assert "train2017 (" not in lines[0]
    assert not (tmp_path / "run").exists()  # nothing was built or written


def test_cli_help_shows_examples_and_rejects_two_data_sources(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(_app(), ["train", "--help"]).output
    assert "torchrun --nproc-per-node 8 -m dehrnet_cli train" in help_text and "--resume" in help_text
    result = runner.invoke(_app(), ["train", "--coco", str(tmp_path), "--synthetic", "10"])
    assert result.exit_code == 2 and "--coco and --synthetic" in result.output
    result = runner.invoke(_app(), ["train", "--synthetic", "4", "--config", "dehrnet_w32_mpii_256x256",
                                    "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "17 COCO keypoints" in result.output


# ---------------------------------------------------------------------------------------- synthetic learning


def test_forty_steps_learn_synthetic_people(learned_model_path: Path) -> None:
    """The default suite's check that training learns: 40 steps of the synthetic recipe lift PCK@0.1 on
    held-out scenes from about 0.06 (untrained) to about 0.45."""
    held_out = SyntheticPeople(15, create_model(TINY).config, None, seed=4242)  # about 20 people
    trained = evaluate_pck(TopDownEstimator(TorchBackend(load_model(learned_model_path), "cpu")), held_out)
    torch.manual_seed(0)
    untrained = evaluate_pck(TopDownEstimator(TorchBackend(create_model(TINY), "cpu")), held_out)
    print(f"PCK@0.1 after 40 steps {trained:.3f}, untrained {untrained:.3f}")
    assert trained > 0.3 and untrained < 0.15, (trained, untrained)


@pytest.mark.slow
def test_tiny_model_learns_synthetic_people(tmp_path: Path) -> None:
    """dehrnet_w8_128x96, a few hundred CPU steps: PCK@0.1 on held-out scenes > 0.8 (untrained: near 0);
    the flip test does not lower it. Prints the time it took."""
    start = time.perf_counter()
    path = train_synthetic_model(tmp_path / "tiny.pt", steps=300, seed=0)
    seconds = time.perf_counter() - start
    trained = load_model(path)
    held_out = SyntheticPeople(60, trained.config, None, seed=999)
    pck = {flip: evaluate_pck(TopDownEstimator(TorchBackend(trained, "cpu"), TopDownSettings(flip=flip)), held_out)
           for flip in (False, True)}
    untrained = evaluate_pck(TopDownEstimator(TorchBackend(create_model(TINY), "cpu")), held_out)
    print(f"synthetic learning: {seconds:.0f} s for 300 steps; PCK@0.1 {pck}, untrained {untrained:.3f}")
    assert pck[False] > 0.8 and pck[True] >= pck[False] - 0.01
    assert untrained < 0.1
    assert SYNTHETIC_AUGMENT.flip and np.isclose(trained.checkpoint_info.meta["val_pck@0.1"], pck[True], atol=0.1)
