"""The training loop: the paper's recipe on one device or many (torchrun), with exact resume.

Recipe (defaults, every value a TrainConfig field): Adam lr 1e-3 (no weight decay, as the official
code), x0.1 after epochs 170 and 200, 210 epochs, batch 32 per process, JointsMSELoss with target weights,
AMP (bf16, or fp16 + GradScaler where bf16 is missing) on CUDA. Under torchrun (WORLD_SIZE > 1):
DistributedDataParallel over NCCL (GPU) or gloo (CPU), each rank its share of the epoch; rank 0 logs,
validates and writes the run folder: last.pt (weights + full training state), best.pt, metrics.jsonl,
config.json and curves.png.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.topdown import TopDownEstimator, TopDownSettings
from dehrnet_cli.progress import note, progress_bar
from dehrnet_cli.sinks.atomic import write_json_atomic
from dehrnet_cli.train.config import TrainConfig, TrainResult
from dehrnet_cli.train.data import make_loader, training_data
from dehrnet_cli.train.distributed import setup_distributed
from dehrnet_cli.train.loss import JointsMSELoss
from dehrnet_cli.train.model_init import build_model
from dehrnet_cli.train.random_state import rng_state, seed_all, set_rng_state
from dehrnet_cli.train.resume import check_start
from dehrnet_cli.train.run_folder import write_curves, write_metrics
from dehrnet_cli.train.sampler import EpochSampler
from models import PoseNetConfig, get_config, save_checkpoint


def _set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _amp_dtype(config: TrainConfig, device: str) -> torch.dtype | None:
    enabled = device.startswith("cuda") if config.amp is None else config.amp
    if not enabled:
        return None
    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        enabled=enabled, transient=True)


class _Run:
    """One process's share of a training run: model, optimiser, data and the run folder (rank 0)."""

    def __init__(self, config: TrainConfig, resume: Path | None, on_step: Callable[[int, float], None] | None):
        resume_obj, state = check_start(config, resume)
        self.config, self.on_step, self.run_dir = config, on_step, Path(config.out)
        self.ctx = ctx = setup_distributed(config.device)
        self.cuda = ctx.device.startswith("cuda")
        arch = PoseNetConfig.from_dict(resume_obj["config"]) if resume_obj else \
            get_config(config.model, **config.model_overrides)
        self.dataset, self.metric, self.validate, net = training_data(config, arch)
        if resume_obj and net != arch:
            raise DehrnetError(f"--resume {resume}: the data now defines other keypoints than the run's "
                               f"({', '.join(arch.keypoints.names)})")
        self.net_config = net
        if len(self.dataset) == 0:
            raise DehrnetError("the training annotations hold no usable person (none with labelled keypoints)")
        model = build_model(config, net, resume_obj, self.log).to(ctx.device)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            model = model.to(memory_format=torch.channels_last)
        if config.sync_bn and ctx.world > 1 and self.cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif config.sync_bn:
            self.log("[yellow]--sync-bn: ignored (SyncBatchNorm needs several CUDA processes)")
        self.model = model
        self.train_model = model if not ctx.ddp else \
            nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if self.cuda else None)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.lr_steps), config.lr_factor)
        self.amp_dtype = _amp_dtype(config, ctx.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.sampler = EpochSampler(self.dataset, ctx.world, ctx.rank, config.seed)
        self.loader = make_loader(self.dataset, self.sampler, config, self.cuda)
        self.steps_per_epoch = -(-len(self.sampler.inner) // config.batch)
        self.epoch = self.step_in_epoch = self.global_step = self.loss_count = 0
        self.best_value: float | None = None
        self.history: list[dict] = []
        self.loss_total = torch.zeros((), dtype=torch.float64, device=ctx.device)  # this epoch's sum of loss x n
        seed_all(config.seed + ctx.rank)  # dropout differs between ranks
        if state is not None:
            self._restore(state, Path(resume).parent / "metrics.jsonl")
        if ctx.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.run_dir / "config.json", {
                "train": config.to_dict(), "model": net.to_dict(), "world_size": ctx.world, "device": ctx.device,
                "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
                "resumed_from": str(resume) if resume else None, "torch": torch.__version__}, indent=2)

    def log(self, text: str) -> None:
        if self.ctx.main and not self.config.quiet:
            note(text)

    def _restore(self, state: dict, metrics_file: Path) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        self.best_value, self.loss_count = state["best_value"], state["loss_count"]
        self.loss_total.fill_(state["loss_sum"])
        rngs, world = state["rng"], self.ctx.world
        if len(rngs) != world:
            self.log(f"[yellow]resuming {len(rngs)} process(es) as {world}: random streams continue from rank 0's")
        set_rng_state(rngs[self.ctx.rank] if len(rngs) == world else rngs[0], self.ctx.device)
        if metrics_file.exists():
            rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
            self.history = [r for r in rows if r["epoch"] <= self.epoch]

    def save_last(self) -> None:
        """last.pt: weights and everything a resume needs (every rank's random state)."""
        rng = [rng_state(self.ctx.device)]
        if self.ctx.world > 1:
            rng = [None] * self.ctx.world
            dist.all_gather_object(rng, rng_state(self.ctx.device))
        if not self.ctx.main:
            return
        state = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict() if self.scaler is not None else None, "rng": rng,
                 "best_value": self.best_value, "loss_sum": float(self.loss_total), "loss_count": self.loss_count,
                 "config": self.config.to_dict(), "world_size": self.ctx.world}
        save_checkpoint(self.model, self.run_dir / "last.pt",
                        meta={"epoch": self.epoch, "global_step": self.global_step}, train_state=state)

    def step(self, batch: dict) -> torch.Tensor:
        """One optimiser step on a batch; returns the batch loss (a 0-d tensor)."""
        device = self.ctx.device
        images = batch["image"].to(device, non_blocking=True)
        if self.cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        target = batch["target"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        autocast = torch.autocast(device.split(":")[0], self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
        with autocast:
            output = self.train_model(images)
        loss = JointsMSELoss()(output.float(), target, weight)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.global_step += 1
        self.step_in_epoch += 1
        loss = loss.detach()
        self.loss_total += loss.double() * len(images)
        self.loss_count += len(images)
        return loss

    def train_epoch(self, bar) -> dict | None:
        """Train the current epoch (from step_in_epoch); the epoch's numbers, or None when max_steps stopped it
        in the middle."""
        config, world = self.config, self.ctx.world
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * config.batch)
        _set_train_mode(self.train_model, config.freeze_bn)
        task = bar.add_task(f"epoch {self.epoch + 1}/{config.epochs}", total=self.steps_per_epoch,
                            completed=self.step_in_epoch, stats="")
        start, wait, samples, shown = time.perf_counter(), 0.0, 0, 0.0
        fetched = time.perf_counter()
        for batch in self.loader:
            wait += time.perf_counter() - fetched
            loss = self.step(batch)
            samples += len(batch["index"])
            if self.on_step is not None:
                self.on_step(self.global_step, float(loss))
            if time.perf_counter() - shown > 1:  # reading the loss waits for the GPU: once a second
                shown = time.perf_counter()
                bar.update(task, stats=f"loss {float(loss):.3g}  lr {self.optimizer.param_groups[0]['lr']:.1e}  "
                                       f"{samples * world / (shown - start):.0f} samples/s")
            bar.advance(task)
            if config.max_steps and self.global_step >= config.max_steps \
                    and self.step_in_epoch < self.steps_per_epoch:
                bar.remove_task(task)
                return None
            fetched = time.perf_counter()
        bar.remove_task(task)
        seconds = time.perf_counter() - start
        totals = torch.stack([self.loss_total, torch.tensor(float(self.loss_count), dtype=torch.float64,
                                                            device=self.ctx.device)])
        if world > 1:
            dist.all_reduce(totals)
        return {"epoch": self.epoch + 1, "step": self.global_step, "loss": float(totals[0] / max(float(totals[1]), 1)),
                "lr": self.optimizer.param_groups[0]["lr"], "samples_per_s": samples * world / seconds,
                "epoch_s": round(seconds, 2), "data_wait": round(wait / seconds, 4), "val": None}

    def end_epoch(self, record: dict) -> None:
        """Scheduler step, validation (rank 0, when due), last.pt / best.pt, metrics.jsonl and curves.png."""
        config = self.config
        self.scheduler.step()
        improved = False
        if self.ctx.main and (record["epoch"] % config.val_every == 0 or record["epoch"] == config.epochs):
            start = time.perf_counter()
            # the live model keeps its memory format (channels_last only on CUDA), so training goes on unchanged
            topdown = TopDownEstimator(TorchBackend(self.model, self.ctx.device, channels_last=self.cuda),
                                       TopDownSettings(flip=config.val_flip, batch=config.batch))
            record["val"] = self.validate(topdown)
            record["val_s"] = round(time.perf_counter() - start, 2)
            value = record["val"][self.metric]
            improved = self.best_value is None or value > self.best_value
            self.best_value = value if improved else self.best_value
        if self.ctx.world > 1:
            dist.barrier()
        self.epoch, self.step_in_epoch, self.loss_count = self.epoch + 1, 0, 0
        self.loss_total.zero_()
        self.history.append(record)
        self.save_last()
        if not self.ctx.main:
            return
        if improved:
            save_checkpoint(self.model, self.run_dir / "best.pt", meta={
                "epoch": record["epoch"], "global_step": self.global_step, "val": record["val"],
                "trained_on": config.data})
        write_metrics(self.run_dir, self.history)
        write_curves(self.run_dir, self.history, self.metric)
        val = "" if record["val"] is None else \
            f"  val {self.metric} {record['val'][self.metric]:.4f} (best {self.best_value:.4f})"
        self.log(f"epoch {record['epoch']}/{config.epochs}  loss {record['loss']:.3g}  lr {record['lr']:.1e}  "
                 f"{record['samples_per_s']:.0f} samples/s  data wait {record['data_wait']:.0%}{val}")

    def run(self) -> TrainResult:
        config = self.config
        self.log(f"training {self.net_config.name} on {len(self.dataset)} people ({config.data}), {self.ctx.world} "
                 f"process(es) x batch {config.batch} on {self.ctx.device}, {self.steps_per_epoch} steps/epoch, "
                 f"amp {self.amp_dtype or 'off'}")
        stopped = False
        with _progress(self.ctx.main and not config.quiet) as bar:
            while self.epoch < config.epochs:
                record = self.train_epoch(bar)
                if record is None:
                    self.save_last()
                    self.log(f"stopped at step {self.global_step} (--max-steps) in epoch {self.epoch + 1}; "
                             f"continue with --resume {self.run_dir / 'last.pt'}")
                    stopped = True
                    break
                self.end_epoch(record)
                if config.max_steps and self.global_step >= config.max_steps:
                    stopped = self.epoch < config.epochs
                    break
        if self.ctx.world > 1:
            dist.barrier()
            if self.ctx.owns_group:
                dist.destroy_process_group()
        best = self.run_dir / "best.pt"
        return TrainResult(self.run_dir, self.run_dir / "last.pt", best if best.exists() else None, self.metric,
                           self.best_value, self.global_step, len(self.history), self.history, stopped)


def train(config: TrainConfig, resume: Path | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run (or with `resume`, continue exactly) a training run; returns where it left everything.

    `resume`: a run's last.pt; `config` must keep the stored recipe (`resume_config` reads it).
    `on_step(global_step, loss)` is called after every optimiser step with this process's batch loss.
    Under torchrun every process calls this; rank 0 writes the run folder.
    """
    return _Run(config, resume, on_step).run()
