"""`gitmodel.Repo`: the Python API every command calls. It never prints."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

# The records and pointer readers live in the services and the data layer (which must not
# import this facade); the `X as X` imports keep `from gitmodel.repo import X` working.
from gitmodel import __version__
from gitmodel.config import CONFIG_FILE, DEFAULT_CONFIG, Config, load_config
from gitmodel.errors import GitModelError
from gitmodel.git import GitFailed, run_git
from gitmodel.lockfile import write_file
from gitmodel.metrics import (
    MetricsError,
    load_metrics_file,
    parse_metric_args,
    tidy,
    validate_note_metrics,
)
from gitmodel.notes import NOTES_REF, SCHEMA_VERSION, NoteError, Notes, log_with_notes, parse_note
from gitmodel.paths import WorkTree
from gitmodel.pointer import RAW_POINTER_LOG as RAW_POINTER_LOG  # re-exported
from gitmodel.pointer import (
    PointerError,
    TrackedOut,
    filter_outs,
    outs_of_pointer,
    parse_pointer,
    pointer_blobs_in_tree,
    weight_entry,
)
from gitmodel.pointer import pointer_blobs_in_raw_log as pointer_blobs_in_raw_log  # re-exported
from gitmodel.record import Record
from gitmodel.store import DEFAULT_LINK_TYPES, Store, git_fsyncs_loose_objects
from gitmodel.workspace import AddResult, Workspace
from gitmodel.workspace import add_ignore_entry as add_ignore_entry  # re-exported

# Imports only the type checker needs: `typing` alone costs a few ms of every command's
# start-up (see gitmodel.record for the budget).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import configparser
    from typing import Any

    from gitmodel.checkout import CheckoutResult
    from gitmodel.store import Reporter


# What `dvc init` writes, byte for byte, so the repository is a valid DVC repository.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
DVCIGNORE = (
    "# Add patterns of files dvc should ignore, which could improve\n"
    "# the performance. Learn more at\n"
    "# https://dvc.org/doc/user-guide/dvcignore\n"
)
PENDING_NOTE = "gitmodel/pending-note.json"


class CommitResult(Record):
    __slots__ = ("commit", "added", "note")

    def __init__(self, commit: str, added: list[AddResult], note: dict[str, Any]) -> None:
        self.commit = commit
        self.added = added
        self.note = note


def _now() -> str:
    """Now in UTC as ISO 8601 with a Z, to the second (time.strftime: no datetime import)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _git_says(stderr: str) -> str:
    """git's own reason (dubious ownership, a bad GIT_DIR) as one line, with its hint."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith("fatal: ")), "")
    if "dubious ownership" in fatal:
        hint = next(
            (line for line in lines if "safe.directory" in line and "git config" in line), ""
        )
        return fatal.removeprefix("fatal: ") + (f" (to trust it: {hint})" if hint else "")
    if fatal and "not a git repository" not in fatal:
        return fatal.removeprefix("fatal: ")
    return "not a git repository (run `git init` first)"


def _repository_env() -> dict[str, str]:
    """GIT_DIR and GIT_WORK_TREE as `git --git-dir/--work-tree` (or the user) set them for
    `git model`, made absolute: they name the repository to work on."""
    env = {}
    for key in ("GIT_DIR", "GIT_WORK_TREE"):
        value = os.environ.get(key)
        if value:
            env[key] = os.path.abspath(value)
    return env


def discover(path: str | os.PathLike[str] = ".") -> tuple[Path | None, Path, Path, Path]:
    """(work tree root or None if bare, git dir, common git dir, hooks dir) at path.

    The hooks dir is where git runs hooks from (core.hooksPath respected): commands check
    that ours are there, and it costs nothing in the same git call.

    Called with the default ".", the repository is the one git was told to use: GIT_DIR and
    GIT_WORK_TREE (what `git --git-dir=... --work-tree=...` and `git -C` hand to `git model`)
    are honoured, as every git command does.
    """
    if not os.path.isdir(path):
        raise GitModelError(f"{path}: no such directory")
    env = _repository_env() if os.fspath(path) == "." else {}
    # One git process in the common case (a work tree); it is on every command's path.
    both = run_git(
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--git-path",
            "hooks",
            "--show-toplevel",
        ],
        cwd=path,
        check=False,
        env=env,
    )
    lines = both.stdout.splitlines()
    if both.returncode == 0 and len(lines) == 4 and lines[3]:
        found = Path(lines[3]), Path(lines[0]), Path(lines[1])
        if env:
            _check_rediscoverable(*found)
        return (*found, Path(lines[2]))
    proc = run_git(
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--git-path",
            "hooks",
            "--is-bare-repository",
        ],
        cwd=path,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise GitModelError(_git_says(proc.stderr or both.stderr))
    git_dir, common_dir, hooks, bare = proc.stdout.splitlines()[:4]
    if bare == "true":
        if env:
            _check_rediscoverable(None, Path(git_dir), Path(common_dir))
        return None, Path(git_dir), Path(common_dir), Path(hooks)
    top = run_git(["rev-parse", "--show-toplevel"], cwd=path, check=False, env=env)
    if top.returncode != 0 or not top.stdout.strip():
        raise GitModelError("not inside a git work tree")
    found = Path(top.stdout.strip()), Path(git_dir), Path(common_dir)
    if env:
        _check_rediscoverable(*found)
    return (*found, Path(hooks))


def _check_rediscoverable(root: Path | None, git_dir: Path, common_dir: Path) -> None:
    """gitmodel runs git in the work tree's root (or the bare repository) without GIT_DIR,
    so that root must lead git to the same repository; say so instead of using another."""
    where = root if root is not None else git_dir
    proc = run_git(["rev-parse", "--path-format=absolute", "--git-dir"], cwd=where, check=False)
    seen = proc.stdout.strip()
    if proc.returncode != 0 or os.path.realpath(seen) != os.path.realpath(git_dir):
        raise GitModelError(
            f"git directory {git_dir} is not the one its work tree {where} leads to; "
            "gitmodel needs the work tree's own .git (a file or directory)"
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

    def dvc_config(self) -> configparser.ConfigParser:
        """DVC's own config (.dvc/config then .dvc/config.local), for cache settings."""
        import configparser  # lazy: most repositories leave the cache settings alone

        from gitmodel.paths import read_bytes

        parser = configparser.ConfigParser(interpolation=None, strict=False)
        for name in ("config", "config.local"):
            try:
                # Never through a link: a committed `.dvc/config -> ~/.aws/credentials`
                # is refused, not read (UnsafePath).
                data = read_bytes(self.dvc_dir / name, f".dvc/{name}")
            except OSError:  # as configparser.read: a file that cannot be opened is skipped
                continue
            try:
                parser.read_string(data.decode("utf-8"), source=f".dvc/{name}")
            except (configparser.Error, UnicodeDecodeError) as exc:
                raise GitModelError(
                    f".dvc/{name}: cannot parse ({str(exc).splitlines()[0]})"
                ) from None
        return parser

    def _dvc_config_mentions(self, word: bytes) -> bool:
        for name in ("config", "config.local"):
            try:
                if word in (self.dvc_dir / name).read_bytes():
                    return True
            except OSError:  # as configparser.read: a file that cannot be opened is skipped
                pass
        return False

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
            cache_dir = self.dvc_dir / "cache"
            link_types: Sequence[str] = DEFAULT_LINK_TYPES
            # A config that never says "cache" cannot set it: skip configparser's import.
            cfg = self.dvc_config() if self._dvc_config_mentions(b"cache") else None
            configured = False
            if cfg is not None and cfg.has_section("cache"):
                if cfg.get("cache", "dir", fallback=None):
                    cache_dir = (self.dvc_dir / cfg.get("cache", "dir")).resolve()
                    configured = True
                raw = cfg.get("cache", "type", fallback=None)
                if raw:
                    link_types = [
                        t.strip() for t in raw.strip("[]").replace("'", "").split(",") if t.strip()
                    ]
            if not configured and not self.bare and self.git_dir != self.common_dir:
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
        """Contents of many git blobs through one `git cat-file --batch`."""
        if not oids:
            return []
        import subprocess

        from gitmodel.git import git_env

        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=("\n".join(oids) + "\n").encode(),
            capture_output=True,
            env=git_env(),
            check=True,
        )
        data, pos, out = proc.stdout, 0, []
        for _ in oids:
            nl = data.index(b"\n", pos)
            header = data[pos:nl].split()
            size = int(header[2])
            out.append(data[nl + 1 : nl + 1 + size])
            pos = nl + 1 + size + 1
        return out

    # -- notes ----------------------------------------------------------------------------

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
        parent, head = pending["parent"], self.head()
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
            note = {**pending["note"], "weights": self._weights_at(target)}
            self.notes.write(target, note)
            done = target
        self._pending_path().unlink(missing_ok=True)
        return done

    def metrics_note(self, rev: str = "HEAD") -> dict[str, Any]:
        sha = self.rev_parse(rev)
        note = self.notes.read(sha)
        if note is None:
            raise GitModelError(f"no metrics note on {rev} ({sha[:12]})", exit_code=1)
        return note

    def write_note(
        self, rev: str, metrics: dict[str, float | int], source: str = "manual", **extra: Any
    ) -> dict[str, Any]:
        """Write (or merge into) the note of rev; metrics win over what was there."""
        sha = self.rev_parse(rev)
        old = self.notes.read(sha) or {}
        note = self._build_note(metrics, source, weights=self._weights_at(sha), **extra)
        merged_metrics = (
            dict(old.get("metrics", {})) if isinstance(old.get("metrics"), dict) else {}
        )
        merged_metrics.update(note["metrics"])
        note = {**old, **note, "metrics": merged_metrics}
        self.notes.write(sha, note)
        return note

    def _build_note(
        self,
        metrics: dict[str, float | int],
        source: str,
        weights: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        note: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "metrics": dict(sorted(metrics.items())),
            "weights": weights or {},
            "created": _now(),
            "source": source,
            "tool": f"gitmodel {__version__}",
        }
        note.update({k: v for k, v in extra.items() if v is not None})
        return note

    def _weights_at(self, sha: str) -> dict[str, Any]:
        try:
            outs = self.pointers_at(sha)
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
        base = self.workspace.base(cwd)
        metrics: dict[str, float | int] = {}
        files: list[str] = []
        if metrics_file is not None:
            path = Path(os.path.abspath(base / metrics_file))
            metrics.update(load_metrics_file(path, str(metrics_file)))
            files.append(str(path))
        elif not metric_args:
            for rel in self.config.metrics_files:
                # The config is repository content: it names a file of the work tree,
                # read without following a link (a committed metrics.json -> ~/.netrc).
                path = self.worktree.path(rel, f"{CONFIG_FILE} metrics-files")
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
        """add + a real `git commit` (the user's hooks run) + the metrics note."""
        self._require_worktree()
        self.require_init()
        if not message.strip():
            raise GitModelError("empty commit message (use -m)")
        # Validate paths and metrics before anything is written.
        targets = self.workspace.resolve_targets(paths, cwd) if paths else []
        metrics, metric_files = self.collect_metrics(metrics_file, metric_args, cwd)
        added = self.workspace.add_targets(targets, reporter) if targets else []
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
        parent = self.head()
        staged = run_git(["diff", "--cached", "--quiet"], cwd=self.root, check=False).returncode
        if staged == 0 and parent is not None:
            raise GitModelError("nothing to commit (weights and metrics are unchanged)")
        # The journal makes a crash between `git commit` and the note recoverable.
        # Training history and `eval --store` predictions ride along as objects the note names.
        from gitmodel.attachments import collect as collect_attachments

        attachments = collect_attachments(self)
        note_stub = self._build_note(
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
        sha = self.rev_parse("HEAD")
        note = {**note_stub, "weights": self._weights_at(sha)}
        self.notes.write(sha, note)
        pending.unlink(missing_ok=True)
        attachments.consume()
        return CommitResult(sha, added, note)

    # -- reading history ------------------------------------------------------------------

    def log(
        self,
        rev_range: str = "HEAD",
        n: int | None = None,
        metric_names: Sequence[str] = (),
        noted_only: bool = False,
        all_refs: bool = False,
    ) -> list[dict[str, Any]]:
        """Commits newest first with their metrics; one `git log` reads every note in bulk.

        n counts the rows returned: with noted_only, the first n commits that carry a note
        (git's -n would count the commits walked). all_refs walks every branch, tag and
        remote-tracking ref, as `git log --all`, instead of rev_range.
        """
        if rev_range.startswith("-"):
            raise GitModelError(f"unknown revision {rev_range!r}")
        # git formats the date (in C, in UTC); a subject cannot hold the NUL between fields.
        args = ["--date=format-local:%Y-%m-%dT%H:%M:%SZ"]
        if n is not None and not noted_only:
            args.append(f"-n{n}")
        # The notes refs are commits too, but of notes, not of the project.
        revs = ["--exclude=refs/notes/*", "--all"] if all_refs else [rev_range]
        wanted = set(metric_names)
        rows: list[dict[str, Any]] = []
        if n == 0:
            return rows
        records = log_with_notes(self.root, ["%H", "%cd", "%s"], [*args, *revs], {"TZ": "UTC"})
        try:
            for sha_b, date_b, subject_b, note_b in records:
                if noted_only and not note_b.strip():
                    continue
                sha = sha_b.decode("ascii", errors="replace")
                note_b = note_b.strip()
                row: dict[str, Any] = {
                    "commit": sha,
                    "date": date_b.decode("ascii", errors="replace"),
                    "subject": subject_b.decode(errors="replace"),
                    "metrics": {},
                    "has_note": bool(note_b),
                }
                if note_b:
                    try:
                        # bytes that are not ASCII go to json.loads, which checks their UTF-8
                        note = parse_note(note_b.decode() if note_b.isascii() else note_b, sha)
                        row["metrics"] = validate_note_metrics(
                            note.get("metrics", {}), f"note on {sha[:12]}"
                        )
                        weights = note.get("weights")
                        row["weights"] = weights if isinstance(weights, dict) else {}
                    except (NoteError, MetricsError) as exc:
                        row["error"] = exc.message
                if wanted:
                    row["metrics"] = {k: v for k, v in row["metrics"].items() if k in wanted}
                rows.append(row)
                if n is not None and len(rows) >= n:
                    break  # the generator, dropped on return, stops git: no more history is read
        except GitFailed:
            # Asked only on failure: one git process less on every successful log.
            if self.head() is None:
                return []
            raise GitModelError(f"unknown revision or range {rev_range!r}") from None
        return rows

    def diff(self, a: str | None = None, b: str | None = None) -> dict[str, Any]:
        """Metrics and weights between two revisions (default HEAD~1 and HEAD)."""
        if a is None:
            a, b = self.default_diff_base(), "HEAD"
        b = b or "HEAD"
        sha_a, sha_b = self.rev_parse(a), self.rev_parse(b)
        ma = self._metrics_of(sha_a)
        mb = self._metrics_of(sha_b)
        metrics: dict[str, Any] = {}
        for name in sorted(set(ma) | set(mb)):
            old, new = ma.get(name), mb.get(name)
            metrics[name] = {
                "old": old,
                "new": new,
                "delta": tidy(new - old) if old is not None and new is not None else None,
            }
        wa = {t.path: t.out for t in self.pointers_at(sha_a)}
        wb = {t.path: t.out for t in self.pointers_at(sha_b)}
        weights: dict[str, Any] = {}
        for path in sorted(set(wa) | set(wb)):
            oa, ob = wa.get(path), wb.get(path)
            if oa is not None and ob is not None and oa.md5 == ob.md5:
                continue
            status = "added" if oa is None else "deleted" if ob is None else "modified"
            weights[path] = {
                "status": status,
                "old": weight_entry(oa) if oa else None,
                "new": weight_entry(ob) if ob else None,
            }
        return {
            "a": {"rev": a, "commit": sha_a},
            "b": {"rev": b, "commit": sha_b},
            "metrics": metrics,
            "weights": weights,
        }

    def default_diff_base(self) -> str:
        """Where `diff` with no revisions starts: the previous release, else HEAD~1."""
        from gitmodel.config import ConfigError
        from gitmodel.gate import previous_release_tag

        try:
            return previous_release_tag(self) or "HEAD~1"
        except ConfigError:
            return "HEAD~1"  # a broken release policy is `check`'s to report, not diff's

    def _metrics_of(self, sha: str) -> dict[str, float | int]:
        note = self.notes.read(sha)
        if not note:
            return {}
        return validate_note_metrics(note.get("metrics", {}), f"note on {sha[:12]}")
