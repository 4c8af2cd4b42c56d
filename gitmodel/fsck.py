"""Verify what gitmodel keeps: cache objects, `.dir` manifests, pointers, notes, the journal.

`check()` only reads (and records which objects it verified); `repair=True` additionally
re-fetches damaged or missing objects from the default DVC remote when one is configured,
removes corrupt objects that cannot be re-fetched (so `git model add` can store them
again), finishes a note left pending by a crash, and clears stale temporary files.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.dedup import available
from gitmodel.errors import GitModelError
from gitmodel.metrics import MetricsError, validate_note_metrics
from gitmodel.notes import NoteError, parse_note
from gitmodel.paths import UnsafePath
from gitmodel.pointer import POINTER_SUFFIX, PointerError, read_pointer
from gitmodel.store import CorruptObject, ObjectMissing, StoreError, is_oid

if TYPE_CHECKING:
    from gitmodel.store import Store
    from gitmodel.workspace_view import MaintainedRepo

# A temporary file this old was left by a killed process, not by a writer still running.
STALE_TMP_SECONDS = 3600.0


@dataclass
class Problem:
    # corrupt-object | bad-object-name | bad-manifest | missing-object | bad-pointer
    # | bad-note | pending-note | missing-hook | missing-attachment | orphaned-note
    kind: str
    name: str  # the object id, pointer path or commit it is about
    message: str
    repaired: str | None = None  # what --repair did about it, if anything

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "message": self.message,
            "repaired": self.repaired,
        }


@dataclass
class FsckReport:
    objects_checked: int = 0
    objects_trusted: int = 0  # skipped by --fast: verified since they were last written
    pointers: int = 0
    notes: int = 0
    problems: list[Problem] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # repairs that fixed no listed problem
    # settings of the repository's .dvc/config that reach outside it (not failures: a
    # shared cache is a real set-up, but a clone's author chose it, so the user is told)
    warnings: list[str] = field(default_factory=list)

    @property
    def unresolved(self) -> list[Problem]:
        return [p for p in self.problems if p.repaired is None]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.unresolved,
            "objects_checked": self.objects_checked,
            "objects_trusted": self.objects_trusted,
            "pointers": self.pointers,
            "notes": self.notes,
            "problems": [p.to_json() for p in self.problems],
            "actions": self.actions,
            "warnings": self.warnings,
        }


def check(repo: MaintainedRepo, fast: bool = False, repair: bool = False) -> FsckReport:
    """Verify repo; with repair, fix what can be fixed."""
    from gitmodel.config import dvc_settings_outside

    report = FsckReport()
    if not repo.bare:
        report.warnings = dvc_settings_outside(repo.root)
    store = repo.store
    corrupt = _check_objects(store, fast, report)
    chunk_problems = _check_chunks(store, fast, report)
    if repair:
        # Before the pointer checks, so an object that could not be replaced shows as missing.
        _replace_corrupt(repo, corrupt, report)
        if chunk_problems:
            _repair_chunks(repo, chunk_problems, report)
    missing = _check_manifests(store, corrupt, report)
    if not repo.bare:
        missing |= _check_pointers(repo, report)
    _check_notes(repo, report, repair)
    pending = _check_pending(repo, report)
    _check_hooks(repo, report, repair)
    if repair:
        _repair_rest(repo, missing, pending, report)
    return report


def _check_chunks(store: Store, fast: bool, report: FsckReport) -> list[Problem]:
    """The deduplicating chunk store, when this cache has one (gitmodel.dedup)."""
    from gitmodel.dedup.transfer import in_use

    if not in_use(store):
        return []
    from gitmodel.dedup.fsck import check_chunk_store

    checked, problems = check_chunk_store(store, fast)
    report.objects_checked += checked
    found = [Problem(kind, name, message) for kind, name, message in problems]
    report.problems += found
    return found


def _repair_chunks(repo: MaintainedRepo, problems: list[Problem], report: FsckReport) -> None:
    """Damaged chunks and recipes: from the whole-file objects still cached, else from the
    default DVC remote (gitmodel.dedup.fsck.repair_chunk_store)."""
    from gitmodel.dedup.fsck import repair_chunk_store
    from gitmodel.dvc_remote import DvcRemote
    from gitmodel.remote import default_remote_name

    remote = None
    if default_remote_name(repo):
        try:
            remote = DvcRemote(repo)
        except GitModelError as exc:
            report.actions.append(f"chunks not fetched: {exc.message}")
    fixed, done = repair_chunk_store(
        repo.store, [(p.kind, p.name, p.message) for p in problems], remote
    )
    report.actions += done
    for p in problems:
        if p.name in fixed:
            p.repaired = "mended from a cached object or the remote"


def _check_hooks(repo: MaintainedRepo, report: FsckReport, repair: bool) -> None:
    """Git must run our hooks: without them a push publishes pointers without weights."""
    import gitmodel.hooks.installer as installer

    if repo.bare:
        return  # the server hook is the admin's choice (`git model install --server`)
    place = installer.HookPlace.of(repo)
    line = installer.missing(place)
    if line is None:
        return
    problem = Problem("missing-hook", "hooks", line)
    report.problems.append(problem)
    if repair:
        done = installer.install(place)
        if not done.declined and installer.missing(place) is None:
            problem.repaired = "hooks reinstalled, what was there kept and chained"


def _check_objects(store: Store, fast: bool, report: FsckReport) -> set[str]:
    corrupt: set[str] = set()
    for oid in store.iter_oids():
        if not is_oid(oid):
            message = f"{oid}: not an object name (stray file in the cache)"
            report.problems.append(Problem("bad-object-name", oid, message))
            continue
        path = store.oid_to_path(oid)
        try:
            st = os.stat(path)
            if fast and store.state.is_verified(oid, st):
                report.objects_trusted += 1
                continue
            report.objects_checked += 1
            store.verify(oid, force=True)
        except CorruptObject as exc:
            store.state.forget_verified(oid)
            corrupt.add(oid)
            report.problems.append(Problem("corrupt-object", oid, exc.message))
        except OSError as exc:
            corrupt.add(oid)
            message = f"{oid}: unreadable ({exc.strerror})"
            report.problems.append(Problem("corrupt-object", oid, message))
    return corrupt


def _check_manifests(store: Store, corrupt: set[str], report: FsckReport) -> set[str]:
    """Every `.dir` object parses, stays inside its directory, and its files are cached."""
    missing: set[str] = set()
    for oid in store.iter_oids():
        if not oid.endswith(".dir") or not is_oid(oid):
            continue
        if oid in corrupt:
            continue  # already reported; its content means nothing
        try:
            entries = store.read_dir(oid)
        except (StoreError, ObjectMissing) as exc:
            report.problems.append(Problem("bad-manifest", oid, exc.message))
            continue
        for e in entries:
            if not available(store, e.md5):
                missing.add(e.md5)
                message = f"{e.md5}: file {e.relpath!r} of {oid} is not in the cache"
                report.problems.append(Problem("missing-object", e.md5, message))
    return missing


def _pointer_files(repo: MaintainedRepo) -> list[str]:
    listing = repo.git("ls-files", "-z", "-co", "--exclude-standard", "--", "*" + POINTER_SUFFIX)
    return sorted(set(filter(None, listing.split("\0"))))


def _check_pointers(repo: MaintainedRepo, report: FsckReport) -> set[str]:
    missing: set[str] = set()
    store = repo.store
    for rel in _pointer_files(repo):
        pfile = repo.root / rel
        if not os.path.lexists(pfile):
            continue  # deleted in the work tree; git reports that
        report.pointers += 1
        try:
            pointer = read_pointer(pfile, repo.root)
            base = os.path.dirname(rel)
            for out in pointer.outs:  # on disk too: no link on the way (gitmodel.paths)
                out_rel = f"{base}/{out.path}" if base else out.path
                repo.worktree.path(out_rel, rel, leaf_link_ok=not out.is_dir)
        except (PointerError, UnsafePath) as exc:
            report.problems.append(Problem("bad-pointer", rel, exc.message))
            continue
        for out in pointer.outs:
            if not available(store, out.md5):
                missing.add(out.md5)
                message = f"{rel}: object {out.md5} of {out.path!r} is not in the cache"
                report.problems.append(Problem("missing-object", out.md5, message))
    return missing


def _check_notes(repo: MaintainedRepo, report: FsckReport, repair: bool = False) -> None:
    try:
        index = repo.notes.note_map()
    except Exception as exc:  # pygit2 errors on a damaged notes ref have no common base
        message = f"{repo.notes.ref}: unreadable ({exc})"
        report.problems.append(Problem("bad-note", repo.notes.ref, message))
        return
    _check_orphans(repo, index, report, repair)
    for commit, blob_id in sorted(index.items()):
        report.notes += 1
        try:
            note = parse_note(bytes(repo.notes.repo[blob_id].data), commit)
            validate_note_metrics(note.get("metrics", {}), f"note on {commit[:12]}")
        except (NoteError, MetricsError) as exc:
            problem = Problem("bad-note", commit, exc.message)
            report.problems.append(problem)
            if repair:
                problem.repaired = _mend_note(repo, commit, bytes(repo.notes.repo[blob_id].data))
            continue
        _check_attachments(repo, commit, note, report, repair)


COMMIT_MAP = "filter-repo/commit-map"  # under the common git dir; "old new" per line


def _commit_map(repo: MaintainedRepo) -> dict[str, str]:
    """old -> new commit of the last history rewrite that left a map (git filter-repo)."""
    try:
        text = (repo.common_dir / COMMIT_MAP).read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    mapping = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and all(_is_commit_id(p) for p in parts) and parts[1].strip("0"):
            mapping[parts[0]] = parts[1]  # a new id of zeros: the rewrite dropped the commit
    return mapping


def _is_commit_id(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _check_orphans(
    repo: MaintainedRepo, index: dict[str, Any], report: FsckReport, repair: bool
) -> None:
    """Notes on commits the repository no longer has: history was rewritten under them.

    With the commit map `git filter-repo` leaves, --repair carries each note to the
    rewritten commit (git notes follow amend and rebase, not filter-repo); without one,
    each orphaned note is named.
    """
    objects = repo.notes.repo
    orphans = [c for c in sorted(index) if c not in objects]
    if not orphans:
        return
    mapping = _commit_map(repo)
    for old in orphans:
        new = mapping.get(old)
        if new is not None and new in objects:
            problem = Problem(
                "orphaned-note",
                old,
                f"note on {old[:12]}, a commit rewritten as {new[:12]} (git filter-repo's "
                "commit map): fsck --repair carries the note there",
            )
            report.problems.append(problem)
            if repair:
                problem.repaired = _carry_note(repo, old, new, index[old])
        else:
            report.problems.append(
                Problem(
                    "orphaned-note",
                    old,
                    f"note on {old[:12]}, a commit this repository no longer has (history "
                    "rewritten without a commit map?); `git notes --ref=refs/notes/metrics "
                    f"remove {old}` drops it",
                )
            )


def _carry_note(repo: MaintainedRepo, old: str, new: str, blob: Any) -> str | None:
    """Move the note of old onto new; what was done, or None when new has its own note."""
    from gitmodel.git import run_git

    if repo.notes.read_raw(new) is not None:
        if bytes(repo.notes.repo[blob].data) != repo.notes.read_raw(new):
            return None
    else:
        run_git(
            ["notes", f"--ref={repo.notes.ref}", "add", "-f", "-C", str(blob), new],
            cwd=repo.root,
            retry_lock=True,
        )
    run_git(
        ["notes", f"--ref={repo.notes.ref}", "remove", "--ignore-missing", old],
        cwd=repo.root,
        retry_lock=True,
    )
    repo.notes._repo = None  # pygit2 caches refs
    return f"carried to {new[:12]}"


def _check_attachments(
    repo: MaintainedRepo, commit: str, note: dict[str, Any], report: FsckReport, repair: bool
) -> None:
    """The training history and stored predictions a note names must be in the cache, or
    under their second name when `dvc gc` removed them there (see gitmodel.attachments)."""
    from gitmodel.attachments import KIND_NAMES, kept_path, note_attachments, restore

    store = repo.store
    for key, md5 in note_attachments(note):
        if not is_oid(md5, dirs=False):
            message = f"note on {commit[:12]}: {KIND_NAMES[key]} has no valid md5 ({md5!r})"
            report.problems.append(Problem("bad-note", commit, message))
            continue
        if repair and restore(store, md5):
            continue
        if not (store.exists(md5) or kept_path(store, md5).is_file()):
            message = (
                f"note on {commit[:12]} names {KIND_NAMES[key]} {md5}, which is not in the "
                "cache (fsck --repair fetches it from the DVC remote)"
            )
            report.problems.append(Problem("missing-attachment", md5, message))


def _mend_note(repo: MaintainedRepo, commit: str, data: bytes) -> str | None:
    """Notes that git concatenated (a squash under notes.rewriteMode concatenate, before
    the post-rewrite hook): one note, the last part's metrics."""
    from gitmodel.rewrite import mend

    try:
        mended = mend(data.decode("utf-8"))
        if mended is None:
            return None
        validate_note_metrics(mended.get("metrics", {}), f"note on {commit[:12]}")
    except (UnicodeDecodeError, MetricsError):
        return None
    repo.notes.write(commit, mended)
    return "concatenated notes made one (the last one's metrics)"


