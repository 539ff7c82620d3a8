"""Reading the JSON files that datasets and evaluations are made of, with one-line errors naming the flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dehrnet_cli.errors import DehrnetError


def read_json(path: Path, flag: str, what: str = "") -> Any:
    """The parsed JSON at `path`; a DehrnetError naming `flag` and the file when it is missing or not JSON.
    `what` (e.g. "annotation") names the kind of file in the missing-file message."""
    path = Path(path)
    if not path.is_file():
        raise DehrnetError(f"{flag} {path}: no such {what + ' ' if what else ''}file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DehrnetError(f"{flag} {path}: not valid JSON ({e})") from None
