"""`gitmodel.Repo`: the Python API every command calls. It never prints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitmodel.config import Config, load_config
from gitmodel.discovery import discover
from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.notes import Notes
from gitmodel.paths import WorkTree
from gitmodel.pointer import RAW_POINTER_LOG as RAW_POINTER_LOG  # re-exported
from gitmodel.pointer import TrackedOut, outs_in_commit, outs_of_blobs
from gitmodel.pointer import pointer_blobs_in_raw_log as pointer_blobs_in_raw_log  # re-exported

# Imports only the type checker needs: `typing` alone costs a few ms of every command's
# start-up (see gitmodel.record for the budget).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from gitmodel.attachments import Attachments
    from gitmodel.checkout import CheckoutResult
    from gitmodel.commit import CommitResult, Commits
    from gitmodel.lineage import Diff, LogEntry
    from gitmodel.release import Released
    from gitmodel.store import Reporter, Store
    from gitmodel.workspace import AddResult, Status, Workspace

# Names that moved to the services, importable from here as before (looked up lazily: the
# services are imported by the commands that use them, not by every `import gitmodel.repo`).
_MOVED = {
    "AddResult": "gitmodel.workspace",
    "Status": "gitmodel.workspace",
    "add_ignore_entry": "gitmodel.workspace",
    "CheckoutResult": "gitmodel.checkout",
    "OutputCheckout": "gitmodel.checkout",
    "UnstoredChanges": "gitmodel.checkout",
    "CommitResult": "gitmodel.commit",
}


def __getattr__(name: str) -> object:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Repo:
    """A git repository with gitmodel's weights store and metrics notes."""

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        root, git_dir, common_dir, hooks_path = discover(path)
        self.bare = root is None
        self.root: Path = root if root is not None else git_dir
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.hooks_path: Path | None = hooks_path
        self._config: Config | None = None
        self._store: Store | None = None
        self._notes: Notes | None = None
        self._worktree: WorkTree | None = None
        self._workspace: Workspace | None = None
        self._commits: Commits | None = None

    # -- plumbing -------------------------------------------------------------------------

    def git(self, *args: str, **kw: Any) -> str:
        return run_git(list(args), cwd=self.root, **kw).stdout

    @property
    def worktree(self) -> WorkTree:
        """The path policy for every file of the work tree gitmodel touches."""
        if self._worktree is None:
            self._worktree = WorkTree(self.root, (self.git_dir, self.common_dir))
        return self._worktree

    @property
    def dvc_dir(self) -> Path:
        return self.root / ".dvc"

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.root)
        return self._config

    @property
    def store(self) -> Store:
        """The weights cache (gitmodel.cache: DVC's cache settings at every level)."""
        if self._store is None:
            from gitmodel.cache import open_store

            linked = not self.bare and self.git_dir != self.common_dir
            self._store = open_store(self.worktree, self.root, self.common_dir if linked else None)
        return self._store

    @property
    def notes(self) -> Notes:
        if self._notes is None:
            self._notes = Notes(self.git_dir, self.root)
        return self._notes

    def rev_parse(self, rev: str) -> str:
        if rev.startswith("-"):
            raise GitModelError(f"unknown revision {rev!r}")
        proc = run_git(
            ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=self.root, check=False
        )
        if proc.returncode != 0:
            raise GitModelError(f"unknown revision {rev!r}")
        return proc.stdout.strip()

    def fetch_missing(self, outs: Sequence[TrackedOut]) -> bool:
        """Fetch objects missing from the cache from the default DVC remote, as checkout does.

        False when there is no default remote. The services (attachments) call this through
        gitmodel.workspace_view.Workspace rather than importing gitmodel.transfer themselves.
        """
        from gitmodel.transfer import fetch_for_checkout

        return fetch_for_checkout(self, outs)

    def is_revision(self, rev: str) -> bool:
        try:
            self.rev_parse(rev)
        except GitModelError:
            return False
        return True

    def head(self) -> str | None:
        proc = run_git(
            ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=self.root, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    def _require_worktree(self) -> None:
        if self.bare:
            raise GitModelError("this command needs a work tree, not a bare repository")

    @property
    def workspace(self) -> Workspace:
        """The work tree's weights (add, tracked, status, checkout): gitmodel.workspace."""
        if self._workspace is None:
            from gitmodel.workspace import Workspace

            self._require_worktree()
            self._workspace = Workspace(
                self.root,
                self.worktree,
                store=lambda: self.store,
                config=lambda: self.config,
                require_init=self.require_init,
                head=self.head,
                pointers_at=self.pointers_at,
                fetch_missing=self.fetch_missing,
            )
        return self._workspace

    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        reporter: Reporter | None = None,
        cwd: Path | None = None,
        stage: bool = True,
    ) -> list[AddResult]:
        """Store weights by content, write PATH.dvc, git-ignore PATH, stage both."""
        return self.workspace.add(paths, reporter, cwd, stage)

    def tracked(
        self, paths: Sequence[str] = (), errors: list[GitModelError] | None = None
    ) -> list[TrackedOut]:
        """Pointer outputs in the work tree (see Workspace.tracked)."""
        return self.workspace.tracked(paths, errors)

    def status(self, paths: Sequence[str] = ()) -> Status:
        """Which tracked weights are modified, missing or not in the cache."""
        return self.workspace.status(paths)

    def checkout(
        self,
        rev: str | None = None,
        paths: Sequence[str] = (),
        force: bool = False,
        missing_ok: bool = False,
        fetch: bool = True,
        reporter: Reporter | None = None,
    ) -> CheckoutResult:
        """Materialise tracked weights from the cache (see Workspace.checkout)."""
        return self.workspace.checkout(rev, paths, force, missing_ok, fetch, reporter)

    # -- init -----------------------------------------------------------------------------

    def init(self) -> list[str]:
        """Make the repo DVC-compatible and gitmodel-ready; return what was created. Idempotent."""
        from gitmodel.init import init

        self._require_worktree()
        return init(self.root, self.worktree)

    def require_init(self) -> None:
        """Refuse to store or commit in a clone that `git model init` has not set up."""
        from gitmodel.init import require_init

        require_init(self.root, self.common_dir)

    def is_initialised(self) -> bool:
        from gitmodel.init import is_initialised

        return is_initialised(self.root, self.common_dir)

    # -- pointers -------------------------------------------------------------------------

    def pointers_at(self, rev: str, paths: Sequence[str] = ()) -> list[TrackedOut]:
        """Pointer outputs in the tree of a commit (read from git objects, not the disk)."""
        return outs_in_commit(self.root, self.rev_parse(rev), paths)

    def outs_of_blobs(
        self, blobs: Sequence[tuple[str, str]], skip_unreadable: bool = False
    ) -> list[TrackedOut]:
        """Outputs of pointer blobs given as (repo-relative path, blob id), in one batch."""
        return outs_of_blobs(self.root, blobs, skip_unreadable)

    # -- commits and notes ----------------------------------------------------------------

    @property
    def commits(self) -> Commits:
        """Commits with their notes, and the pending-note journal: gitmodel.commit."""
        if self._commits is None:
            from gitmodel.commit import Commits

            self._commits = Commits(
                self.root,
                self.git_dir,
                self.notes,
                workspace=lambda: self.workspace,
                head=self.head,
                rev_parse=self.rev_parse,
                pointers_at=self.pointers_at,
                attachments=self._collect_attachments,
            )
        return self._commits

    def _collect_attachments(self) -> Attachments:
        # Imported when a commit is made, not for every Commits: gitmodel.attachments
        # imports dataclasses (and with it inspect, ast, dis: 15-40 ms), and `add` builds
        # Commits only to look for an interrupted commit's journal.
        from gitmodel.attachments import collect

        return collect(self)

    def complete_pending_note(self) -> str | None:
        """Finish a `commit` that died between `git commit` and writing its note."""
        return self.commits.complete_pending_note()

    def metrics_note(self, rev: str = "HEAD") -> dict[str, Any]:
        return self.commits.metrics_note(rev)

    def write_note(
        self, rev: str, metrics: dict[str, float | int], source: str = "manual", **extra: Any
    ) -> dict[str, Any]:
        """Write (or merge into) the note of rev; metrics win over what was there."""
        return self.commits.write_note(rev, metrics, source, **extra)

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
        """add + a real `git commit` (the user's hooks run) + the metrics note."""
        self._require_worktree()
        self.require_init()
        return self.commits.commit(
            paths, message, metrics_file, metric_args, params, reporter, cwd, extra_note
        )

    # -- reading history ------------------------------------------------------------------

    def log(
        self,
        rev_range: str = "HEAD",
        n: int | None = None,
        metric_names: Sequence[str] = (),
        noted_only: bool = False,
        all_refs: bool = False,
    ) -> list[LogEntry]:
        """Commits newest first with their metrics (see gitmodel.lineage.log)."""
        from gitmodel.lineage import log

        return log(self.root, self.head, rev_range, n, metric_names, noted_only, all_refs)

    def diff(self, a: str | None = None, b: str | None = None) -> Diff:
        """Metrics and weights between two revisions (default: the previous release, or
        HEAD~1, and HEAD)."""
        from gitmodel.lineage import diff

        if a is None:
            a, b = self.default_diff_base(), "HEAD"
        return diff(self.notes, self.rev_parse, self.pointers_at, a, b or "HEAD")

    def default_diff_base(self) -> str:
        """Where `diff` with no revisions starts: the previous release, else HEAD~1."""
        from gitmodel.config import ConfigError
        from gitmodel.evidence import previous_release_tag

        try:
            return previous_release_tag(self) or "HEAD~1"
        except ConfigError:
            return "HEAD~1"  # a broken release policy is `check`'s to report, not diff's

    # -- releasing ------------------------------------------------------------------------

    def release(
        self,
        version: str | None = None,
        *,
        bump: str | None = None,
        model: str | None = None,
        message: str | None = None,
        rev: str = "HEAD",
        allow_regression: str | None = None,
        warn: Callable[[str], None] | None = None,
        info: Callable[[str], None] | None = None,
    ) -> Released:
        """Gate rev, then tag it `version` (or the next `bump` version): gitmodel.release.

        Raises gitmodel.release.ReleaseRefused (with the verdict) when the gate fails
        and no allow_regression reason is given.
        """
        from gitmodel.release import release

        return release(
            self,
            version,
            bump=bump,
            model=model,
            message=message,
            rev=rev,
            allow_regression=allow_regression,
            warn=warn,
            info=info,
        )
