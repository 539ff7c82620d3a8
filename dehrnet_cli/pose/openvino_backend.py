"""OpenVINO on the CPU: the pose backend that runs bf16 at the CPU's bf16 matrix rate, and int8.

`OpenVinoBackend(path, precision, threads)` compiles a dehrnet ONNX export (or an int8 IR from
`export.openvino_int8`) with OpenVINO's CPU plugin and runs it like the other backends: normalised crops
(N, 3, h, w) float32 in, heatmaps (N, K, h/4, w/4) float32 out, any N (the batch axis stays dynamic).
`precision` "fp32" or "bf16" is OpenVINO's INFERENCE_PRECISION_HINT: bf16 runs the convolutions on AVX512-BF16
or AMX units and keeps the input and output fp32; "int8" runs an int8 IR. The compiled model is cached by
OpenVINO (CACHE_DIR) in an `openvino/` folder beside the export: the first start compiles (DE-HRNet-W32: about
2 s on 2 cores), later starts load the blob (about 0.8 s with reading the metadata). OpenVINO keys the blob by
the file's content, the properties and its version; the blob holds the transformed model and the precision is
applied when it loads (fp32 from a blob bf16 made computes fp32's numbers: tested).

DE-HRNet's export for OpenVINO should have DySample as GridSample (`precision.onnx_cache.openvino_export`):
OpenVINO runs GridSample as one vectorised kernel, while the gather graph that suits ONNX Runtime runs as
reference gathers and transposes (DE-HRNet-W32 bf16: 1.13-1.17x HRNet-W32's time with GridSample, 1.5x with
the gather graph; docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.pose.onnx_session import UNTRAINED_KEY
from models import PoseNetConfig

# dehrnet's name -> INFERENCE_PRECISION_HINT; int8 models (export.openvino_int8) keep OpenVINO's default for the
# operations left in float: bf16 where the CPU has bf16 units, else f32
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16", "int8": None}

CACHE_FOLDER = "openvino"  # beside the export: OpenVINO's compiled blobs


def openvino_cache_dir(onnx_path: Path) -> Path:
    """Where the compiled models of the export `onnx_path` are cached: <its folder>/openvino."""
    return Path(onnx_path).parent / CACHE_FOLDER


@functools.cache
def openvino_core():
    """The process's one OpenVINO Core (DehrnetError without the openvino package). One, kept for the life of the
    process, because OpenVINO's CPU plugin installs an alternate signal stack on the thread that loads it and puts
    back the one it found when it is destroyed: cores made and dropped out of order (a backend, the precision
    check's fp32 reference, a fallback) left the main thread's signal stack on freed memory, and the next Ctrl-C
    killed the process with SIGSEGV instead of raising KeyboardInterrupt."""
    try:
        import openvino as ov
    except ImportError:
        raise DehrnetError("--backend openvino needs the openvino package: pip install openvino") from None
    return ov.Core()


def openvino_units() -> list[str]:
    """The number formats OpenVINO's CPU plugin reports here (OPTIMIZATION_CAPABILITIES, e.g. ["BF16",
    "FP32", "INT8", ...]); [] when OpenVINO is not installed."""
    if find_spec("openvino") is None:
        return []
    return list(openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def read_metadata(model) -> dict[str, str]:
    """The dehrnet metadata of a model read by OpenVINO: an ONNX export's metadata_props, which OpenVINO puts in
    rt_info "framework" (and an IR written by export.openvino_int8 keeps there)."""
    if not model.has_rt_info(["framework", "dehrnet_config"]):
        return {}
    framework = model.get_rt_info()["framework"]
    return {key: model.get_rt_info(["framework", key]).astype(str) for key in framework}


class OpenVinoBackend:
    """OpenVINO's CPU plugin running a dehrnet ONNX export in fp32 or bf16, or an int8 IR made by
    `export.openvino_int8` (see the module docstring). `threads`: INFERENCE_NUM_THREADS (None: OpenVINO's
    default, every core); compiled models are cached in `cache_dir` (default `openvino_cache_dir(path)`), or
    not at all with `cache=False`."""

    name = "openvino"
    device = "cpu"

    def __init__(self, path: Path, precision: str = "fp32", threads: int | None = None,
                 cache_dir: Path | None = None, cache: bool = True) -> None:
        core = openvino_core()
        if precision not in OPENVINO_PRECISIONS:
            raise DehrnetError(f"--precision {precision}: the openvino backend runs {', '.join(OPENVINO_PRECISIONS)}")
        if threads is not None and threads < 1:
            raise DehrnetError(f"--threads {threads}: give 1 or more")
        path = Path(path)
        if not path.is_file():
            raise DehrnetError(f"{path}: no such model file; export one with dehrnet export")
        try:
            meta = read_metadata(core.read_model(str(path)))
        except Exception as e:  # OpenVINO raises RuntimeError subclasses for unreadable files
            raise DehrnetError(f"{path}: OpenVINO cannot read it ({str(e).splitlines()[0][:200]})") from None
        if "dehrnet_config" not in meta:
            raise DehrnetError(f"{path}: an ONNX model without dehrnet metadata (export it with dehrnet export)")
        stored = meta.get("dehrnet_precision", "fp32")
        if (stored == "int8") != (precision == "int8") or stored not in ("fp32", "int8"):
            raise DehrnetError(f"{path}: its dehrnet_precision is {stored}; the openvino backend runs an fp32 export "
                               "in fp32 or bf16, and an int8 model (quantized by NNCF) in int8")
        properties: dict = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if OPENVINO_PRECISIONS[precision] is not None:
            properties["INFERENCE_PRECISION_HINT"] = OPENVINO_PRECISIONS[precision]
        if threads is not None:
            properties["INFERENCE_NUM_THREADS"] = threads
        self.cache_dir = (cache_dir or openvino_cache_dir(path)) if cache else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            properties["CACHE_DIR"] = str(self.cache_dir)
        # from the path, not the model read above: OpenVINO then loads a cached blob without reading the model
        self.compiled = core.compile_model(str(path), "CPU", properties)
        self.loaded_from_cache = bool(self.compiled.get_property("LOADED_FROM_CACHE"))
        self.request = self.compiled.create_infer_request()
        self.path = path
        self.config = PoseNetConfig.from_dict(json.loads(meta["dehrnet_config"]))
        self.precision = precision
        self.threads = threads
        self.untrained = meta.get(UNTRAINED_KEY, "") == "true"  # exported from random weights

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Normalised crops (N, 3, h, w) float32 -> heatmaps (N, K, h/4, w/4) float32 (a copy: the request
        reuses its output memory)."""
        self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return self.request.get_output_tensor(0).data.copy()
