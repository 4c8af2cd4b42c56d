"""The stat cache: workspace files' md5 by stat, verified objects (SQLite), one index
file per tracked directory, and whether a manifest's objects were all seen (files)."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

from gitmodel.record import FrozenRecord
from gitmodel.store.errors import StoreError
from gitmodel.tree import trusted

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    import sqlite3  # imported where the database is used: a directory's status never is


class TreeIndex(FrozenRecord):
    """What a tracked directory held when it was last hashed (see gitmodel.tree): its
    files' paths, their packed stat numbers and md5s, each one blob."""

    __slots__ = ("oid", "taken", "rels", "stats", "md5s", "canonical")

    def __init__(
        self, oid: str, taken: int, rels: bytes, stats: bytes, md5s: bytes, canonical: bool = False
    ) -> None:
        self._set(oid=oid, taken=taken, rels=rels, stats=stats, md5s=md5s, canonical=canonical)

    if TYPE_CHECKING:
        oid: str  # the `.dir` id of the listing
        taken: int  # time_ns() the stat numbers are trusted against (tree.RACY_NS)
        rels: bytes  # tree.rels_blob(): relative paths, NUL-separated
        stats: bytes  # Listing.stats_blob(): (inode, mtime, size) per file, int64 each
        md5s: bytes  # 16 bytes (a binary md5) per file, in the same order
        # oid is the md5 of tree.manifest_chunks(rels, md5s), as gitmodel formats a
        # manifest (not only a version's name, as a checkout of DVC's bytes records it)
        canonical: bool


# Rows buffered before they are written in one transaction (and the memory that bounds).
FLUSH_ROWS = 20_000


