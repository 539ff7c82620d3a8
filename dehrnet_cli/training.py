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
import datetime as _dt
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from models import PoseHRNet, PoseNetConfig, create_model, get_config, load_model, save_checkpoint
from models.checkpoint import read_checkpoint

from .atomic import atomic_path, write_json_atomic, write_text_atomic
from .backends import TorchBackend, resolve_device
from .cli_common import err_console
from .errors import DehrnetError
from .topdown import TopDownEstimator, TopDownSettings
from .train_data import (
    AugmentSettings,
    EpochSampler,
    TopDownDataset,
    coco_paths,
    coco_records,
    evaluate_pck,
    mpii_paths,
    mpii_records,
)

DATA_KINDS = ("coco", "mpii", "synthetic")
# the official PRETRAINED_LAYERS: what an ImageNet HRNet gives a pose network
BACKBONE_LAYERS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2", "transition2", "stage3",
                   "transition3", "stage4")
# fields that define what a run computes: a resumed run must keep them
RECIPE_FIELDS = ("model", "model_overrides", "data", "data_root", "train_ann", "train_images", "synthetic_images",
                 "batch", "lr", "lr_steps", "lr_factor", "seed", "augment", "sync_bn", "freeze_bn", "init",
                 "init_backbone")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. data: "coco" | "mpii" | "synthetic"; data_root: the COCO or MPII
    folder (train_ann, train_images, val_ann, val_images override its parts). max_steps stops early (tests)."""

    model: str = "dehrnet_w32_384x288"
    model_overrides: dict = field(default_factory=dict)
    data: str = "coco"
    data_root: Path | None = None
    train_ann: Path | None = None
    train_images: Path | None = None
    val_ann: Path | None = None
    val_images: Path | None = None
    val_boxes: Path | None = None  # COCO person detections for validation (default: ground-truth boxes)
    val_headboxes: Path | None = None  # MPII head boxes: validate by PCKh@0.5 (default: PCK@0.1 of the box)
    synthetic_images: int = 2000
    synthetic_val_images: int = 100
    epochs: int = 210
    batch: int = 32  # per process
    lr: float = 1e-3
    lr_steps: tuple[int, ...] = (170, 200)
    lr_factor: float = 0.1
    workers: int | None = None  # DataLoader workers per process; None: min(8, CPUs per process)
    device: str = "auto"
    val_every: int = 5
    val_flip: bool = True
    init: Path | None = None  # a pose checkpoint (dehrnet, official HRNet, mmpose): warm start
    init_backbone: Path | None = None  # an ImageNet HRNet: the BACKBONE_LAYERS only, as the official code
    amp: bool | None = None  # None: on for CUDA, off on CPU
    sync_bn: bool = False
    freeze_bn: bool = False  # BatchNorm keeps its running statistics (small batches, fine-tuning)
    seed: int = 0
    out: Path = Path("runs/train")
    quiet: bool = False
    max_steps: int | None = None
    augment: AugmentSettings = AugmentSettings()

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        values = {k: v for k, v in d.items() if k in {f.name for f in fields(cls)}}
        for key in ("data_root", "train_ann", "train_images", "val_ann", "val_images", "val_boxes", "val_headboxes",
                    "init", "init_backbone", "out"):
            values[key] = None if values.get(key) is None else Path(values[key])
        values["lr_steps"] = tuple(values.get("lr_steps", ()))
        values["augment"] = AugmentSettings(**values.get("augment", {}))
        return cls(**values)


@dataclass
class TrainResult:
    """What a run left: the run folder, its checkpoints, the best validation value and the history."""

    run_dir: Path
    last_path: Path
    best_path: Path | None
    metric: str
    best_value: float | None
    global_step: int
    epochs_done: int
    history: list[dict]
    stopped_early: bool


class JointsMSELoss(nn.Module):
    """Official JointsMSELoss with target weights: mean over joints of 0.5 x MSE(pred x w, target x w).

    output, target: (N, K, H, W); target_weight: (N, K). A joint of weight 0 adds no loss and no gradient.
    """

    def forward(self, output: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
        w = target_weight[:, :, None, None]
        return 0.5 * ((output * w - target * w) ** 2).mean()


@dataclass(frozen=True)
class _Dist:
    rank: int
    world: int
    local_rank: int
    device: str
    owns_group: bool = False  # this run started the process group (and ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(device_flag: str) -> _Dist:
    """Read torchrun's environment; start the process group (NCCL on GPU, gloo on CPU) when WORLD_SIZE > 1."""
    device = resolve_device(device_flag)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(0, 1, 0, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    owns_group = not dist.is_initialized()
    if owns_group:  # validation runs on rank 0 alone while the others wait: a long timeout
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=_dt.timedelta(minutes=60))
    return _Dist(rank, world, local, device, owns_group)


