"""Read tracked weights of any revision of a git repository, without cloning it.

`gitmodel.open(path, repo=URL, rev=REV)`, `gitmodel.read(...)` and `git model get` (what
`dvc.api.open`, `dvc.api.read` and `dvc get` are to DVC). The revision is fetched alone
into a temporary bare repository (`git fetch --depth=1 --filter=blob:none` of its one
commit; blobs arrive lazily, only the pointer, `.dvc/config` and what is read), the
weights come from the DVC remote that revision's `.dvc/config` names, and nothing is
left behind but the output the caller asked for: no clone, no cache.

REV is a branch, a tag (a release `clf@v1.2.0` or `v1.2.0`), a commit, or a stage
`clf#prod` (`#prod` for the main line): the version holding the stage now, as `gto show`
says (see gitmodel.registry). Without a repo the enclosing repository is read, and
weights already in its cache are used (verified) before the remote is asked.

Everything read is hostile until checked: pointers and `.dir` manifests are validated
like any other (paths stay inside the output), every byte written is hashed and compared
with the pointer's md5 (and size) before it is returned or renamed into place, and the
temporary repository runs no hooks.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gitmodel.errors import GitModelError, Refused
from gitmodel.git import GitFailed, git_env, run_git

if TYPE_CHECKING:
    from gitmodel.pointer import Out

MAX_META_BYTES = 1 << 20  # a pointer, manifest or DVC config larger than this is not one
_HEX = re.compile(r"^[0-9a-f]{4,64}$")
_NO_HOOKS = ["-c", "core.hooksPath=/dev/null"]


class GetError(GitModelError):
    """A revision, path or remote that cannot be read (exit 2)."""


class CorruptDownload(Refused):
    """Bytes that do not hash to what the pointer names (exit 1): never returned."""


@dataclass
class Resolved:
    """What REV turned out to mean."""

    rev: str
    commit: str
    kind: str  # "stage", "tag", "branch", "commit", "HEAD"
    version: str | None = None  # the release at the commit, when there is one
    detail: str = ""  # e.g. "clf#prod#3 assigned it"

    def to_json(self) -> dict[str, Any]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "kind": self.kind,
            "version": self.version,
            "detail": self.detail,
        }


@dataclass
class GetResult:
    path: str
    output: str
    source: str  # the repository URL, or "." for the enclosing one
    resolved: Resolved
    kind: str  # "file", "directory", "git" (a plain file git tracks)
    files: int = 0
    bytes: int = 0
    md5: str | None = None
    remote: str | None = None
    remote_config: str = "revision"  # whose .dvc/config named the remote (or "HEAD (...)")
    from_cache: int = 0  # files taken from the local cache (verified) instead of the remote

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "output": self.output,
            "repo": self.source,
            "rev": self.resolved.to_json(),
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
            "md5": self.md5,
            "remote": self.remote,
            "remote_config": self.remote_config,
            "from_cache": self.from_cache,
        }


# -- git -----------------------------------------------------------------------------


def _git_bytes(args: Sequence[str], cwd: Path) -> bytes | None:
    """stdout of git as bytes (run_git is text), None when git fails."""
    proc = subprocess.run(
        ["git", *_NO_HOOKS, *args],
        cwd=cwd,
        env=git_env({"GIT_TERMINAL_PROMPT": "0"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return proc.stdout if proc.returncode == 0 else None


def _is_local_path(url: str) -> bool:
    if "://" in url:
        return url.startswith("file://")
    # scp-like "host:path" (but not a Windows drive or a path with a colon after a slash)
    head = url.split("/", 1)[0]
    return ":" not in head


@dataclass
class _Tree:
    """One commit's tree, read with git in `cwd` (a temporary partial repository or the
    user's own)."""

    cwd: Path
    commit: str
    _listing: list[str] | None = None

    def entry(self, path: str) -> tuple[str, str, str] | None:
        """(mode, type, oid) of path at the commit, None when it is not there."""
        proc = run_git(
            [*_NO_HOOKS, "ls-tree", "-z", "--full-tree", self.commit, "--", path],
            cwd=self.cwd,
            check=False,
        )
        for item in proc.stdout.split("\0") if proc.returncode == 0 else []:
            meta, _, name = item.partition("\t")
            parts = meta.split()
            if name == path and len(parts) == 3:
                return parts[0], parts[1], parts[2]
        return None

    def blob(self, path: str, limit: int | None = MAX_META_BYTES) -> bytes | None:
        """The content of a regular file at path (None if absent, a symlink or too large)."""
        entry = self.entry(path)
        if entry is None or entry[1] != "blob" or entry[0] not in ("100644", "100755"):
            return None
        if limit is not None:
            size = _git_bytes(["cat-file", "-s", entry[2]], self.cwd)
            if size is None or int(size.strip() or b"0") > limit:
                return None
        return _git_bytes(["cat-file", "blob", entry[2]], self.cwd)

    def pointer_files(self) -> list[str]:
        """Every `*.dvc` file of the commit (outside `.dvc/`)."""
        if self._listing is None:
            proc = run_git(
                [*_NO_HOOKS, "ls-tree", "-r", "-z", "--name-only", "--full-tree", self.commit],
                cwd=self.cwd,
                check=False,
            )
            names = proc.stdout.split("\0") if proc.returncode == 0 else []
            self._listing = [
                n for n in names if n.endswith(".dvc") and not n.startswith(".dvc/") and n
            ]
        return self._listing


