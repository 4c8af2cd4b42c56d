"""Content-addressed objects in a DVC 3 cache: copy-and-hash, links, the stat cache.

Objects live at ``<cache>/files/md5/<oid[:2]>/<oid[2:]>`` exactly as DVC 3 lays them out,
so real `dvc` commands read what we write and we read what `dvc add` wrote. Every write
goes to a temporary name in the cache's own `files/tmp` (the same filesystem) and is
`os.replace`d into place, so a crash never leaves a half-written object under an object
name.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.record import FrozenRecord

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import TypeVar

    _T = TypeVar("_T")
    _R = TypeVar("_R")

# 256 KiB chunks: large enough that hashlib drops the GIL and syscalls stay few, small
# enough that the ring (2 MiB) stays in the CPU's cache between the reader writing a
# chunk and the hasher reading it. Measured on 1 GiB on a quiet 2-core VM: 128 KiB to
# 1 MiB cost 2.4-2.7 CPU-seconds, 4 MiB 3.7-4.1 (the ring no longer fits in cache).
CHUNK = 256 * 1024
# Buffers in flight per file (reused, never reallocated): memory is bounded to
# RING * CHUNK per file being stored, whatever the file's size.
RING = 8
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ("reflink", "copy")  # DVC's default
_FICLONE = 0x40049409  # linux/fs.h
# errnos that mean "this link type is not possible here", not "something is broken"
_LINK_FALLBACK_ERRNOS = {
    errno.EXDEV,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.EINVAL,
    errno.ENOTTY,
    errno.ENOSYS,
    errno.EBADF,
}

# ... and that the kernel copy or the map of it is not possible here (user space is)
_COPY_FALLBACK_ERRNOS = _LINK_FALLBACK_ERRNOS | {errno.ENODEV, errno.EACCES}

Progress = Callable[[int], None]

# Files in one `.dir` manifest (stated in docs/security.md): a manifest is read whole.
MAX_MANIFEST_ENTRIES = 10_000_000

_HEX = frozenset("0123456789abcdef")


def is_oid(text: str, dirs: bool = True) -> bool:
    """A cache object name: 32 lowercase hex digits, plus `.dir` for a manifest if dirs."""
    if dirs:
        text = text.removesuffix(".dir")
    return len(text) == 32 and _HEX.issuperset(text)


class StoreError(GitModelError):
    """Storing or materialising an object failed (disk full, permissions, corruption)."""


class ObjectMissing(GitModelError):
    """Objects needed for a checkout are not in the cache."""

    def __init__(self, missing: Sequence[str]) -> None:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        super().__init__(f"not in the cache: {shown}")
        self.missing = list(missing)


class CorruptObject(GitModelError):
    """A cache object's content does not match its name."""

    exit_code = 1

    def __init__(self, oid: str, actual: str) -> None:
        super().__init__(f"corrupt cache object {oid} (content hashes to {actual})")
        self.oid = oid
        self.actual = actual


class DirEntry(FrozenRecord):
    __slots__ = ("relpath", "md5", "size")

    def __init__(self, relpath: str, md5: str, size: int) -> None:
        self._set(relpath=relpath, md5=md5, size=size)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        relpath: str
        md5: str
        size: int


