"""Read buffers reused across the chunks of one file (dedup's add and rebuild).

Fresh pages cost a fault each, so a 16 MiB chunk read into a new bytes object costs 4,096
faults; the pipeline keeps only a few chunks in flight, so a few buffers serve a whole file.
"""

from __future__ import annotations

import os
import threading

from gitmodel.dedup.chunking import PIECE

_local = threading.local()


def pread_scratch(fd: int, length: int, offset: int) -> memoryview:
    """length bytes at offset, into a buffer this thread reuses (valid until its next
    call): a delta's base is only XORed, and fresh pages cost a fault each."""
    buf = getattr(_local, "base", None)
    if buf is None or len(buf) < length:
        buf = _local.base = bytearray(length)
    view = memoryview(buf)[:length]
    got = os.preadv(fd, [view], offset)
    return view[:got]


class Buffers:
    """Buffers for the chunks in flight, reused from one chunk to the next: a fresh 16 MiB
    bytes object per chunk costs 4,096 page faults, and only a few chunks are in flight at
    a time (the pipeline's bound), so a few buffers serve a whole file."""

    def __init__(self) -> None:
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, length: int) -> bytearray | None:
        """A buffer of at least length bytes (None above PIECE: a long header, read fresh)."""
        if length > PIECE:
            return None
        with self._lock:
            buf = self._free.pop() if self._free else None
        if buf is None or len(buf) < length:
            buf = bytearray(PIECE if length > PIECE // 4 else length)
        return buf

    def read(self, fd: int, length: int, offset: int) -> tuple[bytearray | None, memoryview]:
        buf = self.take(length)
        if buf is None:
            return None, memoryview(os.pread(fd, length, offset))
        view = memoryview(buf)[:length]
        return buf, view[: os.preadv(fd, [view], offset)]

    def give_back(self, buf: bytearray | None) -> None:
        if buf is not None:
            with self._lock:
                self._free.append(buf)
