"""This machine's CPU as the precision choice and the benchmark see it: model name, usable physical cores,
nominal clock and ISA flags (/proc/cpuinfo, cpufreq), and which reduced-precision units those flags name.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuInfo:
    """model: the CPU's name; cores: physical cores this process may use; mhz: the nominal clock
    (cpufreq's maximum when the kernel exposes it, else /proc/cpuinfo's 'cpu MHz'); flags: ISA flags."""

    model: str
    cores: int
    mhz: float
    flags: frozenset[str]


def parse_cpuinfo(text: str, usable_cpus: int | None = None, max_mhz: float | None = None) -> CpuInfo:
    """CpuInfo from /proc/cpuinfo text. Physical cores are the distinct (physical id, core id) pairs
    (logical CPUs when those fields are missing), capped at `usable_cpus` (the affinity mask size);
    `max_mhz` (cpufreq) wins over the reported 'cpu MHz'."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    fields = [dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in b.splitlines()))
              for b in blocks]
    processors = [f for f in fields if "processor" in f] or fields
    first = processors[0] if processors else {}
    core_ids = {(f.get("physical id"), f.get("core id")) for f in processors if "core id" in f}
    cores = len(core_ids) or len(processors) or 1
    if usable_cpus is not None:
        cores = min(cores, usable_cpus)
    reported = [float(f["cpu MHz"]) for f in processors if f.get("cpu MHz", "").replace(".", "", 1).isdigit()]
    mhz = max_mhz if max_mhz else (max(reported) if reported else 0.0)
    flags = frozenset(first.get("flags", first.get("Features", "")).split())
    return CpuInfo(first.get("model name", platform.processor() or "unknown CPU"), cores, mhz, flags)


def read_cpu_info() -> CpuInfo:
    """This machine's CpuInfo (Linux /proc and /sys; elsewhere logical CPUs and an unknown clock)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    max_mhz = None
    try:
        max_mhz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1000
    except (OSError, ValueError):
        pass
    return parse_cpuinfo(text, usable, max_mhz)


BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bf16 units, best first

INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")  # dot-product int8 units, best first


# CPU flags that change which reduced-precision kernels run (x86 and ARM names of /proc/cpuinfo)
KERNEL_FLAGS = frozenset({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                          "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimddp", "bf16", "i8mm", "sve"})


def cpu_info() -> CpuInfo:
    """This machine's CPU: model name, usable physical cores, nominal clock, ISA flags."""
    return read_cpu_info()


def native_bf16(info: CpuInfo | None = None) -> bool:
    """True when the CPU computes in bf16 natively (AVX512-BF16 or AMX-BF16)."""
    flags = (info or cpu_info()).flags
    return any(f in flags for f in BF16_FLAGS)


def cpu_units(info: CpuInfo | None = None) -> str:
    """The CPU's reduced-precision units in words, e.g. 'AMX-BF16, AVX512-VNNI', or 'no bf16/int8 units'."""
    flags = (info or cpu_info()).flags
    names = [f.upper().replace("_", "-") for f in (*BF16_FLAGS, *INT8_FLAGS) if f in flags]
    return ", ".join(names) if names else "no bf16/int8 units"


def cpu_signature(info: CpuInfo | None = None) -> str:
    """The CPU as reduced-precision numerics see it: its model and the KERNEL_FLAGS it has, e.g.
    'AMD EPYC [avx2 avx512_bf16 avx512_vnni ...]' (cores and clock do not change the numbers)."""
    info = info or cpu_info()
    return f"{info.model} [{' '.join(sorted(info.flags & KERNEL_FLAGS))}]"
