"""Weights to and from DVC remotes, through DVC's own remote machinery.

The remote is whatever DVC's config names (gitmodel.remote): DVC's `Config` resolves
it, `dvc.fs.get_cloud_fs` builds its filesystem (local, ssh, s3, gs, azure... whichever
dvc plugins are installed) and dvc-data's `HashFileDB` lays the objects out as `files/md5/<oid[:2]>/<oid[2:]>`, so `dvc pull` reads what we push.

What we add on top of DVC's transfer, and why:

- Uploads are atomic on every filesystem: on those where a write is visible while it
  happens (local, ssh...) each object goes to a temporary name beside its final one and is
  renamed into place, so an interrupted push never leaves a truncated object under an
  object name (DVC's own ssh upload writes in place). Object stores (s3, gs, azure) only
  show an object once its upload completed, so they get the final name directly.
- Existence is checked in one batch (`HashFileDB.oids_exist`); on non-atomic filesystems
  the sizes of objects already there are checked too, so a truncated object left by some
  other interrupted tool is uploaded again instead of trusted.
- Downloads go to a temporary file inside the cache's own temp directory, are md5-verified
  there and only then renamed into `files/md5/`: a partial or corrupt download never
  enters the cache.
- Directories: entries are uploaded before their `.dir` manifest (as DVC does), so a
  `.dir` on the remote means the whole directory is there.
- A small per-remote record of objects known to be on the remote (gitmodel.remote) spares
  a push the existence checks of what it pushed before. It is trusted only while the
  remote's generation marker, which `git model gc --remote` changes before it removes
  anything, is the one the record was made under: one small read per push with weights.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitmodel.dvc_remote import CopyFailed, DvcRemote, byte_callback, one_line, run_parallel
from gitmodel.errors import GitModelError, Refused
from gitmodel.remote import (
    RemoteError,
    append_record,
    default_remote_name,
    read_record,
    record_path,
)

if TYPE_CHECKING:
    from gitmodel.dedup.transfer import ChunkTransfer
    from gitmodel.pointer import TrackedOut
    from gitmodel.store import Reporter
    from gitmodel.workspace_view import SyncWorkspace


@dataclass
class TransferReport:
    remote: str
    direction: str  # "upload" or "download"
    transferred: list[str] = field(default_factory=list)
    present: int = 0  # objects that were already there
    bytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # oid -> reason
    # oid -> the path it is the content of (a manifest: its directory), for a per-file list
    paths: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "direction": self.direction,
            "transferred": len(self.transferred),
            "already_there": self.present,
            "bytes": self.bytes,
            "failed": self.failed,
        }


def _expand_outs(
    repo: SyncWorkspace, outs: Sequence[TrackedOut]
) -> tuple[dict[str, str], dict[str, str]]:
    """(file oid -> path, dir oid -> path) for the objects outs name."""
    files: dict[str, str] = {}
    dirs: dict[str, str] = {}
    for t in outs:
        (dirs if t.out.is_dir else files).setdefault(t.out.md5, t.path)
    return files, dirs


def upload(
    repo: SyncWorkspace,
    outs: Sequence[TrackedOut],
    remote_name: str | None = None,
    reporter: Reporter | None = None,
    trust_record: bool = True,
) -> TransferReport:
    """Upload every object outs need that the remote lacks; raise Refused on any failure."""
    from gitmodel.store import ObjectMissing, StoreError

    store = repo.store
    files, dirs = _expand_outs(repo, outs)
    name = remote_name or default_remote_name(repo)
    made_under, record = read_record(record_path(repo, name)) if name else ("", set())
    if not trust_record:
        record = set()
    remote = DvcRemote(repo, name)
    # Read before anything is checked there: a gc after this makes the next push ask again.
    generation = remote.generation()
    if generation != made_under:
        record = set()  # a remote gc ran since: what the record names may be gone
    wanted_dirs = {d: p for d, p in dirs.items() if d not in record}
    if not wanted_dirs and all(f in record for f in files):
        return TransferReport(remote.name, "upload", present=len(files) + len(dirs))
    # Directory entries: from the local manifest; a .dir absent locally must be on the remote.
    remote_dirs = set()
    local_dirs = [d for d in wanted_dirs if store.exists(d)]
    not_local = [d for d in wanted_dirs if d not in local_dirs]
    if not_local:
        remote_dirs = remote.existing(not_local)
        lost = [f"{wanted_dirs[d]} ({d})" for d in not_local if d not in remote_dirs]
        if lost:
            raise Refused(_neither_message(lost, remote.name))
    entry_of: dict[str, str] = dict(files)
    members: dict[str, set[str]] = {}  # each manifest read and checked once (50,000: 0.2 s)
    for d in local_dirs:
        try:
            for e in store.read_dir(d):
                entry_of.setdefault(e.md5, f"{wanted_dirs[d]}/{e.relpath}")
                members.setdefault(d, set()).add(e.md5)
        except (StoreError, ObjectMissing) as exc:
            raise Refused(
                f"cannot read directory manifest of {wanted_dirs[d]}: {exc.message}"
            ) from None
    candidates = sorted(o for o in entry_of if o not in record)
    candidates, chunked, moved = _push_chunked(repo, remote, candidates)
    sizes = store.object_sizes(candidates + local_dirs)  # one stat each, absent ones left out
    verified = store.state.verified_rows(sorted(sizes))
    there = remote.existing(candidates + sorted(local_dirs), sizes)
    todo_files = [o for o in candidates if o not in there]
    todo_dirs = [d for d in local_dirs if d not in there]
    lost = [f"{entry_of[o]} ({o})" for o in todo_files if o not in sizes]  # sizes: one lstat
    if lost:
        raise Refused(_neither_message(lost, remote.name))
    report = TransferReport(remote.name, "upload")
    report.present = len(candidates) + len(local_dirs) - len(todo_files) - len(todo_dirs)
    total = sum(sizes.get(o, 0) for o in todo_files + todo_dirs)
    counter, lock = [0], threading.Lock()
    progress = reporter.start(f"pushing to {remote.name}", total) if reporter and total else None

    def push_one(oid: str) -> None:
        store.verify(oid, known=verified.get(oid))  # never spread a corrupt local object
        callback = byte_callback(progress, counter, lock)
        remote.upload_one(store.oid_to_path(oid), oid, callback)
        callback.finish(sizes.get(oid, 0))

    try:
        try:
            remote.prepare_dirs(todo_files + todo_dirs)
        except GitModelError:
            raise
        except Exception as exc:
            raise remote._unreachable(exc) from None
        if remote.local:
            failures = _copy_local(remote, store, todo_files, verified, counter, progress)
            # Objects whose stat is not the verified one are checked first, then sent.
            failures.update(run_parallel(remote.jobs, failures.pop(_UNVERIFIED, []), push_one))
        else:
            failures = run_parallel(remote.jobs, todo_files, push_one)
        # A manifest goes up only after all its entries: its presence promises them.
        ok_dirs = []
        for d in todo_dirs:
            if not members.get(d, set()).isdisjoint(failures):
                failures[d] = RuntimeError("some of its files failed to upload")
            else:
                ok_dirs.append(d)
        failures.update(run_parallel(remote.jobs, ok_dirs, push_one))
    finally:
        if reporter and progress:
            reporter.stop()
    report.transferred = moved.objects + [o for o in todo_files + todo_dirs if o not in failures]
    report.paths = {o: entry_of.get(o) or dirs.get(o, o) for o in report.transferred}
    report.bytes = counter[0] + moved.bytes  # chunks went up as packs, before the rest
    present = (set(candidates) | chunked | set(local_dirs) | remote_dirs) - set(failures)
    append_record(remote.record, present, generation)
    if failures:
        oid = min(failures)
        report.failed = {o: one_line(e) for o, e in failures.items()}
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise Refused(
            f"upload to DVC remote {remote.name!r} ({remote.url}) failed for "
            f"{entry_of.get(oid) or dirs.get(oid, oid)}{more}: {one_line(failures[oid])}"
        )
    return report


_UNVERIFIED = ""  # a key no oid has: _copy_local's list of objects still to verify


def _copy_local(
    remote: DvcRemote,
    store: Any,
    oids: list[str],
    verified: dict[str, tuple[int, int, int]],
    counter: list[int],
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """The objects into a remote directory on this machine in one batch (DvcRemote.
    copy_local): oid -> failure, and under _UNVERIFIED the oids it left to push_one."""
    done = remote.copy_local(store.objects, oids, verified)
    counter[0] += done.bytes
    if progress and done.bytes:
        progress(done.bytes)
    failures: dict[str, Any] = {oid: CopyFailed(why) for oid, why in done.failed.items()}
    failures[_UNVERIFIED] = done.unverified
    return failures


def _push_chunked(
    repo: SyncWorkspace, remote: DvcRemote, candidates: list[str]
) -> tuple[list[str], set[str], ChunkTransfer]:
    """Upload the outputs stored as chunks (gitmodel.dedup): (what is left, what is on the
    remote as chunks, what moved).

    With `[storage] dvc-objects` they also stay candidates for a whole-object upload (rebuilt
    into the cache first if gc dropped them), so plain `dvc pull` works on the remote.
    """
    from gitmodel.dedup import transfer

    if not transfer.in_use(repo.store):
        return candidates, set(), transfer.ChunkTransfer()
    chunked, moved = transfer.push_chunks(repo.store, remote, candidates)
    if not repo.config.dvc_objects:
        return [o for o in candidates if o not in chunked], chunked, moved
    from gitmodel.dedup import ensure_object

    for oid in sorted(chunked):
        ensure_object(repo.store, oid)
    return candidates, chunked, moved


def _pull_chunked(
    repo: SyncWorkspace, remote: DvcRemote, missing: list[str], report: TransferReport
) -> list[str]:
    """Fetch as chunks what the remote has as chunks; the oids still to fetch whole."""
    from gitmodel.dedup import transfer

    got, moved = transfer.pull_chunks(repo.store, remote, sorted(set(missing)))
    report.transferred += sorted(got)
    report.bytes += moved.bytes
    return [o for o in missing if o not in got]


def _neither_message(lost: list[str], remote: str) -> str:
    shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
    return f"weights are neither in the cache nor on DVC remote {remote!r}: {shown}"


def download(
    repo: SyncWorkspace,
    outs: Sequence[TrackedOut],
    remote_name: str | None = None,
    reporter: Reporter | None = None,
) -> TransferReport:
    """Download into the cache every object outs need that it lacks, md5-verified first."""
    from gitmodel.store import StoreError, hash_file

    store = repo.store
    files, dirs = _expand_outs(repo, outs)
    missing_dirs = [d for d in dirs if not store.exists(d)]
    entry_of = dict(files)
    for d in dirs:
        if d not in missing_dirs:
            for e in store.read_dir(d):
                entry_of.setdefault(e.md5, f"{dirs[d]}/{e.relpath}")
    from gitmodel.dedup import available

    missing = [o for o in sorted(entry_of) if not available(store, o)]
    report = TransferReport(remote_name or default_remote_name(repo) or "", "download")
    if not missing and not missing_dirs:
        report.present = len(entry_of) + len(dirs)
        return report
    remote = DvcRemote(repo, remote_name)
    report.remote = remote.name
    counter, lock = [0], threading.Lock()
    progress_box: list[Callable[[int], None] | None] = [None]
    tmp_dir = store._tmp_dir()  # made (and checked not to be a link) once, not per object
    # A remote on this machine: a small object is read once, verified and written in
    # the same thread (no DVC file object, no temp copy to hash again).
    local = remote.fs.protocol == "local"

    def fetch_one(oid: str) -> None:
        if local and not oid.endswith(".dir"):
            from gitmodel.store import CorruptObject

            try:
                size = store.copy_in_small(oid, remote.odb.oid_to_path(oid))
            except CorruptObject as exc:
                raise RemoteError(
                    f"corrupt object on the remote (content hashes to {exc.actual})"
                ) from None
            if size is not None:
                with lock:
                    counter[0] += size
                if progress_box[0]:
                    progress_box[0](size)
                return
        tmp = tmp_dir / f"download.{os.urandom(6).hex()}.tmp"
        try:
            callback = byte_callback(progress_box[0], counter, lock)
            remote.download_one(oid, tmp, callback)
            callback.finish(tmp.stat().st_size)
            actual = hash_file(tmp) + (".dir" if oid.endswith(".dir") else "")
            if actual != oid:
                raise RemoteError(f"corrupt object on the remote (content hashes to {actual})")
            store._place_from_tmpdir(tmp, oid)
        finally:
            tmp.unlink(missing_ok=True)

    def fetch_batch(oids: list[str]) -> list[str]:
        """Fetch what the remote can send in one batch (gitmodel.sftp_fetch); the rest
        goes to fetch_one."""
        if not oids or local:
            return oids
        from gitmodel.store import CorruptObject

        def progress(n: int) -> None:
            if progress_box[0]:
                progress_box[0](n)

        with store.objects_lock(exclusive=False), store.writing_batch():
            try:
                done = remote.fetch_small(oids, store.put_verified, progress)
            except Exception:  # no session opened: one by one, as before (which says why)
                done = None
        if done is None:
            return oids
        counter[0] += done.bytes
        for oid, why in done.failed.items():
            if isinstance(why, CorruptObject):
                why = RemoteError(f"corrupt object on the remote (content hashes to {why.actual})")
            failures[oid] = why
        return done.larger

    failures: dict[str, BaseException] = {}
    failures.update(run_parallel(remote.jobs, fetch_batch(missing_dirs), fetch_one))
    for d in missing_dirs:
        if d not in failures:
            try:
                for e in store.read_dir(d):
                    if not store.exists(e.md5) and e.md5 not in entry_of:
                        entry_of[e.md5] = f"{dirs[d]}/{e.relpath}"
                        missing.append(e.md5)
            except StoreError as exc:
                failures[d] = exc
    for oid in failures:
        entry_of.setdefault(oid, dirs.get(oid, oid))
    missing = _pull_chunked(repo, remote, missing, report)
    # Sizes cost one more round trip: only worth it when a bar will be drawn.
    total = _remote_sizes(remote, missing) if reporter and sys.stderr.isatty() else 0
    progress_box[0] = (
        reporter.start(f"fetching from {remote.name}", total) if reporter and total else None
    )
    try:
        # Shared for the whole transfer, as add holds it for a directory (Store.reuse).
        with store.objects_lock(exclusive=False):
            rest = fetch_batch(sorted(set(missing)))
            failures.update(run_parallel(remote.jobs, rest, fetch_one))
    finally:
        if reporter and progress_box[0]:
            reporter.stop()
    chunked = len(report.transferred)
    report.transferred += [o for o in missing_dirs + missing if o not in failures]
    report.paths = {o: entry_of.get(o) or dirs.get(o, o) for o in report.transferred}
    report.present = len(entry_of) + len(dirs) - len(set(missing) | set(missing_dirs)) - chunked
    report.bytes += counter[0]
    if failures:
        report.failed = {o: one_line(e) for o, e in failures.items()}
        oid = min(failures)
        first = failures[oid]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        what = entry_of.get(oid, oid)
        if isinstance(first, FileNotFoundError):
            reason = "not on the remote"
        elif isinstance(first, RemoteError):
            reason = first.message
        else:
            reason = one_line(first)
        raise RemoteError(
            f"cannot fetch {what}{more} from DVC remote {remote.name!r} ({remote.url}): {reason}"
        )
    return report


def _remote_sizes(remote: DvcRemote, oids: Sequence[str]) -> int:
    """Total bytes to download, for the progress bar (0 when the remote will not say)."""
    if not oids:
        return 0
    try:
        return sum(size or 0 for size in remote.sizes_of(oids).values())
    except Exception:
        return 0


def fetch_for_checkout(repo: SyncWorkspace, outs: Sequence[TrackedOut]) -> bool:
    """Download what a checkout lacks from the default remote; False when there is none."""
    if default_remote_name(repo) is None:
        return False
    download(repo, outs)
    return True
