"""Git's lock-file rule for files two processes may write (`.gitignore`, pointers, state).

Create `NAME.lock` with O_EXCL, write, fsync, rename over NAME; abort removes the lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from gitmodel.errors import GitModelError

STALE_AFTER = 30.0  # seconds: a lock this old was left by a killed process


class LockTimeout(GitModelError):
    pass


def _acquire(lock: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > STALE_AFTER:
                    lock.unlink(missing_ok=True)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(f"{lock} is held by another process; remove it if none runs")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def update_file(
    path: Path, change: Callable[[bytes | None], bytes | None], timeout: float = 10.0, mode: int = 0o644
) -> bool:
    """Replace path's content with change(old) under path.lock; old is None if absent.

    change returning None (or the old content) leaves the file as it is. Returns whether
    the file was written.
    """
    lock = path.with_name(path.name + ".lock")
    fd = _acquire(lock, timeout)
    try:
        try:
            old: bytes | None = path.read_bytes()
        except FileNotFoundError:
            old = None
        new = change(old)
        if new is None or new == old:
            os.close(fd)
            fd = -1
            lock.unlink(missing_ok=True)
            return False
        view = memoryview(new)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.fchmod(fd, mode)
        os.close(fd)
        fd = -1
        os.replace(lock, path)
        return True
    except BaseException:
        if fd >= 0:
            os.close(fd)
        lock.unlink(missing_ok=True)
        raise


def write_file(path: Path, data: bytes, timeout: float = 10.0, mode: int = 0o644) -> None:
    """Atomically replace path with data under the lock-file rule."""
    update_file(path, lambda _old: data, timeout=timeout, mode=mode)
