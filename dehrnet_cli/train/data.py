"""The data of a run: the training dataset for --coco / --mpii / --synthetic, the validation that picks
best.pt, and the DataLoader. Data paths are checked here, before any model is built.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import torch

from dehrnet_cli.datasets.coco import coco_paths, coco_records
from dehrnet_cli.datasets.mpii import mpii_paths, mpii_records
from dehrnet_cli.datasets.topdown_dataset import TopDownDataset
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.pck import evaluate_pck
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.train.config import DATA_KINDS, TrainConfig
from dehrnet_cli.train.sampler import EpochSampler
from models import PoseNetConfig


def training_data(config: TrainConfig, net: PoseNetConfig) -> tuple[TopDownDataset, str, Callable]:
    """The training dataset, the validation metric that picks best.pt, and `validate(topdown) -> {name:
    value}`. Data paths are checked here, before any model is built."""
    if config.data not in DATA_KINDS:
        raise DehrnetError(f"unknown data kind {config.data!r}; use one of {', '.join(DATA_KINDS)}")
    if config.data == "synthetic":
        from dehrnet_cli.datasets.synthetic import SyntheticPeople

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
            from dehrnet_cli.eval.run import run_coco_eval

            result = run_coco_eval(topdown, paths.val_images, paths.val_ann, config.val_boxes or "gt", progress=False)
            return dict(result.stats)

        return train_set, "AP", validate_coco
    paths = mpii_paths(config.data_root, **parts)
    train_set = TopDownDataset(mpii_records(paths.train_ann, paths.train_images, net), net, config.augment,
                               config.seed)
    if config.val_headboxes is not None:
        from dehrnet_cli.datasets.mpii import load_mpii_annotations
        from dehrnet_cli.eval.mpii import load_headboxes
        from dehrnet_cli.eval.run import run_mpii_eval

        headboxes = load_headboxes(config.val_headboxes, load_mpii_annotations(paths.val_ann))

        def validate_mpii(topdown: TopDownEstimator) -> dict:
            scored = run_mpii_eval(topdown, paths.val_images, paths.val_ann, headboxes, progress=False)
            return {"PCKh@0.5": scored["PCKh@0.5"]["Mean"]}

        return train_set, "PCKh@0.5", validate_mpii
    val_set = TopDownDataset(mpii_records(paths.val_ann, paths.val_images, net), net, None)
    return train_set, "PCK@0.1", lambda topdown: {"PCK@0.1": evaluate_pck(topdown, val_set, 0.1)}


# Workers start from a fresh process (forkserver; spawn where it is missing), not from a fork of this one: a fork
# copies the thread pools of OpenCV, OpenMP and ONNX Runtime with their locks in whatever state they were in, and a
# forked worker once hung for good inside cv2.setNumThreads(1) after the parent had run OpenCV in parallel.
WORKER_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(dataset: TopDownDataset, sampler: EpochSampler, config: TrainConfig, cuda: bool
            ) -> torch.utils.data.DataLoader:
    workers = config.workers
    if workers is None:
        per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        workers = min(8, max(1, per_process))
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch, sampler=sampler, num_workers=workers, pin_memory=cuda,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None, worker_init_fn=_worker_init,
        multiprocessing_context=WORKER_START_METHOD if workers > 0 else None,
        generator=torch.Generator().manual_seed(config.seed))  # keeps the global torch generator untouched
