"""Checkout: put the tracked weights' content from the cache into the work tree.

In two steps, so that nothing is written before everything is judged: `plan_checkout`
decides for every tracked output what to write, keep, remove and what is missing from the
cache, and refuses (UnstoredChanges) to overwrite or remove content the cache does not
hold; `apply_checkout` writes the plan. Between the two, the caller may fetch the missing
objects and plan again (gitmodel.workspace.Workspace.checkout does).

Takes a Store and a WorkTree (the path policy), never the Repo.
"""

from __future__ import annotations

import os
import stat
import time
from array import array
from collections.abc import Sequence
from pathlib import Path

from gitmodel.errors import GitModelError, Refused
from gitmodel.paths import UnsafePath, WorkTree
from gitmodel.pointer import TrackedOut
from gitmodel.record import Record
from gitmodel.store import CorruptObject, DirEntry, Store
from gitmodel.tree import Listing, pack_stat, rels_blob, scan

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.store import Reporter


class OutputCheckout(Record):
    """What a checkout did to one tracked output (a file, or a directory of `files`)."""

    __slots__ = ("path", "is_dir", "files", "written", "unchanged", "removed", "missing")

    def __init__(self, path: str, is_dir: bool, files: int) -> None:
        self.path = path
        self.is_dir = is_dir
        self.files = files
        self.written = 0
        self.unchanged = 0
        self.removed = 0
        self.missing = 0

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class CheckoutResult(Record):
    __slots__ = ("written", "unchanged", "skipped_missing", "removed", "outputs")

    def __init__(self) -> None:
        self.written: list[str] = []
        self.unchanged: list[str] = []
        self.skipped_missing: list[str] = []
        self.removed: list[str] = []  # files inside a tracked directory its version lacks
        self.outputs: list[OutputCheckout] = []  # one summary per tracked output

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped_missing": self.skipped_missing,
            "removed": self.removed,
            "outputs": [o.to_json() for o in self.outputs],
        }


class UnstoredChanges(Refused):
    """A checkout would overwrite or remove content the cache does not hold."""


class DirPlan:
    """A tracked directory's checkout: entries to write (indexes into entries), kept, extra."""

    __slots__ = (
        "out",
        "key",
        "entries",
        "listing",
        "todo",
        "unchanged",
        "missing",
        "extras",
        "parents",
        "exact",
        "stored",
    )

    def __init__(self, out: TrackedOut, key: str, entries: Sequence[DirEntry]) -> None:
        self.out = out
        self.key = key  # the directory's real path
        self.entries = entries
        self.listing = Listing(key)
        self.todo: list[int] = []
        self.unchanged: dict[int, int] = {}  # entry index -> listing index
        self.missing: list[str] = []
        self.extras: list[str] = []  # repo-relative files to remove
        self.parents: list[str] = []  # directories (relative to the output) to create
        self.exact = False  # the directory's index shows it holds this version already
        self.stored = False  # every object of the version is whole in the cache


class CheckoutPlan:
    """What plan_checkout decided: single files to write, directories, what is missing."""

    __slots__ = ("files", "dirs", "missing", "result")

    def __init__(self) -> None:
        self.files: list[tuple[str, str, OutputCheckout]] = []  # (path, oid, summary)
        self.dirs: list[tuple[DirPlan, OutputCheckout]] = []
        self.missing: list[str] = []  # "path (oid)" of content the cache lacks
        self.result = CheckoutResult()  # filled in as far as planning knows


