"""An ordered, bounded pipeline: work on the next few items in threads while the caller
consumes the results in order.

Storing and rebuilding a file are a chain of CPU-heavy steps (sha256, zstd, numpy) that
release the GIL, followed by one that must run in file order (appending to a pack, md5
and writing the rebuilt file). Windows of one item per core, each waited for whole, leave
cores idle behind the slowest item of each window; here a worker takes the next item as
soon as it is free, up to `ahead` items past the one the caller is on, which also bounds
the memory held to about `ahead` items.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


def ordered_map(
    fn: Callable[[_T], _R], items: Sequence[_T], jobs: int, ahead: int | None = None
) -> Iterator[_R]:
    """fn(x) for each x of items, in order, computed on `jobs` threads at most `ahead`
    items ahead of the consumer. The first exception is raised at its item; leaving the
    loop early stops the workers (after the items they are on)."""
    n = len(items)
    if jobs < 2 or n < 2:
        for x in items:
            yield fn(x)
        return
    ahead = max(jobs, ahead or jobs + 1)
    cond = threading.Condition()
    results: dict[int, tuple[bool, object]] = {}
    state = {"next": 0, "consumed": 0, "stop": False}

    def worker() -> None:
        while True:
            with cond:
                while (
                    not state["stop"]
                    and state["next"] < n
                    and state["next"] - state["consumed"] >= ahead
                ):
                    cond.wait()
                if state["stop"] or state["next"] >= n:
                    return
                i = state["next"]
                state["next"] = i + 1
            try:
                r: tuple[bool, object] = (True, fn(items[i]))
            except BaseException as exc:  # handed to the consumer, raised at its item
                r = (False, exc)
            with cond:
                results[i] = r
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, n))]
    for t in threads:
        t.start()
    try:
        for i in range(n):
            with cond:
                while i not in results:
                    cond.wait()
                ok, value = results.pop(i)
                state["consumed"] = i + 1
                cond.notify_all()
            if not ok:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        with cond:
            state["stop"] = True
            cond.notify_all()
        for t in threads:
            t.join()
