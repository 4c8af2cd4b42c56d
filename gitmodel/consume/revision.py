"""The revision `git model get` reads: REV resolved (a branch, a tag, a commit, a stage) in
a temporary partial repository fetched from the URL (or in the enclosing repository), its
tree read with git, and the pointer that covers the asked-for path.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.consume.records import MAX_META_BYTES, NO_HOOKS, GetError, Resolved
from gitmodel.git import git_env, run_git

if TYPE_CHECKING:
    from gitmodel.pointer import Out


_HEX = re.compile(r"^[0-9a-f]{4,64}$")

# -- git -----------------------------------------------------------------------------


def git_bytes(args: Sequence[str], cwd: Path) -> bytes | None:
    """stdout of git as bytes (run_git is text), None when git fails."""
    proc = subprocess.run(
        ["git", *NO_HOOKS, *args],
        cwd=cwd,
        env=git_env({"GIT_TERMINAL_PROMPT": "0"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return proc.stdout if proc.returncode == 0 else None


def is_local_path(url: str) -> bool:
    if "://" in url:
        return url.startswith("file://")
    # scp-like "host:path" (but not a Windows drive or a path with a colon after a slash)
    head = url.split("/", 1)[0]
    return ":" not in head


@dataclass
class Tree:
    """One commit's tree, read with git in `cwd` (a temporary partial repository or the
    user's own)."""

    cwd: Path
    commit: str
    _listing: list[str] | None = None

    def entry(self, path: str) -> tuple[str, str, str] | None:
        """(mode, type, oid) of path at the commit, None when it is not there."""
        proc = run_git(
            [*NO_HOOKS, "ls-tree", "-z", "--full-tree", self.commit, "--", path],
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
            size = git_bytes(["cat-file", "-s", entry[2]], self.cwd)
            if size is None or int(size.strip() or b"0") > limit:
                return None
        return git_bytes(["cat-file", "blob", entry[2]], self.cwd)

    def pointer_files(self) -> list[str]:
        """Every `*.dvc` file of the commit (outside `.dvc/`)."""
        if self._listing is None:
            proc = run_git(
                [*NO_HOOKS, "ls-tree", "-r", "-z", "--name-only", "--full-tree", self.commit],
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
        [*NO_HOOKS, "ls-remote", "--", url],
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


class RemoteRepo:
    """A temporary bare repository that fetches single revisions of `url` on demand."""

    def __init__(self, url: str, workdir: Path) -> None:
        if is_local_path(url):
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
            [*NO_HOOKS, "fetch", "-q", "--no-tags", "--no-write-fetch-head", *args],
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

    def tree(self, resolved: Resolved) -> Tree:
        self._fetch(
            ["--depth=1", "--filter=blob:none", "origin", resolved.commit],
            f"revision {resolved.rev} ({resolved.commit[:12]})",
        )
        kind = run_git(["cat-file", "-t", resolved.commit], cwd=self.cwd, check=False)
        if kind.stdout.strip() != "commit":
            raise GetError(f"{resolved.rev} is not a commit in {self.url}")
        return Tree(self.cwd, resolved.commit)


def resolve_local(root: Path, rev: str | None, glob: str) -> Resolved:
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
class Target:
    kind: str  # "file", "directory", "entry" (a file inside a tracked directory), "git"
    out: Out | None
    pointer: str | None
    relpath: str = ""  # for "entry": the file inside the directory
    pointer_raw: dict[str, Any] = field(default_factory=dict)


def normalise(path: str) -> str:
    text = path.replace("\\", "/").strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.rstrip("/")
    parts = text.split("/")
    if not text or text.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in text:
        raise GetError(f"{path!r}: give a path inside the repository (no '..', not absolute)")
    return text


def find_target(tree: Tree, path: str) -> Target:
    from gitmodel.pointer import POINTER_SUFFIX, PointerError, parse_pointer

    dummy_root = Path("/nonexistent-gitmodel-root")
    parts = path.split("/")
    ancestors = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    tried: set[str] = set()

    def covering(pointer_path: str) -> Target | None:
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
                return Target(
                    "directory" if out.is_dir else "file", out, pointer_path, "", pointer.raw
                )
            if out.is_dir and path.startswith(full + "/"):
                return Target("entry", out, pointer_path, path[len(full) + 1 :], pointer.raw)
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
        return Target("git", None, None)
    if entry is not None and entry[1] == "tree":
        raise GetError(f"{path} is a directory git tracks, not tracked weights")
    if entry is not None:
        raise GetError(f"{path} is a symlink or submodule at {tree.commit[:12]}: not read")
    raise GetError(f"{path}: not tracked at {tree.commit[:12]} (no pointer names it)")
