"""One DVC remote, opened through DVC's config, filesystem and object-db classes.

What `transfer.py` asks of a remote, object by object or in one batch: which objects it
holds (one batched existence check, sizes by listing where a stat each would cost a round
trip), its generation marker, its object directories made once per push, and one object up
(atomically: a temporary name and a rename where writes are visible while they happen) or
down. DVC is imported only when a remote is really opened.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel import forking
from gitmodel.errors import GitModelError
from gitmodel.remote import (
    GENERATION,
    RemoteError,
    dvc_config,
    record_path,
)

if TYPE_CHECKING:
    from gitmodel.sftp_fetch import Fetched
    from gitmodel.workspace_view import SyncWorkspace

# Object stores publish an object only once its upload completed: no temporary name needed.
ATOMIC_PROTOCOLS = frozenset({"s3", "gs", "gcs", "azure", "abfs", "oss"})
# Uploaded through the filesystem's file object into directories made once per push.
DIRECT_PROTOCOLS = frozenset({"ssh", "sftp"})
UPLOAD_BLOCK = 4 * 1024 * 1024
# Up to this many objects are stat'ed one by one; more are found by listing their
# object directories (the layout has 256), as DVC's own traverse does.
LISTING_THRESHOLD = 256


class CopyFailed(Exception):
    """A copy into a local remote failed; its text is one_line of the original error."""


def one_line(exc: BaseException) -> str:
    if isinstance(exc, CopyFailed):
        return str(exc)
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if type(exc).__name__ in first else f"{type(exc).__name__}: {first}"


_BYTES: list[Any] = []  # the callback class, made once: a class per object cost 50,000


def byte_callback(
    progress: Callable[[int], None] | None, counter: list[int], lock: threading.Lock
) -> Any:
    """An fsspec callback that reports byte deltas to our progress function."""
    if not _BYTES:
        from fsspec.callbacks import Callback

        class Bytes(Callback):
            def __init__(
                self,
                progress: Callable[[int], None] | None,
                counter: list[int],
                lock: threading.Lock,
            ) -> None:
                super().__init__()
                self._seen = 0
                self._progress, self._counter, self._lock = progress, counter, lock

            def call(self, *args: Any, **kwargs: Any) -> None:
                delta = int(self.value or 0) - self._seen
                if delta > 0:
                    self._seen += delta
                    with self._lock:
                        self._counter[0] += delta
                    if self._progress:
                        self._progress(delta)

            def finish(self, size: int) -> None:
                """Count what the filesystem did not report (small or reflinked copies)."""
                if size > self._seen:
                    self.absolute_update(size)

        _BYTES.append(Bytes)
    return _BYTES[0](progress, counter, lock)


class DvcRemote:
    """One DVC remote opened through DVC's config, filesystem and object-db classes."""

    def __init__(
        self, repo: SyncWorkspace, name: str | None = None, jobs: int | None = None
    ) -> None:
        from dvc.fs import get_cloud_fs
        from dvc_data.hashfile.db import get_odb

        self.repo = repo
        conf = dvc_config(repo)
        name = name or conf["core"].get("remote")
        if not name:
            raise RemoteError(
                "no default DVC remote; add one with `git model remote add NAME URL --default`"
            )
        if name not in conf["remote"]:
            raise RemoteError(f"no DVC remote named {name!r} (see `git model remote list`)")
        self.name = name
        self.url = str(conf["remote"][name].get("url", ""))
        try:
            cls, config, fs_path = get_cloud_fs(conf, name=name)
            if config.get("worktree") or config.get("version_aware"):
                raise RemoteError(
                    f"DVC remote {name!r} is version-aware; gitmodel needs a plain remote"
                )
            self.fs = cls(**config)
            self.odb = get_odb(self.fs, self.fs.join(fs_path, "files", "md5"), hash_name="md5")
        except GitModelError:
            raise
        except Exception as exc:  # a missing plugin, a bad option: DVC raises many types
            raise RemoteError(f"DVC remote {name!r}: {one_line(exc)}") from None
        self.jobs = jobs or int(getattr(self.fs, "jobs", 0) or 8)
        self.atomic = self.fs.protocol in ATOMIC_PROTOCOLS
        # Where a file object is cheaper than put_file (see prepare_dirs).
        self.direct = self.fs.protocol in DIRECT_PROTOCOLS
        # A directory on this machine: plain system calls (see upload_one).
        self.local = self.fs.protocol == "local"
        self._tmp_prefix = os.urandom(4).hex()
        self._tmp_count = itertools.count()
        self.record = record_path(repo, name)

    def _unreachable(self, exc: BaseException) -> RemoteError:
        return RemoteError(f"cannot reach DVC remote {self.name!r} ({self.url}): {one_line(exc)}")

    def existing(self, oids: Sequence[str], sizes: dict[str, int] | None = None) -> set[str]:
        """Which oids the remote has, checked in batches; truncated objects count as absent."""
        if not oids:
            return set()
        try:
            found = set(self.odb.oids_exist(list(oids), jobs=self.jobs))
            if sizes:
                check = sorted(o for o in found if o in sizes)
                for oid, size in self.sizes_of(check).items():
                    if size != sizes[oid]:
                        found.discard(oid)
        except GitModelError:
            raise
        except Exception as exc:
            raise self._unreachable(exc) from None
        return found

    def generation(self) -> str:
        """The token a remote gc last wrote ("" if none ran): a record made under another
        one may name objects that are gone."""
        root = self.fs.parent(self.fs.parent(self.odb.path))
        try:
            data = self.fs.cat_file(self.fs.join(root, *GENERATION.split("/")))
        except FileNotFoundError:
            return ""
        except Exception as exc:
            raise self._unreachable(exc) from None
        return data.decode("ascii", "replace").strip()[:200]

    def sizes_of(self, oids: Sequence[str]) -> dict[str, int | None]:
        """oid -> its size on the remote (None: not there), in as few requests as it takes.

        Few objects: a stat each. Many (a resumed push of a large directory): one listing
        of each object directory they are in, which gives every size at once: at most
        256 requests where a stat each made 50,000."""
        if len(oids) <= LISTING_THRESHOLD:
            paths = [self.odb.oid_to_path(o) for o in oids]
            infos = (
                self.fs.info(paths, batch_size=self.jobs, return_exceptions=True) if paths else []
            )
            return {
                o: (None if isinstance(i, BaseException) else i.get("size"))
                for o, i in zip(oids, infos, strict=True)
            }
        by_prefix: dict[str, list[str]] = {}
        for oid in oids:
            by_prefix.setdefault(oid[:2], []).append(oid)
        out: dict[str, int | None] = dict.fromkeys(oids)

        def list_prefix(prefix: str) -> None:
            try:
                entries = self.fs.ls(self.fs.join(self.odb.path, prefix), detail=True)
            except FileNotFoundError:
                return
            for entry in entries:
                name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
                oid = prefix + name
                if oid in out and entry.get("type") == "file":
                    out[oid] = entry.get("size")

        failures = run_parallel(self.jobs, sorted(by_prefix), list_prefix)
        if failures:
            raise next(iter(failures.values()))
        return out

    def prepare_dirs(self, oids: Sequence[str]) -> None:
        """Make the object directories oids go to, once, before they are uploaded one by one.

        sshfs's put_file (and dvc-objects' as_atomic) make every written file's parent
        directories again: asyncssh's makedirs tries a mkdir and then a stat on each
        component of the path, some 20 round trips per object, twice, which cost more
        than the 8 KiB upload itself (`dvc push` pays them once per object). Made here,
        each object then costs its own open, write, close and rename.
        """
        if self.local:
            for parent in sorted({os.path.dirname(self.odb.oid_to_path(o)) for o in oids}):
                os.makedirs(parent, exist_ok=True)
            return
        if self.atomic or not self.direct:
            return
        parents = sorted({self.fs.parent(self.odb.oid_to_path(o)) for o in oids})
        if not parents:
            return
        self.fs.makedirs(self.odb.path, exist_ok=True)
        try:
            there = {str(p).rstrip("/") for p in self.fs.ls(self.odb.path, detail=False)}
        except FileNotFoundError:
            there = set()

        def make(path: str) -> None:
            try:
                self.fs.mkdir(path, create_parents=False)
            except OSError:
                if not self.fs.isdir(path):  # SFTP v3 says only "failure" when it exists
                    raise

        todo = [p for p in parents if p.rstrip("/") not in there]
        failures = run_parallel(self.jobs, todo, make)
        if failures:
            raise next(iter(failures.values()))

    def upload_one(self, local: Path, oid: str, callback: Any) -> None:
        from dvc_objects.fs.utils import as_atomic, tmp_fname

        dest = self.odb.oid_to_path(oid)
        if self.local:
            self._upload_local(local, dest, callback)
            return
        if self.atomic:
            self.fs.put_file(str(local), dest, callback=callback)
            return
        if not self.direct:
            with as_atomic(self.fs, dest, create_parents=True) as tmp:
                self.fs.put_file(str(local), tmp, callback=callback)
            return
        # The directory exists (prepare_dirs): write a temporary name beside the object
        # through the filesystem's own file object, then rename it into place.
        tmp = self.fs.join(self.fs.parent(dest), tmp_fname())
        try:
            with open(local, "rb") as src, self.fs.open(tmp, "wb") as dst:
                while block := src.read(UPLOAD_BLOCK):
                    dst.write(block)
                    callback.relative_update(len(block))
            self.fs.mv(tmp, dest)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def _upload_local(self, local: Path, dest: str, callback: Any) -> None:
        """One object into a remote directory on this machine: a copy to a temporary name
        beside it (one sendfile for a small object) and a rename. DVC's put_file costs some
        40 system calls an object here (three reflink tries, two copies, three renames),
        which at 50,000 small objects made the push slower than `dvc push` itself."""
        # As DVC names its own (`<object>.<random>.tmp`), without a getrandom per object.
        tmp = f"{dest}.{self._tmp_prefix}{next(self._tmp_count):x}.tmp"
        try:
            try:
                shutil.copyfile(local, tmp)
            except FileNotFoundError:
                if not os.path.exists(local):
                    raise
                os.makedirs(os.path.dirname(dest), exist_ok=True)  # not made by prepare_dirs
                shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        callback.relative_update(os.path.getsize(dest))

    def copy_local(
        self, objects: Path, oids: Sequence[str], known: dict[str, tuple[int, int, int]]
    ) -> LocalCopy:
        """Copy oids from the cache's object directory into this remote directory on this
        machine, one object directory at a time, on two cores: half of them in a forked
        child. Only objects whose (inode, mtime, size) is the one they were verified at are
        copied; the rest come back in `unverified`, for the caller to check and send.

        Per object: open, fstat, open of a temporary name beside it, one sendfile, two
        closes and a rename, each relative to its directory's descriptor (7 system calls;
        `shutil.copyfile` made 13, and a thread per job made the GIL the bottleneck: on
        2 cores, 8 threads handing it over at every system call took more CPU than the
        copies). A failed child is done again by this process: copying an object twice
        writes the same bytes under the same name.
        """
        runs: dict[str, list[str]] = {}
        for oid in oids:
            runs.setdefault(oid[:2], []).append(oid[2:])
        todo = sorted(runs.items())
        tmp = f".{self._tmp_prefix}"
        if len(oids) < FORK_OBJECTS or not forking.may_fork():
            return _copy_runs(str(objects), self.odb.path, todo, known, tmp + "0")
        first, second = forking.halves(todo, len(oids))
        mine, data = forking.with_child(
            lambda: _copy_runs(str(objects), self.odb.path, second, known, tmp + "1").to_bytes(),
            lambda: _copy_runs(str(objects), self.odb.path, first, known, tmp + "0"),
        )
        theirs = LocalCopy.from_bytes(data) if data is not None else None
        if theirs is None:
            theirs = _copy_runs(str(objects), self.odb.path, second, known, tmp + "2")
        mine.merge(theirs)
        return mine

    def download_one(self, oid: str, dest: Path, callback: Any) -> None:
        self.fs.get_file(self.odb.oid_to_path(oid), str(dest), callback=callback)

    def fetch_small(
        self,
        oids: Sequence[str],
        put: Callable[[str, bytes], None],
        progress: Callable[[int], None] | None = None,
    ) -> Fetched | None:
        """Fetch oids in one batch over this remote's own connection, each one's bytes
        handed to put(oid, data) (gitmodel.sftp_fetch); None when this remote's
        filesystem has no such batch (the caller fetches one by one)."""
        if not self.direct:
            return None
        from gitmodel import sftp_fetch

        fs = self.fs.fs  # sshfs's filesystem: its event loop and asyncssh connection
        if not hasattr(fs, "client") or not hasattr(fs, "loop"):
            return None
        items = [(oid, self.odb.oid_to_path(oid)) for oid in oids]
        return sftp_fetch.fetch_small(fs, items, put, progress)


