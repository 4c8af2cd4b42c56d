"""The exceptions that carry an expected failure to the user, and their exit codes."""

from __future__ import annotations

# Exit codes, the same for every command (see README.md "Exit codes").
EXIT_OK = 0
EXIT_REFUSED = 1  # a regression, a failed check, problems found by fsck
EXIT_USAGE = 2  # bad input or usage
EXIT_BUG = 3  # an unexpected error: a bug in gitmodel


class GitModelError(Exception):
    """An expected failure with a one-line message for the user (exit 2 by default)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class Refused(GitModelError):
    """The operation was refused on purpose (e.g. a release that regresses)."""

    exit_code = EXIT_REFUSED