# -- resolving REV ----------------------------------------------------------------------


def _ls_remote(cwd: Path, url: str) -> tuple[dict[str, str], dict[str, str]]:
    """(ref -> object, ref -> peeled commit) of a remote, from one `git ls-remote`."""
    proc = run_git(
        [*_NO_HOOKS, "ls-remote", "--", url],
        cwd=cwd,
        check=False,
        env={"GIT_TERMINAL_PROMPT": "0"},
    )
    if proc.returncode != 0:
        last = (proc.stderr or "").strip().splitlines()
        raise GetError(f"cannot read git repository {url}: {last[-1] if last else 'failed'}")
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        oid, _, ref = line.partition("\t")
        if ref.endswith("^{}"):
            peeled[ref[:-3]] = oid
        elif ref:
            refs[ref] = oid
    for ref, oid in refs.items():
        peeled.setdefault(ref, oid)
    return refs, peeled


def _release_at(peeled: dict[str, str], commit: str, line: str) -> str | None:
    from gitmodel.versions import is_release, parse_tag

    names = [
        r[len("refs/tags/") :]
        for r, c in peeled.items()
        if c == commit and r.startswith("refs/tags/")
    ]
    found = [parse_tag(n) for n in names if is_release(n, "v*") and parse_tag(n).line == line]
    versioned = [t for t in found if t.version is not None]
    if versioned:
        return max(versioned, key=lambda t: t.version).name  # type: ignore[arg-type, return-value]
    return found[0].name if found else None


def _stage_holder(
    cwd: Path,
    line: str,
    stage: str,
    rev: str,
    where: str,
    release_at: Callable[[str], str | None] | None = None,
) -> Resolved:
    from gitmodel.registry import Registry

    holder = Registry.read(cwd).holder(line, stage)
    if holder is None:
        raise GetError(f"{rev}: no version holds stage {stage!r} in {where}")
    version = holder.release or (release_at(holder.commit) if release_at else None)
    return Resolved(
        rev,
        holder.commit,
        "stage",
        version,
        f"{holder.event.tag} assigned {version or holder.commit[:12]}",
    )


