"""Checkpoints: dehrnet's own format, official HRNet state dicts and mmpose checkpoints, recognised by
content; warm starts of DE-HRNet from HRNet (shared/DESIGN.md section 3).

Every load is `torch.load(..., weights_only=True)`: a checkpoint cannot run code. It allows, besides
tensors and plain types, exactly the numpy types of mmengine's metadata (`numpy_safe_globals`). Every failure
is a one-line DehrnetError naming the file.
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import re
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from .errors import DehrnetError
from .hrnet import VARIANTS, PoseHRNet, PoseNetConfig
from .keypoints import COCO17, MPII16, KeypointSpec
from .registry import create_model, get_config

FORMAT = "dehrnet"
FORMAT_VERSION = 1

# mmpose prefixes -> official names (0.x: keypoint_head, 1.x: head)
_MMPOSE_HEADS = ("keypoint_head.final_layer.", "head.final_layer.")
_MMPOSE_IGNORED = ("data_preprocessor.",)
# official input size when a bare file does not say (17 joints: COCO 384x288, 16: MPII 256x256)
_DEFAULT_INPUT = {17: (288, 384), 16: (256, 256)}
_SPEC_BY_JOINTS = {17: COCO17, 16: MPII16}


@dataclass(frozen=True)
class CheckpointInfo:
    """Where a loaded model came from: `kind` is dehrnet, official or mmpose; `replaced_head`: the file's keypoint
    set when its final layer was left out and made new (`load_model(..., new_head=True)`), else None."""

    path: str
    kind: str
    warm_start: bool
    meta: dict
    replaced_head: KeypointSpec | None = None


def _version() -> str:
    try:
        return metadata.version("dehrnet")
    except metadata.PackageNotFoundError:
        return "unknown"


def save_checkpoint(model: PoseHRNet, path: str | Path, meta: dict | None = None, **extra) -> Path:
    """Write model weights + config (architecture, input size, keypoints, codec) atomically.

    `extra` holds further top-level entries (e.g. optimiser state of a training run); they must be
    plain types or tensors so the file stays loadable with weights_only=True.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": {
            "dehrnet_version": _version(),
            "torch_version": str(torch.__version__),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **(meta or {}),
        },
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# dtypes of the arrays and scalars in mmengine's meta.dataset_meta (float sigmas and weights, uint8 colours,
# int ids; bool and str for good measure); not "O": object arrays hold pickled Python objects
_METADATA_DTYPES = "?bhilqpBHILQPefdgFDGSU"


def numpy_safe_globals() -> list:
    """The numpy globals that mmpose 1.x checkpoints need under weights_only=True, and nothing that runs code.

    mmengine writes `meta.dataset_meta` with numpy arrays (sigmas, colours) and numpy scalars. Unpickling them
    takes ndarray, dtype and the dtype classes (numpy >= 1.25 builds a dtype as e.g. numpy.dtypes.Float32DType),
    and the array and scalar constructors `_reconstruct` and `scalar` under both module paths: numpy 2 writes
    numpy._core.multiarray, numpy 1 numpy.core.multiarray, and a file may come from either.
    """
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    constructors = [(fn, f"{module}.{fn.__name__}") for fn in (multiarray._reconstruct, multiarray.scalar)
                    for module in ("numpy.core.multiarray", "numpy._core.multiarray")]
    dtype_classes = sorted({type(np.dtype(code)) for code in _METADATA_DTYPES}, key=lambda c: c.__name__)
    return [np.ndarray, np.dtype, *dtype_classes, *constructors]


