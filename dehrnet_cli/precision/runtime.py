"""`RuntimeSpec`: how the pose network runs (engine, device, number format, CPU threads, compilation), checked once
and without heavy imports; `precision.backend_factory` turns it into a running backend once a job's length is
known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.device import normalize_device
from dehrnet_cli.precision.auto_path import BACKENDS
from dehrnet_cli.precision.resolve import PRECISIONS


def precision_of(precision: str, half: bool) -> str:
    """--precision with --half folded in (--half is --precision fp16, the flag ultralytics users know)."""
    precision = (precision or "auto").lower()
    if half and precision not in ("auto", "fp16"):
        raise DehrnetError(f"--half means --precision fp16; it contradicts --precision {precision}")
    return "fp16" if half else precision


@dataclass(frozen=True)
class RuntimeSpec:
    """backend: "auto" (the fastest engine for the job: precision.auto_path), "torch" or "onnx"; device: "auto",
    "cpu", "cuda", "cuda:N" (a bare N means cuda:N); precision: "auto", "fp32", "bf16", "fp16" (CUDA) or "int8"
    (ONNX Runtime, quantized on `calib` images, default: the sample images bundled with ultralytics); threads:
    CPU threads of torch, onnxruntime and OpenCV, set process-wide when the network is built (None: leave the
    process's settings as they are); compile: torch.compile the torch network at fixed batch sizes."""

    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    compile: bool = False
    calib: Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise DehrnetError(f"--backend {self.backend!r}: use one of {', '.join(BACKENDS)}")
        if self.precision not in PRECISIONS:
            raise DehrnetError(f"--precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        device = normalize_device(self.device)
        if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:") and device[5:].isdigit()):
            raise DehrnetError(f"--device {self.device!r}: use auto, cpu, cuda, cuda:N or N (= cuda:N)")
        object.__setattr__(self, "device", device)
        if self.threads is not None and self.threads < 1:
            raise DehrnetError(f"--threads {self.threads}: give 1 or more")
