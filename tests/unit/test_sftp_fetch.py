"""gitmodel.sftp_fetch: how an object is read whole, and the order requests go out in.

The SFTP server here is a stand-in with the behaviours OpenSSH's sftp-server does not show
but the protocol allows (a read that returns less than asked before the end); the real
server is tests/test_remote.py's (sshd), where every pull over ssh takes this path.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from gitmodel import sftp_fetch


class _File:
    def __init__(self, data: bytes, most: int, log: list[tuple[str, int, int]]) -> None:
        self.data, self.most, self.log = data, most, log

    async def read(self, size: int, offset: int) -> bytes:
        self.log.append(("read", offset, size))
        return self.data[offset : offset + min(size, self.most)]

    async def close(self) -> None:
        self.log.append(("close", 0, 0))


class _Server:
    """open/read/close over in-memory files; `most` caps every read (a short read)."""

    def __init__(self, files: dict[str, bytes], most: int) -> None:
        self.files, self.most = files, most
        self.log: list[tuple[str, int, int]] = []

    async def open(self, path: str, mode: str, block_size: Any = None) -> _File:
        from asyncssh.sftp import SFTPNoSuchFile

        if path not in self.files:
            raise SFTPNoSuchFile("No such file")
        return _File(self.files[path], self.most, self.log)


def _read(server: _Server, path: str, oid: str, length: int = 64) -> bytes | None:
    return asyncio.run(sftp_fetch._read_whole(server, path, length, oid))


def test_one_read_when_the_bytes_hash_to_the_name() -> None:
    data = b"x" * 40
    server = _Server({"a": data}, most=64)
    assert _read(server, "a", hashlib.md5(data).hexdigest()) == data
    assert server.log == [("read", 0, 64), ("close", 0, 0)]


@pytest.mark.parametrize("most", [7, 16, 64])
def test_short_reads_go_on_to_the_end(most: int) -> None:
    """A server that sends less than asked: the reads continue until the end of file."""
    data = bytes(range(50))
    server = _Server({"a": data}, most=most)
    assert _read(server, "a", hashlib.md5(data).hexdigest()) == data


def test_damaged_bytes_are_read_to_the_end_and_returned_for_the_check() -> None:
    data = b"y" * 30
    server = _Server({"a": data}, most=64)
    assert _read(server, "a", "0" * 32) == data  # put's md5 check refuses it
    assert server.log[-2:] == [("read", 30, 34), ("close", 0, 0)]


def test_more_than_one_read_is_left_to_the_caller() -> None:
    data = b"z" * 65
    server = _Server({"a": data}, most=64)
    assert _read(server, "a", hashlib.md5(data).hexdigest()) is None
    assert server.log[-1] == ("close", 0, 0)  # closed, never held open


def test_exactly_one_read_long_is_whole_when_nothing_follows() -> None:
    data = b"w" * 64
    server = _Server({"a": data}, most=64)
    assert _read(server, "a", "f" * 32) == data  # damaged, but all of it: the check says so
    assert ("read", 64, 1) in server.log


def test_a_missing_object_is_file_not_found() -> None:
    from asyncssh.sftp import SFTPNoSuchFile

    exc = sftp_fetch._as_os_error(SFTPNoSuchFile("No such file"))
    assert isinstance(exc, FileNotFoundError)


def test_requests_of_one_turn_go_out_as_one_write_in_order() -> None:
    class Channel:
        closing = False

        def is_closing(self) -> bool:
            return self.closing

        def close(self) -> None:
            self.closing = True

    class Writer:
        def __init__(self) -> None:
            self.channel = Channel()
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

    async def main() -> list[bytes]:
        writer = Writer()
        batched = sftp_fetch._Coalescing(writer, asyncio.get_running_loop())
        for part in (b"a", b"b", b"c"):
            batched.write(part)
        assert writer.writes == []  # nothing yet: the turn is not over
        await asyncio.sleep(0)
        batched.write(b"d")
        batched.flush()
        return writer.writes

    assert asyncio.run(main()) == [b"abc", b"d"]
