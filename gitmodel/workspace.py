"""The work tree's weights: add (store + pointer + .gitignore), tracked, status, checkout.

A service of the Repo facade (gitmodel.repo): it takes the work tree's root and path
policy, the cache and the project config (as callables, so that a command that never
touches the cache does not build it), and callables for the few things that belong to
the repository as a whole: whether `git model init` ran, HEAD, the pointers of a commit,
and fetching objects missing from the cache (gitmodel.transfer, which this module must not
import: the transfer sits above it). Checkout's plan and apply live in gitmodel.checkout.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.lockfile import update_file
from gitmodel.paths import UnsafePath, WorkTree
from gitmodel.pointer import (
    POINTER_SUFFIX,
    Out,
    PointerError,
    TrackedOut,
    check_inside,
    filter_outs,
    outs_of_pointer,
    read_pointer,
    write_pointer,
)
from gitmodel.record import Record
from gitmodel.store import ObjectMissing, Store, StoreError
from gitmodel.tree import scan

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.checkout import CheckoutResult
    from gitmodel.config import Config
    from gitmodel.store import Progress, Reporter


class AddResult(Record):
    __slots__ = ("path", "pointer", "md5", "size", "nfiles")

    def __init__(
        self, path: str, pointer: str, md5: str, size: int, nfiles: int | None = None
    ) -> None:
        self.path = path  # relative to the repo root
        self.pointer = pointer
        self.md5 = md5
        self.size = size
        self.nfiles = nfiles

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "pointer": self.pointer,
            "md5": self.md5,
            "size": self.size,
        }
        if self.nfiles is not None:
            d["nfiles"] = self.nfiles
        return d


class Status(Record):
    """Tracked weights that differ from their pointer, are absent, or whose content the
    cache lacks (each a list of repo-relative paths)."""

    __slots__ = ("modified", "missing", "not_in_cache")

    def __init__(self, modified: list[str], missing: list[str], not_in_cache: list[str]) -> None:
        self.modified = modified
        self.missing = missing
        self.not_in_cache = not_in_cache

    def to_json(self) -> dict[str, Any]:
        return {
            "modified": self.modified,
            "missing": self.missing,
            "not_in_cache": self.not_in_cache,
        }


class Workspace:
    """The tracked weights of one work tree."""

    def __init__(
        self,
        root: Path,
        worktree: WorkTree,
        *,
        store: Callable[[], Store],
        config: Callable[[], Config],
        require_init: Callable[[], None],
        head: Callable[[], str | None],
        pointers_at: Callable[[str, Sequence[str]], list[TrackedOut]],
        fetch_missing: Callable[[Sequence[TrackedOut]], bool],
    ) -> None:
        self.root = root
        self.worktree = worktree
        self._store = store
        self._config = config
        self._require_init = require_init
        self._head = head
        self._pointers_at = pointers_at
        self._fetch_missing = fetch_missing

    @property
    def store(self) -> Store:
        return self._store()

    @property
    def config(self) -> Config:
        return self._config()

    def git(self, *args: str, **kw: Any) -> str:
        return run_git(list(args), cwd=self.root, **kw).stdout

    # -- add ------------------------------------------------------------------------------

    def base(self, cwd: Path | None) -> Path:
        """Where the user's relative paths start: the current directory, or the work tree's
        root when the current directory is outside it (`git --work-tree=A` run from B), as
        git itself reads paths then."""
        base = cwd or Path.cwd()
        real, root = os.path.realpath(base), os.path.realpath(self.root)
        if real != root and not real.startswith(root + os.sep):
            return self.root
        return base

    def resolve_targets(
        self, paths: Sequence[str | os.PathLike[str]], cwd: Path | None = None
    ) -> list[Path]:
        """Validate user paths before anything is written: exist, inside, not git's own."""
        self._require_init()
        if not paths:
            raise GitModelError("no paths given")
        base = self.base(cwd)
        targets: list[Path] = []
        for raw in paths:
            p = Path(os.path.abspath(base / raw))
            if not os.path.lexists(p):
                raise GitModelError(f"{raw}: no such file or directory")
            check_inside(p, self.root, str(raw))
            rel = Path(os.path.relpath(os.path.realpath(p), os.path.realpath(self.root)))
            if rel == Path(".") or p.name.endswith(POINTER_SUFFIX):
                raise GitModelError(f"{raw}: cannot track this path")
            try:
                self.worktree.path(rel.as_posix(), str(raw))
            except UnsafePath:
                raise GitModelError(f"{raw}: cannot track this path") from None
            if p.is_symlink() or not (p.is_file() or p.is_dir()):
                raise GitModelError(f"{raw}: not a regular file or directory")
            targets.append(Path(os.path.realpath(self.root)) / rel)
        rels = [str(t.relative_to(os.path.realpath(self.root))) for t in targets]
        tracked = run_git(["ls-files", "-z", "--", *rels], cwd=self.root).stdout.split("\0")
        tracked = [t for t in tracked if t]
        if tracked:
            raise GitModelError(
                f"{tracked[0]}: already tracked by git; run `git rm -r --cached {tracked[0]}` first"
            )
        return targets

    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        reporter: Reporter | None = None,
        cwd: Path | None = None,
        stage: bool = True,
    ) -> list[AddResult]:
        """Store weights by content, write PATH.dvc, git-ignore PATH, stage both."""
        return self.add_targets(self.resolve_targets(paths, cwd), reporter, stage)

    def add_targets(
        self, targets: Sequence[Path], reporter: Reporter | None, stage: bool = True
    ) -> list[AddResult]:
        """add for paths resolve_targets has already validated."""
        root = Path(os.path.realpath(self.root))
        results: list[AddResult] = []
        to_stage: list[str] = []
        for target in targets:
            listing = scan(target) if target.is_dir() else None
            size = listing.total_size if listing is not None else target.stat().st_size
            progress = reporter.start(f"storing {target.name}", size) if reporter else None
            try:
                chunked = None
                if listing is not None:
                    oid, total, nfiles = self.store.store_dir(target, progress, listing)
                    out = Out(target.name, oid, total, nfiles)
                else:
                    if self.config.dedup:
                        # whole object and chunks from one read of the file
                        chunked = self._add_deduplicated(
                            target, str(target.relative_to(root)), progress
                        )
                    md5, total = chunked or self.store.store_file(target, progress)
                    out = Out(target.name, md5, total)
            finally:
                if reporter:
                    reporter.stop()
            if self.config.dedup and chunked is None:
                self._dedup(out.md5, str(target.relative_to(root)), total, reporter)
            rel = str(target.relative_to(root))
            # The pointer and the .gitignore beside the weights: never written through a
            # link (update_file refuses a link at the leaf, the policy one on the way).
            base = os.path.dirname(rel)
            pfile = self.worktree.path(rel + POINTER_SUFFIX, rel)
            ignore = self.worktree.path(f"{base}/.gitignore" if base else ".gitignore", rel)
            write_pointer(pfile, out)
            add_ignore_entry(ignore, "/" + target.name)
            results.append(AddResult(rel, str(pfile.relative_to(root)), out.md5, total, out.nfiles))
            to_stage += [str(pfile.relative_to(root)), str(ignore.relative_to(root))]
        if stage:
            self.git("add", "--", *sorted(set(to_stage)), retry_lock=True)
        return results

    def _parent_md5(self, rel: str) -> str | None:
        """The same path's object in HEAD: the XOR deltas' base."""
        head = self._head()
        if not head:
            return None
        try:
            return next((t.out.md5 for t in self._pointers_at(head, [rel]) if t.path == rel), None)
        except GitModelError:  # a damaged parent pointer only costs the deltas
            return None

    def _add_deduplicated(
        self, target: Path, rel: str, progress: Progress | None
    ) -> tuple[str, int] | None:
        from gitmodel.dedup import add_file

        try:
            return add_file(self.store, target, self._parent_md5(rel), progress)
        except OSError as exc:
            raise StoreError(f"cannot store {target}: {exc.strerror or exc}") from exc

    def _dedup(self, md5: str, rel: str, size: int, reporter: Reporter | None) -> None:
        """Chunk a stored output, with the same path's version in HEAD as the delta base."""
        from gitmodel.dedup import dedup_output

        parent = self._parent_md5(rel)
        progress = reporter.start(f"chunking {os.path.basename(rel)}", size) if reporter else None
        try:
            dedup_output(self.store, md5, parent, progress)
        finally:
            if reporter:
                reporter.stop()

    # -- pointers -------------------------------------------------------------------------

    def tracked(
        self, paths: Sequence[str] = (), errors: list[GitModelError] | None = None
    ) -> list[TrackedOut]:
        """Pointer outputs in the work tree (tracked or new .dvc files).

        With errors, a bad pointer is appended there (when paths could mean it) and
        skipped, so one hostile pointer cannot block the others; without, it raises.
        """
        listing = self.git(
            "ls-files", "-z", "-co", "--exclude-standard", "--", "*" + POINTER_SUFFIX
        )
        outs: list[TrackedOut] = []
        wanted = [os.path.normpath(p).rstrip("/") for p in paths]
        wt = self.worktree
        for rel in sorted(set(filter(None, listing.split("\0")))):
            try:
                pfile = wt.path(rel, rel, leaf_link_ok=True)
                try:
                    if stat.S_ISDIR(os.lstat(pfile).st_mode):
                        continue
                except FileNotFoundError:
                    continue  # deleted in the work tree
                pointer = read_pointer(pfile, self.root)
                found = outs_of_pointer(pointer, rel)
                for t in found:
                    wt.path(t.path, rel, leaf_link_ok=True)
            except (PointerError, UnsafePath) as exc:
                if errors is None:
                    raise
                if not wanted or any(
                    rel in (w, w + POINTER_SUFFIX) or rel.startswith(w + "/") for w in wanted
                ):
                    errors.append(exc)
                continue
            outs += found
        return filter_outs(outs, paths)

    def require_matches(
        self, outs: Sequence[TrackedOut], paths: Sequence[str], rev: str | None = None
    ) -> None:
        """Refuse a path that names no tracked weights: a typo must not read as "up to date"."""
        for path in paths:
            if not filter_outs(list(outs), [path]):
                close = self.closest_tracked(path, rev)
                hint = f"; did you mean {close}?" if close else ""
                where = f" at {rev}" if rev else ""
                raise GitModelError(f"{path}: no tracked weights{where}{hint}")

    def closest_tracked(self, path: str, rev: str | None = None) -> str | None:
        """The tracked path (in the work tree, or at rev) that a mistyped path most resembles."""
        import difflib  # only on error paths

        every = self._pointers_at(rev, ()) if rev else self.tracked(errors=[])
        close = difflib.get_close_matches(
            os.path.normpath(path), sorted({t.path for t in every}), n=1
        )
        return close[0] if close else None

    # -- status ---------------------------------------------------------------------------

    def status(self, paths: Sequence[str] = ()) -> Status:
        """Which tracked weights differ from their pointer (`modified`) or are absent (`missing`)."""
        modified: list[str] = []
        missing: list[str] = []
        uncached: list[str] = []
        store = self.store
        outs = self.tracked(paths)
        self.require_matches(outs, paths)
        for t in outs:
            full = self.root / t.path
            if not self._cached(t.out):
                uncached.append(t.path)
            if not os.path.lexists(full):
                missing.append(t.path)
            elif os.path.islink(full):
                # Never read through a link: only one into the cache (link type symlink)
                # is the tracked output itself.
                if t.out.is_dir or os.readlink(full) != str(store.oid_to_path(t.out.md5)):
                    modified.append(t.path)
            elif t.out.is_dir:
                if not full.is_dir() or not store.tree_matches(full, t.out.md5):
                    modified.append(t.path)
            elif not full.is_file() or store.file_md5(full) != t.out.md5:
                modified.append(t.path)
        return Status(modified, missing, uncached)

    def _cached(self, out: Out) -> bool:
        from gitmodel.dedup import available

        if not available(self.store, out.md5):
            return False
        if out.is_dir:
            return self.store.has_tree(out.md5, lambda oid: available(self.store, oid))
        return True

    # -- checkout -------------------------------------------------------------------------

    def checkout(
        self,
        rev: str | None = None,
        paths: Sequence[str] = (),
        force: bool = False,
        missing_ok: bool = False,
        fetch: bool = True,
        reporter: Reporter | None = None,
    ) -> CheckoutResult:
        """Materialise the weights of the work tree's pointers (or those at rev) from the cache.

        Objects missing from the cache are first fetched from the default DVC remote, when
        one is configured (fetch=False: cache only).
        """
        # Not imported at the top: status and add, on every hook's path, never check out.
        from gitmodel.checkout import apply_checkout, plan_checkout

        # A bad pointer or manifest is reported after the good weights are written: one
        # hostile file in a pushed repository must not hold the others hostage.
        bad: list[GitModelError] = []
        outs = self._pointers_at(rev, paths) if rev else self.tracked(paths, errors=bad)
        if not bad:
            self.require_matches(outs, paths, rev)
        store = self.store
        plan = plan_checkout(store, self.worktree, outs, force, bad)
        if plan.missing and not missing_ok:
            if fetch and self._fetch_missing(outs):
                return self.checkout(rev, paths, force, missing_ok, fetch=False, reporter=reporter)
            raise ObjectMissing(plan.missing)
        return apply_checkout(store, self.worktree, plan, reporter, bad)


def add_ignore_entry(gitignore: Path, entry: str) -> None:
    """Add `entry` to a .gitignore under the lock-file rule, so concurrent adds lose no line."""

    def change(old: bytes | None) -> bytes | None:
        text = (old or b"").decode("utf-8", errors="surrogateescape")
        if entry in text.splitlines():
            return None
        if text and not text.endswith("\n"):
            text += "\n"
        return (text + entry + "\n").encode("utf-8", errors="surrogateescape")

    update_file(gitignore, change)
