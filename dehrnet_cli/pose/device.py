"""Device names: the user's --device as dehrnet spells it, and resolved against what torch sees (torch is imported
only to resolve)."""

from __future__ import annotations

from dehrnet_cli.errors import DehrnetError


def normalize_device(device: str | int | None) -> str:
    """The device as dehrnet spells it: lower case, and a bare index as ultralytics means it ('0' -> 'cuda:0')."""
    text = str("auto" if device is None else device).strip().lower()
    return f"cuda:{text}" if text.isdigit() else text


def resolve_device(device: str | int | None) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; '0' -> 'cuda:0'; 'cuda' without a GPU is a user error."""
    import torch

    given = device
    device = normalize_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not (device == "cpu" or device == "cuda" or device.startswith("cuda:") and device[5:].isdigit()):
        raise DehrnetError(f"--device {given!r}: use auto, cpu, cuda, cuda:N or N (= cuda:N)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DehrnetError(f"--device {given}: torch sees no CUDA device here; use --device cpu")
    return device
