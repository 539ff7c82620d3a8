"""Exact resume: reading a run's last.pt back into a TrainConfig, and refusing a resume that changes the
recipe or a new run over an existing one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.train.config import RECIPE_FIELDS, TrainConfig
from dehrnet_cli.train.run_folder import check_run_folder
from models.checkpoint import read_checkpoint


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


def check_start(config: TrainConfig, resume: Path | None) -> tuple[dict | None, dict | None]:
    """(checkpoint, training state) of `resume`, after checking that `config` keeps its recipe; or refuse to
    start a new run over an existing one."""
    if min(config.epochs, config.batch, config.val_every, config.max_steps or 1) < 1 or not config.lr > 0:
        raise DehrnetError(f"epochs {config.epochs}, batch {config.batch}, val_every {config.val_every} and max_steps "
                           f"{config.max_steps} must be >= 1, lr {config.lr} > 0")
    check_run_folder(Path(config.out), {"--init": config.init, "--init-backbone": config.init_backbone,
                                         "--train-ann": config.train_ann, "--val-ann": config.val_ann,
                                         "--val-boxes": config.val_boxes, "--val-headboxes": config.val_headboxes})
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
