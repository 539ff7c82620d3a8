"""`dehrnet weights convert`: an official HRNet, mmpose or dehrnet checkpoint into dehrnet's format (weights +
config), or warm-started into another architecture, never onto the file it reads."""

from __future__ import annotations

from pathlib import Path

from dehrnet_cli.errors import DehrnetError
from dehrnet_cli.sinks.plan import RunPlan


def convert(src: Path, dst: Path, to: str | None = None, input_size: tuple[int, int] | None = None) -> Path:
    """Write `src` converted (to architecture `to`, `input_size` (w, h) for official files of another size) as the
    dehrnet checkpoint `dst`; returns `dst`. The plan is checked before torch loads."""
    if not Path(src).expanduser().is_file():
        raise DehrnetError(f"{src}: no such checkpoint file")
    plan = RunPlan()
    plan.read("source checkpoint", src)
    plan.write("the converted checkpoint", dst, partial=False)
    plan.check()
    from models import convert_checkpoint

    return convert_checkpoint(src, dst, to, **({} if input_size is None else {"input_size": input_size}))