def _hash_and_copy(
    src_fd: int,
    dst_fd: int | None,
    size_hint: int,
    progress: Progress | None,
    overlap: bool = True,
) -> str:
    """md5 of everything readable from src_fd, writing it to dst_fd in the same pass.

    The reader (this thread) reads each chunk once into a reused buffer, writes it to
    dst_fd and hands the very same bytes to a hasher thread, so the object's name is
    always the md5 of exactly what was written, even if the source changes meanwhile.
    hashlib drops the GIL on large buffers, so reading, writing and hashing overlap on
    two cores and the whole pass costs about one md5 of the file.

    overlap=False does all three in this thread: for a pool that already keeps every core
    busy with one file each, the hand-offs only cost (8 x 128 MiB on 2 cores: ~8% more
    CPU with a hasher thread per file).
    """
    import hashlib  # lazy: OpenSSL's start-up is paid only by commands that hash
    import queue

    md5 = hashlib.md5()
    if (dst_fd is None and size_hint <= CHUNK) or not overlap:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while n := os.readv(src_fd, [buf]):
            if dst_fd is not None:
                out = view[:n]
                while out:
                    out = out[os.write(dst_fd, out) :]
            md5.update(view[:n] if n < CHUNK else buf)
            if progress:
                progress(n)
        return md5.hexdigest()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(RING):
        free.put(bytearray(CHUNK))
    filled: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failure: list[BaseException] = []

    def hasher() -> None:
        try:
            while (item := filled.get()) is not None:
                buf, n = item
                md5.update(memoryview(buf)[:n] if n < CHUNK else buf)
                free.put(buf)
        except BaseException as exc:  # pragma: no cover - hashlib does not fail on bytes
            failure.append(exc)
            free.put(bytearray(CHUNK))  # never leave the reader waiting for a buffer

    worker = threading.Thread(target=hasher, daemon=True)
    worker.start()
    try:
        while True:
            buf = free.get()
            n = os.readv(src_fd, [buf])
            if not n:
                break
            if dst_fd is not None:
                view = memoryview(buf)[:n]
                while view:
                    view = view[os.write(dst_fd, view) :]
            filled.put((buf, n))
            if progress:
                progress(n)
            if failure:
                break
    finally:
        filled.put(None)
        worker.join()
    if failure:
        raise failure[0]
    return md5.hexdigest()


# One copy_file_range call: large enough to cost nothing, small enough to move a progress
# bar; when storing, each window is then mapped and hashed, which keeps resident memory to
# about one window per file.
COPY_WINDOW = 16 * 1024 * 1024


def _copy_and_hash(
    src_fd: int, dst_fd: int, size_hint: int, progress: Progress | None, overlap: bool = True
) -> str:
    """Copy src_fd to dst_fd (both at offset 0) and return the md5 of what dst_fd holds.

    The kernel copies (`copy_file_range`: no trip through user space, a reflink where the
    filesystem can) and the hash reads the *copy* through a memory map, so each byte is
    moved once and read once, and the object's name is the md5 of exactly its content,
    whatever happens to the source meanwhile. Against read()+write() with the hash in a
    thread (_hash_and_copy), measured on 1 GiB on 2 cores: 1.86-1.96 s instead of
    2.13-2.62 s, and 0.6 CPU-seconds less. With overlap, a second thread copies ahead
    while this one hashes. Where the kernel will not copy this pair of files (another
    filesystem, an old kernel), _hash_and_copy does the work instead.
    """
    import hashlib
    import mmap

    md5 = hashlib.md5()
    windows: list[tuple[int, int]] = []  # (offset, length) copied so far, in order
    done = threading.Event()
    stop = threading.Event()  # set by the hashing side: copy no further
    ready = threading.Condition()
    failure: list[BaseException] = []

    def copy_all() -> None:
        offset = 0
        try:
            while not stop.is_set():
                n = os.copy_file_range(src_fd, dst_fd, COPY_WINDOW)
                if not n:
                    break
                with ready:
                    windows.append((offset, n))
                    ready.notify()
                offset += n
            if offset < size_hint and not stop.is_set():
                # Stopped short of the size fstat gave: the source shrank meanwhile, or
                # this kernel copies less than it should. User space settles which.
                raise OSError(errno.EINVAL, "copy_file_range stopped short")
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()
            with ready:
                ready.notify()

    def hash_window(offset: int, length: int) -> None:
        # a map starts on a page boundary; a short copy can leave the window off one
        skew = offset % mmap.ALLOCATIONGRANULARITY
        with mmap.mmap(dst_fd, skew + length, prot=mmap.PROT_READ, offset=offset - skew) as m:
            view = memoryview(m)
            try:
                for at in range(skew, skew + length, CHUNK):
                    md5.update(view[at : min(at + CHUNK, skew + length)])
            finally:
                view.release()
        if progress:
            progress(length)

    def hash_all() -> None:
        hashed = 0
        while not failure:
            with ready:
                while hashed == len(windows) and not done.is_set():
                    ready.wait()
                todo = windows[hashed:]
            if not todo and done.is_set():
                return
            for window in todo:
                if failure:
                    return
                try:
                    hash_window(*window)
                except OSError as exc:  # this filesystem cannot map the copy
                    failure.append(exc)
                    return
            hashed += len(todo)

    if overlap and size_hint > COPY_WINDOW:
        copier = threading.Thread(target=copy_all, daemon=True)
        copier.start()
        try:
            hash_all()
        finally:
            # Never return while the copier may still write through these descriptors:
            # the caller closes them, and their numbers can be reused at once.
            stop.set()
            copier.join()
    else:
        copy_all()  # windows fills as it copies
        hash_all()
    if failure:
        exc = failure[0]
        if isinstance(exc, OSError) and exc.errno in _COPY_FALLBACK_ERRNOS:
            # The kernel would not copy this pair, or the copy cannot be mapped: start
            # again through user space.
            os.lseek(src_fd, 0, os.SEEK_SET)
            os.lseek(dst_fd, 0, os.SEEK_SET)
            os.ftruncate(dst_fd, 0)
            return _hash_and_copy(src_fd, dst_fd, size_hint, progress, overlap)
        raise exc
    return md5.hexdigest()


