"""The one path policy: which files of a work tree gitmodel may write, read or remove.

A cloned repository is hostile: pointers, `.dir` manifests, `.gitmodel.toml` and
committed symlinks are content its author controls. Every repository-relative path that
gitmodel touches on disk goes through `WorkTree.path` (or `check_relpath` when only the
text is judged, as for a commit's tree), which refuses:

- an absolute path, a `..`, `.` or empty part, a NUL, an over-long path or part;
- `.git` in any part, in any spelling git itself refuses (`.GIT`, `.git.` and `.git `
  as NTFS reads them, `git~1`, HFS+'s ignorable code points), and the `.dvc` directory;
- the work-tree root, and any path at, inside or above a git directory;
- a path with a symbolic link on the way: each directory component is checked with
  lstat (once per directory per process, so a directory of 10,000 files costs one check
  per subdirectory, not one realpath per file). The leaf may be a link only where the
  caller says so (the tracked output itself, materialised as a link into the cache); it is
  then replaced or removed, never followed.

`read_bytes` and `open_nofollow` read a leaf that must not be a link with O_NOFOLLOW.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from gitmodel.errors import GitModelError

# Limits on repository content, stated in docs/security.md. Linux's PATH_MAX and NAME_MAX:
# a longer path cannot be opened anyway, and refusing it early names the culprit.
MAX_PATH_BYTES = 4096
MAX_PART_BYTES = 255

# Code points HFS+ ignores when it compares names, so ".g\u200cit" is ".git" there (the list
# git's utf8.c:next_hfs_char skips).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


class UnsafePath(GitModelError):
    """A path from repository content that the policy refuses (exit 2)."""


def is_git_name(part: str) -> bool:
    """Whether a file system could take this path part for `.git` (as git's verify_path)."""
    if part.isascii():
        name = part.lower()
        if "git" not in name:
            return False  # the common case, without the translation below
    else:
        name = part.translate(_HFS_IGNORED).lower()
    name = name.split(":", 1)[0].rstrip(". ")  # NTFS: streams, trailing dots and spaces
    return name in (".git", "git~1")


def check_relpath(rel: str, what: str, allow_dvc: bool = False) -> tuple[str, ...]:
    """The parts of a repository-relative path, after the lexical checks of the policy.

    what names the repository content the path came from (a pointer, a manifest, a key
    of the config): every refusal is one line that says which entry is bad.
    """
    if not isinstance(rel, str) or not rel:
        raise UnsafePath(f"{what}: empty path")
    if "\0" in rel:
        raise UnsafePath(f"{what}: path {rel!r} holds a NUL byte")
    if len(rel.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise UnsafePath(f"{what}: path longer than {MAX_PATH_BYTES} bytes")
    if rel.startswith("/") or os.path.isabs(rel):
        raise UnsafePath(f"{what}: path {rel!r} is absolute")
    parts = tuple(rel.replace("\\", "/").split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{what}: path {rel!r} leaves the repository or aliases a path")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES:
            raise UnsafePath(f"{what}: a part of {rel[:60]!r}... is longer than {MAX_PART_BYTES}")
        if is_git_name(part):
            raise UnsafePath(f"{what}: path {rel!r} is inside git's own directory")
    if not allow_dvc and parts[0].lower() == ".dvc":
        raise UnsafePath(f"{what}: path {rel!r} is inside .dvc (the cache and its state)")
    return parts


class WorkTree:
    """The files of one work tree that gitmodel may touch (see the module's docstring).

    git_dirs: the repository's git directories (its own and the common one); a path at,
    inside or above one of them is refused even where it does not go through `.git`.
    """

    def __init__(self, root: Path, git_dirs: Iterable[Path] = ()) -> None:
        self.root = Path(os.path.realpath(root))
        self._root_s = str(self.root)
        forbidden = set()
        for g in git_dirs:
            real = os.path.realpath(g)
            if real.startswith(self._root_s + os.sep):
                forbidden.add(real[len(self._root_s) + 1 :].replace(os.sep, "/"))
        self._forbidden = sorted(forbidden)
        # Repository-relative directories seen to be real directories, not links.
        self._real_dirs: set[str] = set()

    def path(
        self, rel: str, what: str, leaf_link_ok: bool = False, allow_dvc: bool = False
    ) -> Path:
        """The absolute path of repository-relative rel, once the policy allows it.

        Parts that do not exist yet are fine (they will be created by `make_parents`).
        """
        parts = check_relpath(rel, what, allow_dvc)
        norm = "/".join(parts)
        for g in self._forbidden:
            if norm == g or norm.startswith(g + "/") or g.startswith(norm + "/"):
                raise UnsafePath(f"{what}: path {rel!r} is inside git's own directory")
        self._check_dirs(parts[:-1], rel, what)
        full = Path(f"{self._root_s}/{norm}")
        if not leaf_link_ok:
            try:
                mode = os.lstat(full).st_mode
            except FileNotFoundError:
                return full
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ENAMETOOLONG):
                    raise UnsafePath(f"{what}: cannot use {rel!r} ({exc.strerror})") from None
                raise
            if stat.S_ISLNK(mode):
                raise UnsafePath(f"{what}: {rel!r} is a symbolic link; gitmodel does not follow it")
        return full

    def _check_dirs(self, dirs: tuple[str, ...], rel: str, what: str) -> None:
        sofar = ""
        for part in dirs:
            sofar = f"{sofar}/{part}" if sofar else part
            if sofar in self._real_dirs:
                continue
            try:
                mode = os.lstat(os.path.join(self._root_s, sofar)).st_mode
            except FileNotFoundError:
                return  # nothing below exists either; make_parents creates it
            except NotADirectoryError:
                raise UnsafePath(f"{what}: {rel!r}: a file is in the way") from None
            if stat.S_ISLNK(mode):
                raise UnsafePath(
                    f"{what}: {rel!r} goes through the symbolic link {sofar!r}; "
                    "gitmodel does not follow it"
                )
            if not stat.S_ISDIR(mode):
                raise UnsafePath(f"{what}: {rel!r}: {sofar!r} is not a directory")
            self._real_dirs.add(sofar)

    def make_parents(self, full: Path, what: str) -> None:
        """Create the missing directories above full (a path `path` returned), never
        through a link: mkdir does not follow one, and each new part is checked again."""
        rel = os.path.relpath(full.parent, self._root_s)
        if rel == ".":
            return
        sofar = ""
        for part in rel.split(os.sep):
            sofar = f"{sofar}/{part}" if sofar else part
            if sofar in self._real_dirs:
                continue
            p = os.path.join(self._root_s, sofar)
            try:
                os.mkdir(p)
            except FileExistsError:
                pass
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                raise UnsafePath(f"{what}: {sofar!r} is not a directory")
            self._real_dirs.add(sofar)

    def forget(self, rel_dir: str) -> None:
        """rel_dir (and what is below it) was removed: check it again if it is used."""
        self._real_dirs = {
            d for d in self._real_dirs if d != rel_dir and not d.startswith(rel_dir + "/")
        }

    def relative(self, path: Path | str) -> str:
        """A path under the root (as given by the caller, not resolved) made relative."""
        text = os.path.abspath(path)
        if text == self._root_s or not text.startswith(self._root_s + os.sep):
            raise UnsafePath(f"{path}: outside the work tree {self._root_s}")
        return text[len(self._root_s) + 1 :].replace(os.sep, "/")


def open_nofollow(
    path: str | os.PathLike[str], what: str, flags: int = os.O_RDONLY, mode: int = 0o644
) -> int:
    """os.open(path) that refuses a symbolic link at the leaf with a one-line error."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{what} is a symbolic link; gitmodel does not follow it") from None
        raise


def read_bytes(path: str | os.PathLike[str], what: str, limit: int | None = None) -> bytes:
    """A regular file's bytes, read without following a link at the leaf.

    FileNotFoundError and other OSErrors pass through for the caller to word; a link,
    a directory, a device or a file larger than limit is refused with UnsafePath.
    """
    fd = open_nofollow(path, what, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{what} is not a regular file")
        if limit is not None and st.st_size > limit:
            raise UnsafePath(f"{what} is larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
            if limit is not None and sum(map(len, chunks)) > limit:
                raise UnsafePath(f"{what} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
