"""The hooks that record and materialise, and never fail the git operation: post-commit
(a plain commit's metrics note; the weights of a cherry-pick, revert, merge or rebase
pick), post-rewrite (amend, rebase: one valid note per new commit), post-checkout and
post-merge (the weights of the new HEAD, the notes `git pull` fetched).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.hooks.stream import is_oid, say

# typing is not imported at run time (see gitmodel.hooks).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO


# -- post-commit -----------------------------------------------------------------------------


# The reflog subjects of commits that git makes from other commits' changes: their
# pointers change in the index and work tree, their weights do not. (A rebase's picks,
# `git pull --rebase`'s and `git am`'s too, are written when the reference-transaction
# hook sees HEAD move: see reference_transaction.)
_PICKED = ("cherry-pick", "revert", "commit (cherry-pick)", "commit (merge)")


def post_commit(args: Sequence[str], stdin: IO[str]) -> int:
    """The metrics note of a plain commit; the weights of a cherry-pick, revert or merge."""
    code = metrics_note(args, stdin)
    if os.environ.get("GITMODEL_COMMITTING") != "1" and _picked(Path.cwd()):
        materialise(args, stdin)
    return code


def _picked(root: Path) -> bool:
    from gitmodel.git import run_git

    action = run_git(["reflog", "-1", "--format=%gs", "HEAD"], cwd=root, check=False).stdout
    return action.startswith(_PICKED)


def metrics_note(args: Sequence[str], stdin: IO[str]) -> int:
    """A plain `git commit` that changed a metrics file: write the commit's note from it."""
    from gitmodel.git import run_git
    from gitmodel.metrics import MetricsError, kind_of, parse_metrics_text

    if os.environ.get("GITMODEL_COMMITTING") == "1":
        return 0
    root = Path.cwd()
    from gitmodel.hooks.doors import door_policy

    policy = door_policy(root)
    wanted_files = [
        f for c in (policy.config, policy.worktree) if c is not None for f in c.metrics_files
    ]
    if not wanted_files:
        return 0
    if _rewriting(root):
        return 0
    changed = run_git(
        ["diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "-z", "HEAD"],
        cwd=root,
        check=False,
    ).stdout.split("\0")
    wanted = list(dict.fromkeys(os.path.normpath(f) for f in wanted_files))
    hits = [f for f in wanted if f in changed]
    if not hits:
        return 0
    metrics: dict[str, float | int] = {}
    for rel in hits:
        proc = run_git(["cat-file", "blob", f"HEAD:{rel}"], cwd=root, check=False)
        if proc.returncode != 0:
            continue  # deleted by this commit
        try:
            metrics.update(parse_metrics_text(proc.stdout, kind_of(Path(rel)), rel))
        except MetricsError as exc:
            say(f"gitmodel: no metrics note written: {exc.message}")
            return 0
    if not metrics:
        return 0
    from gitmodel.attachments import Attachments
    from gitmodel.attachments import collect as collect_attachments
    from gitmodel.repo import Repo

    repo = Repo(root)
    # The training history and `eval --store` predictions ride along, as with `git model commit`.
    try:
        attachments = collect_attachments(repo)
    except GitModelError as exc:
        say(f"gitmodel: history/predictions not attached: {exc.message}")
        attachments = Attachments()
    repo.write_note("HEAD", metrics, source="post-commit", **attachments.note)
    attachments.consume()
    say(f"gitmodel: recorded {len(metrics)} metric(s) from {', '.join(hits)} in the commit's note")
    return 0


def _tree_metrics(root: Path, rev: str, files: Sequence[str]) -> dict[str, float | int]:
    """The metrics that the metrics files hold in rev's tree (empty when none is there)."""
    from gitmodel.git import run_git
    from gitmodel.metrics import MetricsError, kind_of, parse_metrics_text

    metrics: dict[str, float | int] = {}
    for rel in files:
        proc = run_git(["cat-file", "blob", f"{rev}:{rel}"], cwd=root, check=False)
        if proc.returncode != 0:
            continue
        try:
            metrics.update(parse_metrics_text(proc.stdout, kind_of(Path(rel)), rel))
        except MetricsError:
            continue  # a broken file measures nothing; post-commit says so when it is committed
    return metrics


def post_rewrite(args: Sequence[str], stdin: IO[str]) -> int:
    """After an amend or a rebase (git hands us old -> new): each new commit gets one valid
    note, with the metrics of its own metrics files when the rewrite changed them."""
    from gitmodel.notes import NOTES_REF, PlumbingNotes
    from gitmodel.rewrite import rewritten_notes

    pairs = []
    for line in stdin.read().splitlines():
        parts = line.split()
        if len(parts) >= 2 and is_oid(parts[0]) and is_oid(parts[1]):
            pairs.append((parts[0], parts[1]))
    if not pairs:
        return 0
    root = Path.cwd()
    if args and args[0] == "rebase":
        # `git pull --rebase` runs no post-merge: the notes it fetched are merged here.
        _merge_fetched_notes(root)
    from gitmodel.hooks.doors import door_policy

    policy = door_policy(root)
    files = list(
        dict.fromkeys(
            os.path.normpath(f)
            for c in (policy.config, policy.worktree)
            if c is not None
            for f in c.metrics_files
        )
    )
    notes = PlumbingNotes.from_ref(root, NOTES_REF)

    cache: dict[str, dict[str, float | int]] = {}

    def tree_metrics(commit: str) -> dict[str, float | int]:
        if commit not in cache:
            cache[commit] = _tree_metrics(root, commit, files) if files else {}
        return cache[commit]

    wanted = rewritten_notes(pairs, notes.read_text, tree_metrics)
    if not wanted:
        return 0
    from gitmodel.repo import Repo

    repo = Repo(root)
    for commit, note in wanted.items():
        repo.notes.write(commit, note)
    recomputed = sum(1 for n in wanted.values() if n.get("source") == "post-rewrite")
    say(
        f"gitmodel: rewrote the metrics note of {len(wanted)} commit(s)"
        + (f", {recomputed} from their metrics files" if recomputed else "")
    )
    return 0


def _rewriting(root: Path) -> bool:
    """An amend or a rebase: git copies the old note itself (notes.rewriteRef) afterwards,
    and a second note written now would be concatenated with it."""
    from gitmodel.git import run_git

    git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=root, check=False).stdout.strip()
    if git_dir and any((Path(git_dir) / d).exists() for d in ("rebase-merge", "rebase-apply")):
        return True
    action = run_git(["reflog", "-1", "--format=%gs", "HEAD"], cwd=root, check=False).stdout
    return action.startswith("commit (amend)")