def read_checkpoint(path: str | Path) -> dict:
    """torch.load with weights_only=True (plus `numpy_safe_globals`), turning every failure into a
    DehrnetError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DehrnetError(f"{path}: no such file")
    if path.is_dir():
        raise DehrnetError(f"{path}: is a folder, expected a checkpoint file (.pth/.pt)")
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise DehrnetError(_refusal(path, str(e))) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, zipfile errors... for damaged files
        raise DehrnetError(f"{path}: cannot be read as a PyTorch checkpoint, truncated or corrupt? "
                           f"({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(obj, dict):
        raise DehrnetError(f"{path}: not a pose checkpoint (holds a {type(obj).__name__}, expected a dict)")
    return obj


def _refusal(path: Path, torch_message: str) -> str:
    """The one line for a file the safe load refused: what it holds, never torch's hints (they suggest loading
    with weights_only=False or allow-listing the refused global, which would run the file's code)."""
    named = (re.search(r"GLOBAL ([\w.]+)", torch_message)
             or re.search(r"Can only build .*? but got (<class '[^']+'>|\S+)", torch_message))
    if named:  # a Python object the allow-list refuses: a pickled model, a YOLO .pt, or a hostile file
        return (f"{path}: not a pose checkpoint: it holds Python objects that a safe load refuses (it names "
                f"{named.group(1)}: a pickled model, a YOLO .pt?), and unpickling them could run code; expected a "
                "dehrnet, official HRNet or mmpose checkpoint (tensors and plain values)")
    detail = torch_message.split("WeightsUnpickler error:")[-1].strip()  # after torch's preamble, if any
    lines = [line for line in detail.splitlines() if line.strip() and "weights_only" not in line
             and "safe_globals" not in line and "Weights only load failed" not in line]
    reason = f" ({lines[0].strip()[:200]})" if lines else ""
    return f"{path}: not a PyTorch checkpoint{reason}"


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def split_checkpoint(obj: dict, path: Path) -> tuple[str, dict[str, torch.Tensor], dict | None]:
    """(kind, state dict with official key names, stored config or None) of a loaded checkpoint."""
    if obj.get("format") == FORMAT:
        return FORMAT, obj["state_dict"], obj["config"]
    kind = "official"
    state = obj
    if isinstance(obj.get("state_dict"), dict):  # mmpose, or an official training checkpoint
        state = obj["state_dict"]
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(list(obj)[:5])
        raise DehrnetError(f"{path}: not a pose checkpoint (top-level keys: {keys}); expected a dehrnet, "
                           "official HRNet or mmpose checkpoint")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        kind = "mmpose"
        state = _from_mmpose(state)
    return kind, state, None


def _from_mmpose(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith(_MMPOSE_IGNORED):
            continue
        if key.startswith("backbone."):
            key = key[len("backbone."):]
        for head in _MMPOSE_HEADS:
            if key.startswith(head):
                key = "final_layer." + key[len(head):]
        out[key] = value
    return out


def infer_config(state: dict[str, torch.Tensor], path: Path, **overrides) -> PoseNetConfig:
    """The HRNet config of an official/mmpose state dict, from its shapes."""
    try:
        width = int(state["stage2.0.branches.0.0.conv1.weight"].shape[0])
        joints = int(state["final_layer.weight"].shape[0])
    except KeyError as e:
        raise DehrnetError(f"{path}: not an HRNet pose checkpoint (no key {e.args[0]!r})") from None
    if joints not in _SPEC_BY_JOINTS:
        raise DehrnetError(f"{path}: {joints} keypoints; dehrnet knows 17 (COCO) and 16 (MPII)")
    input_size = tuple(overrides.pop("input_size", None) or _DEFAULT_INPUT[joints])
    spec = _SPEC_BY_JOINTS[joints]
    named = [c for c in VARIANTS.values()
             if c.is_plain_hrnet and c.width == width and c.keypoints == spec and c.input_size == input_size]
    base = named[0] if named else PoseNetConfig(name=f"hrnet_w{width}_custom", width=width, keypoints=spec)
    sigma = 3.0 if input_size == (288, 384) else 2.0
    return replace(base, input_size=input_size, sigma=sigma, **{k: v for k, v in overrides.items() if v is not None})


def _config_from(config: str | PoseNetConfig | None, overrides: dict) -> PoseNetConfig | None:
    if config is None:
        return None
    if isinstance(config, PoseNetConfig):
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})
    return get_config(config, **overrides)