def _is_sparse(st: os.stat_result) -> bool:
    """Fewer blocks than bytes: the file has holes (a preallocated checkpoint, `truncate`)."""
    return st.st_size > CHUNK and st.st_blocks * 512 < st.st_size


def _data_segments(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of data in fd; what lies between is a hole (zeros)."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # only a hole from offset to the end
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size)
        offset = end


_ZEROS = bytes(CHUNK)


def _sparse_copy_and_hash(src_fd: int, dst_fd: int, size: int, progress: Progress | None) -> str:
    """Copy src_fd's data runs to dst_fd at the same offsets, leaving its holes as holes,
    and return the md5 of the whole content (a hole hashes as the zeros it reads as).

    Each data chunk is read once, written and hashed from the same buffer, so the name is
    the md5 of what the object holds, as in _hash_and_copy.
    """
    import hashlib

    md5 = hashlib.md5()
    done = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)

    def zeros(upto: int) -> None:
        nonlocal done
        while done < upto:
            n = min(CHUNK, upto - done)
            md5.update(_ZEROS[:n] if n < CHUNK else _ZEROS)
            done += n
            if progress:
                progress(n)

    short = False
    for start, end in _data_segments(src_fd, size):
        zeros(start)
        while done < end:
            n = os.preadv(src_fd, [view[: min(CHUNK, end - done)]], done)
            if not n:
                short = True  # the source shrank meanwhile: what was read is what is stored
                break
            out = view[:n]
            at = done
            while out:
                w = os.pwrite(dst_fd, out, at)
                out, at = out[w:], at + w
            md5.update(view[:n])
            done += n
            if progress:
                progress(n)
        if short:
            break
    if not short:
        zeros(size)  # a hole up to the end
    os.ftruncate(dst_fd, done)
    return md5.hexdigest()


def parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], jobs: int) -> list[_R]:
    """[fn(x) for x in items] on `jobs` threads, in order; the first exception is raised.

    ThreadPoolExecutor would do, but `concurrent.futures` imports `logging` and costs
    15-25 ms of start-up here; `git model status` of a directory pays for this instead.
    """
    if jobs < 2 or len(items) < 2:
        return [fn(x) for x in items]
    slots: list[_R] = [None] * len(items)  # type: ignore[list-item]  # each filled below
    todo = iter(range(len(items)))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        while not failures:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                slots[i] = fn(items[i])
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return slots


