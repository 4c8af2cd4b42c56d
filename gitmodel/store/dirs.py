"""Tracked directories in the store: listed once, compared with their index, small files
stored and checked out through one buffer each."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.store.errors import CorruptObject, ObjectMissing, StoreError
from gitmodel.store.hashing import SMALL, Progress, _read_fd, _read_small, parallel_map
from gitmodel.store.objects import ObjectStore
from gitmodel.store.statcache import TreeIndex
from gitmodel.tree import RACY_NS

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from gitmodel.tree import Listing


class Store(ObjectStore):
    """A DVC 3 object cache directory (normally `.dvc/cache`)."""

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

    def copy_in_small(self, oid: str, path: str) -> int | None:
        """Copy the file at path (an object of a local remote) into the cache as object oid
        through one buffer, verified against its name; its size, or None when it is not a
        small file (the caller copies it the general way). The caller holds
        objects_lock(shared)."""
        import hashlib

        try:
            data = _read_small(path)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if data is None:
            return None
        actual = hashlib.md5(data).hexdigest()
        if actual != oid:
            raise CorruptObject(oid, actual)
        self._write_object(oid, data)
        return len(data)

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
        from gitmodel.tree import manifest_bytes, scan, trusted

        key = os.path.realpath(root)
        if listing is None:
            listing = scan(key)
        md5s = self.known_md5s(key, listing)
        sizes = list(listing.sizes)
        todo = []
        self.real_dir(self.objects)
        self.probe_reflink()
        # Shared for the whole directory, not per file: a gc (exclusive) waits until the
        # manifest naming every object re-used here is stored or refreshed (see
        # _reuse_locked), and removes nothing while members are checked and written.
        with self.objects_lock(exclusive=False):
            stored = False
            if None not in md5s:  # the index vouches for every file: is the version whole?
                import hashlib

                known: list[str] = md5s  # type: ignore[assignment]  # no None in it
                data = manifest_bytes(listing.rels, known)
                stored = self.has_tree(hashlib.md5(data).hexdigest() + ".dir")
            for i, md5 in enumerate(md5s):
                if md5 is not None and (stored or self._reuse_locked(md5)):
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
        index = self.state.tree(key)
        stats = listing.stats_blob()
        if not (
            index is not None
            and index.oid == oid
            and trusted(index.taken, listing.max_mtime)
            and index.stats == stats
        ):  # a re-add of an unchanged directory rewrites no 5 MB index row
            self.put_tree(key, oid, listing.taken, stats, done)
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
        if items:
            self.probe_reflink()

        def one(item: tuple[str, str]) -> tuple[int, int, int] | BaseException:
            oid, dest = item
            try:
                # asked per file: a reflink that fails (another filesystem) switches the rest
                if self._copies_small_files():
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
