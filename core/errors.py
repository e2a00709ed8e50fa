"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class PlaylogError(Exception):
    """A user error (bad input, missing service...) with an actionable one-line message."""

    exit_code = 2
