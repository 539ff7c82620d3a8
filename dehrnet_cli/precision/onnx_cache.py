"""ONNX Runtime models of checkpoints, exported once into the weights cache and reused (--backend auto/onnx).

An export is keyed by the checkpoint's content (sha256), the opset and the onnxruntime version, so a new
checkpoint, opset or runtime gets a new file and a stale one is never loaded. Beside it, `*.costs.json` holds
what making and using it cost on this machine, measured when it was made: seconds to export, seconds to open
an ONNX Runtime session, and seconds per crop with ONNX Runtime and with torch fp32. `--backend auto` weighs
those against a job's length (precision.auto_path). Files are written atomically; a failed export leaves
nothing behind.

OpenVINO compiles its own export of a DE-HRNet checkpoint (`openvino_export`): DySample as the GridSample op,
which OpenVINO runs as one vectorised kernel, where ONNX Runtime's export has the gather graph that suits it.
A network without DySample (HRNet) has one export for both.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.atomic import write_json_atomic

EXPORT_OPSET = 17
TIMING_CROPS = 2  # crops per timed forward when the costs are measured (the flip test's batch of one person)


@dataclass(frozen=True)
class ExportCosts:
    """What an ONNX Runtime model cost on this machine: export_s (export + simplification), session_s (opening
    a session), ort_s_per_crop and torch_s_per_crop (fp32, one forward of TIMING_CROPS crops, divided)."""

    export_s: float
    session_s: float
    ort_s_per_crop: float
    torch_s_per_crop: float

    @classmethod
    def read(cls, path: Path) -> ExportCosts | None:
        """The costs stored at `path`, or None when missing or unreadable (then they are measured again)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**{k: float(data[k]) for k in ("export_s", "session_s", "ort_s_per_crop", "torch_s_per_crop")})
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class CachedExport:
    """Where the export of one checkpoint lives: `onnx` (the model) and `costs` (its ExportCosts)."""

    onnx: Path
    costs: Path

    @property
    def ready(self) -> bool:
        return self.onnx.is_file()


def onnxruntime_version() -> str:
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"


def cached_export(weights: Path, suffix: str = ".onnx", opset: int = EXPORT_OPSET) -> CachedExport:
    """The cache entry of the checkpoint `weights` (which need not be exported yet)."""
    from dehrnet_cli.weights.cache import weights_dir
    from dehrnet_cli.weights.download import sha256_file

    stem = f"{Path(weights).stem}-{sha256_file(Path(weights))[:12]}-op{opset}-ort{onnxruntime_version()}"
    folder = weights_dir() / "onnx"
    return CachedExport(folder / f"{stem}{suffix}", folder / f"{stem}.costs.json")


def _seconds_per_crop(run: Callable[[np.ndarray], object], crops: np.ndarray, repeats: int = 2) -> float:
    run(crops)  # warm-up: first-call allocations and kernel selection
    best = min(_timed(run, crops) for _ in range(repeats))
    return best / len(crops)


def _timed(run: Callable[[np.ndarray], object], crops: np.ndarray) -> float:
    start = time.perf_counter()
    run(crops)
    return time.perf_counter() - start


def export_and_measure(model, entry: CachedExport, device: str = "cpu") -> ExportCosts:
    """Export `model` (a PoseHRNet in eval mode) to `entry.onnx` and measure its ExportCosts into `entry.costs`.
    DehrnetError when the export or the ONNX Runtime session fails (nothing is left behind then)."""
    from dehrnet_cli.export.onnx import export_onnx
    from dehrnet_cli.pose.backends import TorchBackend
    from dehrnet_cli.pose.onnx_session import INPUT_NAME, ort_session

    start = time.perf_counter()
    try:
        export_onnx(model, entry.onnx, opset=EXPORT_OPSET, check=False, device="cpu")
    except DehrnetError:
        raise
    except Exception as e:  # the tracer and onnx raise many types; the caller falls back to torch
        raise DehrnetError(f"the ONNX export failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    try:
        session = ort_session(entry.onnx, device)
    except DehrnetError:
        entry.onnx.unlink(missing_ok=True)
        raise
    session_s = time.perf_counter() - start
    w, h = model.config.input_size
    crops = np.random.default_rng(0).standard_normal((TIMING_CROPS, 3, h, w)).astype(np.float32)
    ort_s = _seconds_per_crop(lambda x: session.run(None, {INPUT_NAME: x}), crops)
    torch_s = _seconds_per_crop(TorchBackend(model, "cpu"), crops)  # as the torch path would run it
    costs = ExportCosts(export_s, session_s, ort_s, torch_s)
    write_json_atomic(entry.costs, asdict(costs), indent=2)
    return costs


def openvino_export(weights: Path, config) -> CachedExport:
    """The cache entry of the export OpenVINO runs for the checkpoint `weights` of a network of `config`: beside
    ONNX Runtime's (`<stem>.grid_sample.onnx`) when the network has DySample, else ONNX Runtime's own."""
    return cached_export(weights, suffix=".grid_sample.onnx" if config.upsample == "dysample" else ".onnx")


def export_for_openvino(model, entry: CachedExport) -> Path:
    """Export `model` (a PoseHRNet) to `entry.onnx` as OpenVINO wants it (DySample as GridSample); DehrnetError when
    the export fails (nothing is left behind then)."""
    from dehrnet_cli.export.onnx import export_onnx

    try:
        return export_onnx(model, entry.onnx, opset=EXPORT_OPSET, check=False, sampler="grid_sample").path
    except DehrnetError:
        raise
    except Exception as e:  # the tracer and onnx raise many types
        raise DehrnetError(f"the ONNX export failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
