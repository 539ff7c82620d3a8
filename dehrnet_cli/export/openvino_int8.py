"""int8 for OpenVINO: NNCF post-training quantization of an fp32 dehrnet export, calibrated on person crops.

NNCF (OpenVINO's own quantization library) inserts FakeQuantize operations where OpenVINO's low-precision
transformations expect them (convolution inputs and weights, the inputs of the residual additions), so that
OpenVINO runs the convolutions on int8 dot-product units (AVX512-VNNI, AVX-VNNI, AMX-INT8). An ONNX Runtime
QDQ model (`export.quantize`) runs in OpenVINO too, but with its quantized convolutions between bf16
additions it was only 0.84x bf16's time where NNCF's model took 0.6x (HRNet-W32 384x288, batch 8, 2 threads,
AVX512-VNNI EPYC, docs/benchmarks.md).

The result is an OpenVINO IR (`NAME.xml` + `NAME.bin`) holding the export's dehrnet metadata, with
`dehrnet_precision` = "int8"; `pose.openvino_backend.OpenVinoBackend` runs it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import normalize_crops
from dehrnet_cli.pose.openvino_backend import openvino_core
from models import PoseNetConfig


def _fp32_export(core, path: Path):
    """(the model read by OpenVINO, its dehrnet metadata) of an fp32 dehrnet export; DehrnetError otherwise."""
    from dehrnet_cli.pose.openvino_backend import read_metadata

    if not path.is_file():
        raise DehrnetError(f"{path}: no such ONNX file; export one first with dehrnet export")
    model = core.read_model(str(path))
    meta = read_metadata(model)
    if "dehrnet_config" not in meta:
        raise DehrnetError(f"{path}: an ONNX model without dehrnet metadata; quantize an fp32 dehrnet export")
    if meta.get("dehrnet_precision", "fp32") != "fp32":
        raise DehrnetError(f"{path}: its dehrnet_precision is {meta['dehrnet_precision']}; int8 quantization "
                           "starts from an fp32 export")
    return model, meta


def quantize_openvino(fp32_onnx: Path, out: Path, crops_bgr: np.ndarray) -> Path:
    """Write an int8 OpenVINO IR of the fp32 dehrnet export `fp32_onnx` to `out` (.xml, its weights in the .bin
    beside it), calibrated on `crops_bgr` (N, h, w, 3) uint8 BGR person crops (`calibration_crops`); return `out`.
    Both files appear atomically (the .bin first); work files live in a temporary folder beside `out`."""
    try:
        import nncf
        import openvino as ov
    except ImportError:
        raise DehrnetError("OpenVINO int8 needs the nncf and openvino packages: pip install nncf openvino") from None
    out = Path(out)
    if out.suffix != ".xml":
        raise DehrnetError(f"{out}: an OpenVINO model is written as NAME.xml (+ NAME.bin)")
    core = openvino_core()
    model, meta = _fp32_export(core, Path(fp32_onnx))
    config = PoseNetConfig.from_dict(json.loads(meta["dehrnet_config"]))
    w, h = config.input_size
    if crops_bgr.dtype != np.uint8 or crops_bgr.ndim != 4 or crops_bgr.shape[1:] != (h, w, 3) or not len(crops_bgr):
        raise DehrnetError(f"calibration crops {crops_bgr.dtype} {crops_bgr.shape}: expected uint8 (N, {h}, {w}, 3) "
                           f"with N >= 1 for {config.name}; make them with calibration_crops")
    batches = [normalize_crops(crops_bgr[i:i + 1], config.mean, config.std) for i in range(len(crops_bgr))]
    previous = logging.getLogger("nncf").level
    logging.getLogger("nncf").setLevel(logging.ERROR)
    try:  # NNCF's notes and progress bars (rich, on stdout) are not dehrnet's output
        with contextlib.redirect_stdout(io.StringIO()):
            quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches),
                                      preset=nncf.QuantizationPreset.PERFORMANCE)
    finally:
        logging.getLogger("nncf").setLevel(previous)
    for key, value in {**meta, "dehrnet_precision": "int8"}.items():
        quantized.set_rt_info(value, ["framework", key])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.quantize-", dir=out.parent) as work:
        ov.save_model(quantized, str(Path(work) / out.name), compress_to_fp16=False)
        os.replace(Path(work) / out.name.replace(".xml", ".bin"), out.with_suffix(".bin"))
        os.replace(Path(work) / out.name, out)
    return out