def hash_file(
    path: str | os.PathLike[str], progress: Progress | None = None, overlap: bool = True
) -> str:
    """The md5 of a file's bytes (DVC 3 `hash: md5`)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _hash_and_copy(fd, None, os.fstat(fd).st_size, progress, overlap)
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    # os.urandom, not uuid: `import uuid` pulls in `platform` (~5 ms on every command).
    return final.with_name(f"{final.name}.{os.urandom(6).hex()}.tmp")


def _reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    import fcntl

    with open(src, "rb") as s, open(dst, "wb") as d:
        try:
            fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())
        except OSError:
            os.unlink(dst)
            raise


def _copy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], progress: Progress | None = None
) -> None:
    # copy_file_range keeps the bytes in the kernel (and reflinks where the fs can).
    with open(src, "rb") as s, open(dst, "wb") as d:
        st = os.fstat(s.fileno())
        size = st.st_size
        if _is_sparse(st):
            _copy_sparse(s.fileno(), d.fileno(), size, progress)
            return
        offset = 0
        try:
            while offset < size:
                n = os.copy_file_range(s.fileno(), d.fileno(), min(size - offset, COPY_WINDOW))
                if n == 0:
                    break  # the kernel stopped short of the size: user space goes on below
                offset += n
                if progress:
                    progress(n)
        except OSError as exc:
            if exc.errno not in _LINK_FALLBACK_ERRNOS:
                raise
        # What the kernel did not copy (it refused, or stopped early), read() and write() do;
        # after a whole copy this reads nothing.
        s.seek(offset)
        d.seek(offset)
        while chunk := s.read(CHUNK):
            d.write(chunk)
            if progress:
                progress(len(chunk))


def _copy_sparse(src_fd: int, dst_fd: int, size: int, progress: Progress | None) -> None:
    """Copy the data runs of src_fd only; its holes stay holes in dst_fd."""
    for start, end in _data_segments(src_fd, size):
        offset = start
        while offset < end:
            n = 0
            try:
                n = os.copy_file_range(
                    src_fd, dst_fd, min(end - offset, COPY_WINDOW), offset, offset
                )
            except OSError as exc:
                if exc.errno not in _COPY_FALLBACK_ERRNOS:
                    raise
            if not n:  # refused or stopped short: user space for this window
                chunk = os.pread(src_fd, min(end - offset, CHUNK), offset)
                if not chunk:
                    break
                n = os.pwrite(dst_fd, chunk, offset)
            offset += n
            if progress:
                progress(n)
    os.ftruncate(dst_fd, size)


class StatCache:
    """(inode, mtime, size) -> md5 for workspace files, and which objects were verified.

    SQLite because two `git model` processes may use it at once and it already does the
    locking; it lives in `.dvc/tmp`, which DVC keeps out of git.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        # One connection shared by the hashing pool's threads, serialised by this lock.
        self.lock = threading.RLock()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                # A cache: losing its last rows to a power cut costs a re-hash, never
                # correctness, so it need not fsync on every row (WAL stays consistent).
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS stat (ino INTEGER PRIMARY KEY, mtime INTEGER,"
                    " size INTEGER, md5 TEXT)"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS verified (oid TEXT PRIMARY KEY, ino INTEGER,"
                    " mtime INTEGER, size INTEGER)"
                )
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"stat cache {self.path} is unreadable: {exc}") from exc
            self._db = db
        return self._db

    def _query(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        """Run one statement; a damaged cache degrades to "not cached", never to an error."""
        try:
            with self.lock:
                row: tuple[object, ...] | None = self.db.execute(sql, params).fetchone()
                return row
        except (sqlite3.DatabaseError, StoreError):
            return None

    def lookup(self, st: os.stat_result) -> str | None:
        row = self._query(
            "SELECT md5 FROM stat WHERE ino=? AND mtime=? AND size=?",
            (st.st_ino, st.st_mtime_ns, st.st_size),
        )
        return str(row[0]) if row else None

    def record(self, st: os.stat_result, md5: str) -> None:
        self._query(
            "INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?)",
            (st.st_ino, st.st_mtime_ns, st.st_size, md5),
        )

    def is_verified(self, oid: str, st: os.stat_result) -> bool:
        row = self._query(
            "SELECT 1 FROM verified WHERE oid=? AND ino=? AND mtime=? AND size=?",
            (oid, st.st_ino, st.st_mtime_ns, st.st_size),
        )
        return row is not None

    def mark_verified(self, oid: str, st: os.stat_result) -> None:
        self._query(
            "INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?)",
            (oid, st.st_ino, st.st_mtime_ns, st.st_size),
        )

    def forget_verified(self, oid: str) -> None:
        self._query("DELETE FROM verified WHERE oid=?", (oid,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _ObjectsLock:
    def __init__(self, store: Store, exclusive: bool) -> None:
        self.store = store
        self.exclusive = exclusive
        self.fd = -1

    def __enter__(self) -> _ObjectsLock:
        import fcntl

        try:
            self.fd = os.open(
                self.store.objects, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            )
        except OSError:
            return self  # no objects directory yet: nothing to collect, nothing to re-use
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        except OSError:
            pass  # a filesystem without flock: the ctime refresh alone narrows the race
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the flock
            self.fd = -1


class Store:
    """A DVC 3 object cache directory (normally `.dvc/cache`)."""

    def __init__(
        self,
        cache_dir: Path,
        state_path: Path,
        link_types: Sequence[str] = DEFAULT_LINK_TYPES,
        jobs: int | None = None,
        fsync: bool | Callable[[], bool] = True,
    ) -> None:
        """fsync: flush each object's bytes to disk before it gets its name (or a callable
        asked once, the first time an object is written: `Repo` follows git's own
        `core.fsync`, so weights are as durable as the repository's loose objects)."""
        self.cache_dir = cache_dir
        self._fsync = fsync
        self.objects = cache_dir / "files" / "md5"
        self.state = StatCache(state_path)
        bad = [t for t in link_types if t not in LINK_TYPES]
        if bad or not link_types:
            raise GitModelError(f"cache.type: unknown link type {', '.join(bad) or '(empty)'}")
        self.link_types = tuple(link_types)
        self.jobs = jobs or max(1, os.cpu_count() or 1)
        self._real_dirs: set[str] = set()  # cache directories seen not to be links

    @property
    def fsync_objects(self) -> bool:
        policy = self._fsync
        if not isinstance(policy, bool):
            policy = self._fsync = bool(policy())
        return policy

    # -- object paths -------------------------------------------------------------------

    def oid_to_path(self, oid: str) -> Path:
        if not is_oid(oid):
            raise GitModelError(f"not an md5 object id: {oid!r}")
        return self.objects / oid[:2] / oid[2:]

    def exists(self, oid: str) -> bool:
        return self.oid_to_path(oid).is_file()

    def real_dir(self, path: Path, create: bool = False) -> Path:
        """path, a directory of the cache, after checking that neither it nor a directory
        between it and the cache root is a symbolic link (a clone may commit
        `.dvc/cache/files/tmp -> ~`: writes, fsck's clean-up and gc would follow it).
        The cache root itself may be a link (a cache on another disk); see gitmodel.paths.
        """
        key = str(path)
        if key in self._real_dirs:
            return path
        rel = os.path.relpath(path, self.cache_dir)
        here = self.cache_dir
        for part in [] if rel == "." else rel.split(os.sep):
            here = here / part
            if str(here) in self._real_dirs:
                continue
            if create:
                try:
                    os.mkdir(here)
                except FileExistsError:
                    pass
            try:
                mode = os.lstat(here).st_mode
            except FileNotFoundError:
                return path  # nothing there yet to follow
            if not stat.S_ISDIR(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
                raise StoreError(f"cache: {here} is {what}; gitmodel does not follow it")
            self._real_dirs.add(str(here))
        return path

    def iter_oids(self) -> Iterator[str]:
        self.real_dir(self.objects)
        if not self.objects.is_dir():
            return
        for prefix in sorted(os.listdir(self.objects)):
            pdir = self.objects / prefix
            # A link among the prefix directories is not listed: gc and fsck --repair
            # remove what is listed, and must never remove through a link.
            if len(prefix) != 2 or not stat.S_ISDIR(os.lstat(pdir).st_mode):
                continue
            for name in sorted(os.listdir(pdir)):
                if not name.endswith(".tmp"):
                    yield prefix + name

    def reuse(self, oid: str) -> bool:
        """Whether oid is stored, refreshing its ctime if so: an object `add` re-uses
        counts as just stored, so a concurrent `gc` (which keeps what is within its grace
        period) cannot remove it between the check and the pointer's write. chmod moves
        the ctime without the mtime, so the stat cache of a hard-linked file stays valid.
        """
        path = self.real_dir(self.oid_to_path(oid).parent) / oid[2:]
        with self.objects_lock(exclusive=False):
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    return False
                os.chmod(path, 0o444)
            except (FileNotFoundError, NotADirectoryError):
                return False
            except PermissionError:
                pass  # a cache we may not change (another user's): nor can our gc collect it
        return True

    def objects_lock(self, exclusive: bool) -> _ObjectsLock:
        """flock on the objects directory: gc holds it exclusively while it removes, a
        re-use holds it shared for its check-and-refresh, so neither sees half the other."""
        return _ObjectsLock(self, exclusive)

    # -- hashing ------------------------------------------------------------------------

    def file_md5(self, path: Path, progress: Progress | None = None, overlap: bool = True) -> str:
        """The md5 of a workspace file, from the stat cache when it is unchanged."""
        st = os.stat(path)
        cached = self.state.lookup(st)
        if cached:
            if progress:
                progress(st.st_size)
            return cached
        md5 = hash_file(path, progress, overlap)
        self.state.record(st, md5)
        return md5

    def files_md5(self, paths: Sequence[Path]) -> list[str]:
        """file_md5 of many files, the uncached ones hashed on every core at once."""
        if len(paths) < 2 or self.jobs < 2:
            return [self.file_md5(p) for p in paths]
        # as many files as cores or more: one per core, each hashed in its own thread
        overlap = len(paths) < self.jobs
        return parallel_map(lambda p: self.file_md5(p, None, overlap), paths, self.jobs)

    # -- storing ------------------------------------------------------------------------

    def store_file(
        self, path: Path, progress: Progress | None = None, overlap: bool = True
    ) -> tuple[str, int]:
        """Put a workspace file in the cache; return (md5, size). The file is never moved.

        overlap: hash in a second thread (see _hash_and_copy); pools pass False."""
        try:
            return self._store_file(path, progress, overlap)
        except OSError as exc:
            raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc

    def _store_file(self, path: Path, progress: Progress | None, overlap: bool) -> tuple[str, int]:
        st = os.stat(path)
        cached = self.state.lookup(st)
        if cached and self.reuse(cached):
            if progress:
                progress(st.st_size)
            return cached, st.st_size
        for kind in self.link_types:
            if kind == "reflink":
                result = self._store_by_reflink(path, progress, overlap)
            elif kind == "hardlink":
                result = self._store_by_hardlink(path, progress, overlap)
            else:  # copy; symlink stores by copy and links only at checkout
                result = self._store_by_copy(path, progress, overlap)
            if result is not None:
                md5, size = result
                self.state.record(os.stat(path), md5)
                return md5, size
        raise StoreError(f"cannot store {path}: no link type in {','.join(self.link_types)} works")

    def _tmp_dir(self) -> Path:
        # Not under files/md5, so neither we nor DVC ever list a temp file as an object;
        # same filesystem as the objects, so the final rename is atomic.
        d = self.cache_dir / "files" / "tmp"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.real_dir(d, create=True)

    def _store_by_copy(
        self, path: Path, progress: Progress | None, overlap: bool
    ) -> tuple[str, int]:
        tmp = _tmp_name(self._tmp_dir() / "object")
        src_fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(src_fd).st_size
            # read as well as written: the hash reads the copy back through a map
            dst_fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                if _is_sparse(os.fstat(src_fd)):
                    md5 = _sparse_copy_and_hash(src_fd, dst_fd, size, progress)
                else:
                    md5 = _copy_and_hash(src_fd, dst_fd, size, progress, overlap)
                if self.fsync_objects:
                    os.fsync(dst_fd)
            finally:
                os.close(dst_fd)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(src_fd)
        try:
            self._place_from_tmpdir(tmp, md5)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return md5, size

    def _place_from_tmpdir(self, tmp: Path, md5: str) -> None:
        final = self.oid_to_path(md5)
        if self.reuse(md5):
            tmp.unlink()
            return
        self.real_dir(final.parent, create=True)
        os.chmod(tmp, 0o444)
        # Same filesystem (both under the cache), so the rename is atomic.
        os.replace(tmp, final)
        self.state.mark_verified(md5, os.stat(final))

    def _store_by_reflink(
        self, path: Path, progress: Progress | None, overlap: bool
    ) -> tuple[str, int] | None:
        tmp = _tmp_name(self._tmp_dir() / "object")
        try:
            _reflink(path, tmp)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in _LINK_FALLBACK_ERRNOS:
                return None
            raise
        try:
            md5 = hash_file(tmp, progress, overlap)
            size = os.stat(tmp).st_size
            self._place_from_tmpdir(tmp, md5)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return md5, size

    def _store_by_hardlink(
        self, path: Path, progress: Progress | None, overlap: bool
    ) -> tuple[str, int] | None:
        md5 = hash_file(path, progress, overlap)
        size = os.stat(path).st_size
        if self.reuse(md5):
            return md5, size
        tmp = _tmp_name(self._tmp_dir() / "object")
        try:
            os.link(path, tmp)
        except OSError as exc:
            if exc.errno in _LINK_FALLBACK_ERRNOS:
                return None
            raise
        # The workspace file now shares the object's inode: the read-only bit protects both.
        self._place_from_tmpdir(tmp, md5)
        return md5, size

    def store_bytes(self, data: bytes, suffix: str = "") -> str:
        """Store data as an object named md5(data) + suffix (".dir" for manifests)."""
        import hashlib

        md5 = hashlib.md5(data).hexdigest() + suffix
        if self.reuse(md5):
            return md5
        tmp = _tmp_name(self._tmp_dir() / "object")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
                f.flush()
                if self.fsync_objects:
                    os.fsync(f.fileno())
            self._place_from_tmpdir(tmp, md5)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write object {md5}: {exc.strerror or exc}") from exc
        return md5

    def store_dir(self, root: Path, progress: Progress | None = None) -> tuple[str, int, int]:
        """Store every file under root and a DVC 3 `.dir` manifest; return (oid, size, nfiles)."""
        files = sorted(walk_files(root))
        overlap = len(files) < self.jobs  # as in files_md5
        results = parallel_map(
            lambda p: self.store_file(root / p, progress, overlap), files, self.jobs
        )
        pairs = zip(files, results, strict=True)
        entries = [DirEntry(rel, md5, size) for rel, (md5, size) in pairs]
        oid = self.store_bytes(dir_manifest_bytes(entries), suffix=".dir")
        return oid, sum(e.size for e in entries), len(entries)

    # -- reading ------------------------------------------------------------------------

    def read_dir(self, oid: str) -> list[DirEntry]:
        """Entries of a `.dir` manifest; relpaths are validated to stay inside the directory."""
        path = self.oid_to_path(oid)
        try:
            # A manifest decides which files checkout writes: never trust changed bytes.
            self.verify(oid)
            raw = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ObjectMissing([oid]) from None
        except (ValueError, OSError, RecursionError) as exc:
            raise StoreError(f"directory manifest {oid} is not valid JSON: {exc}") from exc
        if not isinstance(raw, list):
            raise StoreError(f"directory manifest {oid} is not a list")
        if len(raw) > MAX_MANIFEST_ENTRIES:
            raise StoreError(f"directory manifest {oid} has more than {MAX_MANIFEST_ENTRIES} files")
        entries = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("relpath"), str):
                raise StoreError(f"directory manifest {oid} has a malformed entry")
            rel = item["relpath"]
            check_relpath(rel, f"directory manifest {oid}")
            md5 = item.get("md5")
            if not isinstance(md5, str) or not is_oid(md5, dirs=False):
                raise StoreError(f"directory manifest {oid}: bad md5 for {rel}")
            size = item.get("size")
            entries.append(DirEntry(rel, md5, size if isinstance(size, int) else -1))
        _check_tree(entries, f"directory manifest {oid}")
        return entries

    def verify(self, oid: str, force: bool = False) -> None:
        """Raise CorruptObject unless the object's content hashes to its name.

        Objects verified (or written by us) since their last change are trusted unless
        force is set: objects are read-only, so a change shows in inode/mtime/size.
        """
        path = self.oid_to_path(oid)
        st = os.stat(path)
        if not force and self.state.is_verified(oid, st):
            return
        actual = hash_file(path)
        if oid.endswith(".dir"):
            actual += ".dir"
        if actual != oid:
            raise CorruptObject(oid, actual)
        self.state.mark_verified(oid, st)

    # -- materialising ------------------------------------------------------------------

    def materialise(self, oid: str, dest: Path, progress: Progress | None = None) -> str:
        """Place object oid at dest (atomically), trying the link types in order."""
        src = self.oid_to_path(oid)
        if not src.is_file():
            raise ObjectMissing([oid])
        self.verify(oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(dest)
        for kind in self.link_types:
            try:
                if kind == "reflink":
                    _reflink(src, tmp)
                    os.chmod(tmp, 0o644)
                elif kind == "hardlink":
                    os.link(src, tmp)
                elif kind == "symlink":
                    os.symlink(src, tmp)
                else:
                    _copy(src, tmp, progress)
                    os.chmod(tmp, 0o644)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                if exc.errno in _LINK_FALLBACK_ERRNOS and kind != "copy":
                    continue
                raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from exc
            try:
                if dest.is_dir() and not dest.is_symlink():
                    raise StoreError(f"cannot write {dest}: a directory is in the way")
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if kind != "symlink":
                self.state.record(os.stat(dest), oid)
            return kind
        raise StoreError(f"cannot write {dest}: no link type in {','.join(self.link_types)} works")


def check_relpath(rel: str, where: str) -> None:
    """Refuse a relative path that is absolute, climbs out with `..`, aliases another with
    "." or an empty part (never written by DVC or us) or names `.git` (gitmodel.paths)."""
    from gitmodel.paths import UnsafePath
    from gitmodel.paths import check_relpath as check

    try:
        check(rel, where, allow_dvc=True)
    except UnsafePath as exc:
        raise StoreError(exc.message) from None


def _check_tree(entries: Sequence[DirEntry], where: str) -> None:
    """A manifest describes a tree: no path twice (status would never match it) and no
    path that is both a file and a directory (`a` and `a/b`: checkout could write one).
    Linear in the manifest's size: each entry's parents are looked up in a set."""
    files: set[str] = set()
    for e in entries:
        if e.relpath in files:
            raise StoreError(f"{where}: {e.relpath!r} is listed twice")
        files.add(e.relpath)
    for e in entries:
        parent = e.relpath
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in files:
                raise StoreError(f"{where}: {parent!r} is both a file and a directory")


def walk_files(root: Path) -> Iterator[str]:
    """Relative paths (with /) of regular files under root; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            full = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                yield os.path.relpath(full, root).replace(os.sep, "/")


def dir_manifest_bytes(entries: Sequence[DirEntry]) -> bytes:
    """A `.dir` object exactly as DVC 3 writes it (sorted by path parts, sorted keys)."""
    ordered = sorted(entries, key=lambda e: tuple(e.relpath.split("/")))
    return json.dumps(
        [{"md5": e.md5, "relpath": e.relpath} for e in ordered], sort_keys=True
    ).encode()


# git's core.fsync components (git 2.36+) and the words that name several of them.
_FSYNC_GROUPS = {
    "objects": {"loose-object", "pack"},
    "derived-metadata": {"pack-metadata", "commit-graph"},
    "committed": {"loose-object", "pack", "reference"},
    "added": {"loose-object", "pack", "reference", "index"},
    "all": {"loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference"},
}
_FSYNC_DEFAULT = {"pack", "pack-metadata", "commit-graph"}


def git_fsyncs_loose_objects(cwd: Path) -> bool:
    """Whether the repository's git config asks git to fsync its own loose objects.

    Git does not by default (`core.fsync` leaves out `loose-object`), nor does DVC; with
    `core.fsync=objects` (or `added`, `committed`, `all`, `loose-object`) or the older
    `core.fsyncObjectFiles=true`, weights get the same durability as git's objects.
    """
    from gitmodel.git import run_git

    proc = run_git(["config", "--get-regexp", r"^core\.fsync"], cwd=cwd, check=False)
    flush = False
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "core.fsyncobjectfiles":
            flush = flush or value.strip().lower() in ("true", "yes", "on", "1", "")
        elif key == "core.fsync":
            components = set(_FSYNC_DEFAULT)
            for word in (w.strip() for w in value.split(",")):
                if word == "none":
                    components = set()
                elif word.startswith("-"):
                    components -= _FSYNC_GROUPS.get(word[1:], {word[1:]})
                elif word:
                    components |= _FSYNC_GROUPS.get(word, {word})
            flush = flush or "loose-object" in components
    return flush
