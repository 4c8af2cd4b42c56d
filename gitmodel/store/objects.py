"""Single objects in a DVC 3 cache: paths, the gc-safe re-use, storing a file or bytes,
verifying, reading a manifest, materialising with the configured link types.

Over 500 lines as one class on purpose: storing, verifying and materialising share the
objects lock, the link-type fallback state (a failed reflink is not tried again) and the
verified-stat cache; the byte-moving code they call already lives in hashing.py."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.store.errors import CorruptObject, ObjectMissing, StoreError
from gitmodel.store.hashing import (
    _FICLONE,
    _LINK_FALLBACK_ERRNOS,
    DEFAULT_LINK_TYPES,
    LINK_TYPES,
    Progress,
    _copy,
    _copy_and_hash,
    _is_sparse,
    _reflink,
    _sparse_copy_and_hash,
    _tmp_name,
    hash_file,
    parallel_map,
)
from gitmodel.store.manifest import (
    DirEntry,
    is_oid,
    parse_manifest,
)
from gitmodel.store.statcache import StatCache
from gitmodel.tree import time_ns


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


class _ObjectsLock:
    def __init__(self, store: ObjectStore, exclusive: bool) -> None:
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


class ObjectStore:
    """A DVC 3 object cache directory (normally `.dvc/cache`), one object at a time."""

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
        self._reflink_probed = False
        # Manifests read (and verified) by this command: a pull reads one three times
        # (fetch, the cache check, checkout) and 50,000 entries cost their path checks.
        self._manifests: dict[str, tuple[tuple[int, int, int], list[DirEntry]]] = {}
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

    def reuse_verified(self, oid: str) -> bool:
        """reuse(oid) for an object gitmodel wrote or checked since it last changed: one
        that is merely there may hold any bytes (a clone may commit one under the name of
        bytes its victim will add), so the caller's bytes, just hashed, replace it."""
        if not self.reuse(oid):
            return False
        try:
            return self.state.is_verified(oid, os.stat(self._objpath(oid)))
        except OSError:
            return False

    def objects_lock(self, exclusive: bool) -> _ObjectsLock:
        """flock on the objects directory: gc holds it exclusively while it removes, a
        re-use holds it shared for its check-and-refresh, so neither sees half the other."""
        return _ObjectsLock(self, exclusive)

    # -- hashing ------------------------------------------------------------------------

    def file_md5(self, path: Path, progress: Progress | None = None, overlap: bool = True) -> str:
        """The md5 of a workspace file, from the stat cache when it is unchanged."""
        taken = time_ns()  # before the stat: see gitmodel.tree.RACY_NS
        st = os.stat(path)
        cached = self.state.lookup(st)
        if cached:
            if progress:
                progress(st.st_size)
            return cached
        md5 = hash_file(path, progress, overlap)
        self.state.record(st, md5, taken)
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
        taken = time_ns()  # before the stat: see gitmodel.tree.RACY_NS
        st = os.stat(path)
        cached = self.state.lookup(st)
        if cached and self.reuse_verified(cached):
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
                after = os.stat(path)
                if (after.st_ino, after.st_mtime_ns, after.st_size) == (
                    st.st_ino,
                    st.st_mtime_ns,
                    st.st_size,
                ):  # unchanged while it was copied: the object is what the stat describes
                    self.state.record(after, md5, taken)
                return md5, size
        raise StoreError(f"cannot store {path}: no link type in {','.join(self.link_types)} works")

    def probe_reflink(self) -> None:
        """Learn once whether the cache's filesystem clones files (ext4 does not), before a
        directory's files are shared out: a pool that learnt it from its first file would
        already have sent every other file down the path meant for clones."""
        if self._reflink_probed or not self._reflink_ok:
            return
        self._reflink_probed = True
        import fcntl

        tmp = self._tmp_dir()
        src, dst = (f"{tmp}/probe.{os.urandom(6).hex()}.tmp" for _ in range(2))
        fds = []
        try:
            fds.append(os.open(src, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            os.write(fds[0], bytes(4096))
            fds.append(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            fcntl.ioctl(fds[1], _FICLONE, fds[0])
        except OSError as exc:
            if len(fds) == 2 and exc.errno in _LINK_FALLBACK_ERRNOS:
                self._reflink_ok = False  # the files were made: it is the clone that failed
        finally:
            for fd in fds:
                os.close(fd)
            for name in (src, dst):
                try:
                    os.unlink(name)
                except OSError:
                    pass

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
        if self.reuse_verified(md5):
            tmp.unlink()
            return
        # absent, or there but neither written nor checked by us (it may hold any bytes:
        # a clone may commit an object under the name of bytes its victim will add):
        # the bytes just hashed take the name
        self.real_dir(final.parent, create=True)
        os.chmod(tmp, 0o444)
        st = os.stat(tmp)  # the inode, mtime and size survive the rename
        # Same filesystem (both under the cache), so the rename is atomic.
        os.replace(tmp, final)
        tmp.unlink(missing_ok=True)  # still there if it was a link of final's own inode
        self.state.mark_verified(md5, st)

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
        if self.reuse_verified(md5):
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
        if self.reuse_verified(md5):
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

    def _objpath(self, md5: str) -> str:
        """The object's path for an md5 we computed or validated (no Path, no check)."""
        return f"{self.objects}/{md5[:2]}/{md5[2:]}"

    def _has_object(self, md5: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(self._objpath(md5)).st_mode)
        except OSError:
            return False

    # -- reading ------------------------------------------------------------------------

    def read_dir(self, oid: str) -> list[DirEntry]:
        """Entries of a `.dir` manifest; relpaths are validated to stay inside the directory."""
        path = self.oid_to_path(oid)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ObjectMissing([oid]) from None
        except OSError:
            st = None
        key = (st.st_ino, st.st_mtime_ns, st.st_size) if st else (0, 0, -1)
        seen = self._manifests.get(oid)
        if seen is not None and seen[0] == key:
            return list(seen[1])  # read and checked by this command, unchanged since
        try:
            # A manifest decides which files checkout writes: never trust changed bytes.
            self.verify(oid)
            data = path.read_bytes()
        except FileNotFoundError:
            raise ObjectMissing([oid]) from None
        except OSError as exc:
            raise StoreError(f"directory manifest {oid} is not valid JSON: {exc}") from exc
        entries = parse_manifest(data, oid)
        if st is not None:
            self._manifests[oid] = (key, entries)
        return list(entries)

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
                taken = time_ns()
                self.state.record(os.stat(dest), oid, taken)
            return kind
        raise StoreError(f"cannot write {dest}: no link type in {','.join(self.link_types)} works")