def plan_checkout(
    store: Store,
    wt: WorkTree,
    outs: Sequence[TrackedOut],
    force: bool,
    bad: list[GitModelError],
) -> CheckoutPlan:
    """Plan first: which files to write, from which objects; refuse before writing anything.

    A bad pointer or manifest goes to bad (reported after the good weights are written).
    """
    from gitmodel.dedup import available

    plan = CheckoutPlan()
    result = plan.result
    files: list[tuple[str, str, OutputCheckout]] = []
    manifests: list[tuple[TrackedOut, list[DirEntry]]] = []
    missing = plan.missing
    # Every path is judged by the policy (gitmodel.paths) before anything is written:
    # inside the work tree, never in .git, never through a link.
    for t in outs:
        try:
            wt.path(t.path, t.pointer, leaf_link_ok=not t.out.is_dir)
            if t.out.is_dir:
                if not store.exists(t.out.md5):
                    missing.append(f"{t.path} ({t.out.md5})")
                    continue
                manifests.append((t, store.read_dir(t.out.md5)))
            else:
                summary = OutputCheckout(t.path, False, 1)
                files.append((t.path, t.out.md5, summary))
                result.outputs.append(summary)
        except GitModelError as exc:
            bad.append(exc)
    _remove_checkout_leftovers(wt.root, [rel for rel, _, _ in files])
    for t, entries in manifests:
        summary = OutputCheckout(t.path, True, len(entries))
        try:
            plan.dirs.append((_plan_dir(store, wt, t, entries, force, summary), summary))
        except UnstoredChanges:
            raise
        except GitModelError as exc:
            bad.append(exc)
            continue
        result.outputs.append(summary)
    for rel, oid, summary in files:
        full = wt.root / rel
        try:
            mode = os.lstat(full).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = 0
        if stat.S_ISLNK(mode):
            # Only a link into the cache (link type symlink) is ours; another is never
            # followed, and replaced only when forced.
            if os.readlink(full) == str(store.oid_to_path(oid)):
                result.unchanged.append(rel)
                summary.unchanged = 1
                continue
            if not force:
                raise GitModelError(
                    f"{rel} is a symbolic link that gitmodel did not make; remove it or use --force"
                )
        elif stat.S_ISREG(mode) and store.file_md5(full) == oid:
            result.unchanged.append(rel)
            summary.unchanged = 1
            continue
        if not available(store, oid):
            missing.append(f"{rel} ({oid})")
            summary.missing = 1
            continue
        if stat.S_ISREG(mode) and not force:
            current = store.file_md5(full)
            if not available(store, current):
                raise UnstoredChanges(
                    f"{rel} has changes that are not stored; `git model add` it or use --force"
                )
        plan.files.append((rel, oid, summary))
    for p, _ in plan.dirs:
        missing += p.missing
    return plan


def apply_checkout(
    store: Store,
    wt: WorkTree,
    plan: CheckoutPlan,
    reporter: Reporter | None,
    bad: list[GitModelError],
) -> CheckoutResult:
    """Write what plan_checkout planned (missing content is skipped and listed); raise the
    first problem in bad, and how many more there were, once the good weights are written."""
    from gitmodel.dedup import checkout_rebuilt, ensure_object, rebuilt_size
    from gitmodel.dedup.packs import CorruptChunk

    result = plan.result
    result.skipped_missing = plan.missing
    for rel, oid, summary in plan.files:
        # A deduplicated object the cache dropped is rebuilt from its chunks: where the
        # cache copies files, into the cache and the work tree in one pass (no copy of the
        # rebuilt object afterwards), else into the cache first and then placed.
        size = rebuilt_size(store, oid)
        direct = size is not None
        if size is None:
            try:
                ensure_object(store, oid)  # rebuilt and verified, if it has to be
            except (CorruptObject, CorruptChunk) as exc:
                bad.append(exc)
                continue
            size = store.oid_to_path(oid).stat().st_size
        progress = reporter.start(f"restoring {rel}", size) if reporter else None
        try:
            full = wt.root / rel
            wt.make_parents(full, rel)
            if direct:
                checkout_rebuilt(store, oid, full, progress)
            else:
                store.materialise(oid, full, progress)
        except (CorruptObject, CorruptChunk, UnsafePath) as exc:
            bad.append(exc)
            continue
        finally:
            if reporter:
                reporter.stop()
        result.written.append(rel)
        summary.written = 1
    for p, summary in plan.dirs:
        summary.written = _write_dir(store, wt, p, reporter, bad)
        for i in p.todo:
            result.written.append(f"{p.out.path}/{p.entries[i].relpath}")
        result.unchanged += [f"{p.out.path}/{p.entries[i].relpath}" for i in p.unchanged]
        removed = _remove_files(wt, p.extras, [p.out.path])
        summary.removed = len(removed)
        result.removed += removed
    store.state.flush()
    if bad:
        more = (
            f" (and {len(bad) - 1} more problem(s); `git model fsck` lists them)"
            if len(bad) > 1
            else ""
        )
        raise GitModelError(bad[0].message + more, exit_code=bad[0].exit_code)
    return result


