"""The `dehrnet export` job: a pose model as ONNX (fp32, fp16 or int8), its run plan checked first (the file it
writes is not the checkpoint it reads), then checked through ONNX Runtime.

    outcome = export_model(ExportJob(out=Path("model.onnx"), model=ModelSpec(weights=Path("best.pt"))))
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dehrnet_cli.env import interrupts_deferred
from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.progress import note
from dehrnet_cli.sinks.plan import RunPlan
from dehrnet_cli.weights.model_choice import ModelSpec


@dataclass(frozen=True)
class ExportJob:
    """out: the .onnx file; model: the checkpoint (or, with untrained, an architecture); opset; half: fp16 inside
    (CUDA); int8: quantized on `calib_crops` crops of the images in `calib` (default: ultralytics' samples);
    sampler: DySample's sampling in the graph (gather or grid_sample); device: for tracing and the check;
    check: compare onnxruntime with torch; slim: simplify the graph with onnxslim."""

    out: Path
    model: ModelSpec = field(default_factory=ModelSpec)
    opset: int = 17
    half: bool = False
    int8: bool = False
    calib: Path | None = None
    calib_crops: int = 256
    sampler: str = "gather"
    device: str = "cpu"
    check: bool = True
    slim: bool = True

    def __post_init__(self) -> None:
        if self.int8 and self.half:
            raise DehrnetError("--int8 and --half are two different precisions; choose one")
        if self.int8 and self.device != "cpu":
            raise DehrnetError("--int8 models are for ONNX Runtime's CPU provider; export them with --device cpu")
        if self.calib is not None and not self.int8:
            raise DehrnetError("--calib only matters with --int8")


@dataclass
class ExportOutcome:
    """The file written, its precision, and the checks run: `max_abs_diff` (onnxruntime vs torch per batch size,
    through `providers`) or, for int8, `int8_within` (the fraction of keypoints within 1 heatmap pixel of fp32)."""

    path: Path
    precision: str
    opset: int
    providers: list[str] = field(default_factory=list)
    max_abs_diff: dict[int, float] = field(default_factory=dict)
    int8_within: float | None = None


def export_model(job: ExportJob, log: Callable[[str], None] = note) -> ExportOutcome:
    """Run the job (see ExportJob); the plan (the model found, the output writable and not an input) is checked
    before torch loads."""
    choice = job.model.choose()  # a bad name or file fails before torch loads
    plan = RunPlan()
    plan.read("--weights", job.model.weights)
    plan.write("--out", job.out, partial=False)
    plan.check()
    with interrupts_deferred():  # torch and onnxruntime load here
        from dehrnet_cli.export.onnx import export_onnx
        from dehrnet_cli.weights.pose_model import load_pose_model

    if job.model.untrained:
        log(f"[yellow]{job.model.name}: exporting random weights (an architecture name, no checkpoint)")
    net = load_pose_model(choice, job.model.input_size, log=log)
    if not job.int8:
        report = export_onnx(net, job.out, opset=job.opset, half=job.half, check=job.check, device=job.device,
                             sampler=job.sampler, slim=job.slim, untrained=job.model.untrained)
        return ExportOutcome(report.path, "fp16" if report.half else "fp32", report.opset, report.providers,
                             report.max_abs_diff)
    from dehrnet_cli.export.calibration import calibration_crops
    from dehrnet_cli.export.quantize import int8_agreement, quantize_onnx

    crops = calibration_crops(job.calib, net.config, count=job.calib_crops)  # a bad --calib fails before the work
    with tempfile.TemporaryDirectory(prefix="dehrnet-export-") as work:
        fp32 = export_onnx(net, Path(work) / "fp32.onnx", opset=job.opset, check=False, sampler=job.sampler,
                           slim=job.slim, untrained=job.model.untrained).path
        log(f"quantizing on {len(crops)} calibration crops from {job.calib or 'the bundled sample images'}")
        quantize_onnx(fp32, job.out, crops)
        outcome = ExportOutcome(Path(job.out), "int8", job.opset)
        if job.check:
            held_out = calibration_crops(job.calib, net.config, count=16, seed=1)
            outcome.int8_within = int8_agreement(fp32, job.out, held_out)
    return outcome
