"""What reduced precision does to a trained model's keypoints: the numbers behind the precision check's
tolerances (dehrnet_cli/precision/model_check.py, docs/precision.md).

For each path (torch bf16, OpenVINO fp32 / bf16 / int8) against torch fp32, on held-out synthetic people and on
the people of the images bundled with ultralytics, flip test on, it prints the visible joints (fp32 score >= 0.2),
the fraction that moved at most 0, 0.25, 0.5, 0.75 and 1 heatmap pixel, the largest move and the largest score
difference, and the check's verdict.

    python scripts/measure_precision_check.py --weights synthetic_dehrnet_w8_128x96.pt
    python scripts/measure_precision_check.py            # trains the guard's model first (about 12 min, 2 cores)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from dehrnet_cli.datasets.synthetic import SyntheticPeople
from dehrnet_cli.export.onnx import export_onnx
from dehrnet_cli.pose.backends import TorchBackend
from dehrnet_cli.pose.geometry import warp_crops
from dehrnet_cli.pose.openvino_backend import OpenVinoBackend
from dehrnet_cli.precision import model_check
from models import load_model

THRESHOLDS = (0.0, 0.25, 0.5, 0.75, 1.0)


def synthetic_crops(config, count: int, seed: int = 1_000_003) -> np.ndarray:
    """Crops of `count` synthetic people: seed 1_000_003 gives the guard's held-out scenes, 0 its training ones."""
    people = SyntheticPeople(count, config, None, seed=seed)
    return np.concatenate([warp_crops(people.load_image(r), r.center[None].astype(np.float32),
                                      r.scale[None].astype(np.float32), config.input_size)
                           for r in people.records[:count]])


def report(name: str, reference, candidate, crops: np.ndarray) -> None:
    ref_xy, ref_scores = model_check._keypoints(reference, crops, flip=True)
    cand_xy, cand_scores = model_check._keypoints(candidate, crops, flip=True)
    visible = ref_scores >= model_check.VISIBLE_SCORE
    moves = np.linalg.norm(cand_xy.astype(np.float64) - ref_xy, axis=-1)[visible]
    within = "  ".join(f"<={t:.2f}: {100 * (moves <= t + 1e-9).mean():5.1f} %" for t in THRESHOLDS)
    scores = np.abs(cand_scores.astype(np.float64) - ref_scores)
    verdict = model_check.compare_paths(reference, candidate, crops, name)
    print(f"{name:22s} {visible.sum():4d} visible  {within}  worst {moves.max():.2f} px  "
          f"score worst {scores.max():.4f} p99 {np.percentile(scores, 99):.4f}  "
          f"-> {'passed' if verdict.passed else 'refused'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="a trained dehrnet checkpoint (default: train the guard's)")
    parser.add_argument("--crops", type=int, default=100, help="held-out synthetic people")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also NNCF int8 (calibrated on 64 training scenes)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    weights = args.weights
    if weights is None:
        from dehrnet_cli.precision.guard import ensure_guard_model

        weights = ensure_guard_model()
    config = load_model(weights).config
    reference = TorchBackend(load_model(weights), "cpu")
    with tempfile.TemporaryDirectory() as folder:
        onnx = export_onnx(load_model(weights), Path(folder) / "m.onnx", check=False, sampler="grid_sample").path
        paths = {"bf16 torch cpu": TorchBackend(load_model(weights), "cpu", precision="bf16"),
                 "fp32 openvino cpu": OpenVinoBackend(onnx, "fp32", args.threads, cache=False),
                 "bf16 openvino cpu": OpenVinoBackend(onnx, "bf16", args.threads, cache=False)}
        if args.int8:
            from dehrnet_cli.export.openvino_int8 import quantize_openvino

            calibration = synthetic_crops(config, 64, seed=0)  # the training scenes, not the held-out ones
            int8 = quantize_openvino(onnx, Path(folder) / "m.int8.xml", calibration)
            paths["int8 openvino cpu"] = OpenVinoBackend(int8, "int8", args.threads, cache=False)
        sets = {"synthetic people": synthetic_crops(config, args.crops),
                "bundled images": model_check.reference_crops(config)}
        for set_name, crops in sets.items():
            print(f"{set_name}: {len(crops)} crops of {config.name} ({weights})")
            for name, backend in paths.items():
                report(name, reference, backend, crops)


if __name__ == "__main__":
    main()
