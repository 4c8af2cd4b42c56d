"""How sizes and counts read in a line of text.

Shared by the library's messages (a change report, a hook's summary) and the skin's
tables, so that a size reads the same wherever it is printed; kept here, below both, so
that no library module has to import the terminal renderer for a formatter.
"""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """ "1 object", "2 objects"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
