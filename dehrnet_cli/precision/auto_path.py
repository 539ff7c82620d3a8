"""`--backend auto|torch|onnx` x `--precision auto|...`: which backend and number format run, and one line why.

The defaults pick the fastest path whose accuracy is known, for this machine and this job:
- CUDA: torch, fp16 (`precision.resolve`), channels_last.
- A CPU whose bf16 path has passed the accuracy guard here (`dehrnet guard`, cached verdict) and has native
  bf16: torch bf16 (measured 1.4x faster than ONNX Runtime fp32 and 1.8x than torch fp32 on an AVX512-BF16
  EPYC, docs/benchmarks.md). auto never starts the guard by itself: it trains its reference model once
  (minutes), which a first `dehrnet predict` must not do unasked; the line says how to enable it.
- Any other CPU: fp32 on ONNX Runtime or torch, whichever finishes this job sooner. ONNX Runtime runs each
  crop faster (0.78x torch's time on the EPYC) but costs an export once per checkpoint (tens of seconds) and
  a session per run (about 3 s for DE-HRNet-W32, 0.3 s for HRNet-W32); the costs measured when the export was
  made (precision.onnx_cache) decide, else EXPORT_PAYS_AFTER_CROPS. A job of unknown length (a camera, a
  stream, the Python API) counts as long.
"""

from __future__ import annotations

from dataclasses import dataclass

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.precision.onnx_cache import ExportCosts
from dehrnet_cli.precision.resolve import resolve_precision

BACKENDS = ("auto", "torch", "onnx")
# Without measured costs: crops after which a first ONNX export repays itself. DE-HRNet-W32 on the 2-core EPYC:
# export + simplification about 25 s against 0.07-0.13 s saved per crop (HRNet-W32: 8 s against 0.13 s).
EXPORT_PAYS_AFTER_CROPS = 300
# ... and after which an existing export repays its session (DE-HRNet-W32: 3 s against 0.07 s per crop).
SESSION_PAYS_AFTER_CROPS = 60


@dataclass(frozen=True)
class MachineFacts:
    """What the choice needs to know about this machine: CUDA or CPU, native bf16 units, whether the bf16 path
    passed the accuracy guard here (None: never measured), and the CPU in words for the line."""

    cuda: bool
    native_bf16: bool
    bf16_guard_passed: bool | None
    where: str


@dataclass(frozen=True)
class RunPath:
    """What runs: backend "torch" or "onnx", a concrete precision, and the line that says it and why."""

    backend: str
    precision: str
    why: str


def _onnx_repays(crops: int | None, export_ready: bool, costs: ExportCosts | None) -> tuple[bool, str]:
    """(ONNX Runtime finishes a job of `crops` sooner than torch, the reason in words)."""
    if crops is None:
        return True, "a job of unknown length (ONNX Runtime runs each crop faster)"
    if export_ready and costs is not None:
        torch_s, ort_s = crops * costs.torch_s_per_crop, costs.session_s + crops * costs.ort_s_per_crop
        verdict = "ONNX Runtime" if ort_s < torch_s else "torch"
        return ort_s < torch_s, (f"{crops} crops: about {ort_s:.0f} s with ONNX Runtime (session "
                                 f"{costs.session_s:.1f} s) against {torch_s:.0f} s with torch, measured here: "
                                 f"{verdict} is sooner")
    threshold = SESSION_PAYS_AFTER_CROPS if export_ready else EXPORT_PAYS_AFTER_CROPS
    cost = "its session" if export_ready else "its one-time export"
    if crops >= threshold:
        return True, f"{crops} crops: ONNX Runtime repays {cost} after about {threshold}"
    return False, (f"a short job ({crops} crops): torch starts at once; ONNX Runtime repays {cost} after about "
                   f"{threshold}")


def choose_run_path(backend: str, precision: str, device: str, facts: MachineFacts,
                    has_checkpoint: bool, crops: int | None, export_ready: bool = False,
                    costs: ExportCosts | None = None) -> RunPath:
    """The RunPath of the flags (see the module docstring). `device` is resolved; `crops`: the forward crops the
    job will run (frames x 2 with the flip test), None when unknown; `export_ready`/`costs`: the checkpoint's
    cached ONNX export and its measured costs."""
    backend = (backend or "auto").lower()
    if backend not in BACKENDS:
        raise DehrnetError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    precision = (precision or "auto").lower()
    device_words = "CUDA" if facts.cuda else facts.where
    if facts.cuda or backend == "torch" or precision in ("bf16", "int8", "fp16"):
        kind = "torch" if backend == "auto" else backend
        concrete, note = resolve_precision(precision, device, kind)
        if concrete == "int8":
            kind = "onnx"
        elif precision == "auto" and concrete == "bf16" and not facts.bf16_guard_passed:
            concrete, note = "fp32", f"precision fp32 on {device_words}{_bf16_hint(facts)}"
        return RunPath(kind, concrete, f"{kind} {note}")
    concrete, note = resolve_precision(precision, device, "onnx")  # fp32 here: auto or asked
    if precision == "auto" and facts.native_bf16 and facts.bf16_guard_passed:
        return RunPath("torch", "bf16", f"torch precision bf16 (auto: {device_words} has native bf16 and its "
                                        "accuracy guard passed)")
    if backend == "onnx":
        return RunPath("onnx", concrete, f"onnx {note}")
    if not has_checkpoint:
        return RunPath("torch", concrete, f"torch {note} (auto: random weights, nothing to export){_bf16_hint(facts)}")
    onnx, reason = _onnx_repays(crops, export_ready, costs)
    return RunPath("onnx" if onnx else "torch", concrete,
                   f"{'onnx' if onnx else 'torch'} precision {concrete} on {device_words} (auto: {reason})"
                   f"{_bf16_hint(facts)}")


def _bf16_hint(facts: MachineFacts) -> str:
    """What a native-bf16 CPU whose bf16 path was never guarded could gain."""
    if facts.cuda or not facts.native_bf16 or facts.bf16_guard_passed is not None:
        return ""
    return ("; this CPU has native bf16, about 1.4x faster: run `dehrnet guard --precision bf16` once to check its "
            "accuracy, and auto uses it from then on")