# Fewer objects than this are copied by this process alone: a fork costs a few ms.
FORK_OBJECTS = 2048


class LocalCopy:
    """What a copy into a local remote did: bytes copied, the oids it left for the caller
    (their stat is not the verified one), and oid -> why it failed."""

    def __init__(self) -> None:
        self.bytes = 0
        self.unverified: list[str] = []
        self.failed: dict[str, str] = {}

    def merge(self, other: LocalCopy) -> None:
        self.bytes += other.bytes
        self.unverified += other.unverified
        self.failed.update(other.failed)

    def to_bytes(self) -> bytes:
        import json

        return json.dumps([self.bytes, self.unverified, self.failed]).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalCopy | None:
        import json

        try:
            n, unverified, failed = json.loads(data)
        except ValueError:
            return None
        if not (isinstance(n, int) and isinstance(unverified, list) and isinstance(failed, dict)):
            return None
        out = cls()
        out.bytes, out.unverified, out.failed = n, [str(o) for o in unverified], failed
        return out


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _copy_runs(
    source: str,
    dest: str,
    runs: list[tuple[str, list[str]]],
    known: dict[str, tuple[int, int, int]],
    tag: str,
) -> LocalCopy:
    """Copy each (prefix, names) run from source/prefix to dest/prefix (see copy_local).

    A temporary name is the object's own plus tag (random per push, one letter per
    process): an oid appears once in a push, so no two writers share one."""
    out = LocalCopy()
    for prefix, names in runs:
        try:
            src_dir = os.open(os.path.join(source, prefix), _DIR_FLAGS)
        except OSError as exc:
            out.failed.update((prefix + name, one_line(exc)) for name in names)
            continue
        try:
            dst_path = os.path.join(dest, prefix)
            os.makedirs(dst_path, exist_ok=True)  # made by prepare_dirs: one stat
            dst_dir = os.open(dst_path, _DIR_FLAGS)
        except OSError as exc:
            os.close(src_dir)
            out.failed.update((prefix + name, one_line(exc)) for name in names)
            continue
        try:
            for name in names:
                oid = prefix + name
                try:
                    size = _copy_one(src_dir, dst_dir, name, known.get(oid), f"{name}{tag}")
                except OSError as exc:
                    out.failed[oid] = one_line(exc)
                    continue
                if size is None:
                    out.unverified.append(oid)
                else:
                    out.bytes += size
        finally:
            os.close(src_dir)
            os.close(dst_dir)
    return out