def _check_pending(repo: MaintainedRepo, report: FsckReport) -> bool:
    """A journal left by `git model commit` that died before writing the commit's note."""
    path = repo.git_dir / "gitmodel" / "pending-note.json"
    if not path.exists():
        return False
    target = repo.commits.pending_note_target()
    if target is None:
        report.actions.append("a stale commit journal (its commit never happened) can be removed")
        return True
    report.problems.append(
        Problem(
            "pending-note",
            target,
            f"commit {target[:12]} has no metrics note: `git model commit` was interrupted "
            "(fsck --repair, or any `git model` command that writes, completes it)",
        )
    )
    return True


def _fetch(repo: MaintainedRepo, oids: Iterable[str], report: FsckReport) -> set[str]:
    """Fetch oids from the default DVC remote; the ones that arrived intact."""
    wanted = sorted(set(oids))
    if not wanted:
        return set()
    from gitmodel import remote, transfer
    from gitmodel.pointer import Out, TrackedOut

    if remote.default_remote_name(repo) is None:
        report.actions.append("no default DVC remote to re-fetch from")
        return set()
    try:
        # download() verifies each object before it enters the cache.
        transfer.download(repo, [TrackedOut(oid, oid, Out(oid, oid)) for oid in wanted])
    except GitModelError as exc:
        report.actions.append(exc.message)  # what did arrive is still counted below
    store = repo.store
    good = set()
    for oid in wanted:
        try:
            if store.exists(oid):
                store.verify(oid, force=True)
                good.add(oid)
        except (CorruptObject, OSError):
            continue
    return good


def _replace_corrupt(repo: MaintainedRepo, corrupt: set[str], report: FsckReport) -> None:
    store = repo.store
    # A corrupt object must go before a good copy can take its name.
    for oid in sorted(corrupt):
        try:
            store.oid_to_path(oid).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            report.actions.append(f"could not remove corrupt object {oid}: {exc.strerror}")
            continue
        store.state.forget_verified(oid)
    fetched = _fetch(repo, corrupt, report)
    for p in report.problems:
        if p.kind == "corrupt-object" and p.name in corrupt:
            if p.name in fetched:
                p.repaired = "re-fetched from the remote"
            elif not store.oid_to_path(p.name).exists():
                p.repaired = "removed (no intact copy on a remote); `git model add` the file again"


def _repair_rest(
    repo: MaintainedRepo, missing: set[str], pending: bool, report: FsckReport
) -> None:
    lost = {p.name for p in report.problems if p.kind == "missing-attachment"}
    fetched = _fetch(repo, missing | lost, report)
    for p in report.problems:
        if p.kind in ("missing-object", "missing-attachment") and p.name in fetched:
            p.repaired = "fetched from the remote"
    from gitmodel.attachments import protect

    for oid in lost & fetched:
        protect(repo.store, oid)
    if pending:
        done = repo.complete_pending_note()
        for p in report.problems:
            if p.kind == "pending-note" and done == p.name:
                p.repaired = "note written"
        if done is None:
            report.actions.append("removed a stale commit journal")
    try:
        removed = _remove_stale_tmp(repo.store, repo.store.cache_dir / "files" / "tmp")
    except StoreError as exc:
        report.actions.append(f"temporary files left alone: {exc.message}")
        removed = 0
    if removed:
        report.actions.append(f"removed {removed} temporary file(s) left by killed processes")


def _remove_stale_tmp(store: Store, tmp_dir: Path) -> int:
    """Remove old temporary files of the cache's own tmp directory, never through a link:
    a committed `.dvc/cache/files/tmp -> ~` would otherwise aim this at the user's files."""
    store.real_dir(tmp_dir)
    try:
        fd = os.open(tmp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return 0  # absent, or a link that appeared since: nothing of ours to clean
    removed = 0
    now = time.time()
    try:
        for entry in os.scandir(fd):
            try:
                st = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TMP_SECONDS:
                    os.unlink(entry.name, dir_fd=fd)
                    removed += 1
            except OSError:
                continue
    finally:
        os.close(fd)
    return removed
