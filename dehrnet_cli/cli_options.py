"""Option parsing shared by the CLI commands."""

from __future__ import annotations

from .errors import DehrnetError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'384x288' (h x w, as model names write it) -> (w, h)."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DehrnetError(f"--input-size {text!r}: expected HxW, e.g. 256x192") from None
    return w, h
