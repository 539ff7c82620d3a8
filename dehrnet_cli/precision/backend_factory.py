"""From the user's flags to a running backend: the run path (precision.auto_path), the model loaded only when
a path needs it, the accuracy guard, and cached exports (precision.onnx_cache).

fp32 runs as asked or as auto chooses (torch or ONNX Runtime). A reduced-precision path (bf16, fp16, int8)
first passes the accuracy guard on this machine (precision.guard: a model trained on synthetic people, fp32
vs the path, refused when it loses more than 1 PCK point); the verdict is cached, so only the first use pays.
int8 runs an ONNX Runtime model quantized from the checkpoint, cached next to the fp32 export.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, OnnxBackend, TorchBackend, set_cpu_threads
from dehrnet_cli.pose.device import resolve_device
from dehrnet_cli.precision.auto_path import MachineFacts, RunPath, choose_run_path
from dehrnet_cli.precision.onnx_cache import CachedExport, ExportCosts, cached_export, export_and_measure
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.weights.model_choice import ModelChoice
from models import PoseHRNet

if TYPE_CHECKING:
    from dehrnet_cli.precision.guard import GuardReport


Log = Callable[[str], None]


def machine_facts(device: str) -> MachineFacts:
    """This machine as `choose_run_path` needs it; reads the guard's cached bf16 verdict (never runs it)."""
    if device.startswith("cuda"):
        return MachineFacts(cuda=True, native_bf16=False, bf16_guard_passed=None, where="CUDA")
    from dehrnet_cli.precision.cpu import cpu_info, cpu_units, native_bf16
    from dehrnet_cli.precision.guard import load_verdict, machine_signature, verdict_key

    info = cpu_info()
    verdict = load_verdict(verdict_key("bf16 torch cpu", machine_signature())) if native_bf16(info) else None
    return MachineFacts(cuda=False, native_bf16=native_bf16(info), bf16_guard_passed=None if verdict is None
                        else verdict.passed, where=f"CPU {info.model} ({cpu_units(info)})")


def untrained_export(model: PoseHRNet) -> Path:
    """The ONNX export of random weights: one file per architecture, rewritten every time."""
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.weights.cache import weights_dir

    out = weights_dir() / "onnx" / f"{model.config.name}-untrained.onnx"
    return export_onnx(model, out, check=False, untrained=True).path  # the metadata says so: UNTRAINED banner


def onnx_for(model: PoseHRNet, entry: CachedExport, log: Log) -> Path:
    """The checkpoint's fp32 ONNX export, made (and its costs measured) now when the cache has none."""
    if not entry.ready:
        log(f"exporting {model.config.name} to ONNX Runtime once, into {entry.onnx}; later runs reuse it")
        export_and_measure(model, entry)
    return entry.onnx


def int8_onnx_for(model: PoseHRNet, entry: CachedExport, calib: Path | None, log: Log) -> Path:
    """An int8 ONNX model quantized from `model`, calibrated on crops of the images in `calib` (default: the
    sample images bundled with ultralytics), cached next to the fp32 export."""
    from dehrnet_cli.export.calibration import calibration_crops
    from dehrnet_cli.export.quantize import quantize_onnx

    out = entry.onnx.with_name(entry.onnx.name.replace(".onnx", ".int8.onnx"))
    if out.exists() and calib is None:
        return out
    fp32 = onnx_for(model, entry, log)
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


def make_pose_backend(choice: ModelChoice, runtime: RuntimeSpec, input_size: tuple[int, int] | None,
                      crops: int | None, log: Log) -> Backend:
    """The backend that runs `choice` as `runtime` asks, for a job of `crops` forward crops (None: unknown): an
    ONNX file on onnxruntime in its own precision; a checkpoint (or random weights) on the path of
    `choose_run_path`, its line logged, the accuracy guard enforced for reduced precisions of trained weights
    (an automatic ONNX Runtime choice whose export fails says so in one line and runs torch). Sets the CPU
    threads first when `runtime` names them; compiles a torch network when asked."""
    if runtime.threads is not None:
        set_cpu_threads(runtime.threads)
    device = resolve_device(runtime.device)
    if choice.is_onnx:
        return _onnx_file_backend(choice, runtime, device, log)
    backend = _checkpoint_backend(choice, runtime, device, input_size, crops, log)
    if runtime.compile and isinstance(backend, TorchBackend):  # fixed batch sizes, CUDA graphs on CUDA
        backend.compile()
    return backend


