"""An ordered, bounded pipeline: work on the next few items in threads while the caller
consumes the results in order.

Storing and rebuilding a file are a chain of CPU-heavy steps (sha256, zstd, numpy) that
release the GIL, followed by one that must run in file order (appending to a pack, md5
and writing the rebuilt file). Windows of one item per core, each waited for whole, leave
cores idle behind the slowest item of each window; here a worker takes the next item as
soon as it is free, up to `ahead` items past the one the caller is on, which also bounds
the memory held to about `ahead` items.

Workers is the other shape: the caller produces the items itself, doing ordered work on
each (a dedup add copies each chunk into the object and feeds it to the file's md5), and
hands each to the threads as soon as it is made, so the ordered work never waits for them.
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


class Job:
    """A result to come from Workers."""

    __slots__ = ("_done", "_ok", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._ok = True
        self._value: object = None

    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> object:
        """The value, once it is there; the worker's exception is raised here."""
        self._done.wait()
        if not self._ok:
            assert isinstance(self._value, BaseException)
            raise self._value
        return self._value

    def _set(self, ok: bool, value: object) -> None:
        self._ok, self._value = ok, value
        self._done.set()


class Workers:
    """fn on `jobs` threads, for items handed in one at a time (submit): for a producer
    that does ordered work of its own on each item (the md5 of a file, chunk after chunk)
    while the items' other work runs beside it. The producer bounds how many items are in
    flight by waiting for the oldest Job; leaving the `with` stops the threads (after the
    items they are on)."""

    def __init__(self, fn: Callable[..., object], jobs: int) -> None:
        import queue

        self._fn = fn
        self._stop = False
        self._todo: queue.SimpleQueue[tuple[Job, tuple[object, ...]] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(jobs)]
        for t in self._threads:
            t.start()

    def submit(self, *args: object) -> Job:
        job = Job()
        self._todo.put((job, args))
        return job

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            job, args = item
            if self._stop:  # the producer gave up: what is left is not wanted
                job._set(False, RuntimeError("not run: the work was abandoned"))
                continue
            try:
                job._set(True, self._fn(*args))
            except BaseException as exc:  # handed to the producer, raised at its item
                job._set(False, exc)

    def close(self) -> None:
        for _ in self._threads:
            self._todo.put(None)
        for t in self._threads:
            t.join()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._stop = exc_type is not None
        self.close()
