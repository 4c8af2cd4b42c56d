"""Commits with their metrics notes: `git model commit`, writing a note, the journal.

A commit and its note are two writes; the pending-note journal
(`.git/gitmodel/pending-note.json`) makes a crash between them recoverable: it is written
before `git commit` runs, and the next command (or `git model fsck --repair`) finishes the
note of the commit it names, if that commit is still HEAD, carries the journal's tree and
has no note yet.

A service of the Repo facade (gitmodel.repo): it takes the work tree's root and git dir,
the notes, the workspace (for add and the user's paths) and callables for what belongs to
the repository as a whole (HEAD, resolving a revision, the pointers of a commit, storing
the pending attachments), never the Repo.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel import __version__
from gitmodel.config import CONFIG_FILE
from gitmodel.errors import GitModelError
from gitmodel.git import GitFailed, run_git
from gitmodel.lockfile import write_file
from gitmodel.metrics import load_metrics_file, parse_metric_args
from gitmodel.notes import SCHEMA_VERSION, Notes
from gitmodel.pointer import PointerError, TrackedOut, weight_entry
from gitmodel.record import Record

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.attachments import Attachments
    from gitmodel.store import Reporter
    from gitmodel.workspace import AddResult, Workspace

PENDING_NOTE = "gitmodel/pending-note.json"


class CommitResult(Record):
    __slots__ = ("commit", "added", "note")

    def __init__(self, commit: str, added: list[AddResult], note: dict[str, Any]) -> None:
        self.commit = commit
        self.added = added
        self.note = note


def now_utc() -> str:
    """Now in UTC as ISO 8601 with a Z, to the second (time.strftime: no datetime import)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build_note(
    metrics: dict[str, float | int],
    source: str,
    weights: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A new metrics note: what every note gitmodel writes starts with (keys whose value
    is None in extra are left out)."""
    note: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "metrics": dict(sorted(metrics.items())),
        "weights": weights or {},
        "created": now_utc(),
        "source": source,
        "tool": f"gitmodel {__version__}",
    }
    note.update({k: v for k, v in extra.items() if v is not None})
    return note


def record_override(
    notes: Notes,
    root: Path,
    commit: str,
    tag: str,
    reason: str,
    source: str,
    kind: str | None = None,
    weights: dict[str, Any] | None = None,
) -> None:
    """Record in commit's note that tag was made despite the gate, and why: the note is
    where every door (and the server) reads overrides. One entry per tag (a new reason
    replaces the old); a commit without a note gets one (build_note, no metrics)."""
    note: dict[str, Any] = notes.read(commit) or build_note({}, source, weights=weights)
    who = run_git(["config", "user.email"], cwd=root, check=False).stdout.strip()
    previous = note.get("overrides")
    entries: list[Any] = list(previous) if isinstance(previous, list) else []
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("tag") == tag)]
    entry = {"tag": tag, "reason": reason, "at": now_utc(), "by": who}
    if kind is not None:
        entry["kind"] = kind
    entries.append(entry)
    note["overrides"] = entries
    notes.write(commit, note)


class Commits:
    """The commits of one repository with their metrics notes."""

    def __init__(
        self,
        root: Path,
        git_dir: Path,
        notes: Notes,
        *,
        workspace: Callable[[], Workspace],
        head: Callable[[], str | None],
        rev_parse: Callable[[str], str],
        pointers_at: Callable[[str], list[TrackedOut]],
        attachments: Callable[[], Attachments],
    ) -> None:
        self.root = root
        self.git_dir = git_dir
        self.notes = notes
        self._workspace = workspace
        self._head = head
        self._rev_parse = rev_parse
        self._pointers_at = pointers_at
        self._attachments = attachments

    def git(self, *args: str, **kw: Any) -> str:
        return run_git(list(args), cwd=self.root, **kw).stdout

    # -- the journal ----------------------------------------------------------------------

    def _pending_path(self) -> Path:
        return self.git_dir / PENDING_NOTE

    def _read_pending(self) -> dict[str, Any] | None:
        try:
            pending = json.loads(self._pending_path().read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}
        return pending if isinstance(pending, dict) and "parent" in pending else {}

    def pending_note_target(self) -> str | None:
        """The commit an interrupted `commit` made but left without its note, if any.

        It must be HEAD, a child of the journal's parent, carry the journal's tree (so a
        later plain `git commit` never receives a stale note) and have no note yet.
        """
        pending = self._read_pending()
        if not pending:
            return None
        parent, head = pending["parent"], self._head()
        if not head or head == parent:
            return None
        parents = self.git("rev-list", "--parents", "-n", "1", head).split()[1:]
        if not (parent in parents or (parent is None and not parents)):
            return None
        tree = pending.get("tree")
        if tree and self.git("rev-parse", f"{head}^{{tree}}").strip() != tree:
            return None
        return head if self.notes.read_raw(head) is None else None

    def complete_pending_note(self) -> str | None:
        """Finish a `commit` that died between `git commit` and writing its note.

        Returns the commit that got its note, if any.
        """
        pending = self._read_pending()
        if pending is None:
            return None
        target = self.pending_note_target()
        done = None
        if target and isinstance(pending.get("note"), dict):
            note = {**pending["note"], "weights": self.weights_at(target)}
            self.notes.write(target, note)
            done = target
        self._pending_path().unlink(missing_ok=True)
        return done

    # -- notes ----------------------------------------------------------------------------

    def metrics_note(self, rev: str = "HEAD") -> dict[str, Any]:
        sha = self._rev_parse(rev)
        note = self.notes.read(sha)
        if note is None:
            raise GitModelError(f"no metrics note on {rev} ({sha[:12]})", exit_code=1)
        return note

    def write_note(
        self, rev: str, metrics: dict[str, float | int], source: str = "manual", **extra: Any
    ) -> dict[str, Any]:
        """Write (or merge into) the note of rev; metrics win over what was there."""
        sha = self._rev_parse(rev)
        old = self.notes.read(sha) or {}
        note = build_note(metrics, source, weights=self.weights_at(sha), **extra)
        merged_metrics = (
            dict(old.get("metrics", {})) if isinstance(old.get("metrics"), dict) else {}
        )
        merged_metrics.update(note["metrics"])
        note = {**old, **note, "metrics": merged_metrics}
        self.notes.write(sha, note)
        return note

    def weights_at(self, sha: str) -> dict[str, Any]:
        """The note's `weights`: every tracked output of commit sha (none if unreadable)."""
        try:
            outs = self._pointers_at(sha)
        except (PointerError, GitFailed):
            return {}
        return {t.path: weight_entry(t.out) for t in outs}

    # -- commit ---------------------------------------------------------------------------

    def collect_metrics(
        self,
        metrics_file: str | os.PathLike[str] | None,
        metric_args: Sequence[str],
        cwd: Path | None = None,
    ) -> tuple[dict[str, float | int], list[str]]:
        """Metrics for a commit and the metric files to stage (validated, nothing written)."""
        ws = self._workspace()
        base = ws.base(cwd)
        metrics: dict[str, float | int] = {}
        files: list[str] = []
        if metrics_file is not None:
            path = Path(os.path.abspath(base / metrics_file))
            metrics.update(load_metrics_file(path, str(metrics_file)))
            files.append(str(path))
        elif not metric_args:
            for rel in ws.config.metrics_files:
                # The config is repository content: it names a file of the work tree,
                # read without following a link (a committed metrics.json -> ~/.netrc).
                path = ws.worktree.path(rel, f"{CONFIG_FILE} metrics-files")
                if os.path.lexists(path):
                    metrics.update(load_metrics_file(path, rel, follow_links=False))
                    files.append(str(path))
        metrics.update(parse_metric_args(metric_args))
        return metrics, files

    def commit(
        self,
        paths: Sequence[str | os.PathLike[str]],
        message: str,
        metrics_file: str | os.PathLike[str] | None = None,
        metric_args: Sequence[str] = (),
        params: dict[str, Any] | None = None,
        reporter: Reporter | None = None,
        cwd: Path | None = None,
        extra_note: dict[str, Any] | None = None,
    ) -> CommitResult:
        """add + a real `git commit` (the user's hooks run) + the metrics note.

        The caller has checked that gitmodel is set up in this work tree (Repo.commit).
        """
        ws = self._workspace()
        if not message.strip():
            raise GitModelError("empty commit message (use -m)")
        # Validate paths and metrics before anything is written.
        targets = ws.resolve_targets(paths, cwd) if paths else []
        metrics, metric_files = self.collect_metrics(metrics_file, metric_args, cwd)
        added = ws.add_targets(targets, reporter) if targets else []
        root = os.path.realpath(self.root)
        stage = []
        for f in metric_files:
            real = os.path.realpath(f)
            if real.startswith(root + os.sep):
                rel = os.path.relpath(real, root)
                ignored = (
                    run_git(
                        ["check-ignore", "-q", "--", rel], cwd=self.root, check=False
                    ).returncode
                    == 0
                )
                if not ignored:
                    stage.append(rel)
        if stage:
            self.git("add", "--", *stage, retry_lock=True)
        parent = self._head()
        staged = run_git(["diff", "--cached", "--quiet"], cwd=self.root, check=False).returncode
        if staged == 0 and parent is not None:
            raise GitModelError("nothing to commit (weights and metrics are unchanged)")
        # The journal makes a crash between `git commit` and the note recoverable.
        # Training history and `eval --store` predictions ride along as objects the note names.
        attachments = self._attachments()
        note_stub = build_note(
            metrics, "git-model commit", params=params, **{**attachments.note, **(extra_note or {})}
        )
        pending = self._pending_path()
        pending.parent.mkdir(parents=True, exist_ok=True)
        tree = self.git("write-tree").strip()  # what the commit will hold, barring hooks
        write_file(
            pending, json.dumps({"parent": parent, "tree": tree, "note": note_stub}).encode()
        )
        try:
            run_git(
                ["commit", "-q", "-m", message],
                cwd=self.root,
                env={"GITMODEL_COMMITTING": "1"},
                retry_lock=True,
            )
        except GitFailed as exc:
            pending.unlink(missing_ok=True)
            raise GitModelError(
                f"git commit failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}"
            ) from None
        sha = self._rev_parse("HEAD")
        note = {**note_stub, "weights": self.weights_at(sha)}
        self.notes.write(sha, note)
        pending.unlink(missing_ok=True)
        attachments.consume()
        return CommitResult(sha, added, note)
