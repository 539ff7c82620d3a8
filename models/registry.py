"""Named configs behind one entry point: `create_model(name, **overrides)`."""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import TYPE_CHECKING

from .configs import VARIANTS, PoseNetConfig
from .errors import DehrnetError

if TYPE_CHECKING:
    from .hrnet import PoseHRNet


def list_models() -> list[str]:
    """Names of every registered config, sorted."""
    return sorted(VARIANTS)


def get_config(name: str, **overrides) -> PoseNetConfig:
    """The named config with `overrides` applied (None values are ignored, so CLI defaults can pass
    through). Unknown names and fields raise DehrnetError with suggestions."""
    if name not in VARIANTS:
        close = difflib.get_close_matches(name, VARIANTS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DehrnetError(f"unknown model {name!r}{hint} (dehrnet info --all shows all {len(VARIANTS)})")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = VARIANTS[name]
    known = set(PoseNetConfig.__dataclass_fields__)
    bad = sorted(set(overrides) - known)
    if bad:
        raise DehrnetError(f"unknown config field(s) {bad} for {name!r}; valid fields: {sorted(known)}")
    try:
        return replace(config, **overrides) if overrides else config
    except (ValueError, TypeError) as e:
        raise DehrnetError(f"invalid overrides for {name!r}: {e}") from None


def create_model(name: str | PoseNetConfig, **overrides) -> PoseHRNet:
    """Build a randomly initialised network from a registered name (or a config)."""
    from .hrnet import PoseHRNet  # torch: loaded only when a network is built

    config = name if isinstance(name, PoseNetConfig) else get_config(name, **overrides)
    if isinstance(name, PoseNetConfig) and overrides:
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    try:
        return PoseHRNet(config)
    except ValueError as e:  # e.g. DySample 'pl' with too few channels for its scale
        raise DehrnetError(f"config {config.name!r} cannot be built: {e}") from None
