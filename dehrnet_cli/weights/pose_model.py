"""Load the network a `ModelChoice` names: fetch a registry checkpoint on first use (checksummed, resumable,
with a progress bar), then build it (torch)."""

from __future__ import annotations

from collections.abc import Callable

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.weights.model_choice import BASELINE, ModelChoice, offline_baseline_error
from models import PoseHRNet, create_model, load_model


def fetch_checkpoint(choice: ModelChoice, progress: bool = True) -> ModelChoice:
    """`choice` with its registry checkpoint in the cache (downloaded now when missing). The default baseline
    that cannot be reached gets the offline line naming the file to place."""
    if not choice.to_fetch:
        return choice
    from dataclasses import replace

    from dehrnet_cli.weights.cache import resolve

    try:
        path = resolve(choice.registry, progress=progress)
    except DehrnetError:
        if choice.registry == BASELINE and choice.note is not None:  # the default, not a --model the user named
            raise offline_baseline_error(choice.weights) from None
        raise
    return replace(choice, weights=path, to_fetch=False)


def load_pose_model(choice: ModelChoice, input_size: tuple[int, int] | None = None,
                    log: Callable[[str], None] | None = None) -> PoseHRNet:
    """The network of `choice` in eval mode (with `checkpoint_info` when loaded from a file); `input_size` (w, h)
    overrides the size of official files that do not record it. `log` receives the choice's note."""
    overrides = {"input_size": tuple(input_size)} if input_size else {}
    if choice.is_onnx:
        raise DehrnetError(f"{choice.weights}: an ONNX model has no torch network; run it with --backend onnx "
                           "(or pass the checkpoint it was exported from)")
    if choice.untrained:
        return create_model(choice.architecture, **overrides).eval()
    if log is not None and choice.note:
        log(choice.note)
    choice = fetch_checkpoint(choice)
    return load_model(choice.weights, choice.config, **overrides)