def _copy_one(
    src_dir: int, dst_dir: int, name: str, known: tuple[int, int, int] | None, tmp_stem: str
) -> int | None:
    """One object copied to a temporary name and renamed into place; its size, or None when
    its stat is not the one it was verified at (then nothing is written)."""
    fd = os.open(name, _READ_FLAGS, dir_fd=src_dir)
    try:
        st = os.fstat(fd)
        if known is None or known != (st.st_ino, st.st_mtime_ns, st.st_size):
            return None
        tmp = f"{tmp_stem}.tmp"
        out = os.open(tmp, _WRITE_FLAGS, 0o666, dir_fd=dst_dir)
        try:
            try:
                offset = 0
                while offset < st.st_size:
                    sent = os.sendfile(out, fd, offset, st.st_size - offset)
                    if sent == 0:
                        raise OSError(errno.EIO, "the object shrank while it was copied")
                    offset += sent
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                os.lseek(fd, 0, os.SEEK_SET)  # a filesystem sendfile cannot write to
                os.ftruncate(out, 0)
                while block := os.read(fd, UPLOAD_BLOCK):
                    view = memoryview(block)
                    while view:
                        view = view[os.write(out, view) :]
            os.close(out)
            out = -1
            os.rename(tmp, name, src_dir_fd=dst_dir, dst_dir_fd=dst_dir)
        except BaseException:
            if out >= 0:
                os.close(out)
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dst_dir)
            raise
        return st.st_size
    finally:
        os.close(fd)


def run_parallel(
    jobs: int, items: Sequence[str], work: Callable[[str], None]
) -> dict[str, BaseException]:
    """work(item) for every item on `jobs` threads; item -> the exception it raised.

    Threads take the next item from one shared iterator: a Future per item (as
    ThreadPoolExecutor.map makes) cost more than fetching an 8 KiB object from a local
    remote, 50,000 times over."""
    failures: dict[str, BaseException] = {}
    if not items:
        return failures
    todo = iter(items)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            try:
                work(item)
            except Exception as exc:
                failures[item] = exc

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(jobs, len(items))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures
