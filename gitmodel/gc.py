"""Drop cache objects that nothing needs, and never one that might still be needed.

Kept (the roots): the pointers in the trees of every branch, tag, remote-tracking ref,
stash entry (with its untracked-files parent), and the HEAD, index and work tree of every
worktree (linked worktrees share one cache, as they share git's objects); and every pointer that any commit not on a git remote introduces. That last
set includes commits reachable only from reflogs, so weights of an unpushed commit
survive a `git reset` until they are pushed. With no git remote at all every commit is
unpushed and nothing in history is removed. Objects stored within the grace period are
kept too: a concurrent `git model add` stores the object before it writes the pointer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError, Refused
from gitmodel.git import run_git
from gitmodel.pointer import (
    POINTER_SUFFIX,
    RAW_POINTER_LOG,
    pointer_blobs_in_raw_log,
    pointer_blobs_in_tree,
)

if TYPE_CHECKING:
    from gitmodel.workspace_view import MaintainedRepo

    # Opens the repository at a path (gitmodel.repo.Repo): gc counts the roots of the
    # other worktrees and of the projects sharing the cache, and the command composes it.
    Opener = Callable[[Path], MaintainedRepo]
    from gitmodel.store import Store


@dataclass
class GcResult:
    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    kept: int = 0
    dry_run: bool = False
    chunks: Any = None  # gitmodel.dedup.gc.ChunkGcResult when the chunk store is in use

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "bytes": self.bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
            "chunks": self.chunks.to_json() if self.chunks is not None else None,
        }


def _root_commits(repo: MaintainedRepo) -> list[str]:
    refs = run_git(
        ["for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags", "refs/remotes"],
        cwd=repo.root,
    ).stdout.split()
    stash = run_git(["rev-list", "--walk-reflogs", "refs/stash"], cwd=repo.root, check=False)
    stashes = stash.stdout.split() if stash.returncode == 0 else []
    heads = [head for _, head in worktrees(repo) if head]
    # A stash's third parent holds its untracked files (only with `stash -u`).
    untracked = []
    for sha in stashes:
        p = run_git(["rev-parse", "--verify", "-q", f"{sha}^3"], cwd=repo.root, check=False)
        if p.returncode == 0:
            untracked.append(p.stdout.strip())
    return sorted(set(refs + stashes + untracked + heads))


def worktrees(repo: MaintainedRepo) -> list[tuple[Path, str | None]]:
    """(path, HEAD commit) of every worktree of the repository, this one included."""
    found: list[tuple[Path, str | None]] = []
    out = run_git(["worktree", "list", "--porcelain"], cwd=repo.root).stdout
    for block in out.split("\n\n"):
        fields = dict(
            (line.split(" ", 1) + [""])[:2] for line in block.splitlines() if line.strip()
        )
        if "worktree" not in fields or "bare" in fields:
            continue
        found.append((Path(fields["worktree"]), fields.get("HEAD") or None))
    return found


def _other_worktrees(repo: MaintainedRepo) -> list[Path]:
    """Linked worktrees (or the main one, seen from a linked one) that are on disk."""
    here = os.path.realpath(repo.root)
    return [
        path
        for path, _ in worktrees(repo)
        if os.path.realpath(path) != here and (path / ".git").exists()
    ]


def _tree_pointers(repo: MaintainedRepo, commits: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for sha in commits:
        listing = run_git(["ls-tree", "-r", "-z", sha], cwd=repo.root, check=False).stdout
        pairs += pointer_blobs_in_tree(listing)
    return pairs


def _index_pointers(repo: MaintainedRepo, root: Path | None = None) -> list[tuple[str, str]]:
    listing = run_git(
        ["ls-files", "-s", "-z", "--", "*" + POINTER_SUFFIX], cwd=root or repo.root, check=False
    ).stdout
    pairs = []
    for entry in filter(None, listing.split("\0")):
        meta, _, rel = entry.partition("\t")
        parts = meta.split()
        if len(parts) >= 2:
            pairs.append((rel, parts[1]))
    return pairs


def _unpushed_pointers(repo: MaintainedRepo) -> list[tuple[str, str]]:
    proc = run_git(
        [*RAW_POINTER_LOG, "--all", "--reflog", "--not", "--remotes", "--"],
        cwd=repo.root,
        check=False,
    )
    return pointer_blobs_in_raw_log(proc.stdout)


def live_objects(repo: MaintainedRepo, open_repo: Opener) -> set[str]:
    """Every object id some root needs (directory manifests and their entries included);
    open_repo opens the other worktrees, whose unstaged pointers are roots too."""
    from gitmodel.store import ObjectMissing, StoreError

    others = [] if repo.bare else _other_worktrees(repo)
    index: list[tuple[str, str]] = []
    for root in [repo.root, *others]:
        index += _index_pointers(repo, root)
    blobs = sorted(
        set(_tree_pointers(repo, _root_commits(repo)) + index + _unpushed_pointers(repo))
    )
    outs = repo.outs_of_blobs(blobs, skip_unreadable=True)
    if not repo.bare:
        outs += repo.tracked()
    for root in others:
        try:
            other = open_repo(root)
        except GitModelError:
            continue  # a worktree git itself no longer reads: its HEAD counted above
        outs += other.tracked()  # pointers not staged there yet
    from gitmodel.attachments import note_objects

    # Training histories and stored predictions are named by notes, not pointers.
    live: set[str] = note_objects(repo)
    for t in outs:
        live.add(t.out.md5)
        if t.out.is_dir:
            try:
                live.update(e.md5 for e in repo.store.read_dir(t.out.md5))
            except (ObjectMissing, StoreError):
                pass
    return live


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _worktrees_cache(repo: MaintainedRepo, cache: str) -> bool:
    """The cache linked worktrees share (gitmodel.worktrees): every worktree is a root."""
    if repo.bare or repo.git_dir == repo.common_dir:
        return False
    from gitmodel.worktrees import main_cache

    return os.path.realpath(main_cache(repo.common_dir)) == cache


def _recent_manifests_entries(
    store: Store, oids: Sequence[str], live: set[str], cutoff: float
) -> set[str]:
    """The objects named by manifests stored or re-used within the grace period.

    `add` of a directory refreshes its manifest's ctime (Store.reuse), not each of its
    members': a member counts as just stored while a recent manifest names it. Called
    under the exclusive objects lock, so no add is between its checks and its manifest.
    """
    from gitmodel.store import ObjectMissing, StoreError

    named: set[str] = set()
    for oid in oids:
        if not oid.endswith(".dir") or oid in live:
            continue  # a live manifest's entries are live already
        try:
            st = os.lstat(store.oid_to_path(oid))
        except OSError:
            continue
        if max(st.st_ctime, st.st_mtime) > cutoff:
            try:
                named.update(e.md5 for e in store.read_dir(oid))
            except (ObjectMissing, StoreError):
                pass  # a damaged manifest protects nothing
    return named


def collect_garbage(
    repo: MaintainedRepo,
    open_repo: Opener,
    dry_run: bool = False,
    grace: float = 3600.0,
    projects: Sequence[Path] = (),
    chunks_only: bool = False,
) -> GcResult:
    """Remove the objects no root of repo (nor of projects, which share its cache) needs.

    A cache outside the repository may serve other projects whose pointers this one cannot
    see (and a clone's `.dvc/config` may aim cache.dir at any directory): it is collected
    only when the projects that use it are named, as `dvc gc --projects` asks.
    """
    store = repo.store
    cache = os.path.realpath(store.cache_dir)
    others = []
    for project in projects:
        other = open_repo(project)
        if os.path.realpath(other.store.cache_dir) != cache:
            raise GitModelError(f"{project}: does not use the cache {cache}")
        others.append(other)
    if (
        not projects
        and not _inside(cache, os.path.realpath(repo.root))
        and not _worktrees_cache(repo, cache)
    ):
        raise GitModelError(
            f"the cache {cache} is outside the repository and may hold other projects' "
            "weights; name every project that uses it: `git model gc --projects PATH...`"
        )
    live = live_objects(repo, open_repo)
    for other in others:
        live |= live_objects(other, open_repo)
    result = GcResult(dry_run=dry_run)
    cutoff = time.time() - grace
    with store.objects_lock(exclusive=True):
        oids = list(store.iter_oids())
        recent = _recent_manifests_entries(store, oids, live, cutoff)
        for oid in oids:
            if oid in live or oid in recent:
                result.kept += 1
                continue
            path = store.oid_to_path(oid)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            # ctime moves when the object is placed (rename, chmod) or re-used by `add`
            # (Store.reuse), even for a hardlinked file.
            if max(st.st_ctime, st.st_mtime) > cutoff:
                result.kept += 1
                continue
            result.removed.append(oid)
            result.bytes += st.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
                store.state.forget_verified(oid)
        # The second names of attachments (see gitmodel.attachments) go with their objects.
        from gitmodel.attachments import iter_kept

        for oid, path in list(iter_kept(store)):
            if oid in live:
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if max(st.st_ctime, st.st_mtime) > cutoff:
                continue
            if oid not in result.removed:
                result.removed.append(oid)
                result.bytes += st.st_size
            if not dry_run:
                path.unlink(missing_ok=True)
        from gitmodel.dedup.transfer import in_use

        if in_use(store):
            result.chunks = _collect_chunks([repo, *others], live, dry_run, grace, chunks_only)
    return result


def _collect_chunks(
    repos: Sequence[MaintainedRepo], live: set[str], dry_run: bool, grace: float, chunks_only: bool
) -> Any:
    """Dead recipes and chunks; whole objects the chunks rebuild, but the work trees'."""
    from gitmodel.dedup.gc import collect_chunks

    keep: set[str] = set()
    for repo in repos:
        if repo.bare:
            continue
        for t in repo.tracked(errors=[]):
            keep.add(t.out.md5)
            if t.out.is_dir and repo.store.exists(t.out.md5):
                try:
                    keep.update(e.md5 for e in repo.store.read_dir(t.out.md5))
                except GitModelError:
                    pass
    return collect_chunks(repos[0].store, live, keep, chunks_only, dry_run, grace)


# -- the chunks on a DVC remote (gitmodel.dedup) ------------------------------------------

# A remote is shared: a teammate may have pushed weights whose commit is not pushed yet.
REMOTE_GRACE = 14 * 24 * 3600.0


def _check_git_remotes(repo: MaintainedRepo) -> None:
    """Refuse unless every ref of every git remote is an object this clone has: a pointer
    pushed there that this clone has not fetched would otherwise look dead."""
    names = run_git(["remote"], cwd=repo.root).stdout.split()
    for name in names:
        proc = run_git(["ls-remote", name], cwd=repo.root, check=False)
        if proc.returncode != 0:
            raise Refused(
                f"cannot list git remote {name!r} ({proc.stderr.strip().splitlines()[-1:]}); "
                "a remote gc must see every pushed commit"
            )
        for line in proc.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            have = run_git(["cat-file", "-e", sha], cwd=repo.root, check=False)
            if have.returncode != 0:
                raise Refused(
                    f"git remote {name!r} has {ref} at {sha[:12]}, which this clone has not "
                    f"fetched; run `git fetch {name}` first (nothing was removed)"
                )


def remote_live_objects(repo: MaintainedRepo, remote: Any, open_repo: Opener) -> set[str]:
    """Every object a pointer of any commit this clone knows needs (all history, not only
    the roots), directory entries included; plus what the local gc counts as live."""
    from gitmodel.store import ObjectMissing, StoreError

    proc = run_git([*RAW_POINTER_LOG, "--all", "--reflog", "--"], cwd=repo.root, check=False)
    outs = repo.outs_of_blobs(sorted(set(pointer_blobs_in_raw_log(proc.stdout))), True)
    live = live_objects(repo, open_repo)
    for t in outs:
        live.add(t.out.md5)
        if not t.out.is_dir:
            continue
        try:
            if repo.store.exists(t.out.md5):
                live.update(e.md5 for e in repo.store.read_dir(t.out.md5))
                continue
            # only on the remote: every md5 it names counts (more live is never unsafe)
            raw = json.loads(remote.fs.cat_file(remote.odb.oid_to_path(t.out.md5)))
        except (ObjectMissing, StoreError, FileNotFoundError, ValueError, RecursionError):
            continue  # a manifest nowhere: nobody can check that directory out
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("md5"), str):
                live.add(item["md5"])
    return live


def collect_remote_chunks(
    repo: MaintainedRepo,
    open_repo: Opener,
    remote_name: str | None,
    dry_run: bool = False,
    grace: float = REMOTE_GRACE,
) -> Any:
    """Remove the recipes and packs on a DVC remote that no commit needs
    (gitmodel.dedup.remote_gc); whole-file objects there are left alone."""
    from gitmodel.dedup.remote_gc import collect_remote_chunks as collect
    from gitmodel.dvc_remote import DvcRemote
    from gitmodel.remote import forget_record

    _check_git_remotes(repo)
    remote = DvcRemote(repo, remote_name)
    live = remote_live_objects(repo, remote, open_repo)
    result = collect(repo.store, remote, live, dry_run, grace)
    if not dry_run and result.recipes_removed:
        forget_record(repo, remote.name)  # what this clone remembered being there
    return result