def _rng_state(device: str) -> dict:
    """This process's python, numpy and torch (CPU, CUDA) generator states as weights_only-loadable values."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None}


def _set_rng_state(state: dict, device: str) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.startswith("cuda") and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_backbone(model: PoseHRNet, path: Path) -> int:
    """Copy an ImageNet HRNet's BACKBONE_LAYERS tensors of matching shape into `model`; returns how many."""
    obj = read_checkpoint(Path(path))
    state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), dict) else obj
    own = model.state_dict()
    taken = {k: v for k, v in state.items() if isinstance(v, torch.Tensor) and k.split(".")[0] in BACKBONE_LAYERS
             and k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not taken:
        raise DehrnetError(f"--init-backbone {path}: no backbone tensor fits {model.config.name} (expected an "
                           "ImageNet HRNet of the same width, e.g. hrnet_w32-36af842e.pth)")
    model.load_state_dict(taken, strict=False)
    return len(taken)


def resume_config(path: Path, *, epochs: int | None = None, max_steps: int | None = None, workers: int | None = None,
                  device: str | None = None, val_every: int | None = None, quiet: bool | None = None,
                  out: Path | None = None) -> TrainConfig:
    """The TrainConfig stored in a run's last.pt, with the run-control fields replaced where given (None
    keeps the stored value; max_steps is never kept: a resumed run goes on to `epochs` unless given)."""
    state = _train_state(read_checkpoint(Path(path)), Path(path))
    config = TrainConfig.from_dict(state["config"])
    given = dict(epochs=epochs, workers=workers, device=device, val_every=val_every, quiet=quiet, out=out)
    return replace(config, max_steps=max_steps, **{k: v for k, v in given.items() if v is not None})


def _train_state(obj: dict, path: Path) -> dict:
    state = obj.get("train_state")
    if not isinstance(state, dict):
        raise DehrnetError(f"--resume {path}: not the last.pt of a dehrnet training run (no training state); "
                           "to start from these weights use --init")
    return state


# ----------------------------------------------------------------------------------------------- data


def _datasets(config: TrainConfig, net: PoseNetConfig) -> tuple[TopDownDataset, str, Callable]:
    """The training dataset, the validation metric that picks best.pt, and `validate(topdown) -> {name:
    value}`. Data paths are checked here, before any model is built."""
    if config.data not in DATA_KINDS:
        raise DehrnetError(f"unknown data kind {config.data!r}; use one of {', '.join(DATA_KINDS)}")
    if config.data == "synthetic":
        from .synthetic import SyntheticPeople

        train_set = SyntheticPeople(config.synthetic_images, net, config.augment, config.seed)
        val_set = SyntheticPeople(config.synthetic_val_images, net, None, config.seed + 1_000_003)
        return train_set, "PCK@0.1", lambda topdown: {"PCK@0.1": evaluate_pck(topdown, val_set, 0.1)}
    parts = dict(train_ann=config.train_ann, train_images=config.train_images, val_ann=config.val_ann,
                 val_images=config.val_images)
    if config.data == "coco":
        paths = coco_paths(config.data_root, **parts)
        if net.num_keypoints != 17:
            raise DehrnetError(f"COCO has 17 keypoints; {net.name} predicts {net.num_keypoints}: use a COCO config "
                               "such as dehrnet_w32_384x288")
        if config.val_boxes is not None and not Path(config.val_boxes).is_file():
            raise DehrnetError(f"--val-boxes {config.val_boxes}: no such file")
        train_set = TopDownDataset(coco_records(paths.train_ann, paths.train_images, net), net, config.augment,
                                   config.seed)

        def validate_coco(topdown: TopDownEstimator) -> dict:
            from .evaluation import run_coco_eval

            result = run_coco_eval(topdown, paths.val_images, paths.val_ann, config.val_boxes or "gt", progress=False)
            return dict(result.stats)

        return train_set, "AP", validate_coco
    paths = mpii_paths(config.data_root, **parts)
    train_set = TopDownDataset(mpii_records(paths.train_ann, paths.train_images, net), net, config.augment,
                               config.seed)
    if config.val_headboxes is not None:
        from .evaluation import load_headboxes, load_mpii_annotations, run_mpii_eval

        headboxes = load_headboxes(config.val_headboxes, load_mpii_annotations(paths.val_ann))

        def validate_mpii(topdown: TopDownEstimator) -> dict:
            scored = run_mpii_eval(topdown, paths.val_images, paths.val_ann, headboxes, progress=False)
            return {"PCKh@0.5": scored["PCKh@0.5"]["Mean"]}

        return train_set, "PCKh@0.5", validate_mpii
    val_set = TopDownDataset(mpii_records(paths.val_ann, paths.val_images, net), net, None)
    return train_set, "PCK@0.1", lambda topdown: {"PCK@0.1": evaluate_pck(topdown, val_set, 0.1)}


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _loader(dataset: TopDownDataset, sampler: EpochSampler, config: TrainConfig, cuda: bool
            ) -> torch.utils.data.DataLoader:
    workers = config.workers
    if workers is None:
        per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        workers = min(8, max(1, per_process))
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch, sampler=sampler, num_workers=workers, pin_memory=cuda,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None, worker_init_fn=_worker_init,
        generator=torch.Generator().manual_seed(config.seed))  # keeps the global torch generator untouched


