"""ONNX Runtime sessions of exported pose models and the dehrnet metadata they carry (config, precision):
what the onnx backend reads and what `export` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dehrnet_cli.errors import DehrnetError

INPUT_NAME, OUTPUT_NAME = "input", "heatmaps"

UNTRAINED_KEY = "dehrnet_untrained"  # metadata of a model exported from random weights: "true"

_intra_op_threads: int | None = None  # set_ort_threads; None: onnxruntime's default (every core)


def set_ort_threads(threads: int | None) -> None:
    """The intra-op threads of the sessions `ort_session` opens from now on (None: onnxruntime's default)."""
    global _intra_op_threads
    _intra_op_threads = threads


def onnx_providers(device: str, available: list[str], tensorrt: bool, engine_cache: Path) -> list:
    """onnxruntime's providers, first choice first: on CUDA (when torch sees a GPU and the CUDA provider is
    there) TensorRT first if `tensorrt` and its provider is there, its engines cached in `engine_cache` (the
    first session of a model and input shape builds one, for minutes; later ones load it), then CUDA; CPU last."""
    providers: list = ["CPUExecutionProvider"]
    # onnxruntime-gpu lists CUDA even without a GPU and logs library errors when it fails: ask torch first
    if not (device.startswith("cuda") and torch.cuda.is_available() and "CUDAExecutionProvider" in available):
        return providers
    providers.insert(0, "CUDAExecutionProvider")
    if tensorrt and "TensorrtExecutionProvider" in available:
        providers.insert(0, ("TensorrtExecutionProvider", {
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(engine_cache),
            "trt_timing_cache_enable": True, "trt_timing_cache_path": str(engine_cache)}))
    return providers


def ort_session(path: Path, device: str = "cpu"):
    """An onnxruntime session on CUDA when asked for and available (TensorRT first with DEHRNET_TENSORRT set,
    engines cached in <weights>/tensorrt), else CPU, with ORT's CUDA-missing noise silenced on CPU machines;
    `set_ort_threads` threads that wait asleep instead of spinning (spinning takes the cores from other work and
    measured no faster beside it: docs/reliability.md, "Threads")."""
    import onnxruntime as ort

    from dehrnet_cli.env import tensorrt
    from dehrnet_cli.weights.cache import weights_dir

    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if _intra_op_threads is not None:
        options.intra_op_num_threads = _intra_op_threads
    engine_cache = weights_dir() / "tensorrt"
    providers = onnx_providers(device, ort.get_available_providers(), tensorrt(), engine_cache)
    if not isinstance(providers[0], str):
        engine_cache.mkdir(parents=True, exist_ok=True)
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise DehrnetError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None


def read_onnx_config(path: Path, session=None) -> dict:
    """The dehrnet config stored in an exported model's metadata (from `session` when one is open)."""
    session = session or ort_session(Path(path))
    meta = session.get_modelmeta().custom_metadata_map
    if "dehrnet_config" not in meta:
        raise DehrnetError(f"{path}: an ONNX model without dehrnet metadata (export it with dehrnet export)")
    return json.loads(meta["dehrnet_config"])


def read_onnx_untrained(session) -> bool:
    """Whether an exported model says it was exported from random weights."""
    return session.get_modelmeta().custom_metadata_map.get(UNTRAINED_KEY, "") == "true"


def read_onnx_precision(session) -> str:
    """The number format an exported model computes in ("fp32", "fp16" or "int8"), from its metadata."""
    return session.get_modelmeta().custom_metadata_map.get("dehrnet_precision", "fp32")
