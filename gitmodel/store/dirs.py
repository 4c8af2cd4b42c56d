"""Tracked directories in the store: listed once, compared with their index, small files
stored and checked out through one buffer each."""

from __future__ import annotations

import contextlib
import itertools
import os
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from gitmodel import forking
from gitmodel.errors import GitModelError
from gitmodel.store.errors import CorruptObject, ObjectMissing, StoreError
from gitmodel.store.hashing import (
    SMALL,
    Progress,
    _read_fd,
    _read_small,
    _tmp_name,
    parallel_map,
    write_nameless,
)
from gitmodel.store.objects import ObjectStore
from gitmodel.store.statcache import TreeIndex
from gitmodel.tree import COARSE_RACY_NS, scan, split_rels, time_ns, trusted

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.tree import Listing


# A directory add with at least this many small files to store gives half of them to a
# forked child (Store._store_small_files).
FORK_SMALL_FILES = 2048
# How each file of a batch of small files went (Store._store_smalls).
_LEFT, _WRITTEN, _REUSED = 0, 1, 2
# A checkout of at least this many files gives half of them to a forked child
# (Store._materialise_forked).
FORK_CHECKOUT_FILES = 2048
# How each file of a forked child's checkout went: written (its object was trusted, or
# hashed and marked), or left to the parent (not small, or an error the parent meets
# again and reports).
_CO_LEFT, _CO_WRITTEN, _CO_HASHED = 0, 1, 2


def _checkout_batch_from(data: bytes, n: int) -> array[int] | None:
    """A forked child's checkout result for n files (seven numbers a file), or None if
    what it sent is not of that shape."""
    if len(data) != 56 * n:
        return None
    numbers = array("q")
    numbers.frombytes(data)
    if any(how not in (_CO_LEFT, _CO_WRITTEN, _CO_HASHED) for how in numbers[6::7]):
        return None
    return numbers


def _batch_from(data: bytes, n: int) -> tuple[bytes | bytearray, array[int]] | None:
    """A forked child's batch result for n files from what it sent, or None if it is
    not of that shape."""
    if len(data) != 48 * n:
        return None
    numbers = array("q")
    numbers.frombytes(data[16 * n :])
    if any(how not in (_LEFT, _WRITTEN, _REUSED) for how in numbers[3::4]):
        return None
    return data[: 16 * n], numbers


# The largest manifest a re-add rewrites in memory (_patched_manifest); a larger one is
# formatted and written a few thousand entries at a time (store_manifest).
PATCHED_MANIFEST_BYTES = 16 << 20


class Vouched:
    """What a directory's index vouches for (Store.vouched)."""

    __slots__ = ("index", "md5s", "todo", "exact", "same_paths")

    def __init__(
        self,
        index: TreeIndex | None,
        md5s: bytearray,
        todo: Sequence[int],
        exact: bool,
        same_paths: bool = False,
    ) -> None:
        self.index = index
        self.md5s = md5s  # 16 bytes a listed file; zeros for those in todo
        self.todo = todo  # indexes of the files to hash: new, changed or racy
        self.exact = exact  # the listing's paths and stat numbers equal the index's
        self.same_paths = same_paths or exact  # the listing's paths equal the index's