class _RemoteRepo:
    """A temporary bare repository that fetches single revisions of `url` on demand."""

    def __init__(self, url: str, workdir: Path) -> None:
        if _is_local_path(url):
            local = url.removeprefix("file://")
            if not os.path.exists(local):
                raise GetError(f"no git repository at {url}")
            url = "file://" + os.path.abspath(local)
        self.url = url
        self.cwd = workdir / "repo.git"
        run_git(["init", "-q", "--bare", str(self.cwd)], cwd=workdir)
        for key, value in (
            ("remote.origin.url", url),
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialclonefilter", "blob:none"),
            ("core.hooksPath", "/dev/null"),
        ):
            run_git(["config", key, value], cwd=self.cwd)
        self.refs, self.peeled = _ls_remote(self.cwd, url)

    def _fetch(self, args: Sequence[str], what: str) -> None:
        proc = run_git(
            [*_NO_HOOKS, "fetch", "-q", "--no-tags", "--no-write-fetch-head", *args],
            cwd=self.cwd,
            check=False,
            env={"GIT_TERMINAL_PROMPT": "0"},
        )
        if proc.returncode != 0:
            errors = [
                ln for ln in (proc.stderr or "").splitlines() if not ln.startswith("warning:")
            ]
            raise GetError(f"cannot fetch {what} from {self.url}: {errors[-1] if errors else ''}")

    def resolve(self, rev: str | None) -> Resolved:
        from gitmodel.registry import artifact_of_line, parse_stage_rev

        if rev is None or rev == "HEAD":
            if "HEAD" not in self.peeled:
                raise GetError(f"{self.url} has no HEAD (an empty repository?)")
            return self._commit_of("HEAD", "HEAD", "HEAD")
        for ref, kind in (
            (rev, "ref"),
            (f"refs/tags/{rev}", "tag"),
            (f"refs/heads/{rev}", "branch"),
            (f"refs/{rev}", "ref"),
        ):
            if ref.startswith("refs/") and ref in self.peeled:
                return self._commit_of(rev, ref, kind)
        stage = parse_stage_rev(rev)
        if stage is not None:
            line, name = stage
            artifact = artifact_of_line(line)
            # Only this artifact's tags (stage events and GTO registrations), as tag objects:
            # their dates and targets decide who holds the stage.
            wanted = [
                r
                for r in self.refs
                if r.startswith((f"refs/tags/{artifact}#", f"refs/tags/{artifact}@"))
            ]
            if wanted:
                self._fetch(
                    ["--depth=1", "--filter=tree:0", "origin", *(f"+{r}:{r}" for r in wanted)],
                    f"the tags of {artifact}",
                )
            return _stage_holder(
                self.cwd, line, name, rev, self.url, lambda c: _release_at(self.peeled, c, line)
            )
        if _HEX.match(rev.lower()):
            if len(rev) in (40, 64):
                return Resolved(rev, rev.lower(), "commit")
            # An abbreviated commit cannot be asked for: fetch the history's commits (no
            # trees, no blobs where the server filters) and let git expand it.
            self._fetch(
                [
                    "--filter=tree:0",
                    "origin",
                    "+refs/heads/*:refs/heads/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                "the commit history",
            )
            proc = run_git(
                ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                cwd=self.cwd,
                check=False,
            )
            if proc.returncode == 0:
                return Resolved(rev, proc.stdout.strip(), "commit")
        raise GetError(f"{rev}: no such branch, tag, stage or commit in {self.url}")

    def _commit_of(self, rev: str, ref: str, kind: str) -> Resolved:
        from gitmodel.versions import parse_tag

        commit = self.peeled[ref]
        line = parse_tag(rev).line if kind == "tag" else ""
        return Resolved(rev, commit, kind, _release_at(self.peeled, commit, line))

    def tree(self, resolved: Resolved) -> _Tree:
        self._fetch(
            ["--depth=1", "--filter=blob:none", "origin", resolved.commit],
            f"revision {resolved.rev} ({resolved.commit[:12]})",
        )
        kind = run_git(["cat-file", "-t", resolved.commit], cwd=self.cwd, check=False)
        if kind.stdout.strip() != "commit":
            raise GetError(f"{resolved.rev} is not a commit in {self.url}")
        return _Tree(self.cwd, resolved.commit)


def _resolve_local(root: Path, rev: str | None, glob: str) -> Resolved:
    from gitmodel.registry import parse_stage_rev

    rev_text = rev or "HEAD"
    proc = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev_text}^{{commit}}"],
        cwd=root,
        check=False,
    )
    stage = parse_stage_rev(rev_text)
    if proc.returncode != 0 and stage is not None:
        return _stage_holder(root, stage[0], stage[1], rev_text, "this repository")
    if proc.returncode != 0:
        raise GetError(f"{rev_text}: no such branch, tag, stage or commit in this repository")
    commit = proc.stdout.strip()
    kind = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/tags/{rev_text}"], cwd=root, check=False
    )
    from gitmodel.registry import Registry

    registry = Registry.read(root, glob)
    version = None
    for line in registry.lines.values():
        for r in line.releases:
            if r.commit == commit and (version is None or r.name == rev_text):
                version = r.name
    return Resolved(rev_text, commit, "tag" if kind.returncode == 0 else "commit", version)