# -- post-checkout / post-merge --------------------------------------------------------------


def materialise(args: Sequence[str], stdin: IO[str]) -> int:
    """Write the weights of the new HEAD whose objects are cached; never fail the checkout."""
    try:
        from gitmodel.repo import Repo

        repo = Repo(Path.cwd())
        if repo.bare or not repo.dvc_dir.is_dir():
            return 0
        result = repo.checkout(missing_ok=True)
    except GitModelError as exc:
        say(f"gitmodel: weights not updated: {exc.message}")
        return 0
    except Exception as exc:  # a checkout must never fail because of us
        say(f"gitmodel: weights not updated ({type(exc).__name__}: {exc})")
        return 0
    if result.written:
        say(f"gitmodel: materialised {len(result.written)} weight file(s)")
    if result.removed:
        say(f"gitmodel: removed {len(result.removed)} file(s) their directory's version lacks")
    if result.skipped_missing:
        names = ", ".join(result.skipped_missing[:3])
        more = (
            f" and {len(result.skipped_missing) - 3} more"
            if len(result.skipped_missing) > 3
            else ""
        )
        say(
            f"gitmodel: {len(result.skipped_missing)} weight file(s) are not in the cache: "
            f"{names}{more} (git model pull fetches them)"
        )
    return 0


def _merge_fetched_notes(root: Path) -> None:
    """Merge the notes a `git pull` fetched (see gitmodel.notes_sync); never fails the pull."""
    try:
        from gitmodel import notes_sync
        from gitmodel.git import run_git

        git_dir = run_git(["rev-parse", "--path-format=absolute", "--git-dir"], cwd=root)
        for outcome in notes_sync.merge_fetched(git_dir.stdout.strip(), root):
            if outcome.conflicts:
                say(
                    f"gitmodel: merged fetched notes; {len(outcome.conflicts)} conflicting "
                    "value(s) resolved (the other kept in the note's history)"
                )
    except Exception as exc:  # a pull must never fail because of notes
        say(f"gitmodel: fetched notes not merged ({type(exc).__name__}: {exc})")


def post_merge(args: Sequence[str], stdin: IO[str]) -> int:
    """After `git pull` (or a merge): merge the notes it fetched, then write the weights."""
    _merge_fetched_notes(Path.cwd())
    return materialise(args, stdin)
