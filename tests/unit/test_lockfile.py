"""gitmodel.lockfile: git's lock-file rule for files two processes may write."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from gitmodel.errors import GitModelError
from gitmodel.lockfile import LockTimeout, update_file, write_file
from gitmodel.paths import UnsafePath


def test_update_file_creates_and_changes(tmp_path: Path) -> None:
    path = tmp_path / ".gitignore"
    seen: list[bytes | None] = []

    def append(old: bytes | None) -> bytes:
        seen.append(old)
        return (old or b"") + b"/model.pt\n"

    assert update_file(path, append) is True
    assert update_file(path, append) is True
    assert seen == [None, b"/model.pt\n"]
    assert path.read_bytes() == b"/model.pt\n/model.pt\n"
    assert not (tmp_path / ".gitignore.lock").exists()


def test_no_change_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"same")
    before = os.stat(path).st_ino
    assert update_file(path, lambda old: old) is False
    assert update_file(path, lambda old: None) is False
    assert os.stat(path).st_ino == before  # not even rewritten in place
    assert not (tmp_path / "state.lock").exists()


def test_a_failing_change_leaves_the_file_and_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"old")

    def boom(old: bytes | None) -> bytes:
        raise RuntimeError("midway")

    with pytest.raises(RuntimeError):
        update_file(path, boom)
    assert path.read_bytes() == b"old"
    assert not (tmp_path / "state.lock").exists()


def test_write_file_sets_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "hook"
    write_file(path, b"#!/bin/sh\n", mode=0o755)
    assert path.read_bytes() == b"#!/bin/sh\n"
    assert os.stat(path).st_mode & 0o777 == 0o755


def test_a_live_holder_makes_others_wait_then_time_out(tmp_path: Path) -> None:
    path = tmp_path / "state"
    lock = tmp_path / "state.lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a live holder does
    try:
        with pytest.raises(LockTimeout, match="held by another process"):
            update_file(path, lambda old: b"new", timeout=0.3)
        assert isinstance(LockTimeout("x"), GitModelError)
        assert lock.exists()  # the holder's lock is not removed by the one who gave up
    finally:
        os.close(fd)
    assert not path.exists()


def test_the_next_writer_goes_once_the_holder_is_done(tmp_path: Path) -> None:
    path = tmp_path / "state"
    lock = tmp_path / "state.lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def finish() -> None:
        time.sleep(0.2)
        os.replace(lock, path)  # the holder renames its lock over the file, then closes
        os.close(fd)

    holder = threading.Thread(target=finish)
    holder.start()
    try:
        assert update_file(path, lambda old: (old or b"") + b"+second", timeout=10)
    finally:
        holder.join()
    assert path.read_bytes() == b"+second"


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state"
    lock = tmp_path / "state.lock"
    lock.write_bytes(b"half-written")  # no flock: its holder died
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert update_file(path, lambda old: b"new", timeout=2)
    assert path.read_bytes() == b"new"


def test_a_link_is_refused_or_replaced_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"ssh key")
    path = tmp_path / ".gitignore"
    path.symlink_to(secret)
    with pytest.raises(UnsafePath, match="symbolic link"):
        update_file(path, lambda old: (old or b"") + b"/model.pt\n")
    assert update_file(path, lambda old: b"/model.pt\n", replace_link=True)
    assert not path.is_symlink()
    assert path.read_bytes() == b"/model.pt\n"
    assert secret.read_bytes() == b"ssh key"


def test_an_os_error_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(GitModelError, match=r"^cannot write .*absent.*No such file") as caught:
        write_file(tmp_path / "absent" / "state", b"x")
    assert "\n" not in caught.value.message
