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
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.record import FrozenRecord
from gitmodel.tree import RACY_NS

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Protocol, TypeVar

    from gitmodel.tree import Listing

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

if TYPE_CHECKING:

    class Reporter(Protocol):
        """Progress for long transfers; the CLI draws it, the library only reports."""

        def start(self, description: str, total: int) -> Progress: ...

        def stop(self) -> None: ...


# Files in one `.dir` manifest (stated in docs/security.md): a manifest is read whole.
MAX_MANIFEST_ENTRIES = 10_000_000

_HEX = frozenset("0123456789abcdef")


def is_oid(text: str, dirs: bool = True) -> bool:
    """A cache object name: 32 lowercase hex digits, plus `.dir` for a manifest if dirs."""
    if dirs:
        text = text.removesuffix(".dir")
    return len(text) == 32 and _HEX.issuperset(text)


def _refresh_object(path: str | Path) -> bool:
    """Whether a regular object is at path, refreshing its ctime if so (chmod moves the
    ctime, not the mtime). The caller holds objects_lock(shared)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.chmod(path, 0o444)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except PermissionError:
        pass  # a cache we may not change (another user's): nor can our gc collect it
    return True


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


# Files up to this size are read whole into one buffer and hashed in the thread that read
# them: for an 8 KiB file a hand-off to a hasher thread costs more than the hash.
SMALL = 1 << 20


def _read_fd(fd: int, size: int) -> bytes | None:
    """All of fd from its start when it is at most SMALL bytes (size: what fstat said)."""
    data = os.read(fd, size + 1)  # one read: asking one byte more shows the end came
    if len(data) != size:  # it grew, shrank or the read came up short: read to the end
        while more := os.read(fd, CHUNK):
            data += more
            if len(data) > SMALL:
                return None
    return data if len(data) <= SMALL else None


def _read_small(path: str) -> bytes | None:
    """The bytes of a regular file of at most SMALL bytes, else None (never a symlink)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        return _read_fd(fd, size) if size <= SMALL else None
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


class TreeIndex(FrozenRecord):
    """What a tracked directory held when it was last hashed (see gitmodel.tree)."""

    __slots__ = ("oid", "taken", "stats", "md5s")

    def __init__(self, oid: str, taken: int, stats: bytes, md5s: bytes) -> None:
        self._set(oid=oid, taken=taken, stats=stats, md5s=md5s)

    if TYPE_CHECKING:
        oid: str  # the `.dir` id of the listing
        taken: int  # time.time_ns() the stat lines are trusted against (tree.RACY_NS)
        stats: bytes  # Listing.stats_blob()
        md5s: bytes  # 32 hex digits per line, in the same order


# Rows buffered before they are written in one transaction (and the memory that bounds).
FLUSH_ROWS = 20_000