def check_state_dict(model: PoseHRNet, state: dict[str, torch.Tensor], path: Path,
                     allowed_missing: set[str] = frozenset()) -> None:
    """Raise a DehrnetError naming the first key that does not fit, with both shapes."""
    expected = model.state_dict()
    for key, value in state.items():
        if key not in expected:
            raise DehrnetError(f"{path}: does not fit {model.config.name}: unexpected key {key!r} "
                               f"(shape {tuple(value.shape)} in the file)")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise DehrnetError(f"{path}: does not fit {model.config.name}: key {key!r} has shape "
                               f"{tuple(value.shape)} in the file but {tuple(expected[key].shape)} in the model")
    for key, value in expected.items():
        if key not in state and key not in allowed_missing and not key.endswith("num_batches_tracked"):
            raise DehrnetError(f"{path}: does not fit {model.config.name}: missing key {key!r} "
                               f"(shape {tuple(value.shape)} in the model)")


def load_model(path: str | Path, config: str | PoseNetConfig | None = None, *, new_head: bool = False,
               **overrides) -> PoseHRNet:
    """Load a dehrnet, official HRNet or mmpose checkpoint (recognised by content) in eval mode.

    `config` (a name or PoseNetConfig) chooses the architecture to build; an HRNet checkpoint loaded into
    a DE-HRNet config is a warm start: shared weights are copied and every new parameter is set so the
    network starts exactly as the HRNet (with upsample="nearest" its output equals the HRNet's).
    `new_head`: when the file's keypoint set (names) differs from the config's, every weight but the final
    layer is loaded and the final layer keeps its fresh official init (a warm start across keypoint sets,
    e.g. COCO-17 weights into a 6-keypoint model); without it such a file is refused as not fitting.
    `overrides` change config fields (e.g. input_size=(192, 256) for an official 256x192 file).
    The result carries `model.checkpoint_info` (CheckpointInfo).
    """
    path = Path(path)
    obj = read_checkpoint(path)
    kind, state, stored = split_checkpoint(obj, path)
    if stored is not None:
        try:
            source = PoseNetConfig.from_dict(stored)
        except (ValueError, TypeError, KeyError) as e:
            raise DehrnetError(f"{path}: dehrnet checkpoint with a broken config ({e})") from None
    try:  # the overrides come from the user (an input size): a value no network can have is their mistake
        if stored is None:
            source = infer_config(state, path, **(overrides if config is None else {}))
        if config is not None:
            target = _config_from(config, overrides)
        elif stored is not None:
            target = replace(source, **{k: v for k, v in overrides.items() if v is not None})
        else:
            target = source
    except (ValueError, TypeError) as e:
        raise DehrnetError(f"{path}: {e}") from None
    model = create_model(target)
    warm_start = source.is_plain_hrnet and not target.is_plain_hrnet
    new_keys: set[str] = set()
    if warm_start:
        new_keys = set(model.state_dict()) - set(create_model(target.baseline()).state_dict())
        model.prepare_warm_start()
    replaced = new_head and source.keypoints.names != target.keypoints.names
    if replaced:
        state = {k: v for k, v in state.items() if not k.startswith("final_layer.")}
        new_keys |= {k for k in model.state_dict() if k.startswith("final_layer.")}
    check_state_dict(model, state, path, allowed_missing=new_keys)
    model.load_state_dict(state, strict=False)
    meta = dict(obj.get("meta", {})) if stored is not None else {}
    model.checkpoint_info = CheckpointInfo(str(path), kind, warm_start, meta, source.keypoints if replaced else None)
    return model.eval()


def convert_checkpoint(src: str | Path, dst: str | Path, config: str | PoseNetConfig | None = None,
                       **overrides) -> Path:
    """Official HRNet / mmpose file -> dehrnet checkpoint with its config (a warm start with `config`)."""
    model = load_model(src, config, **overrides)
    info = model.checkpoint_info
    return save_checkpoint(model, dst, meta={"converted_from": Path(src).name, "source_kind": info.kind,
                                             "warm_start": info.warm_start})
