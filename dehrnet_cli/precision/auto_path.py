"""`--backend auto|torch|onnx|openvino` x `--precision auto|...`: which engine and number format run, and one line
why.

The defaults pick the fastest path for this machine and this job whose accuracy is checked:
- CUDA: torch, fp16 (`precision.resolve`), channels_last.
- A CPU, a long job (one whose length repays the one-time ONNX export, below): OpenVINO, in bf16 where the CPU
  has native bf16 units (AVX512-BF16, AMX), else fp32. OpenVINO bf16 runs HRNet-W32 at the CPU's bf16 matrix rate,
  2.3x ONNX Runtime fp32's speed, and its fp32 beats ONNX Runtime's too (docs/benchmarks.md).
- A CPU, a short job (an image or a few): torch at once, no export; in bf16 where the CPU has native bf16 and
  the precision check passed bf16 for this checkpoint before (its cached verdict), else fp32.
- Every reduced precision of a trained checkpoint passes the precision check on the model itself first
  (`precision.model_check`, seconds, cached per checkpoint, path and CPU); a refused automatic choice runs the
  same engine in fp32, an explicit one is refused. int8 (OpenVINO through NNCF, or ONNX Runtime) runs only when
  asked: it is the fastest on VNNI CPUs (about half bf16's time), but how well it keeps the keypoints depends on
  the images it was calibrated on, which the check's crops cannot vouch for.
- The job's length: ONNX Runtime and OpenVINO cost an export once per checkpoint (tens of seconds) and a session
  or compilation per run (a second or less, cached); the costs measured when the export was made
  (precision.onnx_cache) decide, else EXPORT_PAYS_AFTER_CROPS. A job of unknown length (a camera, a stream, the
  Python API before its first call) counts as long.
"""

from __future__ import annotations

from dataclasses import dataclass

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.precision.onnx_cache import ExportCosts
from dehrnet_cli.precision.resolve import resolve_precision

BACKENDS = ("auto", "torch", "onnx", "openvino")
# Without measured costs: crops after which a first export repays itself. DE-HRNet-W32 on the 2-core EPYC: export
# + simplification about 25 s against 0.07-0.13 s saved per crop (HRNet-W32: 8 s against 0.13 s).
EXPORT_PAYS_AFTER_CROPS = 300
# ... and after which an existing export repays its session (DE-HRNet-W32: 3 s against 0.07 s per crop).
SESSION_PAYS_AFTER_CROPS = 60


@dataclass(frozen=True)
class MachineFacts:
    """What the choice needs to know about this machine: CUDA or CPU, native bf16 units, whether OpenVINO and NNCF
    (its int8 quantizer) are installed, whether the precision check passed torch bf16 for this checkpoint here
    (None: never checked), and the CPU in words for the line."""

    cuda: bool
    native_bf16: bool
    openvino: bool
    nncf: bool
    torch_bf16_passed: bool | None
    where: str


@dataclass(frozen=True)
class RunPath:
    """What runs: backend "torch", "onnx" or "openvino", a concrete precision, the line that says it and why, and
    whether a refused precision check falls back to fp32 on the same engine (auto) or refuses the run (asked)."""

    backend: str
    precision: str
    why: str
    fall_back: bool = False


def export_repays(crops: int | None, export_ready: bool, costs: ExportCosts | None) -> tuple[bool, str]:
    """(an exported engine finishes a job of `crops` sooner than torch, the reason in words)."""
    if crops is None:
        return True, "a job of unknown length"
    if export_ready and costs is not None:
        torch_s, ort_s = crops * costs.torch_s_per_crop, costs.session_s + crops * costs.ort_s_per_crop
        return ort_s < torch_s, (f"{crops} crops: about {ort_s:.0f} s exported (session {costs.session_s:.1f} s) "
                                 f"against {torch_s:.0f} s with torch, measured here")
    threshold = SESSION_PAYS_AFTER_CROPS if export_ready else EXPORT_PAYS_AFTER_CROPS
    cost = "its session" if export_ready else "its one-time export"
    if crops >= threshold:
        return True, f"{crops} crops: an exported engine repays {cost} after about {threshold}"
    return False, (f"a short job ({crops} crops): torch starts at once; an exported engine repays {cost} after about "
                   f"{threshold}")


def choose_run_path(backend: str, precision: str, device: str, facts: MachineFacts, has_checkpoint: bool,
                    crops: int | None, export_ready: bool = False, costs: ExportCosts | None = None) -> RunPath:
    """The RunPath of the flags (see the module docstring). `device` is resolved; `crops`: the forward crops the
    job will run (frames x 2 with the flip test), None when unknown; `export_ready`/`costs`: the checkpoint's
    cached export and its measured costs."""
    backend = (backend or "auto").lower()
    if backend not in BACKENDS:
        raise DehrnetError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    precision = (precision or "auto").lower()
    where = "CUDA" if facts.cuda else facts.where
    if facts.cuda:
        kind = "torch" if backend == "auto" else backend
        if kind == "openvino":
            raise DehrnetError("--backend openvino runs on the CPU; use --device cpu, or torch/onnx on CUDA")
        concrete, note = resolve_precision(precision, device, kind)
        return RunPath(kind, concrete, f"{kind} {note}", fall_back=precision == "auto")
    if backend == "auto" and precision == "int8":
        backend, reason = ("openvino" if facts.openvino and facts.nncf else "onnx"), "int8 asked"
    elif backend == "auto":
        if not has_checkpoint:
            backend, reason = "torch", "random weights, nothing to export"
        else:
            repays, reason = export_repays(crops, export_ready, costs)
            exported = "openvino" if facts.openvino else "onnx" if precision in ("auto", "fp32") else "torch"
            backend = exported if repays else "torch"  # ONNX Runtime runs an export in fp32 only
    else:
        reason = "asked"
    if precision == "auto":
        return _auto_precision(backend, where, reason, facts, has_checkpoint)
    if backend == "openvino" and precision not in ("fp32", "bf16", "int8"):
        raise DehrnetError(f"--backend openvino --precision {precision}: OpenVINO runs fp32, bf16 or int8 on the CPU")
    if backend == "openvino" and precision == "bf16" and not facts.native_bf16:
        return RunPath(backend, "bf16", f"openvino precision bf16 on {where} ({reason}): no native bf16 here, so it "
                                        "is emulated and slower than fp32")
    if backend == "openvino":
        return RunPath(backend, precision, f"openvino precision {precision} on {where} ({reason})")
    kind = "onnx" if precision == "int8" else backend
    concrete, note = resolve_precision(precision, device, kind)
    return RunPath(kind, concrete, f"{kind} {note} ({reason})")


def _auto_precision(backend: str, where: str, reason: str, facts: MachineFacts, has_checkpoint: bool) -> RunPath:
    """--precision auto on a CPU engine: bf16 where it pays and is checked, else fp32."""
    if backend == "openvino" and facts.native_bf16:
        return RunPath(backend, "bf16", f"openvino precision bf16 on {where} (auto: {reason}; native bf16 units)",
                       fall_back=True)
    if backend == "torch" and facts.native_bf16 and has_checkpoint and facts.torch_bf16_passed:
        return RunPath(backend, "bf16", f"torch precision bf16 on {where} (auto: {reason}; native bf16, passed the "
                                        "precision check before)", fall_back=True)
    hint = ""
    if backend in ("torch", "onnx") and facts.native_bf16 and not facts.openvino:
        hint = "; this CPU has native bf16: pip install openvino runs long jobs about 2x faster"
    return RunPath(backend, "fp32", f"{backend} precision fp32 on {where} (auto: {reason}){hint}")
