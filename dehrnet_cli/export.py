"""ONNX export with the config stored as metadata and a parity check through onnxruntime.

DySample's sampling is exported as row gathers + lerps by default (`sampler="gather"`, the same numbers
as GridSample to float rounding), because ONNX Runtime's CPU GridSample kernel is 2.5x slower than that
graph; `sampler="grid_sample"` keeps the GridSample op (opset >= 16).

We use torch's TorchScript-based exporter (`dynamo=False`): on torch 2.14 it exports DE-HRNet-W32 in
about 13 s with exact GridSample (opset >= 16) and needs no extra package, while the dynamo exporter
needs onnxscript, took about 60 s for the tiny model here and logged opset-conversion failures.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models import DySample, PoseHRNet
from models.dysample import SAMPLERS

from .errors import DehrnetError

MIN_OPSET_GRID_SAMPLE = 16
INPUT_NAME, OUTPUT_NAME = "input", "heatmaps"


@dataclass(frozen=True)
class ExportReport:
    path: Path
    opset: int
    half: bool
    providers: list[str]  # what onnxruntime really ran the check on
    max_abs_diff: dict[int, float]  # batch size -> max |onnx - torch| on random crops


class _HalfInside(nn.Module):
    """fp16 weights and activations inside, fp32 input and output (so callers need no casts)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.half()).float()


def ort_session(path: Path, device: str = "cpu"):
    """An onnxruntime session on CUDA when asked for and available, else CPU, with ORT's CUDA-missing
    noise silenced on CPU machines."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    providers = ["CPUExecutionProvider"]
    # onnxruntime-gpu lists CUDA even without a GPU and logs library errors when it fails: ask torch first
    if device.startswith("cuda") and torch.cuda.is_available() \
            and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise DehrnetError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None


@contextmanager
def dysample_sampler(model: nn.Module, sampler: str) -> Iterator[None]:
    """Every DySample in `model` samples with `sampler` inside the block."""
    modules = [m for m in model.modules() if isinstance(m, DySample)]
    try:
        for m in modules:
            m.sampler = sampler
        yield
    finally:
        for m in modules:
            del m.sampler  # back to the class default


def export_onnx(model: PoseHRNet, out: Path, opset: int = 17, half: bool = False, check: bool = True,
                device: str = "cpu", sampler: str = "gather") -> ExportReport:
    """Write `model` as ONNX (dynamic batch axis, config in metadata), atomically; then run it through
    onnxruntime at batch 1 and 3 and report the max difference to torch (its own grid_sample)."""
    import onnx

    cfg = model.config
    if sampler not in SAMPLERS:
        raise DehrnetError(f"--sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if opset < MIN_OPSET_GRID_SAMPLE and cfg.upsample == "dysample" and sampler == "grid_sample":
        raise DehrnetError(f"--opset {opset}: --sampler grid_sample needs GridSample, which ONNX has from opset "
                           f"{MIN_OPSET_GRID_SAMPLE}; use --opset 17 or --sampler gather")
    if half and not device.startswith("cuda"):
        raise DehrnetError("--half exports need --device cuda (torch has no fast fp16 convolutions on CPU "
                           "to trace with)")
    model = model.eval().to(device)
    net = _HalfInside(model) if half else model
    w, h = cfg.input_size
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        with warnings.catch_warnings(), dysample_sampler(model, sampler):
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                net, (torch.zeros(1, 3, h, w, device=device),), str(tmp), input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        proto = onnx.load(str(tmp))
        meta = {"dehrnet_config": json.dumps(cfg.to_dict()), "dehrnet_precision": "fp16" if half else "fp32"}
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if half:
        model.float()
    diffs: dict[int, float] = {}
    providers: list[str] = []
    if check:
        session = ort_session(out, device)
        providers = session.get_providers()
        gen = torch.Generator().manual_seed(0)
        for batch in (1, 3):
            x = torch.randn(batch, 3, h, w, generator=gen)
            with torch.no_grad():
                ref = model(x.to(device)).float().cpu().numpy()
            got = session.run(None, {INPUT_NAME: x.numpy()})[0]
            diffs[batch] = float(np.abs(got - ref).max())
    return ExportReport(out, opset, half, providers, diffs)


def read_onnx_config(path: Path, session=None) -> dict:
    """The dehrnet config stored in an exported model's metadata (from `session` when one is open)."""
    session = session or ort_session(Path(path))
    meta = session.get_modelmeta().custom_metadata_map
    if "dehrnet_config" not in meta:
        raise DehrnetError(f"{path}: an ONNX model without dehrnet metadata (export it with dehrnet export)")
    return json.loads(meta["dehrnet_config"])


def read_onnx_precision(session) -> str:
    """The number format an exported model computes in ("fp32", "fp16" or "int8"), from its metadata."""
    return session.get_modelmeta().custom_metadata_map.get("dehrnet_precision", "fp32")
