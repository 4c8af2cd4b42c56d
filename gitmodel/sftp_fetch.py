"""Many small objects fetched over one SFTP session, many requests in flight at once.

DVC's ssh filesystem (sshfs, on asyncssh) fetches an object with asyncssh's `get`: a stat,
an open, the reads and a close, one object per call, and a pull calls it once per object
from a pool of threads, each call handed to the filesystem's event loop and back. At
3,000 small objects that was 3 client CPU-ms an object, most of it the hand-overs between
threads and the event loop.

Here one coroutine per request slot, all on that same event loop and connection (so the
remote's host, user, port, keys and host-key checking are DVC's own), opens an object,
reads it in one request and closes it: three requests, no stat, no thread. An object is
read into memory only up to one read's length (the server's largest, at most 255 KiB
for OpenSSH): what did not arrive whole in one read is closed again and left to the
caller, which fetches it the general way (streamed to a temporary file). Each object's
bytes go to `put(oid, data)`, the cache's verified write (md5 checked before the object
gets its name), in the event loop's thread.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

# Requests in flight on the session: enough to keep the server busy while the client
# parses replies; each holds at most one read's bytes.
IN_FLIGHT = 32
# At most this many bytes per read (OpenSSH's sftp-server sends up to 255 KiB).
MAX_READ = 255 * 1024


class Fetched:
    """What a batch did: bytes stored, oid -> failure, and the oids left to the caller
    because they did not arrive whole in one read."""

    def __init__(self) -> None:
        self.bytes = 0
        self.failed: dict[str, BaseException] = {}
        self.larger: list[str] = []


def fetch_small(
    fs: Any,
    items: Sequence[tuple[str, str]],
    put: Callable[[str, bytes], None],
    progress: Callable[[int], None] | None = None,
) -> Fetched:
    """Fetch each (oid, remote path) of items through fs, an sshfs filesystem, and hand
    its bytes to put(oid, data), which checks them; see the module's docstring."""
    from fsspec.asyn import sync

    return sync(fs.loop, _fetch, fs.client, items, put, progress)


async def _fetch(
    client: Any,
    items: Sequence[tuple[str, str]],
    put: Callable[[str, bytes], None],
    progress: Callable[[int], None] | None,
) -> Fetched:
    import asyncio

    out = Fetched()
    if not items:
        return out
    sftp = await client.start_sftp_client()
    batched = _Coalescing.install(sftp)
    try:
        length = min(MAX_READ, int(sftp.limits.max_read_len or MAX_READ))
        todo = iter(items)

        async def worker() -> None:
            for oid, path in todo:
                try:
                    data = await _read_whole(sftp, path, length, oid)
                except Exception as exc:
                    out.failed[oid] = _as_os_error(exc)
                    continue
                if data is None:
                    out.larger.append(oid)
                    continue
                try:
                    put(oid, data)
                except Exception as exc:
                    out.failed[oid] = exc
                    continue
                out.bytes += len(data)
                if progress:
                    progress(len(data))

        await asyncio.gather(*(worker() for _ in range(min(IN_FLIGHT, len(items)))))
    finally:
        if batched is not None:
            batched.flush()
        sftp.exit()
    return out


class _Coalescing:
    """The SFTP session's writer, with the requests made in one turn of the event loop
    written as one: one SSH packet for many requests, where asyncssh sends two a request
    (each channel write is an SSH packet, and it puts an empty "ignore" packet before
    every one), each its own encryption and `sendto`, and sshd decrypts each. The
    session's requests are written in the order they were made."""

    def __init__(self, writer: Any, loop: Any) -> None:
        self._writer = writer
        self._loop = loop
        self._pending: list[bytes] = []
        self.channel = writer.channel  # asyncssh's send_packet asks it is_closing()

    @classmethod
    def install(cls, sftp: Any) -> _Coalescing | None:
        """Put one in front of sftp's writer; None (requests go out one by one) where this
        asyncssh keeps it elsewhere."""
        import asyncio

        handler = getattr(sftp, "_handler", None)
        writer = getattr(handler, "_writer", None)
        if writer is None or not hasattr(writer, "channel") or not hasattr(writer, "write"):
            return None
        batched = cls(writer, asyncio.get_running_loop())
        handler._writer = batched  # type: ignore[union-attr]
        return batched

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self.channel.is_closing():
            return  # asyncssh fails every request still waiting when it closes
        try:
            self._writer.write(data)
        except Exception:
            self.channel.close()  # so that the requests waiting for a reply fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


async def _read_whole(sftp: Any, path: str, length: int, oid: str) -> bytes | None:
    """The bytes of the file at path; None when they are more than one read's length (the
    caller fetches it the general way).

    One request when the bytes read hash to the object's name (a server may send less
    than asked before the end, so a short read alone does not say it was all); else the
    reads go on until the end of the file, and put's check judges what came."""
    f = await sftp.open(path, "rb", block_size=None)
    try:
        data: bytes = await f.read(length, 0)
        suffix = ".dir" if oid.endswith(".dir") else ""
        if hashlib.md5(data).hexdigest() + suffix == oid:
            return data
        while len(data) < length:
            more: bytes = await f.read(length - len(data), len(data))
            if not more:
                return data
            data += more
        return None if await f.read(1, len(data)) else data
    finally:
        await f.close()


def _as_os_error(exc: BaseException) -> BaseException:
    """An SFTP status as the OSError sshfs raises for it, so callers see one set of types."""
    from asyncssh.sftp import SFTPNoSuchFile, SFTPPermissionDenied

    if isinstance(exc, SFTPNoSuchFile):
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
    if isinstance(exc, SFTPPermissionDenied):
        return PermissionError(errno.EACCES, exc.reason or os.strerror(errno.EACCES))
    return exc
