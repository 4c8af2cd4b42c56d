"""`gitmodel.Repo`: the Python API every command calls. It never prints."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# The records and pointer readers live in the services and the data layer (which must not
# import this facade); the `X as X` imports keep `from gitmodel.repo import X` working.
from gitmodel.commit import CommitResult as CommitResult  # re-exported
from gitmodel.commit import Commits
from gitmodel.config import CONFIG_FILE, DEFAULT_CONFIG, Config, load_config, read_dvc_config
from gitmodel.discovery import discover
from gitmodel.errors import GitModelError
from gitmodel.git import read_blobs, run_git
from gitmodel.lockfile import write_file
from gitmodel.notes import NOTES_REF, Notes
from gitmodel.paths import WorkTree
from gitmodel.pointer import RAW_POINTER_LOG as RAW_POINTER_LOG  # re-exported
from gitmodel.pointer import (
    PointerError,
    TrackedOut,
    filter_outs,
    outs_of_pointer,
    parse_pointer,
    pointer_blobs_in_tree,
)
from gitmodel.pointer import pointer_blobs_in_raw_log as pointer_blobs_in_raw_log  # re-exported
from gitmodel.store import DEFAULT_LINK_TYPES, Store, git_fsyncs_loose_objects
from gitmodel.workspace import AddResult as AddResult  # re-exported
from gitmodel.workspace import Workspace
from gitmodel.workspace import add_ignore_entry as add_ignore_entry  # re-exported

# Imports only the type checker needs: `typing` alone costs a few ms of every command's
# start-up (see gitmodel.record for the budget).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from gitmodel.checkout import CheckoutResult
    from gitmodel.release import Released
    from gitmodel.store import Reporter


# What `dvc init` writes, byte for byte, so the repository is a valid DVC repository.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
DVCIGNORE = (
    "# Add patterns of files dvc should ignore, which could improve\n"
    "# the performance. Learn more at\n"
    "# https://dvc.org/doc/user-guide/dvcignore\n"
)


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

    def _check_dvc_dir(self) -> None:
        """`.dvc`, `.dvc/tmp` and the stat cache are ours: a clone that commits one of them
        as a link (`.dvc -> ~`) must not make us write the cache or its state through it."""
        wt = self.worktree
        wt.path(".dvc/tmp/gitmodel/state.db", ".dvc", allow_dvc=True)
        wt.path(".dvc/config", ".dvc/config", allow_dvc=True)  # read by DVC too: no link

    @property
    def store(self) -> Store:
        if self._store is None:
            self._check_dvc_dir()
            # DVC's settings at every level (system, global, repo, local), as DVC reads
            # them; a config that never says "cache" cannot set it: nothing is parsed.
            cfg = read_dvc_config(self.dvc_dir, mentioning=b"cache")
            configured = cfg.path("cache", "dir")
            cache_dir = configured or self.dvc_dir / "cache"
            raw = cfg.get("cache", "type")
            link_types: Sequence[str] = DEFAULT_LINK_TYPES
            if raw:
                link_types = [
                    t.strip() for t in raw.strip("[]").replace("'", "").split(",") if t.strip()
                ]
            if configured is None and not self.bare and self.git_dir != self.common_dir:
                # A linked worktree: the main worktree's cache (see gitmodel.worktrees).
                from gitmodel.worktrees import share_cache

                cache_dir = share_cache(self.dvc_dir, self.common_dir)
            root = self.root
            self._store = Store(
                cache_dir,
                self.dvc_dir / "tmp" / "gitmodel" / "state.db",
                link_types,
                # Flush objects exactly when git would flush its own (core.fsync); asked
                # only when an object is written, so no-op commands pay nothing for it.
                fsync=lambda: git_fsyncs_loose_objects(root),
            )
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
        gitmodel.workspace_view.Workspace rather than importing gitmodel.remote themselves.
        """
        from gitmodel.remote import fetch_for_checkout

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

    def closest_tracked(self, path: str, rev: str | None = None) -> str | None:
        return self.workspace.closest_tracked(path, rev)

    def status(self, paths: Sequence[str] = ()) -> dict[str, list[str]]:
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
        self._require_worktree()
        created: list[str] = []
        self._check_dvc_dir()
        self.dvc_dir.mkdir(exist_ok=True)
        for rel, content in (
            (".dvc/.gitignore", DVC_GITIGNORE),
            (".dvc/config", ""),
            (".dvcignore", DVCIGNORE),
        ):
            path = self.root / rel
            if not os.path.lexists(path):
                write_file(path, content.encode())
                created.append(rel)
        (self.dvc_dir / "tmp").mkdir(exist_ok=True)
        cfg = self.root / CONFIG_FILE
        pyproject = self.root / "pyproject.toml"
        has_pyproject_cfg = pyproject.is_file() and "[tool.gitmodel" in pyproject.read_text(
            errors="replace"
        )
        if not cfg.exists() and not has_pyproject_cfg:
            write_file(cfg, DEFAULT_CONFIG.encode())
            created.append(CONFIG_FILE)
        for key in ("notes.displayRef", "notes.rewriteRef"):
            values = run_git(
                ["config", "--get-all", key], cwd=self.root, check=False
            ).stdout.split()
            if NOTES_REF not in values:
                run_git(["config", "--add", key, NOTES_REF], cwd=self.root)
        # Amend and rebase carry notes only when rewriteRef is set and the mode allows it.
        run_git(["config", "notes.rewriteMode", "concatenate"], cwd=self.root, check=False)
        # Plain `git fetch`/`git pull` bring each remote's notes (see gitmodel.notes_sync).
        from gitmodel.notes_sync import configure_fetch

        configure_fetch(self.root)
        if created:
            self.git("add", "--", *created, retry_lock=True)
        return created

    def require_init(self) -> None:
        """Refuse to store or commit in a clone that `git model init` has not set up.

        Half a set-up is worse than none: without the hooks a plain `git tag` is not gated
        and `git push` uploads no weights, and nothing would say so. `init` sets
        notes.displayRef in this clone's config (a clone does not inherit it).
        """
        if not self.is_initialised():
            raise GitModelError(
                "gitmodel is not set up in this clone: run `git model init` first "
                "(it installs the hooks that gate `git tag` and upload weights on `git push`)"
            )

    def is_initialised(self) -> bool:
        """Whether `git model init` has run in this clone (see require_init)."""
        if not self.dvc_dir.is_dir():
            return False
        try:
            if NOTES_REF.encode() in (self.common_dir / "config").read_bytes():
                return True
        except OSError:
            pass
        refs = run_git(["config", "--get-all", "notes.displayRef"], cwd=self.root, check=False)
        return NOTES_REF in refs.stdout.split()  # set through an include, or globally

    # -- pointers -------------------------------------------------------------------------

    def pointers_at(self, rev: str, paths: Sequence[str] = ()) -> list[TrackedOut]:
        """Pointer outputs in the tree of a commit (read from git objects, not the disk)."""
        sha = self.rev_parse(rev)
        blobs = pointer_blobs_in_tree(self.git("ls-tree", "-r", "-z", sha))
        return filter_outs(self.outs_of_blobs(blobs), paths)

    def outs_of_blobs(
        self, blobs: Sequence[tuple[str, str]], skip_unreadable: bool = False
    ) -> list[TrackedOut]:
        """Outputs of pointer blobs given as (repo-relative path, blob id), read in one batch.

        skip_unreadable passes over a blob that is not a valid pointer instead of raising.
        """
        outs: list[TrackedOut] = []
        texts = self.read_blobs([blob for _, blob in blobs])
        for (rel, _blob), text in zip(blobs, texts, strict=True):
            try:
                pointer = parse_pointer(self.root / rel, text, self.root)
            except PointerError:
                if skip_unreadable:
                    continue
                raise
            outs += outs_of_pointer(pointer, rel)
        return outs

    def read_blobs(self, oids: Sequence[str]) -> list[bytes]:
        """Contents of many git blobs through one `git cat-file --batch` (gitmodel.git)."""
        return read_blobs(oids, self.root)

    # -- commits and notes ----------------------------------------------------------------

    @property
    def commits(self) -> Commits:
        """Commits with their notes, and the pending-note journal: gitmodel.commit."""
        if self._commits is None:
            from gitmodel.attachments import collect

            self._commits = Commits(
                self.root,
                self.git_dir,
                self.notes,
                workspace=lambda: self.workspace,
                head=self.head,
                rev_parse=self.rev_parse,
                pointers_at=self.pointers_at,
                attachments=lambda: collect(self),
            )
        return self._commits

    def pending_note_target(self) -> str | None:
        return self.commits.pending_note_target()

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

    def collect_metrics(
        self,
        metrics_file: str | os.PathLike[str] | None,
        metric_args: Sequence[str],
        cwd: Path | None = None,
    ) -> tuple[dict[str, float | int], list[str]]:
        """Metrics for a commit and the metric files to stage (validated, nothing written)."""
        return self.commits.collect_metrics(metrics_file, metric_args, cwd)

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
    ) -> list[dict[str, Any]]:
        """Commits newest first with their metrics (see gitmodel.lineage.log)."""
        from gitmodel.lineage import log

        return log(self.root, self.head, rev_range, n, metric_names, noted_only, all_refs)

    def diff(self, a: str | None = None, b: str | None = None) -> dict[str, Any]:
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
