"""gitmodel.render: what the terminal shows."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from gitmodel import forking, render


def test_a_progress_bar_leaves_the_process_free_to_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar is drawn from the progress calls, with no refresh thread: a directory's add
    on a terminal still takes the second core by a fork (gitmodel.forking)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setattr(render, "REDRAW_SECONDS", 0.0)
    before = threading.active_count()
    reporter = render.TerminalReporter()
    progress = reporter.start("storing data", 1 << 30)
    try:
        assert threading.active_count() == before
        progress(1 << 29)
        assert "storing data" in screen.getvalue()  # drawn by the call itself
        if before == 1:
            monkeypatch.setattr(forking, "_cores", lambda: 2)
            assert forking.may_fork()
    finally:
        reporter.stop()
