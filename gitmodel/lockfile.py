"""Git's lock-file rule for files two processes may write (`.gitignore`, pointers, state).

Create `NAME.lock` with O_EXCL, write, fsync, rename over NAME; abort removes the lock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from gitmodel.errors import GitModelError

STALE_AFTER = 30.0  # seconds: a lock this old, whose holder cannot be asked, is abandoned
# A live holder flocks its lock right after creating it; one this old and not flocked was
# left by a killed process (the kernel drops a dead process's flock at once).
UNLOCKED_GRACE = 1.0


class LockTimeout(GitModelError):
    pass


def _abandoned(lock: Path) -> bool:
    """Whether lock was left by a process that died holding it."""
    import fcntl

    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        st = os.fstat(fd)
        age = time.time() - st.st_mtime
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # its holder is alive
        if age < UNLOCKED_GRACE and age < STALE_AFTER:
            return False  # maybe just created, not yet flocked
        # Unlink only the lock we examined, not a fresh one another process just made.
        try:
            return os.stat(lock).st_ino == st.st_ino
        except FileNotFoundError:
            return True
    finally:
        os.close(fd)


def _acquire(lock: Path, timeout: float) -> int:
    import fcntl

    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = -1
        if fd < 0:
            if _abandoned(lock):
                lock.unlink(missing_ok=True)
                continue
            if time.monotonic() > deadline:
                raise LockTimeout(f"{lock} is held by another process; remove it if none runs")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            continue
        try:
            # Blocking: a checker may hold a shared flock for an instant while it looks.
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a filesystem without flock: the lock still excludes by O_EXCL
        return fd


def update_file(
    path: Path,
    change: Callable[[bytes | None], bytes | None],
    timeout: float = 10.0,
    mode: int = 0o644,
    replace_link: bool = False,
) -> bool:
    """Replace path's content with change(old) under path.lock; old is None if absent.

    change returning None (or the old content) leaves the file as it is. Returns whether
    the file was written. The old content is never read through a symbolic link (a
    committed `.gitignore -> ~/.ssh/config` must not end up in a commit): a link is
    refused, or with replace_link replaced as if absent.
    """
    try:
        return _update_file(path, change, timeout, mode, replace_link)
    except OSError as exc:  # disk full, permissions: one line for the user, not a traceback
        raise GitModelError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _read_old(path: Path, replace_link: bool) -> bytes | None:
    from gitmodel.paths import UnsafePath, read_bytes

    try:
        return read_bytes(path, str(path))
    except FileNotFoundError:
        return None
    except UnsafePath:
        if replace_link and os.path.islink(path):
            return None
        raise


def _update_file(
    path: Path,
    change: Callable[[bytes | None], bytes | None],
    timeout: float,
    mode: int,
    replace_link: bool,
) -> bool:
    lock = path.with_name(path.name + ".lock")
    fd = _acquire(lock, timeout)
    # Until fd is closed we hold the lock's flock: unlink or rename the lock before closing,
    # never after, or we might remove a lock another process has taken since.
    done = False
    try:
        old = _read_old(path, replace_link)
        new = change(old)
        if new is None or new == old:
            return False
        view = memoryview(new)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.fchmod(fd, mode)
        os.replace(lock, path)
        done = True
        return True
    finally:
        if not done:
            lock.unlink(missing_ok=True)
        os.close(fd)


def write_file(path: Path, data: bytes, timeout: float = 10.0, mode: int = 0o644) -> None:
    """Atomically replace path with data under the lock-file rule."""
    update_file(path, lambda _old: data, timeout=timeout, mode=mode, replace_link=True)
