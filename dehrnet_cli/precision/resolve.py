"""Which number format the pose network runs in: `--precision auto|fp32|bf16|fp16|int8`.

auto: fp16 on CUDA; bf16 on a CPU with native bf16 arithmetic (AVX512-BF16 or AMX-BF16), where oneDNN
runs bf16 convolutions 2.5-3x faster than fp32; else fp32. On a CPU without native bf16 (AVX2 only)
oneDNN emulates it and bf16 is several times *slower* than fp32 (measured 6x on an AVX2 EPYC,
docs/benchmarks.md), so auto never picks it there and asking for it says so. int8 runs through
ONNX Runtime on a statically quantized model (dehrnet export --int8). Decoding always stays fp32.

The CPU facts it reads (model, cores, ISA flags) are in `precision.cpu`.
"""

from __future__ import annotations

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.precision.cpu import cpu_info, cpu_units, native_bf16

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def resolve_precision(precision: str, device: str, backend: str) -> tuple[str, str]:
    """(concrete precision, one line saying which path runs and why) for the user's flags.

    `device` is a resolved device ("cpu", "cuda", "cuda:N")."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise DehrnetError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    cuda = device.startswith("cuda")
    info = None if cuda else cpu_info()
    where = "CUDA" if cuda else f"CPU {info.model} ({cpu_units(info)})"
    if precision == "auto":
        if cuda:
            return ("fp16", f"precision fp16 (auto: {where})") if backend == "torch" else (
                "fp32", "precision fp32 (auto: the ONNX model's own precision on CUDA)")
        if native_bf16(info) and backend == "torch":
            return "bf16", f"precision bf16 (auto: {where} has native bf16)"
        return "fp32", f"precision fp32 (auto: {where})"
    if precision == "fp16" and not cuda:
        raise DehrnetError("--precision fp16 needs a CUDA device (CPUs have no fast fp16 convolutions); "
                           "use --precision bf16 or fp32 on a CPU")
    if precision == "bf16" and backend != "torch":
        raise DehrnetError("--precision bf16 runs through torch; drop --backend onnx (ONNX Runtime has no CPU bf16 "
                           "convolutions)")
    if precision == "int8" and cuda:
        raise DehrnetError("--precision int8 is a CPU path (ONNX Runtime quantized model); on CUDA use fp16")
    if precision == "bf16" and not cuda and not native_bf16(info):
        return "bf16", (f"precision bf16 on {where}: no native bf16 here, so oneDNN emulates it and it runs several "
                        "times slower than fp32")
    return precision, f"precision {precision} on {where}"
