"""Opening a YOLO detector file without running code from it.

A YOLO `.pt` file is a pickle, and ultralytics unpickles it with `weights_only` off unless its safe-load mode is
on: a hostile file given with --det-model, or planted where dehrnet looks for one by name (./yolo26n.pt, the
weights cache), would run its code on load. So every `.pt` is loaded in ultralytics' own safe mode
(`torch.load(weights_only=True)` against its allow-list of model classes, and model yamls built without
`eval`); a file that needs anything else is refused with the way out (an ONNX or OpenVINO export, which hold no
Python objects). A known detector name with a published sha256 (weights/manifest.json "detectors") is checked
against it before it is opened. Written here rather than left to ultralytics because its safe mode is off by
default and is read once, when ultralytics is imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dehrnet_cli.errors import DehrnetError

if TYPE_CHECKING:
    from ultralytics import YOLO

    from dehrnet_cli.weights.manifest import DetectorEntry

OPENVINO_SUFFIX = "_openvino_model"  # the folder `yolo export format=openvino` writes
ALTERNATIVES = "or take boxes from a file with --boxes dets.json, or use --detector none (whole image) or hog"


def conversion_hint(path: str) -> str:
    """How to make a file dehrnet loads without unpickling: an export, made once where the file is trusted."""
    return (f"if you trust its source, export it once with `yolo export model={path} format=onnx` (or "
            "format=openvino; that step unpickles it, so run it only where you trust the file) and pass the export "
            "with --det-model")


def detector_format(path: str) -> str:
    """"pt" (also a bare name such as yolo26n: ultralytics adds .pt), "onnx", "openvino" or "yaml" (an
    architecture, random weights); anything else is refused."""
    name = Path(path).name.lower()
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(OPENVINO_SUFFIX) or (name.endswith(".xml") and Path(path).parent.name.endswith(OPENVINO_SUFFIX)):
        return "openvino"
    if name.endswith(".pt") or not Path(name).suffix:
        return "pt"
    raise DehrnetError(f"--det-model {path}: dehrnet loads YOLO detectors as .pt (in ultralytics' safe mode), "
                       f".onnx or an OpenVINO export folder (*{OPENVINO_SUFFIX}/), formats that run no code when "
                       "opened; export the detector's .pt to one of them (`yolo export model=NAME.pt format=onnx`)")


def verify_published(path: Path, entry: DetectorEntry) -> None:
    """Refuse `path`, found under a known detector's name, when it is not the published file (sha256)."""
    if entry.sha256 is None:
        return
    from dehrnet_cli.weights.download import sha256_file

    got = sha256_file(path)
    if got != entry.sha256:
        raise DehrnetError(f"--det-model {entry.filename}: {path} is not the published {entry.filename} (sha256 "
                           f"{got[:16]}..., expected {entry.sha256[:16]}...); delete it so that the published file "
                           f"is fetched, or give your own model by its path (--det-model ./{entry.filename})")


def _ultralytics_in_safe_mode() -> None:
    """Turn on ultralytics' safe-load mode for this process: the variable for an ultralytics imported from now on,
    the flag itself for one that was imported before (it reads the variable once, at import)."""
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    import torch
    from ultralytics.nn import tasks

    if not hasattr(tasks, "SAFE_LOAD") or not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):
        import ultralytics

        raise DehrnetError(f"ultralytics {ultralytics.__version__} with torch {torch.__version__} cannot load a .pt "
                           "detector safely (it needs ultralytics' safe-load mode and torch >= 2.6): upgrade them "
                           "(pip install -U ultralytics torch), or use an ONNX export of the detector")
    tasks.SAFE_LOAD = True


def _refusal(path: str, error: BaseException) -> DehrnetError | None:
    """The one-line refusal for an error of a safe load that met Python objects outside the allow-list; None for
    other errors (a damaged file)."""
    chain = [error, error.__cause__, error.__context__]
    text = " ".join(str(e) for e in chain if e is not None)
    refused = "outside the supported Ultralytics checkpoint format" in text or isinstance(error, ModuleNotFoundError)
    if not refused:
        return None
    named = re.search(r"GLOBAL ([\w.]+)", text)
    what = f" (it names {named.group(1)})" if named else (
        f" (it names the module {error.name})" if isinstance(error, ModuleNotFoundError) and error.name else "")
    return DehrnetError(f"--det-model {path}: refused: it holds Python objects beyond ultralytics' model "
                        f"classes{what}, and unpickling them could run code; {conversion_hint(path)}")


def load_yolo(path: str) -> YOLO:
    """An ultralytics YOLO for `path` (a located file, or a yaml name), loaded without running code from it."""
    kind = detector_format(path)
    if kind == "openvino" and importlib.util.find_spec("openvino") is None:
        raise DehrnetError(f"--det-model {path}: an OpenVINO export needs the openvino package: pip install "
                           "openvino (or pass the .onnx export)")
    _ultralytics_in_safe_mode()  # also for yamls: their layers are then built without eval
    from ultralytics import YOLO

    try:
        return YOLO(path, task="detect" if kind in ("onnx", "openvino") else None)
    except Exception as e:  # ultralytics raises many types for refused, missing or corrupt files
        refusal = _refusal(path, e)
        if refusal is not None:
            raise refusal from None
        reason = str(e).replace("❌", "").replace("ERROR", "").strip().splitlines()[0][:160]
        raise DehrnetError(f"--det-model {path}: cannot load it ({reason}); give a YOLO .pt, .onnx or OpenVINO "
                           f"export, {ALTERNATIVES}") from None
