"""Object names and `.dir` manifests as DVC 3 writes them: ids, entries, path checks."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from gitmodel.record import FrozenRecord
from gitmodel.store.errors import StoreError

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)

# Files in one `.dir` manifest (stated in docs/security.md): a manifest is read whole.
MAX_MANIFEST_ENTRIES = 10_000_000

_HEX = frozenset("0123456789abcdef")


def is_oid(text: str, dirs: bool = True) -> bool:
    """A cache object name: 32 lowercase hex digits, plus `.dir` for a manifest if dirs."""
    if dirs:
        text = text.removesuffix(".dir")
    return len(text) == 32 and _HEX.issuperset(text)


class DirEntry(FrozenRecord):
    __slots__ = ("relpath", "md5", "size")

    def __init__(self, relpath: str, md5: str, size: int) -> None:
        self._set(relpath=relpath, md5=md5, size=size)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        relpath: str
        md5: str
        size: int


def parse_manifest(data: bytes, oid: str) -> list[DirEntry]:
    """The entries of `.dir` manifest oid from its bytes (hostile input), validated: a list
    of at most MAX_MANIFEST_ENTRIES files, each a safe relative path (check_relpath) with an
    md5, forming a tree (_check_tree). The one check for every reader of a manifest (the
    cache's read_dir, `git model get`); raises StoreError naming what is wrong."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"directory manifest {oid} is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise StoreError(f"directory manifest {oid} is not a list")
    if len(raw) > MAX_MANIFEST_ENTRIES:
        raise StoreError(f"directory manifest {oid} has more than {MAX_MANIFEST_ENTRIES} files")
    entries = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("relpath"), str):
            raise StoreError(f"directory manifest {oid} has a malformed entry")
        rel = item["relpath"]
        check_relpath(rel, f"directory manifest {oid}")
        md5 = item.get("md5")
        if not isinstance(md5, str) or not is_oid(md5, dirs=False):
            raise StoreError(f"directory manifest {oid}: bad md5 for {rel}")
        size = item.get("size")
        entries.append(DirEntry(rel, md5, size if isinstance(size, int) else -1))
    _check_tree(entries, f"directory manifest {oid}")
    return entries


def check_relpath(rel: str, where: str) -> None:
    """Refuse a relative path that is absolute, climbs out with `..`, aliases another with
    "." or an empty part (never written by DVC or us) or names `.git` (gitmodel.paths)."""
    from gitmodel.paths import UnsafePath
    from gitmodel.paths import check_relpath as check

    try:
        check(rel, where, allow_dvc=True)
    except UnsafePath as exc:
        raise StoreError(exc.message) from None


def _check_tree(entries: Sequence[DirEntry], where: str) -> None:
    """A manifest describes a tree: no path twice (status would never match it) and no
    path that is both a file and a directory (`a` and `a/b`: checkout could write one).
    Linear in the manifest's size: each entry's parents are looked up in a set."""
    files: set[str] = set()
    for e in entries:
        if e.relpath in files:
            raise StoreError(f"{where}: {e.relpath!r} is listed twice")
        files.add(e.relpath)
    for e in entries:
        parent = e.relpath
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in files:
                raise StoreError(f"{where}: {parent!r} is both a file and a directory")


def walk_files(root: Path) -> Iterator[str]:
    """Relative paths (with /) of regular files under root; symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            full = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                yield os.path.relpath(full, root).replace(os.sep, "/")


def dir_manifest_bytes(entries: Sequence[DirEntry]) -> bytes:
    """A `.dir` object exactly as DVC 3 writes it: entries sorted by their relpath string
    (dvc-data's `Tree.as_list`: "d.txt" before "d/x"), keys sorted."""
    ordered = sorted(entries, key=lambda e: e.relpath)
    return json.dumps(
        [{"md5": e.md5, "relpath": e.relpath} for e in ordered], sort_keys=True
    ).encode()
