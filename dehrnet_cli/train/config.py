"""What a training run is: `TrainConfig` (the paper's recipe as defaults, every value a field) and
`TrainResult` (what the run left).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from dehrnet_cli.datasets.augment import AugmentSettings

DATA_KINDS = ("coco", "mpii", "synthetic", "yolo")

# fields that define what a run computes: a resumed run must keep them
RECIPE_FIELDS = ("model", "model_overrides", "data", "data_root", "train_ann", "train_images", "synthetic_images",
                 "batch", "lr", "lr_steps", "lr_factor", "seed", "augment", "sync_bn", "freeze_bn", "init",
                 "init_backbone", "category", "sigmas", "flip_pairs")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs. data: "coco" | "mpii" | "synthetic" | "yolo"; data_root: the COCO or MPII
    folder (train_ann, train_images, val_ann, val_images override its parts), or the ultralytics data.yaml.
    The keypoint set of coco and yolo data comes from the data: `category` picks a COCO file's keypoint category;
    `sigmas` (COCOeval's scale) and `flip_pairs` (pairs of keypoint names) replace what the data gives or
    implies. max_steps stops early (tests)."""

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
    category: str | None = None
    sigmas: tuple[float, ...] | None = None
    flip_pairs: tuple[tuple[str, str], ...] | None = None

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
        if values.get("sigmas") is not None:
            values["sigmas"] = tuple(values["sigmas"])
        if values.get("flip_pairs") is not None:
            values["flip_pairs"] = tuple(tuple(pair) for pair in values["flip_pairs"])
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
