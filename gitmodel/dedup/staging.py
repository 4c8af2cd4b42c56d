"""The whole-file object a dedup add writes, filled chunk by chunk from every core.

Each chunk is copied from the work-tree file into the object by the kernel
(`copy_file_range` at the chunk's offset: no trip through user space) and read back
through a map of the object, so the file's md5, the chunk's sha256 and its encoding all
read the bytes the object holds, whatever happens to the source meanwhile. A read into a
buffer and a write out of it cost two copies of every byte instead of one; on 256 MiB
that was ~0.3 CPU-s of the add's ordered thread (pread 0.06, write 0.28 in `perf`), the
thread that also runs the md5 and so sets the add's pace.

Where the kernel will not copy this pair of files (another filesystem, an old kernel) or
the object cannot be mapped, a chunk goes through a reused buffer (read, then written)
instead, as before.
"""

from __future__ import annotations

import mmap
import os
import threading

from gitmodel.dedup.buffers import Buffers
from gitmodel.errors import GitModelError
from gitmodel.store.hashing import _COPY_FALLBACK_ERRNOS

_PAGE = mmap.ALLOCATIONGRANULARITY


class Span:
    """A chunk's bytes (view) and what holds them (a map or a pooled buffer) until
    release()."""

    __slots__ = ("view", "_map", "_buf", "_pool")

    def __init__(
        self,
        view: memoryview,
        map_: mmap.mmap | None = None,
        buf: bytearray | None = None,
        pool: Buffers | None = None,
    ) -> None:
        self.view = view
        self._map = map_
        self._buf = buf
        self._pool = pool

    def release(self) -> None:
        try:
            self.view.release()
        except BufferError:  # something still reads it: the map goes when that does
            pass
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a view of it is still held: unmapped when that goes
                pass
            self._map = None
        if self._pool is not None:
            self._pool.give_back(self._buf)
            self._pool = self._buf = None


def map_span(fd: int, offset: int, length: int) -> Span | None:
    """length bytes of fd at offset through a read-only map (None where fd cannot be
    mapped or is shorter than offset + length)."""
    if length == 0:
        return Span(memoryview(b""))
    skew = offset % _PAGE
    try:
        if os.fstat(fd).st_size < offset + length:
            return None  # a map past the end of the file faults (SIGBUS) when read
        m = mmap.mmap(fd, skew + length, prot=mmap.PROT_READ, offset=offset - skew)
    except (OSError, ValueError):
        return None
    return Span(memoryview(m)[skew : skew + length], m)


class StagedObject:
    """Chunks of src_fd copied to the same offsets of out_fd (opened for reading and
    writing), each handed back as a Span of out_fd's bytes."""

    def __init__(self, src_fd: int, out_fd: int, path: object) -> None:
        self.src = src_fd
        self.out = out_fd
        self.path = path
        self.pool = Buffers()
        self._kernel = True  # until the kernel refuses this pair once
        self._lock = threading.Lock()

    def take(self, offset: int, length: int) -> Span:
        """The chunk at offset, now in the object; GitModelError if the source is shorter
        than it was planned (it changed while being stored)."""
        if self._kernel:
            try:
                self._copy(offset, length)
            except OSError as exc:
                if exc.errno not in _COPY_FALLBACK_ERRNOS:
                    raise
                with self._lock:
                    self._kernel = False
            else:
                span = map_span(self.out, offset, length)
                if span is not None:
                    return span
                return self._read_back(offset, length)
        return self._through_buffer(offset, length)

    def reread(self, offset: int, length: int) -> Span:
        """The chunk at offset as the object holds it (take() put it there)."""
        span = map_span(self.out, offset, length)
        return span if span is not None else self._read_back(offset, length)

    def _copy(self, offset: int, length: int) -> None:
        done = 0
        while done < length:
            n = os.copy_file_range(self.src, self.out, length - done, offset + done, offset + done)
            if n == 0:
                raise GitModelError(f"{self.path} changed while being stored")
            done += n

    def _read_back(self, offset: int, length: int) -> Span:
        """The copied chunk read from the object (it cannot be mapped here)."""
        buf, view = self.pool.read(self.out, length, offset)
        if len(view) != length:
            raise GitModelError(f"{self.path} changed while being stored")
        return Span(view, buf=buf, pool=self.pool)

    def _through_buffer(self, offset: int, length: int) -> Span:
        buf, view = self.pool.read(self.src, length, offset)
        if len(view) != length:
            raise GitModelError(f"{self.path} changed while being stored")
        done = 0
        while done < length:
            done += os.pwrite(self.out, view[done:], offset + done)
        return Span(view, buf=buf, pool=self.pool)
