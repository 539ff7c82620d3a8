"""The machine a benchmark runs on: what it is (CPU, GPU, library versions), what it can do at most (a
nominal peak FLOP/s) and how much memory a run takes (peak resident set size).

Peaks are nominal: CPU = physical cores x clock x operations per cycle of the widest unit its flags name
for the precision (fp32 and bf16 FLOPs, int8 integer multiply-adds counted as 2 ops); GPU = the vendor's
dense (no sparsity) datasheet figure for the device name. Sustained clocks under AVX/AMX load differ from
the nominal one, so achieved / peak is a distance, not an efficiency grade.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli.precision.cpu import CpuInfo, read_cpu_info

# fp32 FLOPs per cycle per core: 2 FMA pipes x SIMD lanes x 2 (multiply + add)
_VECTOR_UNITS = (
    (frozenset({"avx512f"}), 64, "AVX-512"),
    (frozenset({"avx2", "fma"}), 32, "AVX2+FMA"),
    (frozenset({"avx"}), 16, "AVX"),
    (frozenset({"sse2"}), 8, "SSE2"),
)

# bf16 FLOPs per cycle per core. AMX-BF16: TDPBF16PS keeps the tile unit busy at 512 bf16 multiply-adds per
# cycle = 1024 FLOPs. AVX512-BF16: one VDPBF16PS zmm has 16 fp32 lanes, each adds 2 bf16 products to its
# accumulator (2 multiplies + 2 adds = 4 FLOPs): 64 FLOPs, issued on the 2 FMA ports = 128 per cycle (Zen 4
# splits a zmm op into two 256-bit halves and reaches half that: the nominal figure is an upper bound).
# Without a native unit oneDNN converts to fp32 and computes there, so the fp32 peak is the ceiling.
_BF16_UNITS = (
    (frozenset({"amx_bf16"}), 1024, "AMX-BF16"),
    (frozenset({"avx512_bf16"}), 128, "AVX512-BF16"),
)

# int8 ops (a multiply-add counts 2, as FLOPs do) per cycle per core. AMX-INT8: TDPBUSD, 1024 multiply-adds
# per cycle = 2048. AVX512-VNNI: VPDPBUSD zmm = 16 lanes x 4 u8*s8 products summed into int32 = 64 MACs, on
# 2 ports = 256. AVX-VNNI: the same on ymm, 32 MACs x 2 ports = 128. Without VNNI the dot product takes two
# multiply instructions on the same 2 ports (VPMADDUBSW u8*s8 -> pairs summed in int16, then VPMADDWD by ones
# -> int32), so one 32-byte (AVX2) or 64-byte (AVX512BW) product per cycle: 32 MACs = 64, or 128.
_INT8_UNITS = (
    (frozenset({"amx_int8"}), 2048, "AMX-INT8"),
    (frozenset({"avx512_vnni"}), 256, "AVX512-VNNI"),
    (frozenset({"avx_vnni"}), 128, "AVX-VNNI"),
    (frozenset({"avx512bw"}), 128, "AVX512BW (VPMADDUBSW + VPMADDWD)"),
    (frozenset({"avx2"}), 64, "AVX2 (VPMADDUBSW + VPMADDWD)"),
)

# Dense datasheet peaks in TFLOP/s: fp16 and bf16 tensor cores, tf32 tensor cores, fp32 CUDA cores.
# First match wins, so specific names come before general ones.
GPU_PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200", {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"fp16": 756.5, "bf16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"fp16": 835.5, "bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    ("H100", {"fp16": 989.4, "bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    ("A100", {"fp16": 312.0, "bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"fp16": 362.1, "bf16": 362.1, "tf32": 183.0, "fp32": 91.6}),
    ("L4", {"fp16": 121.0, "bf16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("A10", {"fp16": 125.0, "bf16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    # Volta and Turing have no TF32 and no bf16 tensor cores: those run on the fp32 CUDA cores
    ("V100", {"fp16": 125.0, "bf16": 15.7, "tf32": 15.7, "fp32": 15.7}),
    ("T4", {"fp16": 65.0, "bf16": 8.1, "tf32": 8.1, "fp32": 8.1}),
)


@dataclass(frozen=True)
class PeakFlops:
    """A nominal peak: flops_per_s, and `basis`, the sentence that says how it was computed."""

    flops_per_s: float
    basis: str


def fp32_flops_per_cycle(flags: frozenset[str]) -> tuple[int, str]:
    """(fp32 FLOPs per cycle per core, the vector unit's name) of the widest unit `flags` name:
    AVX-512 64, AVX2+FMA 32, AVX 16, SSE2 8 (scalar 2 when none is named)."""
    for needed, flops, name in _VECTOR_UNITS:
        if needed <= flags:
            return flops, name
    return 2, "scalar"


def _unit(flags: frozenset[str], units: tuple[tuple[frozenset[str], int, str], ...]) -> tuple[int, str] | None:
    """(ops per cycle per core, name) of the first unit in `units` whose flags are all in `flags`."""
    return next(((ops, name) for needed, ops, name in units if needed <= flags), None)


def cpu_peak_flops(info: CpuInfo, precision: str = "fp32") -> PeakFlops:
    """Nominal peak for `precision` ("fp32", "bf16" or "int8"; int8 in integer ops/s): cores x clock x
    ops/cycle of the best unit the CPU's flags name (see _BF16_UNITS, _INT8_UNITS); without a bf16 or
    int8 unit, the fp32 peak (nothing runs faster than fp32 arithmetic there)."""
    per_cycle, unit = fp32_flops_per_cycle(info.flags)
    kind, fallback = "fp32 FLOP", ""
    if precision in ("bf16", "int8"):
        best = _unit(info.flags, _BF16_UNITS if precision == "bf16" else _INT8_UNITS)
        if best is not None:
            (per_cycle, unit), kind = best, "bf16 FLOP" if precision == "bf16" else "int8 ops"
        else:
            fallback = f"; no native {precision} unit, so the fp32 peak bounds the {precision} path"
    peak = info.cores * info.mhz * 1e6 * per_cycle
    basis = (f"nominal {precision}: {info.cores} cores x {info.mhz:.0f} MHz x {per_cycle} {kind}/cycle ({unit})"
             f"{fallback}; real clocks under AVX/AMX load differ")
    return PeakFlops(peak, basis)


def matrix_gflops(precision: str, size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of torch.mm of two size x size matrices and of the same product as a 1x1 convolution (oneDNN,
    channels_last, 2048 pixels) in `precision` ("fp32" or "bf16") on the CPU, best of `repeats` each. Both, because
    torch.mm in fp32 is MKL's sgemm, which takes its AVX2 path on AMD CPUs (half the AVX-512 rate), while the
    networks' convolutions are oneDNN's."""
    import time

    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    pixels = torch.randn(1, size, 32, size // 32).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(size, size, 1, 1).to(dtype)
    runs = {"mm": lambda: torch.mm(a, b), "conv1x1": lambda: torch.nn.functional.conv2d(pixels, weight)}
    rates = {}
    with torch.inference_mode():
        for name, run in runs.items():
            run()
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - start)
            rates[name] = 2 * size**3 / min(seconds) / 1e9
    return rates


def measured_matrix_rate(precision: str) -> PeakFlops | None:
    """This CPU's practical matrix rate in `precision` (the faster of `matrix_gflops`' two products), measured now;
    None for precisions it does not probe (int8, fp16)."""
    if precision not in ("fp32", "bf16"):
        return None
    rates = matrix_gflops(precision)
    best = max(rates, key=rates.get)
    each = ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
    return PeakFlops(rates[best] * 1e9, f"measured: {precision} {best} 2048x2048 on this CPU (GFLOP/s: {each})")


def gpu_peak_flops(device_name: str, precision: str, tf32: bool = False) -> PeakFlops | None:
    """Nominal dense peak of a GPU by name for precision "fp16", "bf16" or "fp32" (with `tf32`, the fp32
    convs cuDNN runs on TF32 tensor cores); None for a device the table does not know or for int8."""
    if precision not in ("fp16", "bf16", "fp32"):
        return None
    upper = device_name.upper()
    for name, peaks in GPU_PEAK_TFLOPS:
        if name.upper() in upper:
            key = precision if precision != "fp32" else ("tf32" if tf32 else "fp32")
            return PeakFlops(peaks[key] * 1e12, f"nominal: {name} datasheet, dense {key}")
    return None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return None


def machine_summary(device: str) -> dict:
    """What the numbers were measured on: CPU, GPU (when `device` is CUDA), OS and library versions."""
    import torch

    cpu = read_cpu_info()
    summary: dict = {
        "cpu": cpu.model, "cpu_cores": cpu.cores, "cpu_mhz": cpu.mhz, "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "os": platform.platform(), "python": sys.version.split()[0],
        "device": device, "gpu": None,
        "versions": {m: _version(m) for m in ("torch", "onnxruntime", "ultralytics", "numpy", "cv2", "av")},
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        summary["gpu"] = torch.cuda.get_device_name(torch.device(device))
        summary["versions"]["cuda"] = torch.version.cuda
    return summary


class PeakRss:
    """Peak resident set size of this process inside a `with` block, in bytes (`peak_bytes`).

    Linux: the kernel's high-water mark (VmHWM), reset on entry by writing 5 to /proc/self/clear_refs.
    Elsewhere: RSS sampled every 20 ms by a thread (psutil), or the lifetime peak (getrusage) as a last
    resort; `method` says which one was used.
    """

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM"
            return self
        except OSError:
            pass
        try:
            import psutil
        except ImportError:
            self.method = "ru_maxrss (lifetime peak)"
            return self
        self.method = "psutil sampled every 20 ms"
        process = psutil.Process()

        def sample() -> None:
            while not self._stop.wait(0.02):
                self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)

        self.peak_bytes = process.memory_info().rss
        self._thread = threading.Thread(target=sample, name="dehrnet-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "VmHWM":
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_bytes = int(line.split()[1]) * 1024
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
        else:
            scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
            self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
