"""What a hook reads from git and writes back: object ids on its stdin lines, one-line
messages on stderr (stdout may be git's, and a hook's output is shown to the user)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")


def is_oid(text: str) -> bool:
    """A full object id (SHA-1 or SHA-256), lowercase hex, as git hands hooks."""
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def nonzero(oid: str) -> bool:
    """An object id that is not git's all-zero "no object" (a deletion, a creation)."""
    return is_oid(oid) and oid.strip("0") != ""
