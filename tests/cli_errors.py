"""How the CLI tests read a refusal: the exit code and exactly one `dehrnet: error:` line on stderr naming what
is wrong, with no traceback."""

from __future__ import annotations

from click.testing import Result

ERROR_PREFIX = "dehrnet: error: "


def error_line(result: Result, exit_code: int, *needles: str) -> str:
    """Check the exit code and that stderr holds exactly one `dehrnet: error:` line, no traceback,
    naming every needle; return that line."""
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def only_error(result: Result, exit_code: int, *needles: str) -> str:
    """`error_line`, and stderr holds nothing else (no banner: nothing was loaded or run)."""
    line = error_line(result, exit_code, *needles)
    assert result.stderr.strip() == line, result.stderr
    return line