def _onnx_file_backend(choice: ModelChoice, runtime: RuntimeSpec, device: str, log: Log) -> Backend:
    """An .onnx --weights file: onnxruntime runs it in the precision it was exported in."""
    if runtime.backend == "torch":
        raise DehrnetError(f"{choice.weights}: an ONNX model runs with --backend onnx (or auto)")
    backend = OnnxBackend(choice.weights, device)
    if runtime.precision not in ("auto", backend.precision):
        raise DehrnetError(f"{choice.weights}: this ONNX model computes in {backend.precision}, not "
                           f"{runtime.precision}; export one with dehrnet export (--int8 or --half), or pass the "
                           "checkpoint")
    log(f"onnx precision {backend.precision} on {backend.device}: {choice.weights.name} is an ONNX model, run by "
        "onnxruntime in its own precision")
    if backend.precision == "int8":
        require_guard("int8", "cpu", log)
    return backend


def _checkpoint_backend(choice: ModelChoice, runtime: RuntimeSpec, device: str, input_size: tuple[int, int] | None,
                        crops: int | None, log: Log) -> Backend:
    from dehrnet_cli.weights.pose_model import load_pose_model

    kind, calib = runtime.backend, runtime.calib
    loaded: list[PoseHRNet] = []

    def net() -> PoseHRNet:  # the checkpoint is read only by the paths that need it
        if not loaded:
            loaded.append(load_pose_model(choice, input_size, log))
        return loaded[0]

    facts = machine_facts(device)
    checkpoint = not choice.untrained
    entry = None
    if checkpoint and not facts.cuda and kind in ("auto", "onnx"):
        if choice.to_fetch:
            net()  # fetches the registry checkpoint, so that its content keys the export
        entry = cached_export(_checkpoint_path(choice))
    costs = ExportCosts.read(entry.costs) if entry is not None else None
    path = choose_run_path(kind, runtime.precision, device, facts, checkpoint, crops,
                           export_ready=entry is not None and entry.ready, costs=costs)
    if not loaded and (path.backend == "torch" or entry is None or not entry.ready):
        net()  # a bad checkpoint fails here, before the path's line
    if choice.untrained and path.precision != "fp32":
        log(f"{path.why}; accuracy guard skipped (random weights)")
    else:
        log(path.why)
        if path.precision != "fp32":
            require_guard(path.precision, device, log)
    return _build(path, choice, entry, net, kind, device, calib, log)


def _checkpoint_path(choice: ModelChoice) -> Path:
    from dehrnet_cli.weights.pose_model import fetch_checkpoint

    return fetch_checkpoint(choice).weights


def _build(path: RunPath, choice: ModelChoice, entry: CachedExport | None, net: Callable[[], PoseHRNet], kind: str,
           device: str, calib: Path | None, log: Log) -> Backend:
    if path.precision == "int8":
        if entry is None:
            raise DehrnetError("--precision int8 quantizes a checkpoint: pass --weights FILE or a registry --model")
        return OnnxBackend(int8_onnx_for(net(), entry, calib, log), "cpu")
    if path.backend == "torch":
        return TorchBackend(net(), device, precision=path.precision)
    if path.precision != "fp32":
        raise DehrnetError(f"--backend onnx --precision {path.precision}: export an fp16 model with dehrnet export "
                           "--half and pass the .onnx file, or use --backend torch")
    if entry is None:  # random weights, or CUDA
        return OnnxBackend(untrained_export(net()) if choice.untrained else onnx_for(
            net(), cached_export(_checkpoint_path(choice)), log), device)
    try:
        return OnnxBackend(onnx_for(net(), entry, log), device)
    except DehrnetError as e:
        if kind != "auto":
            raise
        log(f"{e}: running torch fp32 instead")
        return TorchBackend(net(), device)