class StatCache:
    """(inode, mtime, size) -> md5 for workspace files, which objects were verified, and
    one index file per tracked directory (see put_tree).

    SQLite for the rows because two `git model` processes may use it at once and it
    already does the locking; it lives in `.dvc/tmp`, which DVC keeps out of git. The
    directory index is whole files replaced by rename instead, as git's index is: one
    directory's index is one record of megabytes. Writes are buffered and
    written in one transaction per command (`flush`, also at exit): one transaction per
    file cost more than hashing a small file. A killed command loses only its buffered
    rows, which costs a re-hash, never correctness.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        # One connection shared by the hashing pool's threads, serialised by this lock.
        self.lock = threading.RLock()
        self._stat: dict[int, tuple[int, int, str, int]] = {}  # ino -> (mtime, size, md5, taken)
        self._verified: dict[str, tuple[int, int, int] | None] = {}  # None: forget
        self._at_exit = False

    @property
    def db(self) -> sqlite3.Connection:
        import sqlite3

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
                # taken: when the stat was taken, so that a racily clean file (one
                # that could still change without its stat changing: gitmodel.tree) is
                # hashed again. An older table "stat" lacked it and is read by nothing.
                db.execute(
                    "CREATE TABLE IF NOT EXISTS filestat (ino INTEGER PRIMARY KEY,"
                    " mtime INTEGER, size INTEGER, md5 TEXT, taken INTEGER)"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS verified (oid TEXT PRIMARY KEY, ino INTEGER,"
                    " mtime INTEGER, size INTEGER)"
                )
                # The directory index and the "complete" marks are files (put_tree,
                # put_complete). Older tables "tree" (text lines), "dirindex" (the blobs)
                # and "complete" are left alone, read by nothing.
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"stat cache {self.path} is unreadable: {exc}") from exc
            self._db = db
        return self._db

    def _query(self, sql: str, params: tuple[object, ...]) -> tuple[object, ...] | None:
        """Run one statement; a damaged cache degrades to "not cached", never to an error."""
        import sqlite3

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
        import sqlite3

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
                    db.executemany(
                        "INSERT OR REPLACE INTO filestat VALUES (?, ?, ?, ?, ?)", stat_rows
                    )
                    db.executemany("INSERT OR REPLACE INTO verified VALUES (?, ?, ?, ?)", marks)
                    db.executemany("DELETE FROM verified WHERE oid=?", forget)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except (sqlite3.DatabaseError, StoreError):
                pass  # a cache that cannot be written is a cache that stays cold

    def lookup(self, st: os.stat_result) -> str | None:
        """The md5 recorded for a file with this stat, unless it was racily clean then."""
        with self.lock:
            pending = self._stat.get(st.st_ino)
        if pending is not None:
            if pending[:2] != (st.st_mtime_ns, st.st_size):
                return None
            md5, taken = pending[2], pending[3]
        else:
            row = self._query(
                "SELECT md5, taken FROM filestat WHERE ino=? AND mtime=? AND size=?",
                (st.st_ino, st.st_mtime_ns, st.st_size),
            )
            if not row or not isinstance(row[1], int):
                return None
            md5, taken = str(row[0]), row[1]
        return md5 if trusted(taken, st.st_mtime_ns) else None

    def record(self, st: os.stat_result, md5: str, taken: int) -> None:
        """Remember st -> md5; taken: the time_ns() from before st was taken."""
        with self.lock:
            self._stat[st.st_ino] = (st.st_mtime_ns, st.st_size, md5, taken)
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
        import sqlite3

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

    def mark_verified_rows(self, rows: Sequence[tuple[str, int, int, int]]) -> None:
        """mark_verified for many (oid, ino, mtime, size) at once: one lock per batch."""
        for at in range(0, len(rows), FLUSH_ROWS):
            with self.lock:
                for oid, ino, mtime, size in rows[at : at + FLUSH_ROWS]:
                    self._verified[oid] = (ino, mtime, size)
                self._buffered()

    def forget_verified(self, oid: str) -> None:
        with self.lock:
            self._verified[oid] = None
            self._buffered()

    # -- the directory index --------------------------------------------------------------
    #
    # One file per tracked directory beside the database (git's index in spirit), written
    # whole under a temporary name and renamed into place, so that a reader sees one
    # version or the other. As a row of 3 MB (50,000 files), each write cost SQLite some
    # 750 page writes to its log, as many again to checkpoint them and two fsyncs; as a
    # file it is one write, no fsync (a cache: a torn file fails its CRC and vouches for
    # nothing), and one read. Every name is opened relative to the directory's
    # descriptor, never through a symlink.

    def _index_dir(self, create: bool) -> int | None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        where = self.path.parent / INDEX_DIR
        try:
            return os.open(where, flags)
        except FileNotFoundError:
            if not create:
                return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(where, 0o755)
        except FileExistsError:
            pass
        return os.open(where, flags)

    def _read(self, name: str) -> bytes | None:
        """A file of the index directory, or None."""
        try:
            at = self._index_dir(create=False)
            if at is None:
                return None
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=at)
            finally:
                os.close(at)
            try:
                size = os.fstat(fd).st_size
                parts = []
                while size > 0 and (part := os.read(fd, size)):
                    parts.append(part)
                    size -= len(part)
            finally:
                os.close(fd)
        except OSError:
            return None
        return b"".join(parts)

    def _write(self, name: str, data: bytes, keep: str | None = None) -> None:
        """Replace a file of the index directory with data; keep: a name prefix of which
        only the newest KEEP_COMPLETE files are kept."""
        tmp = f"{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            at = self._index_dir(create=True)
            if at is None:
                return
        except OSError:
            return  # a cache that cannot be written is a cache that stays cold
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=at
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=at, dst_dir_fd=at)
            if keep is not None:
                _prune(at, keep)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=at)
            except OSError:
                pass
        finally:
            os.close(at)

    def tree(self, path: str) -> TreeIndex | None:
        """The directory's index, one read; None when absent or damaged."""
        data = self._read(_index_name(path))
        return None if data is None else _parse_index(data, path)

    def put_tree(self, path: str, index: TreeIndex) -> None:
        self._write(_index_name(path), _format_index(path, index))

    # Whether every object of a manifest was seen (Store.has_tree): a small file per
    # manifest id beside the index files, the newest KEEP_COMPLETE of them kept. A file,
    # not a row, so that neither status nor add of a directory opens the database.

    def complete(self, oid: str) -> tuple[int, bytes] | None:
        """(when, cache listing) at which every object of manifest oid was last seen."""
        data = self._read(_COMPLETE + _index_name(oid))
        found = None if data is None else _parse_sealed(data, oid)
        if found is None or len(found) < 8:
            return None
        return int.from_bytes(found[:8], "little", signed=True), bytes(found[8:])

    def put_complete(self, oid: str, taken: int, cache: bytes) -> None:
        body = taken.to_bytes(8, "little", signed=True) + cache
        self._write(_COMPLETE + _index_name(oid), _sealed(oid, body), keep=_COMPLETE)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