def _plan_dir(
    store: Store,
    wt: WorkTree,
    t: TrackedOut,
    entries: Sequence[DirEntry],
    force: bool,
    summary: OutputCheckout,
) -> DirPlan:
    """What checking out directory t to entries takes; refuses before anything is written.

    The directory ends up holding exactly its version (as `dvc checkout` does): files
    its version lacks are removed. A file whose content is not in the cache, whether
    it would be overwritten or removed, is refused unless forced: nothing unstored is
    ever lost. Files whose stat matches the directory's index are not opened.
    """
    from gitmodel.dedup import available

    full = wt.root / t.path
    key = os.path.realpath(full)
    plan = DirPlan(t, key, entries)
    if full.is_symlink() or (os.path.lexists(full) and not full.is_dir()):
        listing = Listing(key)  # nothing is there to keep or remove
    else:
        listing = _without_leftovers(scan(key), {e.relpath for e in entries})
    plan.listing = listing
    index = store.state.tree(key)
    if (
        index is not None
        and index.oid == t.out.md5
        and listing.matches(index.rels, index.stats, index.taken)
    ):
        summary.unchanged = len(entries)
        plan.unchanged = {i: i for i in range(len(entries))}
        plan.exact = True
        return plan  # exactly its version already: nothing to open
    # Whether every object is whole in the cache: from 256 directory stats when nothing
    # was added to or removed from the cache since that was last seen, not one per file.
    plan.stored = store.has_tree(t.out.md5)
    current = dict(zip(listing.rels, store.tree_md5s(key, listing), strict=True))
    at = {rel: i for i, rel in enumerate(listing.rels)}
    parents: dict[str, str] = {}  # directory (relative to the output) -> one entry in it
    for i, e in enumerate(entries):
        have = current.pop(e.relpath, None)
        if have == e.md5:
            plan.unchanged[i] = at[e.relpath]
            continue
        if have is not None and not force and not available(store, have):
            raise UnstoredChanges(
                f"{t.path}/{e.relpath} has changes that are not stored; "
                "`git model add` it or use --force"
            )
        if not plan.stored and not store.exists(e.md5) and not available(store, e.md5):
            plan.missing.append(f"{t.path}/{e.relpath} ({e.md5})")
            continue
        plan.todo.append(i)
        parents.setdefault(e.relpath.rpartition("/")[0], e.relpath)
    for rel, have in current.items():  # files this version of the directory lacks
        if not force and not available(store, have):
            raise UnstoredChanges(
                f"{t.path}/{rel} is not part of {t.path} in this version and is not "
                f"stored; `git model add {t.path}` it or use --force"
            )
        plan.extras.append(f"{t.path}/{rel}")
    # The path policy once per directory, not per file: every relpath passed its
    # lexical checks when the manifest was read (Store.read_dir), and a file's own name
    # cannot lead elsewhere, since it is written by rename, which replaces a link
    # instead of following it. The directories on the way are what could.
    where = f"{t.pointer} ({t.out.md5})"
    for parent in sorted(parents):
        wt.path(f"{t.path}/{parents[parent]}", where, leaf_link_ok=True)
    plan.parents = sorted(parents)
    summary.unchanged = len(plan.unchanged)
    summary.missing = len(plan.missing)
    return plan


