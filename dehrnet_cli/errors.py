"""Errors shown to users (see models.errors): one line, exit 2 for bad input, 1 for internal failures."""

from __future__ import annotations

from models.errors import DehrnetError, InternalError

__all__ = ["DehrnetError", "InternalError"]
