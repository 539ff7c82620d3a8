"""Turn the user's model flags (--weights FILE | --model NAME [--untrained]) into a network."""

from __future__ import annotations

import difflib
from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from models import PoseHRNet, create_model, list_models, load_model

DEFAULT_WEIGHTS_FILE = "dehrnet_w32_384x288.pt"  # looked for in the weights cache when no model is named

NO_WEIGHTS_HELP = (
    "no DE-HRNet weights are published yet: train them (dehrnet train), warm-start them from an HRNet "
    "checkpoint (dehrnet weights convert HRNET.pth de.pt --to dehrnet_w32_384x288), run the HRNet baseline "
    "(--model hrnet_w32.coco_384x288, see dehrnet weights list), or add --untrained for random weights"
)


def load_pose_model(
    weights: Path | None = None,
    model: str | None = None,
    untrained: bool = False,
    input_size: tuple[int, int] | None = None,
) -> PoseHRNet:
    """`weights`: any checkpoint file (dehrnet, official HRNet, mmpose); `model`: a registry weights
    name (downloaded on first use) or an architecture name (needs `untrained`, else a DehrnetError that
    says how to get weights); neither: the local default DE-HRNet file in the weights cache, if any.
    The model comes back in eval mode with `checkpoint_info` when loaded."""
    overrides = {"input_size": tuple(input_size)} if input_size else {}
    if weights is not None and model is not None and not untrained:
        raise DehrnetError("give either --weights FILE or --model NAME, not both")
    if weights is not None:
        return load_model(weights, **overrides)
    if model is None:
        from dehrnet_cli.weights.cache import weights_dir

        default = weights_dir() / DEFAULT_WEIGHTS_FILE
        if default.is_file():
            return load_model(default, **overrides)
        raise DehrnetError(f"no pose model given and no {default}: pass --weights FILE or --model NAME; "
                           f"{NO_WEIGHTS_HELP}")
    if model in list_models():
        if untrained:
            return create_model(model, **overrides).eval()
        raise DehrnetError(f"{model!r} is an architecture without weights; {NO_WEIGHTS_HELP}")
    from dehrnet_cli.weights.cache import resolve
    from dehrnet_cli.weights.manifest import load_manifest

    manifest = load_manifest()
    entry = manifest.get(model)
    if entry is None:
        close = difflib.get_close_matches(model, [*manifest, *list_models()], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DehrnetError(f"--model {model!r}: neither registry weights (dehrnet weights list) nor an architecture "
                           f"(dehrnet info --all){hint}")
    path = resolve(model)
    return load_model(path, None if entry is None else entry.config, **overrides)