# -- which pointer covers PATH ------------------------------------------------------------


@dataclass
class _Target:
    kind: str  # "file", "directory", "entry" (a file inside a tracked directory), "git"
    out: Out | None
    pointer: str | None
    relpath: str = ""  # for "entry": the file inside the directory
    pointer_raw: dict[str, Any] = field(default_factory=dict)


def _normalise(path: str) -> str:
    text = path.replace("\\", "/").strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.rstrip("/")
    parts = text.split("/")
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in text:
        raise GetError(f"{path!r}: give a path inside the repository (no '..', not absolute)")
    return text


def _find_target(tree: _Tree, path: str) -> _Target:
    from gitmodel.pointer import POINTER_SUFFIX, PointerError, parse_pointer

    dummy_root = Path("/nonexistent-gitmodel-root")
    parts = path.split("/")
    ancestors = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    tried: set[str] = set()

    def covering(pointer_path: str) -> _Target | None:
        tried.add(pointer_path)
        text = tree.blob(pointer_path)
        if text is None:
            return None
        try:
            pointer = parse_pointer(dummy_root / pointer_path, text, dummy_root)
        except PointerError as exc:
            raise GetError(f"at {tree.commit[:12]}: {exc.message}") from None
        base = posixpath.dirname(pointer_path)
        for out in pointer.outs:
            full = posixpath.normpath(posixpath.join(base, out.path))
            if full == path or pointer_path == path:
                return _Target(
                    "directory" if out.is_dir else "file", out, pointer_path, "", pointer.raw
                )
            if out.is_dir and path.startswith(full + "/"):
                return _Target("entry", out, pointer_path, path[len(full) + 1 :], pointer.raw)
        return None

    if path.endswith(POINTER_SUFFIX):
        found = covering(path)
        if found is not None:
            return found
    for candidate in [a + POINTER_SUFFIX for a in ancestors]:
        found = covering(candidate)
        if found is not None:
            return found
    # A pointer may name an output that is not beside it (DVC allows `path: sub/x`).
    dirs = {posixpath.dirname(a) for a in ancestors}
    for pointer_path in tree.pointer_files():
        if pointer_path not in tried and posixpath.dirname(pointer_path) in dirs:
            found = covering(pointer_path)
            if found is not None:
                return found
    entry = tree.entry(path)
    if entry is not None and entry[1] == "blob" and entry[0] in ("100644", "100755"):
        return _Target("git", None, None)
    if entry is not None and entry[1] == "tree":
        raise GetError(f"{path} is a directory git tracks, not tracked weights")
    if entry is not None:
        raise GetError(f"{path} is a symlink or submodule at {tree.commit[:12]}: not read")
    raise GetError(f"{path}: not tracked at {tree.commit[:12]} (no pointer names it)")


# -- the DVC remote of the revision --------------------------------------------------------


