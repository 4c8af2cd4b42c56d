"""`gitmodel.Repo`: the Python API every command calls. It never prints."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from gitmodel import __version__
from gitmodel.config import CONFIG_FILE, DEFAULT_CONFIG, Config, load_config
from gitmodel.errors import GitModelError, Refused
from gitmodel.git import GitFailed, run_git
from gitmodel.lockfile import update_file, write_file
from gitmodel.metrics import (
    MetricsError,
    load_metrics_file,
    parse_metric_args,
    tidy,
    validate_note_metrics,
)
from gitmodel.notes import NOTES_REF, SCHEMA_VERSION, NoteError, Notes, log_with_notes, parse_note
from gitmodel.paths import UnsafePath, WorkTree

# TrackedOut and the pointer-blob readers live in gitmodel.pointer (the data layer, so the
# services and gitmodel.remote take them without importing this facade); imported here
# so `from gitmodel.repo import TrackedOut` and friends keep working.
from gitmodel.pointer import (
    POINTER_SUFFIX,
    Out,
    Pointer,
    PointerError,
    TrackedOut,
    check_inside,
    parse_pointer,
    pointer_blobs_in_tree,
    read_pointer,
    write_pointer,
)
from gitmodel.pointer import RAW_POINTER_LOG as RAW_POINTER_LOG  # re-exported
from gitmodel.pointer import pointer_blobs_in_raw_log as pointer_blobs_in_raw_log  # re-exported
from gitmodel.record import Record
from gitmodel.store import (
    DEFAULT_LINK_TYPES,
    CorruptObject,
    DirEntry,
    ObjectMissing,
    Store,
    git_fsyncs_loose_objects,
)
from gitmodel.tree import Listing, scan, trusted

# Imports only the type checker needs: `typing` alone costs a few ms of every command's
# start-up (see gitmodel.record for the budget).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import configparser
    from typing import Any

    from gitmodel.store import Reporter


# What `dvc init` writes, byte for byte, so the repository is a valid DVC repository.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
DVCIGNORE = (
    "# Add patterns of files dvc should ignore, which could improve\n"
    "# the performance. Learn more at\n"
    "# https://dvc.org/doc/user-guide/dvcignore\n"
)
PENDING_NOTE = "gitmodel/pending-note.json"


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


class CommitResult(Record):
    __slots__ = ("commit", "added", "note")

    def __init__(self, commit: str, added: list[AddResult], note: dict[str, Any]) -> None:
        self.commit = commit
        self.added = added
        self.note = note


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

    # -- add ------------------------------------------------------------------------------

    def _base(self, cwd: Path | None) -> Path:
        """Where the user's relative paths start: the current directory, or the work tree's
        root when the current directory is outside it (`git --work-tree=A` run from B), as
        git itself reads paths then."""
        base = cwd or Path.cwd()
        real, root = os.path.realpath(base), os.path.realpath(self.root)
        if real != root and not real.startswith(root + os.sep):
            return self.root
        return base

    def _resolve_targets(
        self, paths: Sequence[str | os.PathLike[str]], cwd: Path | None = None
    ) -> list[Path]:
        """Validate user paths before anything is written: exist, inside, not git's own."""
        self._require_worktree()
        self.require_init()
        if not paths:
            raise GitModelError("no paths given")
        base = self._base(cwd)
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
        return self._add_targets(self._resolve_targets(paths, cwd), reporter, stage)

    def _add_targets(
        self, targets: Sequence[Path], reporter: Reporter | None, stage: bool = True
    ) -> list[AddResult]:
        """add for paths _resolve_targets has already validated."""
        root = Path(os.path.realpath(self.root))
        results: list[AddResult] = []
        to_stage: list[str] = []
        for target in targets:
            listing = scan(target) if target.is_dir() else None
            size = sum(listing.sizes) if listing is not None else target.stat().st_size
            progress = reporter.start(f"storing {target.name}", size) if reporter else None
            try:
                if listing is not None:
                    oid, total, nfiles = self.store.store_dir(target, progress, listing)
                    out = Out(target.name, oid, total, nfiles)
                else:
                    md5, total = self.store.store_file(target, progress)
                    out = Out(target.name, md5, total)
            finally:
                if reporter:
                    reporter.stop()
            if self.config.dedup:
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

    def _dedup(self, md5: str, rel: str, size: int, reporter: Reporter | None) -> None:
        """Chunk a stored output, with the same path's version in HEAD as the delta base."""
        from gitmodel.dedup import dedup_output

        parent = None
        head = self.head()
        if head:
            try:
                parent = next(
                    (t.out.md5 for t in self.pointers_at(head, [rel]) if t.path == rel), None
                )
            except GitModelError:  # a damaged parent pointer only costs the deltas
                parent = None
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
        self._require_worktree()
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
                found = self._outs_of(pointer, rel)
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
        return _filter_paths(outs, paths)

    def _outs_of(self, pointer: Pointer, pointer_rel: str) -> list[TrackedOut]:
        base = os.path.dirname(pointer_rel)
        return [
            TrackedOut(os.path.normpath(os.path.join(base, o.path)), pointer_rel, o)
            for o in pointer.outs
        ]

    def pointers_at(self, rev: str, paths: Sequence[str] = ()) -> list[TrackedOut]:
        """Pointer outputs in the tree of a commit (read from git objects, not the disk)."""
        sha = self.rev_parse(rev)
        blobs = pointer_blobs_in_tree(self.git("ls-tree", "-r", "-z", sha))
        return _filter_paths(self.outs_of_blobs(blobs), paths)

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
            outs += self._outs_of(pointer, rel)
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
        return {t.path: _weight_entry(t.out) for t in outs}

    # -- commit ---------------------------------------------------------------------------

    def collect_metrics(
        self,
        metrics_file: str | os.PathLike[str] | None,
        metric_args: Sequence[str],
        cwd: Path | None = None,
    ) -> tuple[dict[str, float | int], list[str]]:
        """Metrics for a commit and the metric files to stage (validated, nothing written)."""
        base = self._base(cwd)
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
        targets = self._resolve_targets(paths, cwd) if paths else []
        metrics, metric_files = self.collect_metrics(metrics_file, metric_args, cwd)
        added = self._add_targets(targets, reporter) if targets else []
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
                "old": _weight_entry(oa) if oa else None,
                "new": _weight_entry(ob) if ob else None,
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

    # -- work tree ------------------------------------------------------------------------

    def status(self, paths: Sequence[str] = ()) -> dict[str, list[str]]:
        """Which tracked weights differ from their pointer (`modified`) or are absent (`missing`)."""
        modified: list[str] = []
        missing: list[str] = []
        uncached: list[str] = []
        store = self.store
        outs = self.tracked(paths)
        self._require_matches(outs, paths)
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
                if not full.is_dir() or store.tree_oid(full) != t.out.md5:
                    modified.append(t.path)
            elif not full.is_file() or store.file_md5(full) != t.out.md5:
                modified.append(t.path)
        return {"modified": modified, "missing": missing, "not_in_cache": uncached}

    def _require_matches(
        self, outs: Sequence[TrackedOut], paths: Sequence[str], rev: str | None = None
    ) -> None:
        """Refuse a path that names no tracked weights: a typo must not read as "up to date"."""
        for path in paths:
            if not _filter_paths(list(outs), [path]):
                close = self.closest_tracked(path, rev)
                hint = f"; did you mean {close}?" if close else ""
                where = f" at {rev}" if rev else ""
                raise GitModelError(f"{path}: no tracked weights{where}{hint}")

    def closest_tracked(self, path: str, rev: str | None = None) -> str | None:
        """The tracked path (in the work tree, or at rev) that a mistyped path most resembles."""
        import difflib  # only on error paths

        every = self.pointers_at(rev) if rev else self.tracked(errors=[])
        close = difflib.get_close_matches(
            os.path.normpath(path), sorted({t.path for t in every}), n=1
        )
        return close[0] if close else None

    def _cached(self, out: Out) -> bool:
        from gitmodel.dedup import available

        if not available(self.store, out.md5):
            return False
        if out.is_dir:
            return self.store.has_tree(out.md5, lambda oid: available(self.store, oid))
        return True

    def _plan_dir(
        self, t: TrackedOut, entries: Sequence[DirEntry], force: bool, summary: OutputCheckout
    ) -> DirPlan:
        """What checking out directory t to entries takes; refuses before anything is written.

        The directory ends up holding exactly its version (as `dvc checkout` does): files
        its version lacks are removed. A file whose content is not in the cache, whether
        it would be overwritten or removed, is refused unless forced: nothing unstored is
        ever lost. Files whose stat matches the directory's index are not opened.
        """
        from gitmodel.dedup import available

        store = self.store
        full = self.root / t.path
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
            and trusted(index.taken, listing.max_mtime)
            and index.stats == listing.stats_blob()
        ):
            summary.unchanged = len(entries)
            plan.unchanged = {i: i for i in range(len(entries))}
            plan.exact = True
            return plan  # exactly its version already: nothing to open
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
            if not store.exists(e.md5) and not available(store, e.md5):
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
        wt = self.worktree
        where = f"{t.pointer} ({t.out.md5})"
        for parent in sorted(parents):
            wt.path(f"{t.path}/{parents[parent]}", where, leaf_link_ok=True)
        plan.parents = sorted(parents)
        summary.unchanged = len(plan.unchanged)
        summary.missing = len(plan.missing)
        return plan

    def _write_dir(self, plan: DirPlan, reporter: Reporter | None, bad: list[GitModelError]) -> int:
        """Write a directory's planned files and record its index; how many were written."""
        store = self.store
        wt = self.worktree
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
            if not store.exists(entries[i].md5):
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
            results = store.materialise_files(items, progress)
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
            if not trusted(listing.taken, listing.max_mtime):
                taken = listing.taken
            lines = []
            for i, e in enumerate(entries):
                if i in written:
                    ino, mtime, size = written[i]
                    lines.append(f"{e.relpath}\0{ino}\0{mtime}\0{size}")
                else:
                    lines.append(listing.lines[plan.unchanged[i]])
            stats = "\n".join(lines).encode("utf-8", "surrogateescape")
            store.put_tree(plan.key, plan.out.out.md5, taken, stats, [e.md5 for e in entries])
        plan.todo = [i for i in todo if i in written]  # what the result lists as written
        return len(written)

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
        self._require_worktree()
        # A bad pointer or manifest is reported after the good weights are written: one
        # hostile file in a pushed repository must not hold the others hostage.
        bad: list[GitModelError] = []
        outs = self.pointers_at(rev, paths) if rev else self.tracked(paths, errors=bad)
        if not bad:
            self._require_matches(outs, paths, rev)
        store = self.store
        from gitmodel.dedup import available, ensure_object
        from gitmodel.dedup.packs import CorruptChunk

        # Plan first: which files to write, from which objects; refuse before writing anything.
        plan: list[tuple[str, str, OutputCheckout]] = []  # single files: (path, oid, summary)
        manifests: list[tuple[TrackedOut, list[DirEntry]]] = []
        dir_plans: list[tuple[DirPlan, OutputCheckout]] = []
        missing: list[str] = []
        result = CheckoutResult()
        wt = self.worktree
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
                    plan.append((t.path, t.out.md5, summary))
                    result.outputs.append(summary)
            except GitModelError as exc:
                bad.append(exc)
        _remove_checkout_leftovers(wt.root, [rel for rel, _, _ in plan])
        for t, entries in manifests:
            summary = OutputCheckout(t.path, True, len(entries))
            try:
                dir_plans.append((self._plan_dir(t, entries, force, summary), summary))
            except UnstoredChanges:
                raise
            except GitModelError as exc:
                bad.append(exc)
                continue
            result.outputs.append(summary)
        todo: list[tuple[str, str, OutputCheckout]] = []
        for rel, oid, summary in plan:
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
                        f"{rel} is a symbolic link that gitmodel did not make; "
                        "remove it or use --force"
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
            todo.append((rel, oid, summary))
        for p, _ in dir_plans:
            missing += p.missing
        if missing and not missing_ok:
            from gitmodel.remote import fetch_for_checkout

            if fetch and fetch_for_checkout(self, outs):
                return self.checkout(rev, paths, force, missing_ok, fetch=False, reporter=reporter)
            raise ObjectMissing(missing)
        result.skipped_missing = missing
        for rel, oid, summary in todo:
            try:
                # a deduplicated object the cache dropped is rebuilt (and verified) first
                ensure_object(store, oid)
            except (CorruptObject, CorruptChunk) as exc:
                bad.append(exc)
                continue
            size = store.oid_to_path(oid).stat().st_size
            progress = reporter.start(f"restoring {rel}", size) if reporter else None
            try:
                full = wt.root / rel
                wt.make_parents(full, rel)
                store.materialise(oid, full, progress)
            except (CorruptObject, UnsafePath) as exc:
                bad.append(exc)
                continue
            finally:
                if reporter:
                    reporter.stop()
            result.written.append(rel)
            summary.written = 1
        for p, summary in dir_plans:
            summary.written = self._write_dir(p, reporter, bad)
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


class UnstoredChanges(Refused):
    """A checkout would overwrite or remove content the cache does not hold."""


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
    kept = Listing(listing.root)
    kept.taken = listing.taken
    for i, rel in enumerate(listing.rels):
        if i not in drop:
            kept.rels.append(rel)
            kept.lines.append(listing.lines[i])
            kept.sizes.append(listing.sizes[i])
            kept.max_mtime = max(kept.max_mtime, int(listing.lines[i].rsplit("\0", 2)[1]))
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


def _weight_entry(out: Out) -> dict[str, Any]:
    d: dict[str, Any] = {"md5": out.md5, "size": out.size}
    if out.nfiles is not None:
        d["nfiles"] = out.nfiles
    return d


def _filter_paths(outs: list[TrackedOut], paths: Iterable[str]) -> list[TrackedOut]:
    wanted = [os.path.normpath(p).rstrip("/") for p in paths]
    if not wanted:
        return outs
    keep = []
    for t in outs:
        for w in wanted:
            if (
                w == "."  # the repository root: everything
                or t.path == w
                or t.pointer == w
                or t.path.startswith(w + "/")
                or w.startswith(t.path + "/")
            ):
                keep.append(t)
                break
    return keep
