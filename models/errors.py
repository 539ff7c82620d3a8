"""The one exception type users see. It lives in `models` so the network package stays independent of
the application; `dehrnet_cli.errors` re-exports it."""


class DehrnetError(Exception):
    """A problem the user can fix: the message says what was given, what is valid, and the fix.

    The CLI prints it in one line (no traceback) and exits with `exit_code`: 2 for bad input.
    """

    exit_code = 2


class InternalError(DehrnetError):
    """A failure that is not the user's input (a bug, a broken install): exit code 1."""

    exit_code = 1