class _Objects:
    """Objects of one revision's DVC remote (and, for the enclosing repository, its cache)."""

    def __init__(
        self,
        tree: _Tree,
        workdir: Path,
        remote: str | None,
        local_dvc_dir: Path | None,
        store: Any = None,
    ) -> None:
        self.tree = tree
        self.workdir = workdir
        self.remote_name = remote
        self.local_dvc_dir = local_dvc_dir
        self.store = store
        self._odb: Any = None
        self.name: str | None = None
        self.from_cache = 0
        self.jobs = 4
        self.fallback: Callable[[], _Tree | None] | None = None
        self.config_from = "revision"

    def _open(self, wanted: str | None) -> Any:
        if self._odb is not None:
            return self._odb
        from dvc.fs import get_cloud_fs
        from dvc_data.hashfile.db import get_odb

        conf = self._config(self.tree, "revision")
        name = self.remote_name or wanted or conf["core"].get("remote")
        if (not name or name not in conf["remote"]) and self.fallback is not None:
            # A project that added its remote after this release: the weights were pushed
            # to the remote the repository's HEAD names (the md5 check still decides).
            head = self.fallback()
            if head is not None and head.commit != self.tree.commit:
                conf = self._config(head, "HEAD")
                name = self.remote_name or wanted or conf["core"].get("remote")
                self.config_from = f"HEAD ({head.commit[:12]})"
        if not name:
            raise GetError(
                f"revision {self.tree.commit[:12]} configures no default DVC remote "
                "(give one with --remote NAME)"
            )
        if name not in conf["remote"]:
            raise GetError(f"revision {self.tree.commit[:12]} has no DVC remote named {name!r}")
        try:
            cls, config, fs_path = get_cloud_fs(conf, name=name)
            if config.get("worktree") or config.get("version_aware"):
                raise GetError(f"DVC remote {name!r} is version-aware; gitmodel needs a plain one")
            fs = cls(**config)
            self._odb = get_odb(fs, fs.join(fs_path, "files", "md5"), hash_name="md5")
            self.jobs = max(1, min(8, int(getattr(fs, "jobs", 0) or 4)))
        except GitModelError:
            raise
        except Exception as exc:  # a missing plugin, a bad option: DVC raises many types
            raise GetError(f"DVC remote {name!r}: {_one_line(exc)}") from None
        self.name = name
        return self._odb

    def _config(self, tree: _Tree, what: str) -> Any:
        """DVC's merged config (system, global, the tree's `.dvc/config`, our local one)."""
        from dvc.config import Config, ConfigError

        dvc_dir = self.workdir / f"dvc-{tree.commit[:12]}"
        dvc_dir.mkdir(exist_ok=True)
        (dvc_dir / "config").write_bytes(tree.blob(".dvc/config") or b"")
        try:
            return Config(
                dvc_dir=str(dvc_dir),
                local_dvc_dir=str(self.local_dvc_dir) if self.local_dvc_dir else str(dvc_dir),
            )
        except ConfigError as exc:
            raise GetError(
                f"the DVC config at {what} {tree.commit[:12]}: {str(exc).splitlines()[0]}"
            ) from None

    def fetch(
        self,
        oid: str,
        dest: Path,
        size: int | None,
        wanted: str | None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write object oid to dest, verified; the number of bytes written."""
        from gitmodel.store import hash_file

        if self.store is not None and self.store.exists(oid):
            try:
                self.store.verify(oid)
                shutil.copyfile(self.store.oid_to_path(oid), dest)
                os.chmod(dest, 0o644)
                got = hash_file(dest) + (".dir" if oid.endswith(".dir") else "")
                if got == oid:
                    self.from_cache += 1
                    if progress:
                        progress(dest.stat().st_size)
                    return dest.stat().st_size
            except (GitModelError, OSError):
                pass  # a bad cache object: the remote has the right one
        odb = self._open(wanted)
        if not oid.endswith(".dir") and self._fetch_chunked(oid, dest, odb):
            return dest.stat().st_size
        try:
            odb.fs.get_file(odb.oid_to_path(oid), str(dest), callback=_callback(progress))
        except FileNotFoundError:
            raise GetError(
                f"object {oid} is not on DVC remote {self.name!r} (was it pushed?)"
            ) from None
        except GitModelError:
            raise
        except Exception as exc:
            raise GetError(
                f"cannot download {oid} from DVC remote {self.name!r}: {_one_line(exc)}"
            ) from None
        got = hash_file(dest) + (".dir" if oid.endswith(".dir") else "")
        actual_size = dest.stat().st_size
        if got != oid or (size is not None and size >= 0 and actual_size != size):
            dest.unlink(missing_ok=True)
            raise CorruptDownload(
                f"corrupt download from DVC remote {self.name!r}: object {oid} hashes to "
                f"{got} ({actual_size} bytes); nothing was written"
            )
        return actual_size

    def _fetch_chunked(self, oid: str, dest: Path, odb: Any) -> bool:
        """Rebuild a deduplicated output (gitmodel.dedup) from the local chunk store or from
        the remote's packs, into a temporary chunk store; False if it is not stored so."""
        from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
        from gitmodel.dedup.transfer import in_use, pull_chunks_into

        if self.store is not None and in_use(self.store):
            cs = open_chunk_store(self.store)
            if cs.can_rebuild(oid):
                self._rebuild(cs, oid, dest)
                self.from_cache += 1
                return True
        remote = _ChunkRemote(odb, self.name or "", self.jobs)
        cs = ChunkStore(self.workdir / "chunks")
        got, _ = pull_chunks_into(cs, remote, [oid])
        if oid not in got:
            return False
        self._rebuild(cs, oid, dest)
        return True

    def _rebuild(self, cs: Any, oid: str, dest: Path) -> None:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            cs.rebuild_to(oid, fd)  # every chunk and the whole md5 checked
        except BaseException:
            os.close(fd)
            dest.unlink(missing_ok=True)
            raise
        os.close(fd)


class _ChunkRemote:
    """What gitmodel.dedup.transfer needs of a remote, from this module's object db."""

    atomic = True  # only read from here

    def __init__(self, odb: Any, name: str, jobs: int) -> None:
        self.odb, self.fs, self.name, self.jobs = odb, odb.fs, name, jobs
        self.url = str(odb.path)


def _callback(progress: Callable[[int], None] | None) -> Any:
    """An fsspec callback that hands byte deltas to progress (fsspec reports totals)."""
    from fsspec.callbacks import Callback, NoOpCallback

    if progress is None:
        return NoOpCallback()
    report = progress

    class Bytes(Callback):
        seen = 0

        def call(self, *args: Any, **kwargs: Any) -> None:
            value = int(self.value or 0)
            if value > self.seen:
                report(value - self.seen)
                self.seen = value

    return Bytes()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _manifest(objects: _Objects, out: Out, tmp: Path, wanted: str | None) -> list[Any]:
    """The verified, validated entries of a directory output's `.dir` manifest."""
    import json

    from gitmodel.store import DirEntry, StoreError, check_relpath, is_oid

    path = tmp / f"manifest.{os.urandom(4).hex()}"
    objects.fetch(out.md5, path, None, wanted)
    try:
        raw = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise GetError(f"directory manifest {out.md5} is not valid JSON") from None
    finally:
        path.unlink(missing_ok=True)
    if not isinstance(raw, list):
        raise GetError(f"directory manifest {out.md5} is not a list")
    entries = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("relpath"), str):
            raise GetError(f"directory manifest {out.md5} has a malformed entry")
        rel = item["relpath"]
        try:
            check_relpath(rel, f"directory manifest {out.md5}")
        except StoreError as exc:
            raise GetError(exc.message) from None
        md5 = item.get("md5")
        if not isinstance(md5, str) or not is_oid(md5, dirs=False):
            raise GetError(f"directory manifest {out.md5}: bad md5 for {rel}")
        if rel in seen:
            raise GetError(f"directory manifest {out.md5} lists {rel} twice")
        seen.add(rel)
        size = item.get("size")
        entries.append(DirEntry(rel, md5, size if isinstance(size, int) else -1))
    # A file and a directory of the same name cannot both be written.
    for rel in seen:
        parent = rel.rsplit("/", 1)[0] if "/" in rel else None
        while parent:
            if parent in seen:
                raise GetError(f"directory manifest {out.md5}: {parent} is a file and a directory")
            parent = parent.rsplit("/", 1)[0] if "/" in parent else None
    return entries