def _write_dir(
    store: Store,
    wt: WorkTree,
    plan: DirPlan,
    reporter: Reporter | None,
    bad: list[GitModelError],
) -> int:
    """Write a directory's planned files and record its index; how many were written."""
    for parent in plan.parents:
        where = f"{plan.out.path}/{parent}" if parent else plan.out.path
        try:
            wt.make_parents(wt.root / where / "-", where)  # never through a link
        except OSError as exc:
            raise GitModelError(f"cannot create {where}: {exc.strerror or exc}") from None
    entries = plan.entries
    todo = []
    rebuilt_all = True
    for i in plan.todo:
        if not plan.stored and not store.exists(entries[i].md5):
            from gitmodel.dedup import ensure_object
            from gitmodel.dedup.packs import CorruptChunk

            try:
                # a deduplicated object the cache dropped is rebuilt (and verified) first
                ensure_object(store, entries[i].md5)
            except (CorruptObject, CorruptChunk) as exc:
                bad.append(exc)
                rebuilt_all = False
                continue
        todo.append(i)
    items = [(entries[i].md5, f"{plan.key}/{entries[i].relpath}") for i in todo]
    total = (plan.out.out.size or 0) if todo else 0
    progress = reporter.start(f"restoring {plan.out.path}", total) if reporter else None
    try:
        # made in the directory's root, then linked: their inodes fill a few block groups
        results = store.materialise_files(items, progress, made_in=plan.key)
    finally:
        if reporter:
            reporter.stop()
    finished = time.time_ns()
    written: dict[int, tuple[int, int, int]] = {}
    for i, r in zip(todo, results, strict=True):
        if isinstance(r, GitModelError):
            bad.append(r)
        elif isinstance(r, BaseException):
            raise r
        else:
            written[i] = r
    complete = rebuilt_all and len(written) == len(todo) and not plan.missing
    if complete and not plan.exact:
        # Files are written under a temporary name and renamed into place, so none
        # could be changed behind our back before its stat was taken: the index is
        # trusted from now, unless files kept from the listing are racy there.
        listing = plan.listing
        taken = finished
        if listing.racy(listing.taken):
            taken = listing.taken
        stats = array("q")
        for i in range(len(entries)):
            ino, mtime, size = written[i] if i in written else listing.stat(plan.unchanged[i])
            pack_stat(stats, ino, mtime, size)
        md5s = b"".join([bytes.fromhex(e.md5) for e in entries])
        rels = rels_blob([e.relpath for e in entries])
        store.put_tree(plan.key, plan.out.out.md5, taken, rels, stats.tobytes(), md5s)
    plan.todo = [i for i in todo if i in written]  # what the result lists as written
    return len(written)


def _without_leftovers(listing: Listing, names: set[str]) -> Listing:
    """listing minus (and the disk minus) `NAME.<12 hex>.tmp` files a killed checkout left
    beside the NAMEs it writes: otherwise they would count as files to keep or refuse."""
    import re

    leftover = re.compile(r"(.+)\.[0-9a-f]{12}\.tmp")
    drop = set()
    for i, rel in enumerate(listing.rels):
        if rel.endswith(".tmp") and (m := leftover.fullmatch(rel)) and m.group(1) in names:
            try:
                os.unlink(f"{listing.root}/{rel}")
            except OSError:
                continue
            drop.add(i)
    if not drop:
        return listing
    kept = Listing(listing.root, listing.taken)
    for i, rel in enumerate(listing.rels):
        if i not in drop:
            kept.add(rel, *listing.stat(i))
    return kept


def _remove_files(wt: WorkTree, rels: Sequence[str], dirs: Sequence[str]) -> list[str]:
    """Delete these files (inside the tracked directories dirs), then the directories
    their removal left empty below those; what was removed."""
    removed = []
    parents: set[str] = set()
    for rel in rels:
        try:
            full = wt.path(rel, rel)  # again: never through a link, never in .git
            full.unlink()
        except (FileNotFoundError, UnsafePath):
            continue
        removed.append(rel)
        parents.add(os.path.dirname(rel))
    tops = set(dirs)
    for parent in sorted(parents, key=lambda p: p.count("/"), reverse=True):
        # Up to, not including, the tracked directory: it stays, as its version says.
        while parent and parent not in tops and any(parent.startswith(d + "/") for d in tops):
            try:
                (wt.root / parent).rmdir()  # only when empty
            except OSError:
                break
            wt.forget(parent)
            parent = os.path.dirname(parent)
    return removed


def _remove_checkout_leftovers(root: Path, rels: Sequence[str]) -> None:
    """Remove `NAME.<12 hex>.tmp` files a killed checkout left beside the weights it writes.

    Inside a tracked directory they would otherwise show as a change, and a later `add`
    would store them as part of the directory.
    """
    import re

    by_dir: dict[str, set[str]] = {}
    for rel in rels:
        parent, _, name = rel.rpartition("/")
        by_dir.setdefault(parent, set()).add(name)
    leftover = re.compile(r"(.+)\.[0-9a-f]{12}\.tmp")
    for parent, names in by_dir.items():
        try:
            entries = list(os.scandir(root / parent))
        except OSError:
            continue
        for entry in entries:
            m = leftover.fullmatch(entry.name)
            if m and m.group(1) in names and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