class StatCache:
    """(inode, mtime, size) -> md5 for workspace files, which objects were verified, and
    one index row per tracked directory.

    SQLite because two `git model` processes may use it at once and it already does the
    locking; it lives in `.dvc/tmp`, which DVC keeps out of git. Writes are buffered and
    written in one transaction per command (`flush`, also at exit): one transaction per
    file cost more than hashing a small file. A killed command loses only its buffered
    rows, which costs a re-hash, never correctness.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        # One connection shared by the hashing pool's threads, serialised by this lock.
        self.lock = threading.RLock()
        self._stat: dict[int, tuple[int, int, str]] = {}  # ino -> (mtime, size, md5)
        self._verified: dict[str, tuple[int, int, int] | None] = {}  # None: forget
        self._at_exit = False

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
                db.execute(
                    "CREATE TABLE IF NOT EXISTS tree (path TEXT PRIMARY KEY, oid TEXT,"
                    " taken INTEGER, stats BLOB, md5s BLOB)"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS complete (oid TEXT PRIMARY KEY, taken INTEGER,"
                    " cache BLOB)"
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

    def _buffered(self) -> None:
        # under self.lock
        if not self._at_exit:
            import atexit

            atexit.register(self.flush)
            self._at_exit = True
        if len(self._stat) + len(self._verified) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows in one transaction."""
        with self.lock:
            if not self._stat and not self._verified:
                return
            stat_rows = [(ino, *row) for ino, row in self._stat.items()]
            marks = [(oid, *row) for oid, row in self._verified.items() if row is not None]
            forget = [(oid,) for oid, row in self._verified.items() if row is None]
            self._stat.clear()
            self._verified.clear()
            try:
                db = self.db
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?)", stat_rows)
                    db.executemany("INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?)", marks)
                    db.executemany("DELETE FROM verified WHERE oid=?", forget)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except (sqlite3.DatabaseError, StoreError):
                pass  # a cache that cannot be written is a cache that stays cold

    def lookup(self, st: os.stat_result) -> str | None:
        with self.lock:
            pending = self._stat.get(st.st_ino)
        if pending is not None:
            return pending[2] if pending[:2] == (st.st_mtime_ns, st.st_size) else None
        row = self._query(
            "SELECT md5 FROM stat WHERE ino=? AND mtime=? AND size=?",
            (st.st_ino, st.st_mtime_ns, st.st_size),
        )
        return str(row[0]) if row else None

    def record(self, st: os.stat_result, md5: str) -> None:
        with self.lock:
            self._stat[st.st_ino] = (st.st_mtime_ns, st.st_size, md5)
            self._buffered()

    def is_verified(self, oid: str, st: os.stat_result) -> bool:
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self.lock:
            if oid in self._verified:
                return self._verified[oid] == key
        row = self._query(
            "SELECT 1 FROM verified WHERE oid=? AND ino=? AND mtime=? AND size=?", (oid, *key)
        )
        return row is not None

    def verified_rows(self, oids: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """oid -> (ino, mtime, size) it was verified at, for many oids in a few queries."""
        found: dict[str, tuple[int, int, int]] = {}
        try:
            with self.lock:
                for at in range(0, len(oids), 500):  # SQLite's bound-parameter limit is 999+
                    batch = list(oids[at : at + 500])
                    marks = ",".join("?" * len(batch))
                    rows = self.db.execute(
                        f"SELECT oid, ino, mtime, size FROM verified WHERE oid IN ({marks})",
                        batch,
                    )
                    for oid, ino, mtime, size in rows:
                        found[oid] = (ino, mtime, size)
                for oid, row in self._verified.items():
                    if row is None:
                        found.pop(oid, None)
                    else:
                        found[oid] = row
        except (sqlite3.DatabaseError, StoreError):
            return {}
        return found

    def mark_verified(self, oid: str, st: os.stat_result) -> None:
        with self.lock:
            self._verified[oid] = (st.st_ino, st.st_mtime_ns, st.st_size)
            self._buffered()

    def forget_verified(self, oid: str) -> None:
        with self.lock:
            self._verified[oid] = None
            self._buffered()

    def tree(self, path: str) -> TreeIndex | None:
        row = self._query("SELECT oid, taken, stats, md5s FROM tree WHERE path=?", (path,))
        if row is None:
            return None
        oid, taken, stats, md5s = row
        if not (isinstance(oid, str) and isinstance(taken, int)):
            return None
        if not (isinstance(stats, bytes) and isinstance(md5s, bytes)):
            return None
        return TreeIndex(oid, taken, stats, md5s)

    def put_tree(self, path: str, index: TreeIndex) -> None:
        self._query(
            "INSERT OR REPLACE INTO tree VALUES (?, ?, ?, ?, ?)",
            (path, index.oid, index.taken, index.stats, index.md5s),
        )

    def complete(self, oid: str) -> tuple[int, bytes] | None:
        """(when, cache listing) at which every object of manifest oid was last seen."""
        row = self._query("SELECT taken, cache FROM complete WHERE oid=?", (oid,))
        if row is None or not isinstance(row[0], int) or not isinstance(row[1], bytes):
            return None
        return row[0], row[1]

    def put_complete(self, oid: str, taken: int, cache: bytes) -> None:
        self._query("INSERT OR REPLACE INTO complete VALUES (?, ?, ?)", (oid, taken, cache))

    def close(self) -> None:
        self.flush()
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
        # Set once a reflink fails for want of support: ext4 and most filesystems have
        # none, and asking again for each of 50,000 files costs four system calls each.
        self._reflink_ok = True
        self._tmp: Path | None = None

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
        if not is_oid(oid):
            raise GitModelError(f"not an md5 object id: {oid!r}")
        return self._has_object(oid)

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
        if create:  # a fresh clone has no cache yet (the root may be a link: not checked)
            os.makedirs(here, exist_ok=True)
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
            return _refresh_object(path)

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
                if not self._reflink_ok:
                    continue
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
        if self._tmp is None:
            d = self.cache_dir / "files" / "tmp"
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._tmp = self.real_dir(d, create=True)
        return self._tmp

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
                self._reflink_ok = False
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

    # -- directories ----------------------------------------------------------------------
    #
    # A tracked directory is listed once (gitmodel.tree.scan) and compared with the index
    # row recorded the last time it was hashed: files whose stat line matches are not
    # opened. Small files are read whole and hashed in the thread that read them.

    def _objpath(self, md5: str) -> str:
        """The object's path for an md5 we computed or validated (no Path, no check)."""
        return f"{self.objects}/{md5[:2]}/{md5[2:]}"

    def _has_object(self, md5: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self._objpath(md5)).st_mode)
        except OSError:
            return False

    def _copies_small_files(self) -> bool:
        """Whether small files are stored and checked out by plain copies (see SMALL)."""
        for kind in self.link_types:
            if kind == "reflink" and not self._reflink_ok:
                continue
            return kind in ("copy", "symlink")  # symlink stores by copy
        return False

    def _reuse_locked(self, md5: str) -> bool:
        """Store.reuse for a caller that holds objects_lock(shared) for a whole directory:
        one lstat and, when the object is there, the chmod that refreshes its ctime."""
        return _refresh_object(self._objpath(md5))

    def _write_object(self, md5: str, data: bytes) -> None:
        """Write data as object md5 (atomically); a re-use when the object exists. The
        caller holds objects_lock(shared)."""
        final = self._objpath(md5)
        if self._reuse_locked(md5):
            return
        self.real_dir(self.objects / md5[:2], create=True)  # checked once per directory
        tmp = f"{self._tmp_dir()}/object.{os.urandom(6).hex()}.tmp"
        # Created read-only: the descriptor may still write, and no chmod call is needed.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync_objects:
                    os.fsync(fd)
                st = os.fstat(fd)  # the object's inode, mtime and size survive the rename
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self.state.mark_verified(md5, st)

    def _store_member(self, path: str, progress: Progress | None, overlap: bool) -> tuple[str, int]:
        """Store one file of a directory; small ones in one read, hashed inline."""
        import hashlib

        if self._copies_small_files():
            try:
                data = _read_small(path)
                if data is not None:
                    md5 = hashlib.md5(data).hexdigest()
                    self._write_object(md5, data)
                    if progress:
                        progress(len(data))
                    return md5, len(data)
            except OSError as exc:
                raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc
        return self.store_file(Path(path), progress, overlap)

    def _member_md5(self, path: str, overlap: bool) -> str:
        import hashlib

        try:
            data = _read_small(path)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if data is not None:
            return hashlib.md5(data).hexdigest()
        return self.file_md5(Path(path), None, overlap)

    def known_md5s(self, root: str, listing: Listing) -> list[str | None]:
        """The md5 of each listed file that the directory's index vouches for, else None."""
        import re

        from gitmodel.tree import trusted

        index = self.state.tree(root)
        n = len(listing)
        if index is None or not re.fullmatch(rb"[0-9a-f]*", index.md5s):
            return [None] * n
        hexes = index.md5s.decode()
        if trusted(index.taken, listing.max_mtime) and index.stats == listing.stats_blob():
            if len(hexes) == 32 * n:
                return [hexes[i : i + 32] for i in range(0, 32 * n, 32)]
        old = index.stats.decode("utf-8", "surrogateescape").split("\n") if index.stats else []
        if 32 * len(old) != len(hexes):
            return [None] * n
        all_old = trusted(index.taken, listing.max_mtime)  # no listed mtime can be racy
        if len(old) == n:
            # Same number of files, both lists in manifest order: compare them in step (a
            # few changed files cost a few misses, not a dictionary of 50,000 lines).
            out: list[str | None] = []
            misses = 0
            for i, (was, now) in enumerate(zip(old, listing.lines, strict=True)):
                if was == now and (all_old or trusted(index.taken, int(now.rsplit("\0", 2)[1]))):
                    out.append(hexes[32 * i : 32 * i + 32])
                else:
                    out.append(None)
                    misses += 1
            if misses <= max(16, n // 100):
                return out
            # Out of step (a file added and another removed, a rename): match by line.
        known = {line: hexes[32 * i : 32 * i + 32] for i, line in enumerate(old)}
        out = []
        for line in listing.lines:
            md5 = known.get(line)
            if md5 is not None and not trusted(index.taken, int(line.rsplit("\0", 2)[1])):
                md5 = None  # racily clean: hash it again
            out.append(md5)
        return out

    def _cache_listing(self) -> tuple[bytes, int]:
        """The object directories' names and mtimes, and the newest mtime among them.

        Removing or adding an object changes its directory's mtime, so while this listing
        is the same, the set of objects is too (git's untracked cache uses the same fact).
        """
        try:
            with os.scandir(self.objects) as it:
                stamps = sorted(
                    (e.name, e.stat(follow_symlinks=False).st_mtime_ns)
                    for e in it
                    if len(e.name) == 2 and e.is_dir(follow_symlinks=False)
                )
        except OSError:
            return b"", 0
        newest = max((m for _, m in stamps), default=0)
        return "\n".join(f"{n} {m}" for n, m in stamps).encode(), newest

    def has_tree(self, oid: str, rebuildable: Callable[[str], bool] | None = None) -> bool:
        """Whether manifest oid and every object it names are in the cache (or, for those
        that are not, rebuildable says they can be made again).

        Answered from 256 directory stats when nothing was added to or removed from the
        cache since every object was last seen whole; otherwise checked object by object.
        """
        from gitmodel.tree import trusted

        if not self._has_object(oid):
            return False
        taken = time.time_ns()  # before the listing, as in tree.Listing
        listing, newest = self._cache_listing()
        seen = self.state.complete(oid)
        if seen is not None and seen[1] == listing and trusted(seen[0], newest):
            return True
        try:
            entries = self.read_dir(oid)
        except GitModelError:  # a missing, corrupt or malformed manifest
            return False
        absent = [e.md5 for e in entries if not self._has_object(e.md5)]
        if not absent:
            self.state.put_complete(oid, taken, listing)
            return True
        return rebuildable is not None and all(rebuildable(o) for o in absent)

    def put_tree(self, root: str, oid: str, taken: int, stats: bytes, md5s: Sequence[str]) -> None:
        """Record what the directory at root holds (stat lines in .dir order, their md5s)."""
        self.state.put_tree(root, TreeIndex(oid, taken, stats, "".join(md5s).encode()))

    def tree_md5s(self, root: str, listing: Listing) -> list[str]:
        """The md5 of every listed file: from the index where it vouches, else hashed."""
        md5s = self.known_md5s(root, listing)
        todo = [i for i, m in enumerate(md5s) if m is None]
        base = root + "/"
        big = sum(1 for i in todo if listing.sizes[i] > SMALL)
        overlap = big < self.jobs  # as in files_md5
        hashed = parallel_map(
            lambda i: self._member_md5(base + listing.rels[i], overlap), todo, self.jobs
        )
        for i, md5 in zip(todo, hashed, strict=True):
            md5s[i] = md5
        return md5s  # type: ignore[return-value]  # every None was replaced

    def tree_oid(self, root: Path) -> str:
        """The `.dir` id of the directory as it is now; refreshes its index if it must hash."""
        import hashlib

        from gitmodel.tree import manifest_bytes, scan, trusted

        key = os.path.realpath(root)
        listing = scan(key)
        index = self.state.tree(key)
        if (
            index is not None
            and trusted(index.taken, listing.max_mtime)
            and index.stats == listing.stats_blob()
        ):
            return index.oid
        md5s = self.tree_md5s(key, listing)
        oid = hashlib.md5(manifest_bytes(listing.rels, md5s)).hexdigest() + ".dir"
        self.put_tree(key, oid, listing.taken, listing.stats_blob(), md5s)
        return oid

    def store_dir(
        self, root: Path, progress: Progress | None = None, listing: Listing | None = None
    ) -> tuple[str, int, int]:
        """Store every file under root and a DVC 3 `.dir` manifest; return (oid, size, nfiles).

        Files the directory's index vouches for are skipped with one stat of their object.
        """
        from gitmodel.tree import manifest_bytes, scan

        key = os.path.realpath(root)
        if listing is None:
            listing = scan(key)
        md5s = self.known_md5s(key, listing)
        sizes = list(listing.sizes)
        todo = []
        self.real_dir(self.objects)
        # Shared for the whole directory, not per file: a gc (exclusive) waits until every
        # object re-used here has had its ctime refreshed (see Store.reuse).
        with self.objects_lock(exclusive=False):
            for i, md5 in enumerate(md5s):
                if md5 is not None and self._reuse_locked(md5):
                    if progress:
                        progress(sizes[i])
                else:
                    todo.append(i)
            base = key + "/"
            overlap = sum(1 for i in todo if sizes[i] > SMALL) < self.jobs
            results = parallel_map(
                lambda i: self._store_member(base + listing.rels[i], progress, overlap),
                todo,
                self.jobs,
            )
            for i, (md5, size) in zip(todo, results, strict=True):
                md5s[i], sizes[i] = md5, size
            done: list[str] = md5s  # type: ignore[assignment]  # every None was replaced
            oid = self.store_bytes(manifest_bytes(listing.rels, done), suffix=".dir")
            # Every object of the manifest is there now, and no gc of ours can remove one
            # while the shared lock is held: record it, so that the next status need not
            # check 50,000 objects (has_tree). The listing is exact under the lock, so it
            # is recorded as trusted already (see tree.RACY_NS).
            cache, newest = self._cache_listing()
            self.state.put_complete(oid, max(time.time_ns(), newest + RACY_NS + 1), cache)
        self.put_tree(key, oid, listing.taken, listing.stats_blob(), done)
        self.state.flush()
        return oid, sum(sizes), len(listing)

    def materialise_files(
        self, items: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> list[tuple[int, int, int] | BaseException]:
        """Write object oid at each dest path of (oid, dest); per item, the (ino, mtime, size)
        written, or the CorruptObject/StoreError that stopped it (the others go on).

        Parent directories must exist. Objects are verified as they are read, unless the
        stat cache says they were verified since their last change.
        """
        verified = self.state.verified_rows(sorted({oid for oid, _ in items}))
        small = self._copies_small_files()

        def one(item: tuple[str, str]) -> tuple[int, int, int] | BaseException:
            oid, dest = item
            try:
                if small:
                    written = self._materialise_small(oid, dest, verified.get(oid))
                    if written is not None:
                        if progress:
                            progress(written[2])
                        return written
                st = os.stat(self._objpath(oid))
                trusted = verified.get(oid) == (st.st_ino, st.st_mtime_ns, st.st_size)
                self.materialise(oid, Path(dest), progress, verified=trusted, record=False)
                st = os.lstat(dest)
                return (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                return ObjectMissing([oid])
            except (CorruptObject, StoreError) as exc:
                return exc
            except OSError as exc:
                return StoreError(f"cannot write {dest}: {exc.strerror or exc}")

        results = parallel_map(one, items, self.jobs)
        self.state.flush()
        return results

    def _materialise_small(
        self, oid: str, dest: str, verified_at: tuple[int, int, int] | None
    ) -> tuple[int, int, int] | None:
        """Copy a small object to dest through one buffer; None if it is not small."""
        import hashlib

        self.real_dir(self.objects / oid[:2])  # checked once per directory
        fd = os.open(self._objpath(oid), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if st.st_size > SMALL:
                return None
            data = _read_fd(fd, st.st_size)
        finally:
            os.close(fd)
        if data is None:
            return None
        if verified_at != (st.st_ino, st.st_mtime_ns, st.st_size):
            actual = hashlib.md5(data).hexdigest()
            if actual != oid:
                raise CorruptObject(oid, actual)
            self.state.mark_verified(oid, st)
        tmp = f"{dest}.{os.urandom(6).hex()}.tmp"  # the name _tmp_name gives
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
                written = os.fstat(out)
            finally:
                os.close(out)
            os.replace(tmp, dest)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, IsADirectoryError):
                raise StoreError(f"cannot write {dest}: a directory is in the way") from None
            raise
        return (written.st_ino, written.st_mtime_ns, written.st_size)

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

    def object_sizes(self, oids: Sequence[str]) -> dict[str, int]:
        """oid -> size of each of oids that is a regular file in the cache (one stat each)."""
        sizes = {}
        for oid in oids:
            if not is_oid(oid):
                raise GitModelError(f"not an md5 object id: {oid!r}")
            try:
                st = os.lstat(self._objpath(oid))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                sizes[oid] = st.st_size
        return sizes

    def verify(
        self, oid: str, force: bool = False, known: tuple[int, int, int] | None = None
    ) -> None:
        """Raise CorruptObject unless the object's content hashes to its name.

        Objects verified (or written by us) since their last change are trusted unless
        force is set: objects are read-only, so a change shows in inode/mtime/size.
        known: the (ino, mtime, size) StatCache.verified_rows gave for oid, so that many
        objects cost one query between them.
        """
        path = self.oid_to_path(oid)
        st = os.stat(path)
        if not force and known is not None and known == (st.st_ino, st.st_mtime_ns, st.st_size):
            return
        if not force and self.state.is_verified(oid, st):
            return
        actual = hash_file(path)
        if oid.endswith(".dir"):
            actual += ".dir"
        if actual != oid:
            raise CorruptObject(oid, actual)
        self.state.mark_verified(oid, st)

    # -- materialising ------------------------------------------------------------------

    def materialise(
        self,
        oid: str,
        dest: Path,
        progress: Progress | None = None,
        verified: bool = False,
        record: bool = True,
    ) -> str:
        """Place object oid at dest (atomically), trying the link types in order.

        verified: the caller has checked the object already; record: remember dest's
        stat -> oid in the per-file stat cache (a directory's index does that instead)."""
        src = self.oid_to_path(oid)
        if not src.is_file():
            raise ObjectMissing([oid])
        if not verified:
            self.verify(oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(dest)
        for kind in self.link_types:
            if kind == "reflink" and not self._reflink_ok:
                continue
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
                    if kind == "reflink":
                        self._reflink_ok = False
                    continue
                raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from exc
            try:
                if dest.is_dir() and not dest.is_symlink():
                    raise StoreError(f"cannot write {dest}: a directory is in the way")
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if kind != "symlink" and record:
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
    """A `.dir` object exactly as DVC 3 writes it: entries sorted by their relpath string
    (dvc-data's `Tree.as_list`: "d.txt" before "d/x"), keys sorted."""
    ordered = sorted(entries, key=lambda e: e.relpath)
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
