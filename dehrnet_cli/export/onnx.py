"""ONNX export with the config stored as metadata and a parity check through onnxruntime.

DySample's sampling is exported as row gathers + lerps by default (`sampler="gather"`, the same numbers
as GridSample to float rounding), because ONNX Runtime's CPU GridSample kernel is 2.5x slower than that
graph; `sampler="grid_sample"` keeps the GridSample op (opset >= 16).

We use torch's TorchScript-based exporter (`dynamo=False`): on torch 2.14 it exports DE-HRNet-W32 in
about 13 s with exact GridSample (opset >= 16) and needs no extra package, while the dynamo exporter
needs onnxscript, took about 60 s for the tiny model here and logged opset-conversion failures.

The traced graph is then simplified by onnxslim (shape inference and constant folding of the shape
arithmetic that the dynamic batch axis leaves behind). Measured on the 2-core EPYC: DE-HRNet-W32 7,719 ->
2,841 nodes, ONNX Runtime session creation 18.0 s -> 3.2 s, the same outputs (max difference 1e-16) and
the same time per crop; the simplification itself takes about 18 s, once per export.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.onnx_session import INPUT_NAME, OUTPUT_NAME, UNTRAINED_KEY, ort_session
from dehrnet_cli.progress import warn
from dehrnet_cli.sinks.atomic import atomic_path
from models import DySample, PoseHRNet
from models.dysample import SAMPLERS

MIN_OPSET_GRID_SAMPLE = 16


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


def _slimmed(proto):
    """`proto` simplified by onnxslim; unchanged (with a warning) when onnxslim fails on it."""
    import onnxslim

    try:
        return onnxslim.slim(proto)
    except Exception as e:  # onnxslim raises whatever its passes raise; the plain export stays valid
        warn(f"onnxslim could not simplify the export ({type(e).__name__}: {e}); keeping it as traced")
        return proto


def export_onnx(model: PoseHRNet, out: Path, opset: int = 17, half: bool = False, check: bool = True,
                device: str = "cpu", sampler: str = "gather", slim: bool = True,
                untrained: bool = False) -> ExportReport:
    """Write `model` as ONNX (dynamic batch axis, config in metadata, simplified by onnxslim unless `slim` is
    False; `untrained`: random weights, said in the metadata as `dehrnet_untrained` so that predict shows the
    UNTRAINED banner for the file), atomically; then, with `check`, run it through onnxruntime at batch 1 and 3
    and report the max difference to torch (its own grid_sample)."""
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
    with atomic_path(out, f"--out {out}") as tmp:
        with warnings.catch_warnings(), dysample_sampler(model, sampler):
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
            torch.onnx.export(
                net, (torch.zeros(1, 3, h, w, device=device),), str(tmp), input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
        proto = _slimmed(onnx.load(str(tmp))) if slim else onnx.load(str(tmp))
        meta = {"dehrnet_config": json.dumps(cfg.to_dict()), "dehrnet_precision": "fp16" if half else "fp32",
                **({UNTRAINED_KEY: "true"} if untrained else {})}
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))
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
