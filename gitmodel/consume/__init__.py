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
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from gitmodel.consume.objects import Objects, manifest_entries
from gitmodel.consume.records import CorruptDownload as CorruptDownload  # re-exported
from gitmodel.consume.records import GetError, GetResult
from gitmodel.consume.records import Resolved as Resolved  # re-exported
from gitmodel.consume.revision import (
    RemoteRepo,
    Target,
    Tree,
    find_target,
    normalise,
    resolve_local,
)
from gitmodel.git import GitFailed, run_git

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
            self.resolved = resolve_local(here.root, rev, here.config.release_tags)
            self.tree = Tree(here.root, self.resolved.commit)
            local_dvc_dir = here.dvc_dir
            store = here.store
            head = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=here.root, check=False)
            fallback: Callable[[], Tree | None] = lambda: (  # noqa: E731
                Tree(here.root, head.stdout.strip()) if head.returncode == 0 else None
            )
        else:
            remote_repo = RemoteRepo(repo, workdir)
            self.source = repo
            self.resolved = remote_repo.resolve(rev)
            self.tree = remote_repo.tree(self.resolved)

            def fallback() -> Tree | None:
                try:
                    return remote_repo.tree(remote_repo.resolve(None))
                except GetError:
                    return None

        self.objects = Objects(self.tree, workdir, remote, local_dvc_dir, store)
        self.objects.fallback = fallback

    def target(self, path: str) -> Target:
        return find_target(self.tree, normalise(path))


@contextlib.contextmanager
def _session(repo: str | None, rev: str | None, remote: str | None) -> Iterator[_Session]:
    workdir = Path(tempfile.mkdtemp(prefix="gitmodel-get-"))
    try:
        yield _Session(repo, rev, remote, workdir)
    except GitFailed as exc:
        raise GetError(exc.message) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wanted_remote(target: Target) -> str | None:
    """A pointer output may name its own remote (DVC 3's `remote:` key)."""
    for out in target.pointer_raw.get("outs", []) if target.pointer_raw else []:
        if isinstance(out, dict) and out.get("md5") == (target.out.md5 if target.out else None):
            name = out.get("remote")
            return name if isinstance(name, str) and name else None
    return None


def _file_into(
    session: _Session,
    target: Target,
    dest: Path,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Write the file target names to dest (verified); (bytes, md5)."""
    wanted = _wanted_remote(target)
    assert target.out is not None and target.kind in ("file", "entry")
    if target.kind == "file":
        fetched = session.objects.fetch(target.out.md5, dest, target.out.size, wanted, progress)
        return fetched, target.out.md5
    entries = manifest_entries(session.objects, target.out, session.workdir, wanted)
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
            data = session.tree.blob(normalise(path), limit=None)
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
    rel = normalise(path)
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
    session: _Session, target: Target, tmp: Path, progress: Callable[[int], None] | None
) -> tuple[int, int]:
    from concurrent.futures import ThreadPoolExecutor

    assert target.out is not None
    wanted = _wanted_remote(target)
    entries = manifest_entries(session.objects, target.out, session.workdir, wanted)
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