# ---------------------------------------------------------------------------------------------- model


def _build_model(config: TrainConfig, resume_obj: dict | None, log: Callable[[str], None]) -> PoseHRNet:
    _seed_all(config.seed)  # the same initial weights on every rank
    if resume_obj is not None:
        model = create_model(PoseNetConfig.from_dict(resume_obj["config"]))
        model.load_state_dict(resume_obj["state_dict"])
        return model
    net = get_config(config.model, **config.model_overrides)
    if config.init is not None and config.init_backbone is not None:
        raise DehrnetError("give --init (a pose checkpoint) or --init-backbone (an ImageNet HRNet), not both")
    if config.init is not None:
        model = load_model(config.init, net)
        info = model.checkpoint_info
        warm = ", a warm start of the new DE-HRNet parts" if info.warm_start else ""
        log(f"initialised from {config.init} ({info.kind} checkpoint{warm})")
        return model
    model = create_model(net)
    if config.init_backbone is not None:
        log(f"backbone from {config.init_backbone}: {load_backbone(model, config.init_backbone)} tensors")
    return model


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


# ------------------------------------------------------------------------------------------ run folder


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def _write_curves(run_dir: Path, history: list[dict], metric: str) -> None:
    """curves.png: training loss, learning rate and the validation metric per epoch."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(13, 3.6))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
    loss_ax, lr_ax, val_ax = fig.subplots(1, 3)
    loss_ax.plot(epochs, [r["loss"] for r in history], marker=".")
    loss_ax.set(title="training loss", xlabel="epoch", yscale="log")
    lr_ax.plot(epochs, [r["lr"] for r in history], marker=".")
    lr_ax.set(title="learning rate", xlabel="epoch", yscale="log")
    validated = [r for r in history if r.get("val")]
    val_ax.plot([r["epoch"] for r in validated], [r["val"][metric] for r in validated], marker="o")
    val_ax.set(title=f"validation {metric}", xlabel="epoch")
    for ax in (loss_ax, lr_ax, val_ax):
        ax.grid(alpha=0.3)
    with atomic_path(run_dir / "curves.png") as tmp:
        fig.savefig(tmp, dpi=90)


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True, disable=not (enabled and err_console.is_terminal))


# ----------------------------------------------------------------------------------------------- train


def _check_start(config: TrainConfig, resume: Path | None) -> tuple[dict | None, dict | None]:
    """(checkpoint, training state) of `resume`, after checking that `config` keeps its recipe; or refuse to
    start a new run over an existing one."""
    if min(config.epochs, config.batch, config.val_every, config.max_steps or 1) < 1 or not config.lr > 0:
        raise DehrnetError(f"epochs {config.epochs}, batch {config.batch}, val_every {config.val_every} and max_steps "
                           f"{config.max_steps} must be >= 1, lr {config.lr} > 0")
    if resume is None:
        if (Path(config.out) / "last.pt").exists():
            raise DehrnetError(f"--out {config.out} already holds a training run (last.pt): continue it with "
                               f"--resume {Path(config.out) / 'last.pt'}, or choose another --out")
        return None, None
    obj = read_checkpoint(Path(resume))
    state = _train_state(obj, Path(resume))
    stored = TrainConfig.from_dict(state["config"])
    changed = [k for k in RECIPE_FIELDS if getattr(stored, k) != getattr(config, k)]
    if changed:
        raise DehrnetError(f"--resume {resume}: {', '.join(changed)} differ from the stored run; a resumed run keeps "
                           "its recipe (use resume_config, or start a new run with --init)")
    return obj, state


class _Run:
    """One process's share of a training run: model, optimiser, data and the run folder (rank 0)."""

    def __init__(self, config: TrainConfig, resume: Path | None, on_step: Callable[[int, float], None] | None):
        resume_obj, state = _check_start(config, resume)
        self.config, self.on_step, self.run_dir = config, on_step, Path(config.out)
        self.ctx = ctx = _setup_distributed(config.device)
        self.cuda = ctx.device.startswith("cuda")
        net = PoseNetConfig.from_dict(resume_obj["config"]) if resume_obj else \
            get_config(config.model, **config.model_overrides)
        self.net_config = net
        self.dataset, self.metric, self.validate = _datasets(config, net)
        if len(self.dataset) == 0:
            raise DehrnetError("the training annotations hold no usable person (none with labelled keypoints)")
        model = _build_model(config, resume_obj, self.log).to(ctx.device)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            model = model.to(memory_format=torch.channels_last)
        if config.sync_bn and ctx.world > 1 and self.cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif config.sync_bn:
            self.log("[yellow]--sync-bn: ignored (SyncBatchNorm needs several CUDA processes)")
        self.model = model
        self.train_model = model if ctx.world == 1 else \
            nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if self.cuda else None)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.lr_steps), config.lr_factor)
        self.amp_dtype = _amp_dtype(config, ctx.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.sampler = EpochSampler(self.dataset, ctx.world, ctx.rank, config.seed)
        self.loader = _loader(self.dataset, self.sampler, config, self.cuda)
        self.steps_per_epoch = -(-len(self.sampler.inner) // config.batch)
        self.epoch = self.step_in_epoch = self.global_step = self.loss_count = 0
        self.best_value: float | None = None
        self.history: list[dict] = []
        self.loss_total = torch.zeros((), dtype=torch.float64, device=ctx.device)  # this epoch's sum of loss x n
        _seed_all(config.seed + ctx.rank)  # dropout differs between ranks
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
            err_console.print(text, highlight=False)

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
        _set_rng_state(rngs[self.ctx.rank] if len(rngs) == world else rngs[0], self.ctx.device)
        if metrics_file.exists():
            rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
            self.history = [r for r in rows if r["epoch"] <= self.epoch]

    def save_last(self) -> None:
        """last.pt: weights and everything a resume needs (every rank's random state)."""
        rng = [_rng_state(self.ctx.device)]
        if self.ctx.world > 1:
            rng = [None] * self.ctx.world
            dist.all_gather_object(rng, _rng_state(self.ctx.device))
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
        _write_metrics(self.run_dir, self.history)
        _write_curves(self.run_dir, self.history, self.metric)
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
