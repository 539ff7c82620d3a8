"""The data of a run: the training dataset for --coco (or any COCO-format file) / --mpii / --synthetic /
--data (ultralytics pose), the keypoint set the data defines, the validation that picks best.pt, and the
DataLoader. Data paths and annotations are checked here, before any model is built.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from dehrnet_cli.datasets.coco import CocoKeypointFile, coco_paths
from dehrnet_cli.datasets.mpii import mpii_paths, mpii_records
from dehrnet_cli.datasets.topdown_dataset import TopDownDataset
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.eval.pck import evaluate_pck
from dehrnet_cli.pose.topdown import TopDownEstimator
from dehrnet_cli.train.config import DATA_KINDS, TrainConfig
from dehrnet_cli.train.sampler import EpochSampler
from models import PoseNetConfig


def training_data(config: TrainConfig, arch: PoseNetConfig) -> tuple[TopDownDataset, str, Callable, PoseNetConfig]:
    """The training dataset, the validation metric that picks best.pt, `validate(topdown) -> {name: value}` and
    the network config to train: `arch` with the data's keypoint set for COCO-format and ultralytics data (the
    head follows the data), `arch` itself for MPII and synthetic people. Data paths and every annotation are
    checked here, before any model is built."""
    if config.data not in DATA_KINDS:
        raise DehrnetError(f"unknown data kind {config.data!r}; use one of {', '.join(DATA_KINDS)}")
    if config.data in ("mpii", "synthetic"):
        given = [flag for flag, value in (("--category", config.category), ("--sigmas", config.sigmas),
                                          ("--flip-pairs", config.flip_pairs)) if value is not None]
        if given:
            raise DehrnetError(f"{', '.join(given)}: only for data that defines its keypoints (a COCO-format file or "
                               f"--data data.yaml), not {config.data}")
    if config.data == "synthetic":
        from dehrnet_cli.datasets.synthetic import SyntheticPeople

        train_set = SyntheticPeople(config.synthetic_images, arch, config.augment, config.seed)
        val_set = SyntheticPeople(config.synthetic_val_images, arch, None, config.seed + 1_000_003)
        return train_set, "PCK@0.1", lambda topdown: {"PCK@0.1": evaluate_pck(topdown, val_set, 0.1)}, arch
    if config.data == "yolo":
        return _yolo_data(config, arch)
    parts = dict(train_ann=config.train_ann, train_images=config.train_images, val_ann=config.val_ann,
                 val_images=config.val_images)
    if config.data == "coco":
        paths = coco_paths(config.data_root, **parts)
        if config.val_boxes is not None and not Path(config.val_boxes).is_file():
            raise DehrnetError(f"--val-boxes {config.val_boxes}: no such file")
        train_file = CocoKeypointFile.read(paths.train_ann, "--train-ann")
        category = train_file.category(config.category)
        net = replace(arch, keypoints=train_file.keypoint_set(category, config.sigmas, config.flip_pairs))
        train_set = TopDownDataset(train_file.records(paths.train_images, net, category), net, config.augment,
                                   config.seed)
        val_file = CocoKeypointFile.read(paths.val_ann, "--val-ann")
        _check_same_keypoints(val_file.category(config.category, net.keypoints.names), net, val_file.source)

        def validate_coco(topdown: TopDownEstimator) -> dict:
            from dehrnet_cli.eval.run import run_coco_eval

            result = run_coco_eval(topdown, paths.val_images, val_file.doc, config.val_boxes or "gt", progress=False,
                                   category=config.category)  # the document read above: not parsed every epoch
            return dict(result.stats)

        return train_set, "AP", validate_coco, net
    paths = mpii_paths(config.data_root, **parts)
    train_set = TopDownDataset(mpii_records(paths.train_ann, paths.train_images, arch), arch, config.augment,
                               config.seed)
    if config.val_headboxes is not None:
        from dehrnet_cli.datasets.mpii import load_mpii_annotations
        from dehrnet_cli.eval.mpii import load_headboxes
        from dehrnet_cli.eval.run import run_mpii_eval

        headboxes = load_headboxes(config.val_headboxes, load_mpii_annotations(paths.val_ann))

        def validate_mpii(topdown: TopDownEstimator) -> dict:
            scored = run_mpii_eval(topdown, paths.val_images, paths.val_ann, headboxes, progress=False)
            return {"PCKh@0.5": scored["PCKh@0.5"]["Mean"]}

        return train_set, "PCKh@0.5", validate_mpii, arch
    val_set = TopDownDataset(mpii_records(paths.val_ann, paths.val_images, arch), arch, None)
    return train_set, "PCK@0.1", lambda topdown: {"PCK@0.1": evaluate_pck(topdown, val_set, 0.1)}, arch


def _check_same_keypoints(category: dict, net: PoseNetConfig, source: str) -> None:
    if tuple(category["keypoints"]) != net.keypoints.names:
        raise DehrnetError(f"{source}: category {category.get('name')!r} has the keypoints "
                           f"{', '.join(category['keypoints'])}; the training data has "
                           f"{', '.join(net.keypoints.names)}")


def _yolo_data(config: TrainConfig, arch: PoseNetConfig) -> tuple[TopDownDataset, str, Callable, PoseNetConfig]:
    """An ultralytics pose data set (`datasets.yolo_pose`): train on its train split, validate (COCO keypoint AP
    on the labelled boxes) on its val split; every label line of both is read now."""
    from dehrnet_cli.datasets.yolo_pose import coco_document, read_data_yaml, yolo_keypoint_set

    if config.category is not None:
        raise DehrnetError("--category picks a category of a COCO file; an ultralytics data set has one keypoint set")
    data = read_data_yaml(Path(config.data_root))
    net = replace(arch, keypoints=yolo_keypoint_set(data, config.sigmas, config.flip_pairs))
    train_doc = coco_document(data, "train", net.keypoints)
    val_doc = coco_document(data, "val", net.keypoints)
    train_file = CocoKeypointFile(train_doc, f"--data {data.yaml_path} (train)")
    train_set = TopDownDataset(train_file.records(data.root, net, train_doc["categories"][0]), net, config.augment,
                               config.seed)

    def validate_yolo(topdown: TopDownEstimator) -> dict:
        from dehrnet_cli.eval.run import run_coco_eval

        return dict(run_coco_eval(topdown, data.root, val_doc, "gt", progress=False).stats)

    return train_set, "AP", validate_yolo, net


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
