"""From the user's model flags to a running backend: precision, the accuracy guard, cached exports.

fp32 runs as asked (torch or ONNX Runtime). A reduced-precision path (bf16, fp16, int8) first passes the
accuracy guard on this machine (precision.guard: a model trained on synthetic people, fp32 vs the path,
refused when it loses more than 1 PCK point); the verdict is cached, so only the first use pays for it.
int8 runs an ONNX Runtime model quantized from the checkpoint, cached next to the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, OnnxBackend, TorchBackend
from models import PoseHRNet

if TYPE_CHECKING:
    from dehrnet_cli.precision.guard import GuardReport


Log = Callable[[str], None]


def _cached_export(model: PoseHRNet, weights: Path | None, suffix: str) -> tuple[Path, bool]:
    """(path, exists) of the cached export of `model` (keyed by the checkpoint's content; random weights
    get one file per architecture, rewritten every time)."""
    from dehrnet_cli.weights.cache import weights_dir

    if weights is None:
        return weights_dir() / "onnx" / f"{model.config.name}-untrained{suffix}", False
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    out = weights_dir() / "onnx" / f"{Path(weights).stem}-{digest}{suffix}"
    return out, out.exists()


def onnx_for(model: PoseHRNet, weights: Path | None, device: str, untrained: bool = False) -> Path:
    """An fp32 ONNX export of `model`, cached, so `--backend onnx --weights file.pt` exports once; `untrained`
    (random weights) is written into its metadata."""
    from dehrnet_cli.export.onnx import export_onnx

    out, cached = _cached_export(model, weights, ".onnx")
    if not cached:
        export_onnx(model, out, check=False, device="cpu" if device == "cpu" else device, untrained=untrained)
    return out


def int8_onnx_for(model: PoseHRNet, weights: Path | None, calib: Path | None, log: Log,
                  untrained: bool = False) -> Path:
    """An int8 ONNX model quantized from `model`, calibrated on crops of the images in `calib` (default: the
    sample images bundled with ultralytics), cached next to the fp32 export."""
    from dehrnet_cli.export.calibration import calibration_crops
    from dehrnet_cli.export.quantize import quantize_onnx

    out, cached = _cached_export(model, weights, ".int8.onnx")
    if cached and calib is None:
        return out
    fp32 = onnx_for(model, weights, "cpu", untrained)
    crops = calibration_crops(calib, model.config)
    log(f"quantizing {model.config.name} to int8 once, calibrated on {len(crops)} crops from "
        f"{calib or 'the bundled sample images'} (W32 on 2 CPU cores: several minutes)")
    return quantize_onnx(fp32, out, crops)


def _guard_int8(model: PoseHRNet) -> Backend:
    """The int8 path on the guard model: exported, calibrated on synthetic training scenes."""
    import tempfile

    from dehrnet_cli.datasets.synthetic import SyntheticPeople
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.export.quantize import quantize_onnx
    from dehrnet_cli.pose.geometry import warp_crops

    cfg = model.config
    people = SyntheticPeople(96, cfg, None, seed=0)  # the training distribution, not the held-out scenes
    crops = np.concatenate([warp_crops(people.load_image(r), r.center[None].astype(np.float32),
                                       r.scale[None].astype(np.float32), cfg.input_size) for r in people.records])
    with tempfile.TemporaryDirectory(prefix="dehrnet-guard-") as folder:  # the session keeps the model in memory
        fp32 = export_onnx(model, Path(folder) / "guard.onnx", check=False).path
        return OnnxBackend(quantize_onnx(fp32, Path(folder) / "guard.int8.onnx", crops), "cpu")


def guard_report(precision: str, device: str, log: Log, fresh: bool = False) -> GuardReport:
    """The accuracy guard's verdict on `precision` on `device` (cached per machine unless `fresh`)."""
    from dehrnet_cli.precision.guard import guard_path

    if precision == "int8":
        return guard_path("int8 onnx cpu", _guard_int8, log=log, fresh=fresh)
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return guard_path(f"{precision} torch {kind}", lambda model: TorchBackend(model, device, precision=precision),
                      log=log, fresh=fresh)


def require_guard(precision: str, device: str, log: Log) -> None:
    """Refuse `precision` on `device` (DehrnetError naming the loss) unless it passes the accuracy guard."""
    from dehrnet_cli.precision.guard import enforce

    enforce(guard_report(precision, device, log))


def make_pose_backend(weights: Path | None, net_loader: Callable[[], PoseHRNet], kind: str, device: str,
                      precision: str, note: str, calib: Path | None, guard: bool, log: Log,
                      untrained: bool = False) -> Backend:
    """The backend for resolved flags: `precision` is concrete (precision.resolve_precision), `device`
    resolved; `net_loader` loads the checkpoint (called only when a network is needed); `untrained`: random
    weights (said in the metadata of ONNX exports)."""
    net = net_loader()  # a bad checkpoint fails first, before any note
    log(note)
    if guard and precision != "fp32":
        require_guard(precision, device, log)
    if precision == "int8":
        return OnnxBackend(int8_onnx_for(net, weights, calib, log, untrained), "cpu")
    if kind == "torch":
        return TorchBackend(net, device, precision=precision)
    if precision != "fp32":
        raise DehrnetError(f"--backend onnx --precision {precision}: export an fp16 model with dehrnet export --half "
                           "and pass the .onnx file, or use --backend torch")
    return OnnxBackend(onnx_for(net, weights, device, untrained), device)