# -- the session over one revision -------------------------------------------------------


class _Session:
    """A resolved revision of a repository, its tree, and its DVC remote's objects."""

    def __init__(
        self, repo: str | None, rev: str | None, remote: str | None, workdir: Path
    ) -> None:
        self.workdir = workdir
        local_dvc_dir = None
        store = None
        if repo is None:
            from gitmodel.repo import Repo

            here = Repo()
            self.source = "."
            self.resolved = _resolve_local(here.root, rev, here.config.release_tags)
            self.tree = _Tree(here.root, self.resolved.commit)
            local_dvc_dir = here.dvc_dir
            store = here.store
            head = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=here.root, check=False)
            fallback: Callable[[], _Tree | None] = lambda: (  # noqa: E731
                _Tree(here.root, head.stdout.strip()) if head.returncode == 0 else None
            )
        else:
            remote_repo = _RemoteRepo(repo, workdir)
            self.source = repo
            self.resolved = remote_repo.resolve(rev)
            self.tree = remote_repo.tree(self.resolved)

            def fallback() -> _Tree | None:
                try:
                    return remote_repo.tree(remote_repo.resolve(None))
                except GetError:
                    return None

        self.objects = _Objects(self.tree, workdir, remote, local_dvc_dir, store)
        self.objects.fallback = fallback

    def target(self, path: str) -> _Target:
        return _find_target(self.tree, _normalise(path))


