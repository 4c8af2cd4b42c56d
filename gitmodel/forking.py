"""Half of a many-file loop done by a forked child, on the second core.

Why a fork and not threads: each item of these loops (an lstat, a small copy) is a few
Python steps that hold the GIL, so two threads hand it to each other at every system call
(measured: more CPU, no less wall time). A forked child is a second interpreter that
shares nothing but what the fork copied; it sends its half's result back through a pipe as
bytes. Whatever fails in the child (the fork, the work, the pipe, a result of the wrong
shape) costs only that half again: the caller does it itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Run = TypeVar("Run", bound=tuple[Any, ...])


def may_fork() -> bool:
    """Whether a second core can be had by fork: there is one, and this process has a
    single thread (forking a threaded process is not safe: a lock another thread held
    stays held in the child)."""
    return hasattr(os, "fork") and _cores() >= 2 and threads_running() <= 1


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # the cores this process may run on (Linux)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_running() -> int:
    import sys

    threading = sys.modules.get("threading")  # never imported: this is the only thread
    return threading.active_count() if threading is not None else 1


def halves(runs: Sequence[Run], total: int) -> tuple[list[Run], list[Run]]:
    """runs split in two with about total // 2 items each. A run is a tuple whose last
    member is its list of items; the run where the middle falls is cut in two."""
    half = total // 2
    seen = 0
    for i, run in enumerate(runs):
        items = run[-1]
        if seen + len(items) >= half:
            cut = half - seen
            head: Any = (*run[:-1], items[:cut])
            tail: Any = (*run[:-1], items[cut:])
            return [*runs[:i], head], [tail, *runs[i + 1 :]]
        seen += len(items)
    return list(runs), []


def with_child(child: Callable[[], bytes], parent: Callable[[], T]) -> tuple[T, bytes | None]:
    """child() in a forked child while parent() runs here: parent's result and the bytes
    the child returned, or None when the fork or the child failed (do its part again)."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return parent(), None
    if pid == 0:  # the child: work, send, and leave without running any exit handler
        code = 1
        try:
            os.close(r)
            view = memoryview(child())
            while view:
                view = view[os.write(w, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        mine = parent()
        chunks = []
        while chunk := os.read(r, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    return mine, b"".join(chunks) if status == 0 else None
