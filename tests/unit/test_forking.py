"""gitmodel.forking: half of a loop in a forked child, and every way that child can fail."""

from __future__ import annotations

import os

import pytest

from gitmodel import forking


def test_halves_cut_the_middle_run_and_keep_every_item_in_order() -> None:
    runs = [("a", list("pqr")), ("b", list("stuvw")), ("c", list("xy"))]
    first, second = forking.halves(runs, 10)
    assert first == [("a", list("pqr")), ("b", list("st"))]
    assert second == [("b", list("uvw")), ("c", list("xy"))]
    assert forking.halves([], 0) == ([], [])


def test_the_child_s_bytes_come_back_beside_the_parent_s_result() -> None:
    here = os.getpid()
    mine, theirs = forking.with_child(lambda: str(os.getpid()).encode() * 50_000, lambda: 7)
    assert mine == 7
    assert theirs is not None and len(theirs) > 1 << 16  # more than a pipe holds at once
    assert int(theirs[: len(theirs) // 50_000]) != here


def test_a_child_that_fails_gives_none() -> None:
    def boom() -> bytes:
        raise RuntimeError("in the child")

    assert forking.with_child(boom, lambda: "mine") == ("mine", None)
    assert forking.with_child(lambda: os._exit(0) or b"", lambda: 1) == (1, b"")


def test_a_fork_that_fails_still_does_the_parent_s_half(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise OSError("no processes left")

    monkeypatch.setattr(os, "fork", no_fork)
    assert forking.with_child(lambda: b"x", lambda: "mine") == ("mine", None)
    fds = len(os.listdir("/proc/self/fd"))
    forking.with_child(lambda: b"x", lambda: "mine")
    assert len(os.listdir("/proc/self/fd")) == fds  # the pipe is closed


def test_no_fork_with_a_second_thread_running() -> None:
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert forking.threads_running() >= 2
        assert not forking.may_fork()
    finally:
        stop.set()
        t.join()
