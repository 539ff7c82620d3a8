"""From a RuntimeSpec to a running backend: the run path (precision.auto_path), the model loaded only when a path
needs it, cached exports (precision.onnx_cache), and the precision check in front of every reduced precision.

fp32 runs as asked or as auto chooses (torch, ONNX Runtime or OpenVINO). A reduced-precision path of a trained
checkpoint (bf16, fp16, int8) first passes the precision check on the model itself (precision.model_check: its
keypoints against fp32's on person crops, seconds, the verdict cached per checkpoint, path and CPU); a refused
automatic choice runs the same engine in fp32, a refused explicit one is an error. int8 runs a model quantized
from the checkpoint (ONNX Runtime QDQ, or OpenVINO through NNCF), cached next to the fp32 export. The slower
accuracy guard (precision.guard: PCK on a model trained on synthetic people) is `dehrnet guard`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import Backend, OnnxBackend, TorchBackend, set_cpu_threads
from dehrnet_cli.pose.device import resolve_device
from dehrnet_cli.precision.auto_path import MachineFacts, RunPath, choose_run_path
from dehrnet_cli.precision.model_check import check_precision, skipped
from dehrnet_cli.precision.onnx_cache import (
    EXPORT_OPSET,
    CachedExport,
    ExportCosts,
    cached_export,
    export_and_measure,
    export_for_openvino,
    openvino_export,
)
from dehrnet_cli.precision.runtime import RuntimeSpec
from dehrnet_cli.weights.download import sha256_file
from dehrnet_cli.weights.model_choice import ModelChoice
from models import PoseHRNet

if TYPE_CHECKING:
    from dehrnet_cli.precision.guard import GuardReport


Log = Callable[[str], None]
TORCH_BF16 = "bf16 torch cpu"  # the precision check's name of the torch bf16 path


def machine_facts(device: str, checkpoint_sha256: str | None) -> MachineFacts:
    """This machine as `choose_run_path` needs it; reads the precision check's cached torch bf16 verdict for the
    checkpoint (never runs it)."""
    if device.startswith("cuda"):
        return MachineFacts(cuda=True, native_bf16=False, openvino=False, nncf=False, torch_bf16_passed=None,
                            where="CUDA")
    from dehrnet_cli.precision.cpu import cpu_info, cpu_units, native_bf16
    from dehrnet_cli.precision.model_check import check_key, load_check

    info = cpu_info()
    verdict = load_check(check_key(checkpoint_sha256, TORCH_BF16)) if checkpoint_sha256 and native_bf16(info) else None
    return MachineFacts(cuda=False, native_bf16=native_bf16(info), openvino=find_spec("openvino") is not None,
                        nncf=find_spec("nncf") is not None,
                        torch_bf16_passed=None if verdict is None else verdict.passed,
                        where=f"CPU {info.model} ({cpu_units(info)})")


def untrained_export(model: PoseHRNet, sampler: str = "gather") -> Path:
    """The ONNX export of random weights: one file per architecture and DySample `sampler` ("grid_sample" is
    OpenVINO's), rewritten every time."""
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.weights.cache import weights_dir

    suffix = ".grid_sample.onnx" if sampler == "grid_sample" and model.config.upsample == "dysample" else ".onnx"
    out = weights_dir() / "onnx" / f"{model.config.name}-untrained{suffix}"
    return export_onnx(model, out, opset=EXPORT_OPSET, check=False, sampler=sampler, untrained=True).path


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


def make_pose_backend(choice: ModelChoice, runtime: RuntimeSpec, input_size: tuple[int, int] | None,
                      crops: int | None, log: Log) -> Backend:
    """The backend that runs `choice` as `runtime` asks, for a job of `crops` forward crops (None: unknown): an
    ONNX file as `_onnx_file_backend` says; a checkpoint (or random weights) on the path of `choose_run_path`,
    its line logged, the precision check in front of reduced precisions of trained weights (an automatic
    exported engine whose export fails says so in one line and runs torch). Sets the CPU threads first when
    `runtime` names them; compiles a torch network when asked."""
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
    """An .onnx --weights file: OpenVINO with `--backend openvino`, or by default on a CPU for an fp32 file when
    OpenVINO is installed (bf16 where the CPU has native bf16 units, after the precision check against the file's
    fp32); else ONNX Runtime in the precision the file was exported in."""
    if runtime.backend == "torch":
        raise DehrnetError(f"{choice.weights}: an ONNX model runs with --backend onnx, openvino (or auto)")
    if runtime.backend == "openvino" or (runtime.backend == "auto" and not device.startswith("cuda")
                                         and find_spec("openvino") is not None
                                         and runtime.precision in ("auto", "fp32", "bf16")
                                         and read_file_precision(choice.weights) == "fp32"):
        return _onnx_file_on_openvino(choice.weights, runtime, device, log)
    backend = OnnxBackend(choice.weights, device)
    if runtime.precision not in ("auto", backend.precision):
        raise DehrnetError(f"{choice.weights}: this ONNX model computes in {backend.precision}, not "
                           f"{runtime.precision}; export one with dehrnet export (--int8 or --half), or pass the "
                           "checkpoint")
    log(f"onnx precision {backend.precision} on {backend.device}: {choice.weights.name} is an ONNX model, run by "
        "onnxruntime in its own precision")
    return backend


def read_file_precision(onnx_path: Path) -> str:
    """The number format an exported model says it computes in ("fp32", "fp16", "int8"), read without a session."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    return props.get("dehrnet_precision", "fp32")


def _onnx_file_on_openvino(onnx_path: Path, runtime: RuntimeSpec, device: str, log: Log) -> Backend:
    """An fp32 (or NNCF int8) ONNX file on OpenVINO: as asked, or auto's choice (see _onnx_file_backend)."""
    from dehrnet_cli.pose.openvino_backend import OpenVinoBackend

    if device.startswith("cuda"):
        raise DehrnetError("--backend openvino runs on the CPU; use --device cpu, or --backend onnx on CUDA")
    facts = machine_facts("cpu", None)
    precision = runtime.precision
    if precision == "auto":
        stored = read_file_precision(onnx_path)
        precision = stored if stored != "fp32" else "bf16" if facts.native_bf16 else "fp32"
    if precision not in ("fp32", "bf16", "int8"):
        raise DehrnetError(f"--backend openvino --precision {precision}: OpenVINO runs fp32, bf16 or int8 on the CPU")

    def build(precision: str) -> Backend:
        return OpenVinoBackend(onnx_path, precision, runtime.threads)

    backend = build(precision)
    reason = "asked" if runtime.backend == "openvino" else "auto: an fp32 ONNX model"
    log(f"openvino precision {precision} on {facts.where} ({reason}; {onnx_path.name})"
        + ("" if facts.native_bf16 or precision != "bf16" else ": no native bf16 here, so it is emulated"))
    if precision != "bf16":
        return backend
    path = RunPath("openvino", "bf16", "", fall_back=runtime.precision == "auto")
    sha = None if backend.untrained else sha256_file(onnx_path)
    return _checked(backend, path, sha, build, log)


def _checkpoint_backend(choice: ModelChoice, runtime: RuntimeSpec, device: str, input_size: tuple[int, int] | None,
                        crops: int | None, log: Log) -> Backend:
    """The backend of a checkpoint (or random weights): the run path, then the precision check of a reduced
    precision (a refused automatic one falls back to fp32 on the same engine)."""
    from dehrnet_cli.weights.pose_model import load_pose_model

    loaded: list[PoseHRNet] = []

    def net() -> PoseHRNet:  # the checkpoint is read only by the paths that need it
        if not loaded:
            loaded.append(load_pose_model(choice, input_size, log))
        return loaded[0]

    checkpoint = _checkpoint_path(choice) if not choice.untrained else None  # fetched now: its content keys all
    sha = sha256_file(checkpoint) if checkpoint is not None else None
    facts = machine_facts(device, sha)
    ort_entry = cached_export(checkpoint) if checkpoint is not None and not facts.cuda else None
    costs = ExportCosts.read(ort_entry.costs) if ort_entry is not None else None
    path = choose_run_path(runtime.backend, runtime.precision, device, facts, checkpoint is not None, crops,
                           export_ready=ort_entry is not None and ort_entry.ready, costs=costs)
    if not loaded and path.backend == "torch":
        net()  # a bad checkpoint fails here, before the path's line
    log(path.why)
    build = _Builder(choice, checkpoint, net, device, runtime, log)
    backend = build(path)
    if path.precision == "fp32" or (backend.name, backend.precision) != (path.backend, path.precision):
        return backend  # fp32, or the export failed and torch fp32 runs
    return _checked(backend, path, sha, lambda precision: build(replace(path, precision=precision)), log,
                    runtime.calib if path.precision == "int8" else None)


def _checked(backend: Backend, path: RunPath, sha: str | None, build: Callable[[str], Backend], log: Log,
             calib: Path | None = None) -> Backend:
    """`backend` (the reduced precision of `path`) once the precision check passed it for the model of hash `sha`
    (None: random weights, unchecked); a refused one: fp32 from `build(precision)` when `path` falls back, else an
    error. `calib`: the images an int8 model was calibrated on (another calibration is another verdict)."""
    label = f"{path.precision} {path.backend} {backend.device.split(':')[0]}"
    if calib is not None:
        label += f" calibrated on {Path(calib).resolve()}"
    if sha is None:
        log(skipped(label).line())
        return backend
    built: list[Backend] = []

    def fp32() -> Backend:  # the check's reference is also the fallback: built once
        if not built:
            built.append(build("fp32"))
        return built[0]

    verdict = check_precision(sha, label, reference=fp32, candidate=lambda: backend, log=log)
    if verdict.passed:
        return backend
    if not path.fall_back:
        raise DehrnetError(f"--precision {path.precision}: refused by the precision check ({verdict.line()}); run "
                           "fp32 (--precision fp32), or calibrate int8 on your own images (--calib DIR)")
    log(f"running {path.backend} fp32 instead")
    return fp32()


def _checkpoint_path(choice: ModelChoice) -> Path:
    from dehrnet_cli.weights.pose_model import fetch_checkpoint

    return fetch_checkpoint(choice).weights


class _Builder:
    """Builds the backend of a RunPath for one checkpoint (`net` loads it once, on the first path that needs it)."""

    def __init__(self, choice: ModelChoice, checkpoint: Path | None, net: Callable[[], PoseHRNet], device: str,
                 runtime: RuntimeSpec, log: Log) -> None:
        self.choice, self.checkpoint, self.net, self.device, self.runtime, self.log = \
            choice, checkpoint, net, device, runtime, log

    def __call__(self, path: RunPath) -> Backend:
        """The backend of `path`; when auto chose an exported engine whose export fails, torch fp32 (one line)."""
        if path.backend == "torch":  # TorchBackend converts its model: a reduced precision gets its own copy,
            # so that the shared model stays the fp32 one the precision check and a fallback are built from
            net = self.net() if path.precision == "fp32" else copy.deepcopy(self.net())
            return TorchBackend(net, self.device, precision=path.precision)
        try:
            return self._openvino(path.precision) if path.backend == "openvino" else self._onnx(path.precision)
        except DehrnetError as e:
            if self.runtime.backend != "auto" or self.runtime.precision not in ("auto", "fp32"):
                raise
            self.log(f"{e}: running torch fp32 instead")
            return TorchBackend(self.net(), self.device)

    def _onnx(self, precision: str) -> Backend:
        if precision == "int8":
            if self.checkpoint is None:
                raise DehrnetError("--precision int8 quantizes a checkpoint: pass --weights FILE or a registry --model")
            return OnnxBackend(int8_onnx_for(self.net(), cached_export(self.checkpoint), self.runtime.calib, self.log),
                               "cpu")
        if precision != "fp32":
            raise DehrnetError(f"--backend onnx --precision {precision}: export an fp16 model with dehrnet export "
                               "--half and pass the .onnx file, or use --backend torch")
        if self.checkpoint is None:  # random weights
            return OnnxBackend(untrained_export(self.net()), self.device)
        return OnnxBackend(onnx_for(self.net(), cached_export(self.checkpoint), self.log), self.device)

    def _openvino(self, precision: str) -> Backend:
        """OpenVINO of the checkpoint's export for it (made once: DySample as GridSample), or of an NNCF int8 IR."""
        from dehrnet_cli.pose.openvino_backend import OpenVinoBackend

        net = self.net()
        if self.checkpoint is None:
            onnx = untrained_export(net, sampler="grid_sample")
        else:
            entry = openvino_export(self.checkpoint, net.config)
            if not entry.ready:
                self.log(f"exporting {net.config.name} for OpenVINO once, into {entry.onnx}; later runs reuse it")
                export_for_openvino(net, entry)
            onnx = entry.onnx
        if precision == "int8":
            onnx = openvino_int8_for(net, onnx, self.runtime.calib, self.log)
        return OpenVinoBackend(onnx, precision, self.runtime.threads)


def openvino_int8_for(model: PoseHRNet, fp32_onnx: Path, calib: Path | None, log: Log) -> Path:
    """An OpenVINO int8 IR of the export `fp32_onnx`, quantized by NNCF on crops of the images in `calib` (default:
    the sample images bundled with ultralytics), cached beside the export (`NAME.int8.xml`)."""
    out = fp32_onnx.with_name(fp32_onnx.name.replace(".onnx", ".int8.xml"))
    if out.exists() and calib is None:
        return out
    from dehrnet_cli.export.calibration import calibration_crops
    from dehrnet_cli.export.openvino_int8 import quantize_openvino

    crops = calibration_crops(calib, model.config)
    log(f"quantizing {model.config.name} to int8 for OpenVINO once (NNCF), calibrated on {len(crops)} crops from "
        f"{calib or 'the bundled sample images'}")
    return quantize_openvino(fp32_onnx, out, crops)
