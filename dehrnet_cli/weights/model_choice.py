"""Which pose model the user's flags name (--weights FILE | --model NAME [--untrained] | nothing), decided
without torch, before any model work: a bad name, a missing file or an offline machine without the default
weights fail here in one line.

With no --weights and no --model: the local DE-HRNet file (`weights/dehrnet_w32_384x288.pt` in the weights
cache) when present; else the paper's own baseline, HRNet-W32 384x288 trained on COCO (BASELINE), fetched
through the registry on first use (no DE-HRNet weights are published anywhere).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from dehrnet_cli import env
from dehrnet_cli.errors import DehrnetError
from models.registry import list_models  # no torch: models.configs only

DEFAULT_WEIGHTS_FILE = "dehrnet_w32_384x288.pt"  # looked for in the weights cache when no model is named
BASELINE = "hrnet_w32.coco_384x288"  # the paper's baseline: COCO val2017 AP 0.760 with detector boxes (mmpose)
GET_DEHRNET = ("train or warm-start DE-HRNet from it with `dehrnet train --init hrnet_w32.coco_384x288 --coco DIR` "
               "(or `dehrnet weights convert`)")
NO_WEIGHTS_HELP = (
    "no DE-HRNet weights are published yet: train them (dehrnet train), warm-start them from an HRNet "
    "checkpoint (dehrnet weights convert HRNET.pth de.pt --to dehrnet_w32_384x288), run the HRNet baseline "
    "(--model hrnet_w32.coco_384x288, see dehrnet weights list), or add --untrained for random weights"
)


@dataclass(frozen=True)
class ModelChoice:
    """A pose model named by the flags. Exactly one of: `weights` (a checkpoint or .onnx file, existing),
    `registry` (a registry name; `weights` is then its cache path, fetched on first use when `to_fetch`), or
    `architecture` with `untrained` (random weights). `config`: the config to build (registry entries name
    one); `note`: the line saying which model runs and why, for the defaults (None when the user named it)."""

    weights: Path | None = None
    registry: str | None = None
    architecture: str | None = None
    untrained: bool = False
    config: str | None = None
    to_fetch: bool = False
    note: str | None = None

    @property
    def is_onnx(self) -> bool:
        """The weights are an ONNX model (by name or content): they run on onnxruntime."""
        return self.weights is not None and not self.to_fetch and is_onnx_file(self.weights)


@dataclass(frozen=True)
class ModelSpec:
    """Which pose model the user names: `weights` (a checkpoint or .onnx file), `name` (registry weights, or an
    architecture with `untrained`), or neither (the default: the local DE-HRNet weights, else the baseline);
    `input_size` (w, h) for official files of another size than their name says."""

    weights: Path | None = None
    name: str | None = None
    untrained: bool = False
    input_size: tuple[int, int] | None = None

    def choose(self) -> ModelChoice:
        """The ModelChoice these flags name (see `choose_model`): no torch, no network."""
        return choose_model(self.weights, self.name, self.untrained)


def _registry_entry(name: str, flag: str) -> ModelChoice:
    from dehrnet_cli.weights.cache import entry_path
    from dehrnet_cli.weights.manifest import load_manifest

    manifest = load_manifest()
    entry = manifest.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, [*manifest, *list_models()], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DehrnetError(f"{flag} {name!r}: neither registry weights (dehrnet weights list) nor an architecture "
                           f"(dehrnet info --all){hint}")
    path = entry_path(entry)
    return ModelChoice(weights=path, registry=name, config=entry.config, to_fetch=not path.is_file())


def offline_baseline_error(path: Path) -> DehrnetError:
    """The one line for a machine that cannot fetch the default baseline: what it is, where to place it, and
    the alternatives."""
    from dehrnet_cli.weights.manifest import get_entry

    url = get_entry(BASELINE).urls[0]
    return DehrnetError(
        f"no pose model given, no DE-HRNet weights found, and offline: the default is the HRNet-W32 384x288 COCO "
        f"baseline ({BASELINE}); download {url} elsewhere and place it at {path}, or pass --weights FILE (a "
        "dehrnet, official HRNet, mmpose or .onnx file), --model NAME (dehrnet weights list), or --model "
        "dehrnet_w32_384x288 --untrained (random weights)")


def choose_model(weights: str | Path | None = None, model: str | None = None, untrained: bool = False,
                 flag: str = "--model") -> ModelChoice:
    """The ModelChoice of the flags (see the module docstring); DehrnetError when they name nothing usable.
    Reads files and the manifest only: no torch, no network."""
    if weights is not None and model is not None and not untrained:
        raise DehrnetError("give either --weights FILE or --model NAME, not both")
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            raise DehrnetError(f"--weights {path}: is a folder, expected a checkpoint file (.pth/.pt) or an .onnx")
        if not path.is_file():
            raise DehrnetError(f"--weights {path}: no such file")
        return ModelChoice(weights=path)
    if model is not None:
        if model in list_models():
            if not untrained:
                raise DehrnetError(f"{model!r} is an architecture without weights; {NO_WEIGHTS_HELP}")
            return ModelChoice(architecture=model, untrained=True)
        return _registry_entry(model, flag)
    if untrained:
        raise DehrnetError("--untrained needs --model ARCHITECTURE (dehrnet info --all lists them), e.g. --model "
                           "dehrnet_w32_384x288 --untrained")
    return default_model()


def default_model() -> ModelChoice:
    """The local DE-HRNet file when present, else the baseline (fetched on first use; offline and not cached:
    a DehrnetError naming the file to place)."""
    from dehrnet_cli.weights.cache import weights_dir

    local = weights_dir() / DEFAULT_WEIGHTS_FILE
    if local.is_file():
        return ModelChoice(weights=local, note=f"pose model: the local DE-HRNet weights {local}")
    choice = _registry_entry(BASELINE, "--model")
    if choice.to_fetch and env.offline():
        raise offline_baseline_error(choice.weights)
    fetched = "fetched on first use, " if choice.to_fetch else ""
    note = (f"no DE-HRNet weights found, none are published yet: running the HRNet-W32 384x288 COCO baseline "
            f"({BASELINE}, {fetched}{choice.weights}); {GET_DEHRNET}")
    return ModelChoice(weights=choice.weights, registry=BASELINE, config=choice.config, to_fetch=choice.to_fetch,
                       note=note)


def is_onnx_file(path: Path) -> bool:
    """Whether `path` holds an ONNX model: a .onnx name, or a file that starts as a serialized ModelProto does
    (field 1, ir_version, a varint: byte 0x08), which no torch checkpoint does (zip "PK" or pickle 0x80)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x08"
    except OSError:
        return False
