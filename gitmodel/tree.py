"""A tracked directory as one listing: its files in `.dir` order, with their stat lines.

A 50,000-file data set is one output; what it costs is per-file work, so everything here is
one pass with small constants: `os.scandir` (the file type comes with the name), one
`lstat` per file, no `pathlib` in the loop. The listing is compared with the one recorded
when the directory was last hashed (`Store.tree_index`, git's index in spirit): when the
two stat-line blobs are equal, the directory's `.dir` id is known without opening a file.

Listing order is DVC's manifest order: relpaths sorted as strings (dvc-data's
`Tree.as_list`, so "d.txt" and "d-x/y" come before "d/z"). A depth-first walk that sorts
each directory's entries by name, a directory's name taken with its "/", visits files in
exactly that order, so the manifest is written from the listing without sorting it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii  # json's own C quoting, for the manifest
from operator import itemgetter

# How close to the listing's time a file's mtime may be and still be trusted. A file
# rewritten within one filesystem timestamp tick of being listed keeps its mtime (Linux
# stamps files from a clock that ticks every 1-10 ms), so, as git does with "racily
# clean" index entries, such files are hashed again next time instead of trusted.
RACY_NS = 100_000_000


class Listing:
    """Regular files under a directory: relative paths and `rel\\0ino\\0mtime\\0size` lines."""

    __slots__ = ("root", "rels", "lines", "sizes", "max_mtime", "taken")

    def __init__(self, root: str) -> None:
        self.root = root
        self.rels: list[str] = []
        self.lines: list[str] = []
        self.sizes: list[int] = []
        self.max_mtime = 0
        self.taken = time.time_ns()  # before the first stat: see RACY_NS

    def add(self, rel: str, st: os.stat_result) -> None:
        self.rels.append(rel)
        self.lines.append(f"{rel}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_size}")
        self.sizes.append(st.st_size)
        if st.st_mtime_ns > self.max_mtime:
            self.max_mtime = st.st_mtime_ns

    def stats_blob(self) -> bytes:
        return "\n".join(self.lines).encode("utf-8", "surrogateescape")

    def __len__(self) -> int:
        return len(self.rels)


def _entries(path: str) -> list[tuple[str, os.DirEntry[str]]]:
    """(sort key, entry): a directory's key is its name with its "/", the string every
    path under it starts with (see the module's docstring)."""
    with os.scandir(path) as it:
        keyed = [(e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e) for e in it]
    keyed.sort(key=itemgetter(0))
    return keyed


def scan(root: str | os.PathLike[str]) -> Listing:
    """Every regular file under root in manifest order; symlinks are neither followed nor
    listed (as `walk_files`). A missing root lists nothing."""
    top = os.fspath(root)
    listing = Listing(top)
    try:
        first = _entries(top)
    except (FileNotFoundError, NotADirectoryError):
        return listing
    # The loop body runs once per file: names bound locally, Listing.add inlined.
    rels, lines, sizes = listing.rels, listing.lines, listing.sizes
    newest = 0
    # An explicit stack, not recursion: a hostile tree may be deeper than Python's stack.
    stack = [("", iter(first))]
    while stack:
        prefix, it = stack[-1]
        for key, entry in it:
            if key[-1] == "/":
                stack.append((prefix + key, iter(_entries(entry.path))))
                break
            if entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                rel = prefix + key
                mtime = st.st_mtime_ns
                rels.append(rel)
                lines.append(f"{rel}\0{st.st_ino}\0{mtime}\0{st.st_size}")
                sizes.append(st.st_size)
                if mtime > newest:
                    newest = mtime
        else:
            stack.pop()
    listing.max_mtime = newest
    return listing


def manifest_bytes(rels: Sequence[str], md5s: Sequence[str]) -> bytes:
    """`json.dumps([{"md5", "relpath"}...], sort_keys=True)` for entries already in order.

    Formatted entry by entry with json's C string quoting: the same bytes as DVC's
    `Tree.as_bytes()` without building 50,000 dicts first.
    """
    q = encode_basestring_ascii
    body = ", ".join(
        [f'{{"md5": "{m}", "relpath": {q(r)}}}' for r, m in zip(rels, md5s, strict=True)]
    )
    return f"[{body}]".encode()


def trusted(line_time: int, mtime_ns: int) -> bool:
    """Whether a stat line recorded at line_time can vouch for a file with this mtime."""
    return mtime_ns < line_time - RACY_NS