def _changed(old: bytes, new: bytes, width: int) -> list[int]:
    """Indexes of the width-byte records that differ between two blobs of equal length,
    compared 512 records at a time."""
    block = 512 * width
    out = []
    for at in range(0, len(new), block):
        if old[at : at + block] != new[at : at + block]:
            for k in range(at, min(at + block, len(new)), width):
                if old[k : k + width] != new[k : k + width]:
                    out.append(k // width)
    return out


class Store(ObjectStore):
    """A DVC 3 object cache directory (normally `.dvc/cache`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._object_dirs: set[str] = set()  # the objects' 256 directories seen real
        self._tmp_prefix = os.urandom(4).hex()
        self._tmp_count = itertools.count()
        # Whether files can be written nameless and then linked (hashing.write_nameless);
        # cleared the first time this filesystem says no.
        self._nameless = True
        # While a directory is stored: each object directory's descriptor, and whether
        # this command created it (see _object_dir); while one is checked out: each
        # destination directory's descriptor.
        self._dir_fds: dict[str, tuple[int, bool]] | None = None
        # ... and the object directories there were when it began (the others are made
        # by this command: by this process, a child of it, or a concurrent writer)
        self._old_dirs: frozenset[str] = frozenset()
        self._dest_fds: dict[str, int] | None = None
        # While a directory is stored: the cache's temporary directory, where the objects'
        # unnamed files are made (see hashing.write_nameless's made_in).
        self._tmp_fd: int | None = None

    # -- directories ----------------------------------------------------------------------
    #
    # A tracked directory is listed once (gitmodel.tree.scan) and compared with the index
    # row recorded the last time it was hashed: files whose stat line matches are not
    # opened. Small files are read whole and hashed in the thread that read them.

    def _copies_small_files(self) -> bool:
        """Whether small files are stored and checked out by plain copies (see SMALL)."""
        for kind in self.link_types:
            if kind == "reflink" and not self._reflink_ok:
                continue
            return kind in ("copy", "symlink")  # symlink stores by copy
        return False

    def _reuse_locked(self, md5: str) -> bool:
        """Whether a directory's member object is there, for a caller that holds
        objects_lock(shared) until the directory's manifest is stored: one stat, no ctime
        refresh. The manifest's own store or re-use refreshes its ctime, and gc keeps every
        object a manifest within the grace period names (gitmodel.gc), so 50,000 re-used
        members cost no chmod each."""
        return self._has_object(md5)

    def _object_dir(self, prefix: str) -> tuple[int, bool]:
        """A descriptor of the object directory prefix (made if missing, checked to be no
        link), and whether this command made it (while a directory is stored: whether it
        was not there when that began). The caller closes the descriptor unless a
        directory is being stored (then store_dir does, at its end)."""
        fds = self._dir_fds
        if fds is not None and (got := fds.get(prefix)) is not None:
            return got
        path = self.objects / prefix
        self.real_dir(self.objects, create=True)
        made = fds is not None and prefix not in self._old_dirs
        try:
            os.mkdir(path)
            made = True
        except FileExistsError:
            pass
        self.real_dir(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if fds is None:
            return fd, made
        got = fds.setdefault(prefix, (fd, made))  # two threads may open it at once
        if got[0] != fd:
            os.close(fd)
        return got

    def _close_dirs(self) -> None:
        fds, self._dir_fds = self._dir_fds, None
        self._old_dirs = frozenset()
        dests, self._dest_fds = self._dest_fds, None
        tmp, self._tmp_fd = self._tmp_fd, None
        for fd in [fd for fd, _ in (fds or {}).values()] + list((dests or {}).values()):
            os.close(fd)
        if tmp is not None:
            os.close(tmp)

    def _write_object(self, md5: str, data: bytes) -> None:
        """Write data as object md5 (atomically); a re-use when the object exists. The
        caller holds objects_lock(shared)."""
        st = self._put_object(md5, data)
        if st is not None:
            self.state.mark_verified(md5, st)

    def _put_object(self, md5: str, data: bytes) -> os.stat_result | None:
        """_write_object, leaving the verified mark to the caller: the new object's stat,
        or None when it was there already."""
        if self._nameless:
            batch = self._dir_fds is not None
            fd, made = self._object_dir(md5[:2])
            try:
                # In a directory this command made, only objects it wrote (or a
                # concurrent writer's) can exist: the link below finds those, and a
                # fresh add of 50,000 files costs no stat of an object that is not there.
                stale = False
                if not made and self._reuse_locked(md5):
                    if self._holds(md5, data):
                        return None
                    stale = True  # other bytes under this name (a clone may commit one)
                try:
                    st = write_nameless(
                        fd,
                        md5[2:],
                        data,
                        0o444,
                        self.fsync_objects,
                        replace=stale,
                        made_in=self._tmp_fd,
                    )
                except FileExistsError:
                    if self._has_object(md5):
                        return None  # stored meanwhile: by a duplicate file or another add
                    raise StoreError(f"cache: {self._objpath(md5)} is not a regular file") from None
            finally:
                if not batch:
                    os.close(fd)
            if st is not None:
                return st
            self._nameless = False  # this filesystem cannot: a temporary name and rename
        final = self._objpath(md5)
        if self._reuse_locked(md5) and self._holds(md5, data):
            return None
        if md5[:2] not in self._object_dirs:
            self.real_dir(self.objects / md5[:2], create=True)
            self._object_dirs.add(md5[:2])
        # A name no other process uses (O_EXCL makes sure), without a getrandom per file.
        tmp = f"{self._tmp_dir()}/object.{self._tmp_prefix}{next(self._tmp_count):x}.tmp"
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
        return st

    def _holds(self, md5: str, data: bytes) -> bool:
        """Whether object md5, found there, holds data: an object this command did not
        write may hold any bytes (a clone may commit one under the name of bytes its
        victim will add), and a re-use must not believe its name. One read of a small
        object, paid only where the object was there before the command began."""
        try:
            fd = os.open(self._objpath(md5), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            return os.pread(fd, len(data) + 1, 0) == data
        finally:
            os.close(fd)

    def copy_in_small(self, oid: str, path: str) -> int | None:
        """Copy the file at path (an object of a local remote) into the cache as object oid
        through one buffer, verified against its name; its size, or None when it is not a
        small file (the caller copies it the general way). The caller holds
        objects_lock(shared)."""
        try:
            data = _read_small(path)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if data is None:
            return None
        self.put_verified(oid, data)
        return len(data)

    def put_verified(self, oid: str, data: bytes) -> None:
        """Store data as object oid (a file's md5, or a manifest's md5 + `.dir`) once it
        hashes to oid: CorruptObject, and nothing written, when it does not. Written whole
        or not at all (see _write_object). The caller holds objects_lock(shared)."""
        import hashlib

        actual = hashlib.md5(data).hexdigest()
        if oid.endswith(".dir"):
            actual += ".dir"
        if actual != oid:
            raise CorruptObject(oid, actual)
        self._write_object(oid, data)

    @contextlib.contextmanager
    def writing_batch(self) -> Iterator[None]:
        """Many put_verified calls from one thread: each object directory is opened once
        for the batch, and no object is stat'ed before it is written (a pull writes only
        objects it found missing; one there meanwhile is found by the link). The unnamed files are made in their own object directories, not
        in one (as store_dir makes them): a pull often follows the removal of a cache
        whose objects were made in that one, and on ext4 without a journal every new
        inode there first skips, one by one, each inode of its group freed in the last
        minute (see docs/performance.md, "What the kernel spends"): 3,000 objects into a
        cache just removed took 2.6 to 3.3 system CPU-s made in one directory, 0.5 to 1.5
        spread over their own (three runs each, load 5)."""
        if self._dir_fds is not None:  # already in a batch
            yield
            return
        self._dir_fds = {}
        try:
            yield
        finally:
            self._close_dirs()
            self.state.flush()

    def _store_member(
        self, path: str, progress: Progress | None, overlap: bool, size: int | None = None
    ) -> tuple[str, int]:
        """Store one file of a directory; small ones in one read, hashed inline.

        size: the listing's, so that a small file costs no fstat."""
        import hashlib

        if self._copies_small_files():
            try:
                data = _read_small(path, size)
                if data is not None:
                    md5 = hashlib.md5(data).hexdigest()
                    self._write_object(md5, data)
                    if progress:
                        progress(len(data))
                    return md5, len(data)
            except OSError as exc:
                raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc
        return self.store_file(Path(path), progress, overlap)

    # -- a directory's small files --------------------------------------------------------
    #
    # A fresh add of a data set is one loop over its small files: each is read whole,
    # hashed in the thread that read it, and its object written nameless and linked whole
    # (_put_object). From FORK_SMALL_FILES files on, a forked child stores half of them
    # (gitmodel.forking): each file is a few Python steps holding the GIL around eight
    # system calls, so two threads hand the GIL to each other at every call, where two
    # processes run side by side. A batch's result is one blob of binary md5s and one
    # packed array of four numbers a file: its size, the new object's inode and mtime (for
    # the verified mark), and how it went (_LEFT, _WRITTEN or _REUSED).

    def _store_smalls(
        self,
        base: str,
        rels: Sequence[str],
        items: Sequence[int],
        sizes: array[int],
        progress: Progress | None,
        jobs: int = 1,
        parent: int | None = None,
    ) -> tuple[bytes | bytearray, array[int]]:
        """Store the small files items (indexes of rels, under base); their batch result.
        parent: in a forked child, its parent's pid: the child stops if the parent died."""
        from hashlib import md5

        digests = bytearray(16 * len(items))
        numbers = array("q", bytes(32 * len(items)))

        def one(k: int) -> None:
            i = items[k]
            path = base + rels[i]
            try:
                data = _read_small(path, sizes[i])
                if data is None:
                    return  # no longer small: _LEFT
                digest = md5(data).digest()
                st = self._put_object(digest.hex(), data)
            except OSError as exc:
                raise StoreError(f"cannot store {path}: {exc.strerror or exc}") from exc
            size = len(data)
            digests[16 * k : 16 * k + 16] = digest
            numbers[4 * k] = size
            if st is None:
                numbers[4 * k + 3] = _REUSED
            else:
                numbers[4 * k + 1] = st.st_ino
                numbers[4 * k + 2] = st.st_mtime_ns
                numbers[4 * k + 3] = _WRITTEN
            if progress:
                progress(size)

        if jobs > 1:
            parallel_map(one, range(len(items)), jobs)
            return digests, numbers
        for k in range(len(items)):
            if parent is not None and k % 64 == 0 and os.getppid() != parent:
                raise SystemExit(1)  # killed: an orphan would go on writing objects
            one(k)
        return digests, numbers

    def _apply_smalls(
        self,
        items: Sequence[int],
        digests: bytes | bytearray,
        numbers: array[int],
        md5s: bytearray,
        sizes: array[int],
    ) -> list[int]:
        """Put a batch's md5s and sizes in place and mark its new objects verified; the
        items it left (files no longer small). items: increasing, as todo always is."""
        hows = numbers[3::4]
        stored = numbers[0::4]
        n = len(items)
        if n and items[-1] - items[0] == n - 1 and _LEFT not in hows:
            # consecutive files, all stored (a fresh add): two slices, not n of each
            md5s[16 * items[0] : 16 * items[0] + 16 * n] = digests
            sizes[items[0] : items[0] + n] = stored
        else:
            for k, i in enumerate(items):
                if hows[k] != _LEFT:
                    md5s[16 * i : 16 * i + 16] = digests[16 * k : 16 * k + 16]
                    sizes[i] = stored[k]
        hexes = digests.hex()
        inos, mtimes = numbers[1::4], numbers[2::4]
        self.state.mark_verified_rows(
            [
                (hexes[32 * k : 32 * k + 32], inos[k], mtimes[k], stored[k])
                for k in range(n)
                if hows[k] == _WRITTEN
            ]
        )
        return [items[k] for k in range(n) if hows[k] == _LEFT] if _LEFT in hows else []

    def _store_small_files(
        self,
        base: str,
        rels: Sequence[str],
        todo: Sequence[int],
        md5s: bytearray,
        sizes: array[int],
        progress: Progress | None,
    ) -> list[int]:
        """Store the small files of todo (a forked child taking half of many); the indexes
        of the files left to the general path (_store_member)."""
        if not self._copies_small_files():
            return list(todo)
        small = [i for i in todo if sizes[i] <= SMALL]
        rest = [i for i in todo if sizes[i] > SMALL]
        if len(small) < FORK_SMALL_FILES or not forking.may_fork():
            digests, numbers = self._store_smalls(base, rels, small, sizes, progress, self.jobs)
            return rest + self._apply_smalls(small, digests, numbers, md5s, sizes)
        _ = self.fsync_objects  # git's fsync policy asked once, not by each process
        ours, theirs = small[: len(small) // 2], small[len(small) // 2 :]
        me = os.getpid()

        def child() -> bytes:
            digests, numbers = self._store_smalls(base, rels, theirs, sizes, None, parent=me)
            return bytes(digests) + numbers.tobytes()

        mine, data = forking.with_child(
            child, lambda: self._store_smalls(base, rels, ours, sizes, progress)
        )
        rest += self._apply_smalls(ours, *mine, md5s, sizes)
        got = _batch_from(data, len(theirs)) if data is not None else None
        if got is None:  # the child failed: its half again, here (its objects stay)
            digests, numbers = self._store_smalls(base, rels, theirs, sizes, progress, self.jobs)
        else:
            digests, numbers = got
            if progress:
                progress(sum(numbers[0::4]))
        return rest + self._apply_smalls(theirs, digests, numbers, md5s, sizes)

    def _member_md5(self, path: str, overlap: bool) -> str:
        import hashlib

        try:
            data = _read_small(path)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if data is not None:
            return hashlib.md5(data).hexdigest()
        return self.file_md5(Path(path), None, overlap)

    def vouched(self, root: str, listing: Listing) -> Vouched:
        """What the directory's index vouches for: the md5 of each listed file (16 bytes a
        file, zeros where it cannot vouch) and the files it cannot vouch for.

        Files are compared by their packed stat numbers, a block of 512 files at a time
        while the paths are the same (one changed file among 50,000 costs 100 `bytes`
        comparisons and one file's look), by path otherwise; a racy one is never vouched
        for (tree.RACY_NS).
        """
        n = len(listing)
        index = self.state.tree(root)
        if index is None:
            return Vouched(None, bytearray(16 * n), range(n), False)
        stats = listing.stats_blob()
        if index.rels == listing.rels_blob():
            md5s = bytearray(index.md5s)
            racy = listing.racy(index.taken)
            if index.stats == stats:
                return Vouched(index, md5s, racy, True)
            changed = set(racy).union(_changed(index.stats, stats, 24))
            return Vouched(index, md5s, sorted(changed), False, True)
        # Files added, removed or renamed: match by path.
        at = {rel: i for i, rel in enumerate(split_rels(index.rels))}
        md5s = bytearray(16 * n)
        todo = []
        old, was = index.stats, index.md5s
        for i, rel in enumerate(listing.rels):
            j = at.get(rel)
            if j is not None and old[24 * j : 24 * j + 24] == stats[24 * i : 24 * i + 24]:
                md5s[16 * i : 16 * i + 16] = was[16 * j : 16 * j + 16]
            else:
                todo.append(i)
        racy = listing.racy(index.taken)
        if racy:
            todo = sorted(set(todo).union(racy))
        return Vouched(index, md5s, todo, False)

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
        if not self._has_object(oid):
            return False
        taken = time_ns()  # before the listing, as in tree.Listing
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

    def put_tree(
        self,
        root: str,
        oid: str,
        taken: int,
        rels: bytes,
        stats: bytes,
        md5s: bytes | bytearray,
        canonical: bool = False,
    ) -> None:
        """Record what the directory at root holds: relpaths (tree.rels_blob), packed stat
        numbers and binary md5s, all in .dir order; canonical: oid is the md5 of the
        manifest as tree.manifest_chunks formats (rels, md5s)."""
        self.state.put_tree(root, TreeIndex(oid, taken, rels, stats, bytes(md5s), canonical))

    def tree_md5s(self, root: str, listing: Listing) -> list[str]:
        """The md5 of every listed file: from the index where it vouches, else hashed."""
        v = self.vouched(root, listing)
        hx = self._hash_unvouched(root, listing, v.md5s, v.todo).hex()
        return [hx[i : i + 32] for i in range(0, len(hx), 32)]

    def _hash_unvouched(
        self, root: str, listing: Listing, md5s: bytearray, todo: Sequence[int]
    ) -> bytearray:
        base = root + "/"
        big = sum(1 for i in todo if listing.size(i) > SMALL)
        overlap = big < self.jobs  # as in files_md5
        rels = listing.rels

        def one(i: int) -> None:
            md5s[16 * i : 16 * i + 16] = bytes.fromhex(self._member_md5(base + rels[i], overlap))

        parallel_map(one, todo, self.jobs)
        return md5s

    def tree_oid(self, root: Path) -> str:
        """The `.dir` id of the directory as it is now; refreshes its index if it must hash."""
        key = os.path.realpath(root)
        listing = scan(key)
        v = self.vouched(key, listing)
        if v.index is not None and v.exact and not v.todo:
            return v.index.oid  # the index vouches for every file, as listed
        return self._index_now(key, listing, self._hash_unvouched(key, listing, v.md5s, v.todo))

    def tree_matches(self, root: Path, oid: str) -> bool:
        """Whether the directory at root holds version oid (`tree_oid(root) == oid`),
        answered without the manifest where the index decides it.

        The index knows its own version's id and every file's md5 in it. With the index's
        paths, and every file it cannot vouch for hashed to the md5 the index has, the
        directory is the index's version. When the index's version is oid, other paths
        or one different md5 make a manifest that differs from oid's: not oid, decided
        without formatting 50,000 entries. The few files hashed for that are not kept
        (the index stays oid's, and the next status hashes them again, which costs less
        than the manifest); many changed files are, as tree_oid keeps them.
        """
        key = os.path.realpath(root)
        listing = scan(key)
        v = self.vouched(key, listing)
        index, todo = v.index, v.todo
        if index is None:
            pass
        elif v.exact and not todo:
            return index.oid == oid  # the index vouches for every file, as listed
        elif not v.same_paths:
            if index.oid == oid:
                return False  # other relpaths than oid's manifest lists
        elif self._few(listing, todo):
            md5s = self._hash_unvouched(key, listing, v.md5s, todo)
            was = index.md5s
            if all(md5s[16 * i : 16 * i + 16] == was[16 * i : 16 * i + 16] for i in todo):
                # The index's version with new stat numbers (a touch, a racy file that
                # did not change): keep them, no manifest to format.
                stats = listing.stats_blob()
                self.put_tree(
                    key, index.oid, listing.taken, index.rels, stats, md5s, index.canonical
                )
                return index.oid == oid
            if index.oid == oid:
                return False
            return self._index_now(key, listing, md5s) == oid
        md5s = self._hash_unvouched(key, listing, v.md5s, todo)
        return self._index_now(key, listing, md5s) == oid

    @staticmethod
    def _few(listing: Listing, todo: Sequence[int]) -> bool:
        """Whether hashing these files again costs less than formatting the manifest and
        writing the index (about 1 us a file): at most 1 file in 32, at most 32 MiB."""
        return len(todo) * 32 <= len(listing) and sum(map(listing.size, todo)) <= 32 << 20

    def _index_now(self, key: str, listing: Listing, md5s: bytearray) -> str:
        """The `.dir` id of listing with these md5s, recorded as the directory's index."""
        import hashlib

        from gitmodel.tree import manifest_chunks

        h = hashlib.md5()
        for chunk in manifest_chunks(listing.rels, md5s):
            h.update(chunk)
        oid = h.hexdigest() + ".dir"
        stats = listing.stats_blob()
        self.put_tree(key, oid, listing.taken, listing.rels_blob(), stats, md5s, True)
        return oid

    def store_manifest(
        self,
        rels: Sequence[str],
        md5s: bytes | bytearray,
        chunks: Iterable[bytes | bytearray] | None = None,
    ) -> str:
        """Store the `.dir` manifest of (rels, md5s) as it is formatted, a few thousand
        entries at a time: never the whole 14 MB of a 200,000-file manifest at once.
        chunks: those bytes, made otherwise (see _patched_manifest)."""
        import hashlib

        from gitmodel.tree import manifest_chunks

        tmp = _tmp_name(self._tmp_dir() / "object")
        h = hashlib.md5()
        try:
            with open(tmp, "xb") as f:
                for chunk in manifest_chunks(rels, md5s) if chunks is None else chunks:
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                if self.fsync_objects:
                    os.fsync(f.fileno())
            oid = h.hexdigest() + ".dir"
            self._place_from_tmpdir(tmp, oid)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write a directory manifest: {exc.strerror or exc}") from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return oid

    def store_dir(
        self, root: Path, progress: Progress | None = None, listing: Listing | None = None
    ) -> tuple[str, int, int]:
        """Store every file under root and a DVC 3 `.dir` manifest; return (oid, size, nfiles).

        Files the directory's index vouches for are not opened, and their objects cost
        nothing when the index's own version is whole in the cache (one stat each when
        it is not).
        """
        key = os.path.realpath(root)
        if listing is None:
            listing = scan(key)
        n = len(listing)
        v = self.vouched(key, listing)
        index, md5s, todo = v.index, v.md5s, v.todo
        sizes = listing.stats[2::3]
        self.real_dir(self.objects)
        self.probe_reflink()
        # Shared for the whole directory, not per file: a gc (exclusive) waits until the
        # manifest naming every object re-used here is stored or refreshed (see
        # _reuse_locked), and removes nothing while members are checked and written.
        with self.objects_lock(exclusive=False):
            # Every md5 the index vouches for is one of its version's: when that version
            # is whole in the cache, so is each of them (256 directory stats, not one
            # stat per file), however many files changed since.
            whole = index is not None and len(todo) < n and self.has_tree(index.oid)
            if not whole and len(todo) < n:
                hashed = set(todo)
                todo = [
                    i
                    for i in range(n)
                    if i in hashed or not self._reuse_locked(md5s[16 * i : 16 * i + 16].hex())
                ]
            if progress:
                progress(sum(sizes) - sum(sizes[i] for i in todo))
            base = key + "/"
            overlap = sum(1 for i in todo if sizes[i] > SMALL) < self.jobs
            rels = listing.rels

            def one(i: int) -> None:
                md5, size = self._store_member(base + rels[i], progress, overlap, sizes[i])
                md5s[16 * i : 16 * i + 16] = bytes.fromhex(md5)
                sizes[i] = size

            self._dir_fds = {}
            try:
                if todo:
                    try:  # which object directories this command makes (_object_dir)
                        self._old_dirs = frozenset(os.listdir(self.objects))
                    except FileNotFoundError:
                        pass
                    self._tmp_fd = os.open(
                        self._tmp_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                    )
                    rest = self._store_small_files(base, rels, todo, md5s, sizes, progress)
                    parallel_map(one, rest, self.jobs)
            finally:
                self._close_dirs()
            unchanged = index is not None and v.exact and not todo and whole
            if unchanged and self.reuse(index.oid):  # type: ignore[union-attr]
                # The same version: its manifest's ctime is refreshed, and gc keeps every
                # object a manifest within the grace period names (gitmodel.gc).
                oid = index.oid  # type: ignore[union-attr]
            else:
                unchanged = False
                patched = self._patched_manifest(index, v, rels, md5s) if whole else None
                oid = self.store_manifest(rels, md5s, None if patched is None else [patched])
            # Every object of the manifest is there now, and no gc of ours can remove one
            # while the shared lock is held: record it, so that the next status need not
            # check 50,000 objects (has_tree). The listing is exact under the lock, so it
            # is recorded as trusted already (see tree.RACY_NS).
            cache, newest = self._cache_listing()
            self.state.put_complete(oid, max(time_ns(), newest + COARSE_RACY_NS + 1), cache)
        if not unchanged:  # a re-add of an unchanged directory rewrites no index row
            stats = listing.stats_blob()
            self.put_tree(key, oid, listing.taken, listing.rels_blob(), stats, md5s, True)
        self.state.flush()
        return oid, sum(sizes), n

    def _patched_manifest(
        self, index: TreeIndex | None, v: Vouched, rels: Sequence[str], md5s: bytearray
    ) -> bytearray | None:
        """The manifest of the listing, made from the index's own (whole in the cache) by
        rewriting the md5 of each file that changed: a few finds in 4 MB instead of
        formatting 50,000 entries. None where it cannot be: other paths, many changes, an
        index version not formatted as gitmodel formats it (a DVC manifest checked out),
        or a cached manifest that is not that version's bytes.

        The entry of relpath R is the only place `", "relpath": R}` occurs (R quoted as
        JSON quotes it): inside a JSON string every quote is escaped, and the quote
        before `relpath` follows a space, so it is one of the structure's.
        """
        import hashlib
        from json.encoder import encode_basestring_ascii as quote

        if index is None or not index.canonical or not v.same_paths or len(v.todo) > 4096:
            return None
        try:
            fd = os.open(self._objpath(index.oid), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                size = os.fstat(fd).st_size
                if size > PATCHED_MANIFEST_BYTES:
                    return None
                out = bytearray(size)  # the one copy in memory, read into and patched
                view, got = memoryview(out), 0
                while got < size and (k := os.readv(fd, [view[got:]])):
                    got += k
                view.release()
                if got != size:
                    return None
            finally:
                os.close(fd)
        except OSError:
            return None
        if hashlib.md5(out).hexdigest() + ".dir" != index.oid:
            return None
        was = index.md5s
        at = 0
        for i in v.todo:  # in listing order, as in the manifest
            old, new = was[16 * i : 16 * i + 16], md5s[16 * i : 16 * i + 16]
            if old == new:
                continue
            needle = f'", "relpath": {quote(rels[i])}}}'.encode()
            at = out.find(needle, at)
            if at < 41 or out[at - 41 : at] != b'{"md5": "' + old.hex().encode():
                return None
            out[at - 32 : at] = new.hex().encode()
            at += len(needle)
        return out

    def materialise_files(
        self,
        items: Sequence[tuple[str, str]],
        progress: Progress | None = None,
        made_in: str | None = None,
    ) -> list[tuple[int, int, int] | BaseException]:
        """Write object oid at each dest path of (oid, dest); per item, the (ino, mtime, size)
        written, or the CorruptObject/StoreError that stopped it (the others go on).

        Parent directories must exist. Objects are verified as they are read, unless the
        stat cache says they were verified since their last change. made_in: a directory
        above every dest (a tracked directory's root), where small files are made before
        they are linked into place (see hashing.write_nameless).
        """
        verified = self.state.verified_rows(sorted({oid for oid, _ in items}))
        if items:
            self.probe_reflink()

        def one(item: tuple[str, str]) -> tuple[int, int, int] | BaseException:
            oid, dest = item
            try:
                # asked per file: a reflink that fails (another filesystem) switches the rest
                if self._copies_small_files():
                    written = self._materialise_small(oid, dest, verified.get(oid), None)
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

        self._dest_fds = {}
        try:
            if made_in is not None and items:
                self._tmp_fd = os.open(
                    made_in, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                )
            if (
                len(items) >= FORK_CHECKOUT_FILES
                and self._copies_small_files()
                and forking.may_fork()
            ):
                results = self._materialise_forked(items, verified, one, progress)
            else:
                results = parallel_map(one, items, self.jobs)
        finally:
            self._close_dirs()
        self.state.flush()
        return results

    def _materialise_forked(
        self,
        items: Sequence[tuple[str, str]],
        verified: dict[str, tuple[int, int, int]],
        one: Callable[[tuple[str, str]], tuple[int, int, int] | BaseException],
        progress: Progress | None,
    ) -> list[tuple[int, int, int] | BaseException]:
        """materialise_files' items, the second half written by a forked child.

        Each file is a few Python steps around eight system calls, so two threads would
        hand the GIL to each other at every call, where two processes run side by side
        (as a fresh add's small files, _store_small_files). The child writes small files
        only, each as the parent would (the object's md5 checked unless it is marked
        verified at its stat, the file written nameless and linked); it marks nothing
        (the stat cache is the parent's) and sends back seven numbers a file: the new
        file's inode, mtime and size, the hashed object's, and how it went. Whatever it
        left (a file not small, any error) the parent does again itself, and reports;
        if it dies or sends anything of the wrong shape, the parent does its whole half
        again (rewriting a file it did write replaces it by a rename, whole).
        """
        ours, theirs = items[: len(items) // 2], items[len(items) // 2 :]
        me = os.getpid()

        def child() -> bytes:
            numbers = array("q", bytes(56 * len(theirs)))
            hashed: list[os.stat_result] = []
            for k, (oid, dest) in enumerate(theirs):
                if k % 64 == 0 and os.getppid() != me:
                    raise SystemExit(1)  # killed: an orphan would go on writing files
                try:
                    written = self._materialise_small(oid, dest, verified.get(oid), hashed)
                except (OSError, GitModelError):
                    hashed.clear()
                    continue  # _CO_LEFT: the parent meets the error again and reports it
                if written is None:
                    continue
                numbers[7 * k : 7 * k + 3] = array("q", written)
                how = _CO_WRITTEN
                if hashed:
                    st = hashed.pop()
                    numbers[7 * k + 3 : 7 * k + 6] = array(
                        "q", (st.st_ino, st.st_mtime_ns, st.st_size)
                    )
                    how = _CO_HASHED
                numbers[7 * k + 6] = how
            return numbers.tobytes()

        def parent() -> list[tuple[int, int, int] | BaseException]:
            return [one(item) for item in ours]

        mine, data = forking.with_child(child, parent)
        numbers = _checkout_batch_from(data, len(theirs)) if data is not None else None
        if numbers is None:  # the child failed: its half again, here
            return mine + parallel_map(one, theirs, self.jobs)
        results: list[tuple[int, int, int] | BaseException] = []
        marks: list[tuple[str, int, int, int]] = []
        size = 0
        for k, item in enumerate(theirs):
            how = numbers[7 * k + 6]
            if how == _CO_LEFT:
                results.append(one(item))
                continue
            ino, mtime, n = numbers[7 * k : 7 * k + 3]
            results.append((ino, mtime, n))
            size += n
            if how == _CO_HASHED:
                marks.append((item[0], numbers[7 * k + 3], numbers[7 * k + 4], numbers[7 * k + 5]))
        self.state.mark_verified_rows(marks)
        if progress:
            progress(size)
        return mine + results

    def _dest_dir(self, parent: str) -> int | None:
        """A descriptor of a destination directory of materialise_files (opened once)."""
        fds = self._dest_fds
        if fds is None:
            return None
        fd = fds.get(parent)
        if fd is None:
            fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            got = fds.setdefault(parent, fd)  # two threads may open it at once
            if got != fd:
                os.close(fd)
                fd = got
        return fd

    def _materialise_small(
        self,
        oid: str,
        dest: str,
        verified_at: tuple[int, int, int] | None,
        hashed: list[os.stat_result] | None,
    ) -> tuple[int, int, int] | None:
        """Copy a small object to dest through one buffer; None if it is not small.

        An object not verified at its stat is hashed first, then marked verified, or,
        with hashed (a forked child, which must not write the stat cache), its stat is
        appended there for the caller to mark."""
        import hashlib

        if oid[:2] not in self._object_dirs:  # checked once per directory (no Path per file)
            where = self.objects / oid[:2]
            self.real_dir(where)
            if str(where) in self._real_dirs:  # seen to be a real directory, not a link
                self._object_dirs.add(oid[:2])
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
            if hashed is None:
                self.state.mark_verified(oid, st)
            else:
                hashed.append(st)
        if self._nameless:
            parent, _, name = dest.rpartition("/")
            dir_fd = self._dest_dir(parent)
            if dir_fd is not None:
                try:
                    new = write_nameless(
                        dir_fd, name, data, 0o644, False, replace=True, made_in=self._tmp_fd
                    )
                except IsADirectoryError:
                    raise StoreError(f"cannot write {dest}: a directory is in the way") from None
                if new is not None:
                    return (new.st_ino, new.st_mtime_ns, new.st_size)
                self._nameless = False  # this filesystem cannot: a temporary name, renamed
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
