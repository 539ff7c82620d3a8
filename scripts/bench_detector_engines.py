"""The YOLO person detector on torch and on ultralytics' OpenVINO export: ms per frame (alternated rounds, median)
and how far the boxes move (docs/benchmarks.md, "CPU engines").

Boxes: each torch box is matched to the OpenVINO box of highest IoU on the same frame; printed are the boxes of
each, the smallest matched IoU, the largest corner difference (pixels) and the largest score difference.

    python scripts/bench_detector_engines.py --weights yolo26n.pt --images DIR [--conf 0.25] [--rounds 7]
    python scripts/bench_detector_engines.py --weights yolo26n.yaml     # random weights: speed only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dehrnet_cli.detect.yolo import YoloPersonDetector
from dehrnet_cli.sources.images import read_image
from dehrnet_cli.stage_data import Detections, Frame


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area_a, area_b = (a[:, 2:] - a[:, :2]).prod(-1), (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def compare(torch_dets: list[Detections], openvino_dets: list[Detections]) -> str:
    counts = f"{sum(len(d) for d in torch_dets)} torch boxes, {sum(len(d) for d in openvino_dets)} OpenVINO boxes"
    ious, corners, scores = [], [], []
    for a, b in zip(torch_dets, openvino_dets):
        if len(a) and len(b):
            iou = box_iou(a.boxes_xyxy, b.boxes_xyxy)
            best = iou.argmax(1)
            ious.append(iou.max(1))
            corners.append(np.abs(a.boxes_xyxy - b.boxes_xyxy[best]).max(1))
            scores.append(np.abs(a.scores - b.scores[best]))
    if not ious:
        return counts
    return (f"{counts}; matched: smallest IoU {np.concatenate(ious).min():.4f}, largest corner move "
            f"{np.concatenate(corners).max():.2f} px, largest score change {np.concatenate(scores).max():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="yolo26n.yaml", help=".pt (boxes compared) or .yaml (random weights)")
    parser.add_argument("--images", type=Path, help="a folder of images to compare the boxes on")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights
        if weights.endswith((".yaml", ".yml")):  # random weights saved as a .pt, so that there is one to export
            from ultralytics import YOLO

            weights = str(Path(folder) / f"{Path(weights).stem}.pt")
            YOLO(args.weights).save(weights)
        detectors = {engine: YoloPersonDetector(weights, conf=args.conf, device="cpu", engine=engine)
                     for engine in ("torch", "openvino")}
        if args.images:
            images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            frames = [Frame(i, read_image(p)) for i, p in enumerate(images)]
            found = {engine: detector(frames) for engine, detector in detectors.items()}
            print(f"{len(frames)} images, conf {args.conf}: {compare(found['torch'], found['openvino'])}")
        video = [Frame(i, np.random.default_rng(i).integers(0, 256, (720, 1280, 3), dtype=np.uint8)) for i in range(4)]
        for detector in detectors.values():
            detector(video)  # warm-up
        ms: dict[str, list[float]] = {engine: [] for engine in detectors}
        for _ in range(args.rounds):
            for engine, detector in detectors.items():
                start = time.perf_counter()
                detector(video)
                ms[engine].append((time.perf_counter() - start) / len(video) * 1000)
    for engine, times in ms.items():
        print(f"{engine:>8}: 1280x720, 4 frames a call: median {np.median(times):.1f} ms/frame "
              f"({min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()
