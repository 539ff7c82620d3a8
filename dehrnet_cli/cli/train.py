"""`dehrnet train`: parse the options into a TrainConfig and make one call to `train.loop.train`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import typer

from dehrnet_cli.cli.command import command, console
from dehrnet_cli.errors import DehrnetError

# the named config each kind of data trains when --config is not given
DEFAULT_MODELS = {"coco": "dehrnet_w32_384x288", "mpii": "dehrnet_w32_mpii_256x256", "synthetic": "dehrnet_w8_128x96",
                  "yolo": "dehrnet_w32_384x288"}


def _parse_steps(text: str | None) -> tuple[int, ...] | None:
    """'170,200' -> (170, 200)."""
    if text is None:
        return None
    try:
        steps = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise DehrnetError(f"--lr-steps {text!r}: expected epochs separated by commas, e.g. 170,200") from None
    if any(s < 1 for s in steps) or list(steps) != sorted(steps):
        raise DehrnetError(f"--lr-steps {text!r}: epochs must be >= 1 and increasing, e.g. 170,200")
    return steps


def _parse_sigmas(text: str | None) -> tuple[float, ...] | None:
    """'0.026,0.025' -> (0.026, 0.025)."""
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise DehrnetError(f"--sigmas {text!r}: expected one number per keypoint separated by commas, on COCOeval's "
                           "scale (COCO nose 0.026)") from None


def _parse_flip_pairs(text: str | None) -> tuple[tuple[str, str], ...] | None:
    """'left_paw:right_paw,ear_a:ear_b' -> (("left_paw", "right_paw"), ("ear_a", "ear_b")); '' -> no pairs."""
    if text is None:
        return None
    pairs = [tuple(item.split(":")) for item in text.replace(" ", "").split(",") if item]
    if not all(len(pair) == 2 and all(pair) for pair in pairs):
        raise DehrnetError(f"--flip-pairs {text!r}: expected pairs of keypoint names, e.g. left_paw:right_paw,a:b")
    return tuple(pairs)


def _data_kind(coco: Path | None, mpii: Path | None, synthetic: int | None, data: Path | None) -> str:
    given = [name for name, value in (("--coco", coco), ("--mpii", mpii), ("--synthetic", synthetic),
                                      ("--data", data)) if value is not None]
    if len(given) > 1:
        raise DehrnetError(f"give one data source, not {' and '.join(given)}")
    return "mpii" if mpii is not None else "synthetic" if synthetic is not None else \
        "yolo" if data is not None else "coco"


def _init_path(init: str | None) -> Path | None:
    """--init FILE, or a registry name (dehrnet weights list) resolved and downloaded on first use."""
    if init is None or Path(init).exists():
        return None if init is None else Path(init)
    from dehrnet_cli.weights.cache import resolve
    from dehrnet_cli.weights.manifest import load_manifest

    if init in load_manifest():
        return resolve(init)
    raise DehrnetError(f"--init {init}: no such file, and not a registry name (see: dehrnet weights list)")


@command("train")
def train_command(
    config: str = typer.Option(None, "--config", help="Named architecture (default: dehrnet_w32_384x288 for "
                               "COCO-format and --data, dehrnet_w32_mpii_256x256 for MPII, dehrnet_w8_128x96 for "
                               "--synthetic); the keypoints follow the data."),
    coco: Path = typer.Option(None, "--coco", help="COCO folder: train2017/, val2017/, annotations/."),
    data: Path = typer.Option(None, "--data", help="An ultralytics pose data.yaml (path, train, val, kpt_shape, "
                              "flip_idx, names; labels/*.txt)."),
    mpii: Path = typer.Option(None, "--mpii", help="MPII folder: images/, annot/train.json, annot/valid.json."),
    synthetic: int = typer.Option(None, "--synthetic", help="Train on N generated stick-figure images (demo)."),
    train_ann: Path = typer.Option(None, "--train-ann", help="Training annotation file (overrides the layout)."),
    val_ann: Path = typer.Option(None, "--val-ann", help="Validation annotation file."),
    category: str = typer.Option(None, "--category", help="The keypoint category of a COCO file that has several."),
    sigmas: str = typer.Option(None, "--sigmas", help="OKS sigmas, one per keypoint, COCOeval's scale (COCO nose "
                               "0.026) [the data's kpt_oks_sigmas, else 0.05 each]."),
    flip_pairs: str = typer.Option(None, "--flip-pairs", help="Left/right keypoint pairs, e.g. "
                                   "left_paw:right_paw,a:b [flip_idx, else left_*/right_*, l_*/r_* names]."),
    train_images: Path = typer.Option(None, "--train-images", help="Training image folder."),
    val_images: Path = typer.Option(None, "--val-images", help="Validation image folder."),
    val_boxes: Path = typer.Option(None, "--val-boxes", help="COCO person detections json for validation "
                                   "(default: ground-truth boxes)."),
    val_headboxes: Path = typer.Option(None, "--val-headboxes", help="MPII head boxes (gt_valid.mat or json): "
                                       "validate by PCKh@0.5 instead of PCK@0.1 of the box."),
    epochs: int = typer.Option(None, "--epochs", help="Epochs in all [210]."),
    batch: int = typer.Option(None, "--batch", help="Batch per GPU / process [32]."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate [1e-3]."),
    lr_steps: str = typer.Option(None, "--lr-steps", help="Epochs after which lr drops x0.1 [170,200]."),
    workers: int = typer.Option(None, "--workers", help="DataLoader workers per process [min(8, CPUs)]."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N [auto; torchrun: LOCAL_RANK]."),
    val_every: int = typer.Option(None, "--val-every", help="Validate every N epochs (and after the last) [5]."),
    init: str = typer.Option(None, "--init", help="Warm start from a pose checkpoint file or registry name "
                             "(HRNet -> DE-HRNet; another keypoint set: all but the final layer)."),
    init_backbone: Path = typer.Option(None, "--init-backbone", help="ImageNet HRNet weights for the backbone, "
                                       "as the official recipe (e.g. hrnet_w32-36af842e.pth)."),
    resume: Path = typer.Option(None, "--resume", help="Continue a run exactly from its last.pt."),
    amp: bool = typer.Option(None, "--amp/--no-amp", help="Mixed precision (bf16, else fp16) [on for CUDA]."),
    sync_bn: bool = typer.Option(None, "--sync-bn", help="SyncBatchNorm across GPUs (torchrun)."),
    freeze_bn: bool = typer.Option(None, "--freeze-bn", help="Keep BatchNorm statistics fixed (fine-tuning)."),
    seed: int = typer.Option(None, "--seed", help="Random seed [0]."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder [runs/train; with --resume: its folder]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or epoch lines."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after this many optimiser steps (tests)."),
) -> None:
    """Train a pose model with the paper's recipe (Adam 1e-3, x0.1 at 170/200, 210 epochs, batch 32 per GPU,
    scale +-32 %, rotation, flip, half-body). Writes last.pt, best.pt, metrics.jsonl, config.json and
    curves.png into the run folder; best.pt loads in predict, eval and export.

    Examples:
      dehrnet train --config dehrnet_w32_384x288 --coco /data/coco --out runs/exp1
      dehrnet train --data animals/data.yaml --init hrnet_w32.coco_384x288 --out runs/animals
      dehrnet train --train-ann train.json --train-images imgs --val-ann val.json --val-images imgs --out runs/own
      torchrun --nproc-per-node 8 -m dehrnet_cli train --coco /data/coco --out runs/exp1 --sync-bn
      dehrnet train --coco /data/coco --init pose_hrnet_w32_384x288.pth --out runs/warm
      dehrnet train --resume runs/exp1/last.pt
      dehrnet train --mpii /data/mpii --out runs/mpii
      dehrnet train --synthetic 2000 --epochs 5 --device cpu --out runs/demo
    """
    from dehrnet_cli.train.config import TrainConfig
    from dehrnet_cli.train.loop import train
    from dehrnet_cli.train.resume import resume_config

    run_control = dict(epochs=epochs, max_steps=max_steps, workers=workers, device=device, val_every=val_every,
                       quiet=quiet or None, out=out)
    recipe = {"--config": config, "--coco": coco, "--mpii": mpii, "--synthetic": synthetic,
              "--train-ann": train_ann, "--val-ann": val_ann, "--train-images": train_images,
              "--val-images": val_images, "--val-boxes": val_boxes, "--val-headboxes": val_headboxes,
              "--batch": batch, "--lr": lr, "--lr-steps": lr_steps, "--init": init,
              "--init-backbone": init_backbone, "--amp": amp, "--sync-bn": sync_bn, "--freeze-bn": freeze_bn,
              "--seed": seed, "--data": data, "--category": category, "--sigmas": sigmas, "--flip-pairs": flip_pairs}
    if resume is not None:
        given = [flag for flag, value in recipe.items() if value is not None]
        if given:
            raise DehrnetError(f"--resume continues a run with its stored recipe; drop {', '.join(given)} "
                               "(or start a new run with --init)")
        run_config = resume_config(resume, **{**run_control, "out": out or Path(resume).parent})
    else:
        kind = _data_kind(coco, mpii, synthetic, data)
        values = dict(model=config or DEFAULT_MODELS[kind], data=kind, data_root=coco or mpii or data,
                      category=category, sigmas=_parse_sigmas(sigmas), flip_pairs=_parse_flip_pairs(flip_pairs),
                      synthetic_images=synthetic, train_ann=train_ann, val_ann=val_ann, train_images=train_images,
                      val_images=val_images, val_boxes=val_boxes, val_headboxes=val_headboxes, batch=batch, lr=lr,
                      lr_steps=_parse_steps(lr_steps), init=_init_path(init), init_backbone=init_backbone, amp=amp,
                      sync_bn=sync_bn, freeze_bn=freeze_bn, seed=seed, **run_control)
        run_config = replace(TrainConfig(), **{k: v for k, v in values.items() if v is not None})
    result = train(run_config, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0 or run_config.quiet:
        return
    best = "no validation yet" if result.best_value is None else \
        f"best {result.metric} {result.best_value:.4f}: {result.best_path}"
    state = "stopped early" if result.stopped_early else "done"
    console.print(f"{state} after {result.global_step} steps ({result.epochs_done} epochs); {best}; "
                  f"run folder {result.run_dir}", highlight=False)
