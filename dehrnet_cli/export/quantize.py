"""int8 inference: static quantization of an exported fp32 ONNX model with ONNX Runtime.

`calibration_crops` cuts person-shaped crops out of the user's images (or the two images bundled with
ultralytics) exactly as inference does; `quantize_onnx` calibrates activation ranges on them (MinMax)
and writes a QDQ model (activations QUInt8, conv weights QInt8 per output channel, 7-bit) that keeps the
dehrnet metadata and says `dehrnet_precision` = "int8".

Measured on the 2-core AVX2 CPU (no VNNI), onnxruntime 1.31.1, DE-HRNet-W32 384x288, batch 4:
- speed (lead, quiet machine): fp32 370 ms/crop, QDQ int8 278, QOperator int8 291. On the busy machine,
  one run each: fp32 1024 ms/crop, all ops quantized 670, convolutions only 733 (min 603 vs 626).
- Only convolutions are quantized: as fast within noise, quantizing W32 took 72 s instead of 184 s,
  and DySample's sampling coordinates stay float. On a synthetic-trained w8 (fp32 PCK@0.1 0.885),
  heatmap argmax agreement with fp32 on 267 person crops: convs only 0.881, with reduce_range 0.890
  (PCK 0.889); all ops 0.863 / 0.864.
- reduce_range=True (7-bit weights): U8S8 kernels without VNNI (VPMADDUBSW) can saturate int16 sums
  of 8-bit products; with 7-bit weights they cannot, it scored no worse above, and VNNI CPUs lose little.
- Memory is the calibration session's working set (it runs the graph unoptimised with a min/max pair
  on every conv tensor), not stored outputs: W32 peaks at 6.4 GiB for 8 crops a run, 2.3 GiB for 2,
  1.6 GiB for 1, whatever the crop count. Hence CALIB_BATCH = 2 (no slower than 8). onnxruntime's
  CalibMaxIntermediateOutputs is no cure: in 1.31.1 it drops the collected batches without merging
  their ranges ("No data is collected" when every batch is dropped).
- The torch exporter leaves conv biases that are not initializers, which `quantize_static` chokes on
  ('NoneType' has no attribute 'data_type'); `quant_pre_process` first (3 s for W32) fixes that.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.backends import normalize_crops
from dehrnet_cli.sinks.atomic import atomic_path, prepare_output
from models import PoseNetConfig

CALIB_BATCH = 2  # crops per calibration run: the calibration session's memory grows with it (see above)


def _dehrnet_metadata(path: Path) -> dict[str, str]:
    """The metadata of an fp32 dehrnet export at `path`, or a DehrnetError saying why it is not one."""
    import onnx

    if not path.is_file():
        raise DehrnetError(f"{path}: no such ONNX file; export one first with dehrnet export")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError and friends
        raise DehrnetError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "dehrnet_config" not in meta:
        raise DehrnetError(f"{path}: an ONNX model without dehrnet metadata; quantize an fp32 dehrnet export "
                           "(dehrnet export MODEL)")
    precision = meta.get("dehrnet_precision", "fp32")
    if precision != "fp32":
        raise DehrnetError(f"{path}: its dehrnet_precision is {precision}; int8 quantization starts from an fp32 "
                           "export (dehrnet export without --half or --int8)")
    return meta


def _check_crops(crops_bgr: np.ndarray, config: PoseNetConfig) -> None:
    """A DehrnetError unless `crops_bgr` is (N >= 1, h, w, 3) uint8 at config.input_size (w, h)."""
    w, h = config.input_size
    if crops_bgr.dtype != np.uint8 or crops_bgr.ndim != 4 or crops_bgr.shape[1:] != (h, w, 3) or not len(crops_bgr):
        raise DehrnetError(f"calibration crops {crops_bgr.dtype} {crops_bgr.shape}: expected uint8 (N, {h}, {w}, 3) "
                           f"with N >= 1 for {config.name}; make them with calibration_crops")


@contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Silence Python logging below ERROR for the duration of the block (onnxruntime.quantization warns
    through the root logger, hundreds of lines when all op types are quantized), and ORT's C++ warnings
    (their severity stays at errors, as `export.ort_session` sets it)."""
    import onnxruntime as ort

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        logging.disable(previous)


def quantize_onnx(fp32_onnx: Path, out: Path, crops_bgr: np.ndarray) -> Path:
    """Write an int8 (QDQ) copy of the fp32 dehrnet export `fp32_onnx` to `out`, calibrated on
    `crops_bgr` (N, h, w, 3) uint8 BGR person crops; return `out`.

    Activations are QUInt8 with MinMax ranges over the crops (normalised as inference does), weights
    QInt8 per output channel. The output keeps `dehrnet_config` and says `dehrnet_precision` = "int8".
    `out` appears atomically; work files live in a temporary folder beside it and are always removed.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from dehrnet_cli.pose.onnx_session import INPUT_NAME

    fp32_onnx = Path(fp32_onnx).expanduser()
    meta = _dehrnet_metadata(fp32_onnx)
    config = PoseNetConfig.from_dict(json.loads(meta["dehrnet_config"]))
    _check_crops(crops_bgr, config)

    class CropBatches(CalibrationDataReader):
        """The crops as normalised (B, 3, h, w) float32 batches, one per get_next()."""

        def __init__(self) -> None:
            self.starts = iter(range(0, len(crops_bgr), CALIB_BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.starts, None)
            if start is None:
                return None
            return {INPUT_NAME: normalize_crops(crops_bgr[start:start + CALIB_BATCH], config.mean, config.std)}

    out = prepare_output(Path(out))
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.quantize-", dir=out.parent) as work, _quiet_onnxruntime():
        prepared, quantized = Path(work) / "prepared.onnx", Path(work) / "int8.onnx"
        # the torch exporter's conv biases are not initializers; pre-processing folds them in
        quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        # QDQ, convolutions only, 7-bit per-channel weights: measured choices, see the module docstring
        quantize_static(
            str(prepared), str(quantized), CropBatches(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
            per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
        proto = onnx.load(str(quantized))
    # quantize_static keeps the input's metadata, dehrnet_precision "fp32" included: replace dehrnet's keys
    other_props = [p for p in proto.metadata_props if not p.key.startswith("dehrnet_")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(other_props)
    for key, value in {**meta, "dehrnet_precision": "int8"}.items():  # the config, UNTRAINED when it is
        if key.startswith("dehrnet_"):
            proto.metadata_props.add(key=key, value=value)
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


def int8_agreement(fp32_onnx: Path, int8_onnx: Path, crops_bgr: np.ndarray) -> float:
    """The fraction of keypoints whose heatmap maximum in the int8 model lies within 1 heatmap pixel
    (Euclidean) of the fp32 model's, on `crops_bgr` (N, h, w, 3) uint8 BGR (crops not calibrated on)."""
    from dehrnet_cli.pose.backends import OnnxBackend

    fp32, int8 = OnnxBackend(Path(fp32_onnx), "cpu"), OnnxBackend(Path(int8_onnx), "cpu")
    batch = normalize_crops(crops_bgr, fp32.config.mean, fp32.config.std)
    peaks = []
    for backend in (fp32, int8):
        heatmaps = np.concatenate([backend(batch[i:i + CALIB_BATCH]) for i in range(0, len(batch), CALIB_BATCH)])
        n, k, _, width = heatmaps.shape
        flat = heatmaps.reshape(n, k, -1).argmax(axis=2)
        peaks.append(np.stack([flat % width, flat // width], axis=-1).astype(np.float64))
    return float((np.linalg.norm(peaks[0] - peaks[1], axis=-1) <= 1.0).mean())