# The index file, sealed with the directory's path as its key (a check against a name
# collision): a header, the oid and the three blobs of TreeIndex.
INDEX_DIR = "dirindex"
_INDEX_HEAD = struct.Struct("<qIIIB")  # taken, oid length, rels length, files, canonical


def _index_name(path: str) -> str:
    import hashlib

    return hashlib.md5(path.encode("utf-8", "surrogateescape")).hexdigest()


def _format_index(path: str, index: TreeIndex) -> bytes:
    oid = index.oid.encode()
    n = len(index.md5s) // 16
    head = _INDEX_HEAD.pack(index.taken, len(oid), len(index.rels), n, index.canonical)
    return _sealed(path, head, oid, index.rels, index.stats, index.md5s)


def _parse_index(data: bytes, path: str) -> TreeIndex | None:
    body = _parse_sealed(data, path)  # None: torn or damaged, a cache that vouches for nothing
    at = _INDEX_HEAD.size
    if body is None or len(body) < at:
        return None
    taken, lo, lr, n, canonical = _INDEX_HEAD.unpack_from(body)
    if at + lo + lr + 40 * n != len(body):
        return None
    oid, at = bytes(body[at : at + lo]), at + lo
    rels, stats = bytes(body[at : at + lr]), bytes(body[at + lr : at + lr + 24 * n])
    md5s = bytes(body[at + lr + 24 * n :])
    if n and rels.count(0) != n - 1 or not n and rels:
        return None
    return TreeIndex(oid.decode("ascii", "replace"), taken, rels, stats, md5s, canonical == 1)


# "complete" files: a manifest id, when, the cache's listing; sealed as the index is.
_COMPLETE = "complete."
_SEAL_MAGIC = b"gmseal01"
KEEP_COMPLETE = 64


def _sealed(key: str, *body: bytes) -> bytes:
    """The parts of body under a header naming key, and a CRC-32 of all that."""
    import zlib

    k = key.encode("utf-8", "surrogateescape")
    data = b"".join([_SEAL_MAGIC, len(k).to_bytes(4, "little"), k, *body])
    return data + zlib.crc32(data).to_bytes(4, "little")


def _parse_sealed(data: bytes, key: str) -> memoryview | None:
    """The body sealed under key, as a view of data; None when torn, damaged or another key's."""
    import zlib

    k = key.encode("utf-8", "surrogateescape")
    head = len(_SEAL_MAGIC) + 4
    if len(data) < head + 4 or not data.startswith(_SEAL_MAGIC):
        return None
    if zlib.crc32(memoryview(data)[:-4]) != int.from_bytes(data[-4:], "little"):
        return None
    if int.from_bytes(data[head - 4 : head], "little") != len(k) or data[head : head + len(k)] != k:
        return None
    return memoryview(data)[head + len(k) : -4]


def _prune(at: int, prefix: str) -> None:
    """Remove all but the newest KEEP_COMPLETE files of the directory at fd `at` whose
    names start with prefix (and any of their temporary files a killed command left)."""
    with os.scandir(at) as it:
        names = [e.name for e in it if e.name.startswith(prefix)]
    if len(names) <= KEEP_COMPLETE:
        return
    dated = []
    for name in names:
        try:
            dated.append((os.stat(name, dir_fd=at, follow_symlinks=False).st_mtime_ns, name))
        except FileNotFoundError:
            pass
    dated.sort(reverse=True)
    for _, name in dated[KEEP_COMPLETE:]:
        try:
            os.unlink(name, dir_fd=at)
        except FileNotFoundError:
            pass
