"""Drawing results on the terminal: JSON, tables and progress (rich, imported lazily)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from gitmodel.store import Progress

# Re-exported: the verbs format with render alone.
from gitmodel.text import fmt_size as fmt_size
from gitmodel.text import plural as plural

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # smaller jobs finish before a bar is worth drawing
REDRAW_SECONDS = 0.1  # rich's own refresh rate is 10 a second


def print_json(data: Any) -> None:
    """JSON on stdout. A list prints one compact element per line: json's C encoder does
    not indent, and the pure-Python one costs 0.2 s on 5,000 log rows."""
    if isinstance(data, list) and data:
        sys.stdout.write("[\n  " + ",\n  ".join(json.dumps(x) for x in data) + "\n]\n")
    else:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def warn(message: str) -> None:
    print(f"git model: warning: {message}", file=sys.stderr)


def warn_missing_hooks(repo: Any) -> None:
    """One warning line when git will not run gitmodel's hooks (see hooks.installer.missing)."""
    from gitmodel.hooks.installer import HookPlace, missing

    line = missing(HookPlace.of(repo))
    if line:
        warn(line)
    elif not repo.bare and not repo.is_initialised():
        warn("gitmodel is not set up in this clone: run `git model init`")


def info(message: str) -> None:
    print(message, file=sys.stderr)


def fmt_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fmt_delta(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:+.6g}" if isinstance(value, float) else f"{value:+d}"


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: rich on a terminal, plain aligned text otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_lines=False)
        for c in columns:
            t.add_column(c)
        for r in rows:
            t.add_row(*r)
        Console().print(t)
        return
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")  # one write: thousands of print() calls add up


class TerminalReporter:
    """A rich progress bar on stderr when it is a terminal and the job is large."""

    def __init__(self) -> None:
        self._progress: Any = None

    def start(self, description: str, total: int) -> Progress:
        if not sys.stderr.isatty() or total < PROGRESS_MIN_BYTES:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        # On stderr, the stream that was found to be a terminal: rich's default console is
        # stdout, which drew no bar when stdout went to a file or a pipe and stderr did not.
        # Redrawn from the progress calls, not by rich's refresh thread: a process with a
        # second thread may not fork (gitmodel.forking), and a directory's add and
        # listing take the second core by a fork.
        self._progress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            auto_refresh=False,
        )
        self._progress.start()
        task = self._progress.add_task(description, total=total)
        progress = self._progress
        drawn = [0.0]

        def advance(n: int) -> None:
            progress.advance(task, n)
            now = time.monotonic()
            if now - drawn[0] >= REDRAW_SECONDS:
                drawn[0] = now
                progress.refresh()

        return advance

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