@contextlib.contextmanager
def _session(repo: str | None, rev: str | None, remote: str | None) -> Iterator[_Session]:
    workdir = Path(tempfile.mkdtemp(prefix="gitmodel-get-"))
    try:
        yield _Session(repo, rev, remote, workdir)
    except GitFailed as exc:
        raise GetError(exc.message) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wanted_remote(target: _Target) -> str | None:
    """A pointer output may name its own remote (DVC 3's `remote:` key)."""
    for out in target.pointer_raw.get("outs", []) if target.pointer_raw else []:
        if isinstance(out, dict) and out.get("md5") == (target.out.md5 if target.out else None):
            name = out.get("remote")
            return name if isinstance(name, str) and name else None
    return None


def _file_into(
    session: _Session,
    target: _Target,
    dest: Path,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Write the file target names to dest (verified); (bytes, md5)."""
    wanted = _wanted_remote(target)
    assert target.out is not None and target.kind in ("file", "entry")
    if target.kind == "file":
        fetched = session.objects.fetch(target.out.md5, dest, target.out.size, wanted, progress)
        return fetched, target.out.md5
    entries = _manifest(session.objects, target.out, session.workdir, wanted)
    for e in entries:
        if e.relpath == target.relpath:
            size = e.size if e.size >= 0 else None
            return session.objects.fetch(e.md5, dest, size, wanted, progress), e.md5
    raise GetError(
        f"{target.relpath} is not in the directory {target.pointer} tracks "
        f"at {session.tree.commit[:12]}"
    )


# -- the public API --------------------------------------------------------------------------


@contextlib.contextmanager
def open(  # noqa: A001 - the name dvc.api uses
    path: str,
    repo: str | None = None,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "rb",
    encoding: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a tracked file of a revision of a repository, verified, without cloning it.

    repo: a git URL or path (default: the enclosing repository). rev: a branch, tag,
    commit or stage (`clf#prod`). The file object reads a private temporary copy whose md5
    was checked against the pointer; it is removed when the block ends.
    """
    if mode not in ("rb", "r"):
        raise GetError(f"mode {mode!r}: only 'rb' and 'r' are supported")
    with _session(repo, rev, remote) as session:
        target = session.target(path)
        dest = session.workdir / "content"
        if target.kind == "git":
            data = session.tree.blob(_normalise(path), limit=None)
            if data is None:
                raise GetError(f"{path}: cannot read it at {session.tree.commit[:12]}")
            dest.write_bytes(data)
        elif target.kind == "directory":
            raise GetError(f"{path} is a tracked directory: open one of its files, or use get")
        else:
            _file_into(session, target, dest)
        with dest.open("rb") as raw:
            if mode == "r":
                with io.TextIOWrapper(raw, encoding=encoding or "utf-8") as text:
                    yield text
            else:
                yield raw


def read(
    path: str,
    repo: str | None = None,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "rb",
    encoding: str | None = None,
) -> Any:
    """The verified content of a tracked file (bytes, or str with mode="r")."""
    with open(path, repo=repo, rev=rev, remote=remote, mode=mode, encoding=encoding) as f:
        return f.read()


def get(
    repo: str | None,
    path: str,
    out: str | os.PathLike[str] | None = None,
    rev: str | None = None,
    remote: str | None = None,
    force: bool = False,
    reporter: Any = None,
) -> GetResult:
    """Download a tracked file or directory of a revision to `out` (default: its name in
    the current directory, or inside `out` when that is a directory). Written under a
    temporary name beside the output, verified, then renamed into place."""
    rel = _normalise(path)
    with _session(repo, rev, remote) as session:
        target = session.target(rel)
        name = posixpath.basename(rel.removesuffix(".dvc") if target.pointer == rel else rel)
        dest = Path(os.path.abspath(out if out is not None else name))
        if dest.is_dir() and not dest.is_symlink() and out is not None:
            dest = dest / name
        if dest.exists() or dest.is_symlink():
            if not force:
                raise GetError(f"{dest} already exists (--force replaces it)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{os.urandom(6).hex()}.tmp"
        result = GetResult(rel, str(dest), session.source, session.resolved, target.kind)
        total = (target.out.size or 0) if target.out is not None and target.kind != "entry" else 0
        progress = reporter.start(f"fetching {rel}", total) if reporter and total else None
        try:
            if target.kind == "git":
                data = session.tree.blob(rel, limit=None)
                if data is None:
                    raise GetError(f"{rel}: cannot read it at {session.tree.commit[:12]}")
                tmp.write_bytes(data)
                result.files, result.bytes = 1, len(data)
            elif target.kind == "directory":
                assert target.out is not None
                result.md5 = target.out.md5
                result.files, result.bytes = _directory_into(session, target, tmp, progress)
            else:
                result.bytes, result.md5 = _file_into(session, target, tmp, progress)
                result.files = 1
                result.kind = "file"
            _replace(tmp, dest, force)
        finally:
            if progress is not None:
                reporter.stop()
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        result.remote = session.objects.name
        result.remote_config = session.objects.config_from
        result.from_cache = session.objects.from_cache
        return result


def _directory_into(
    session: _Session, target: _Target, tmp: Path, progress: Callable[[int], None] | None
) -> tuple[int, int]:
    from concurrent.futures import ThreadPoolExecutor

    assert target.out is not None
    wanted = _wanted_remote(target)
    entries = _manifest(session.objects, target.out, session.workdir, wanted)
    tmp.mkdir()
    for e in entries:
        (tmp / e.relpath).parent.mkdir(parents=True, exist_ok=True)

    def one(e: Any) -> int:
        size = e.size if e.size >= 0 else None
        return session.objects.fetch(e.md5, tmp / e.relpath, size, wanted, progress)

    with ThreadPoolExecutor(max_workers=session.objects.jobs) as pool:
        sizes = list(pool.map(one, entries))
    return len(entries), sum(sizes)


def _replace(tmp: Path, dest: Path, force: bool) -> None:
    if not (dest.exists() or dest.is_symlink()):
        os.rename(tmp, dest)
        return
    assert force
    if dest.is_dir() and not dest.is_symlink() or tmp.is_dir():
        old = dest.parent / f".{dest.name}.{os.urandom(6).hex()}.old"
        os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            os.rename(old, dest)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, dest)
