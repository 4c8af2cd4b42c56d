"""A tracked directory as one listing: its files in `.dir` order, with their stat numbers.

A 50,000-file data set is one output; what it costs is per-file work, so everything here is
one pass with small constants: `os.scandir` of a directory descriptor (the file type comes
with the name, and each file's `lstat` is an `fstatat` of one path component), no
`pathlib` in the loop, and no object per file beyond its relative path: the (inode, mtime,
size) of every file go into one packed array. The listing is compared with the one
recorded when the directory was last hashed (`Store.tree_index`, git's index in spirit):
when the paths and the packed stat numbers are equal byte for byte (two `bytes`
comparisons) and none is racy, the directory's `.dir` id is known without opening a file.

Listing order is DVC's manifest order: relpaths sorted as strings (dvc-data's
`Tree.as_list`, so "d.txt" and "d-x/y" come before "d/z"). A depth-first walk that sorts
each directory's entries by name, a directory's name taken with its "/", visits files in
exactly that order, so the manifest is written from the listing without sorting it again.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii  # json's own C quoting, for the manifest

from gitmodel import forking

# Racily clean files (git's term). A stat line recorded at time T vouches for a file only if
# a later change must show in it: a change rewrites the mtime, but to the same value when it
# falls within the same filesystem timestamp tick as the recorded mtime. So a file whose
# mtime is within one tick of T (or after it) is hashed again next time instead of trusted.
# Linux stamps files from a clock that ticks every 1-10 ms: 100 ms of margin. Filesystems
# that keep whole seconds (FAT: 2 s, HFS+, some NFS servers: 1 s) give mtimes with no
# sub-second part: those are trusted only once 2 s old (a file with a whole-second mtime on
# a nanosecond filesystem is rare, and costs one more hash).
RACY_NS = 100_000_000
COARSE_RACY_NS = 2_000_000_000
_SECOND = 1_000_000_000

_ITEM = 3  # stat numbers per file in Listing.stats: inode, mtime (ns), size
_BIG = 1 << 63


def time_ns() -> int:
    """The clock listings are taken by (one name, so that tests can hold it still)."""
    return time.time_ns()


def trusted(line_time: int, mtime_ns: int) -> bool:
    """Whether a stat line recorded at line_time can vouch for a file with this mtime."""
    window = COARSE_RACY_NS if mtime_ns % _SECOND == 0 else RACY_NS
    return mtime_ns < line_time - window


def racy(stats: array[int], taken: int) -> list[int]:
    """Indexes of the files whose packed stat numbers cannot be trusted against taken."""
    mtimes = stats[1::_ITEM]
    coarse = taken - COARSE_RACY_NS
    if not mtimes or max(mtimes) < coarse:
        return []  # the usual case: one pass in C
    fine = taken - RACY_NS
    return [i for i, m in enumerate(mtimes) if m >= coarse and (m >= fine or m % _SECOND == 0)]


class Listing:
    """Regular files under a directory: relative paths, and their (inode, mtime, size)
    packed in one array (`stats`, three numbers a file)."""

    __slots__ = ("root", "rels", "stats", "taken")

    def __init__(self, root: str, taken: int | None = None) -> None:
        self.root = root
        self.rels: list[str] = []
        self.stats: array[int] = array("q")
        self.taken = time_ns() if taken is None else taken  # before the first stat: RACY_NS

    def __len__(self) -> int:
        return len(self.rels)

    def add(self, rel: str, ino: int, mtime: int, size: int) -> None:
        self.rels.append(rel)
        pack_stat(self.stats, ino, mtime, size)

    def stat(self, i: int) -> tuple[int, int, int]:
        """(inode, mtime, size) of file i."""
        at = _ITEM * i
        return self.stats[at], self.stats[at + 1], self.stats[at + 2]

    def size(self, i: int) -> int:
        return self.stats[_ITEM * i + 2]

    @property
    def total_size(self) -> int:
        return sum(self.stats[2::_ITEM])

    def rels_blob(self) -> bytes:
        return rels_blob(self.rels)

    def stats_blob(self) -> bytes:
        return self.stats.tobytes()

    def racy(self, taken: int) -> list[int]:
        return racy(self.stats, taken)

    def matches(self, rels: bytes, stats: bytes, taken: int) -> bool:
        """Whether a recorded listing (rels_blob, stats_blob, when) vouches for every file."""
        return stats == self.stats.tobytes() and rels == self.rels_blob() and not self.racy(taken)


def rels_blob(rels: Sequence[str]) -> bytes:
    """Relative paths as one blob: NUL cannot occur in a file name."""
    return "\0".join(rels).encode("utf-8", "surrogateescape")


def split_rels(blob: bytes) -> list[str]:
    return blob.decode("utf-8", "surrogateescape").split("\0") if blob else []


def pack_stat(stats: array[int], ino: int, mtime: int, size: int) -> None:
    """Append one file's numbers; an inode above 2**63 (some filesystems' synthetic
    ones) is stored as its two's complement, which compares just as well."""
    try:
        stats.extend((ino, mtime, size))
    except OverflowError:
        if ino >= _BIG:
            ino -= 1 << 64
        mtime = max(-_BIG, min(mtime, _BIG - 1))
        stats.extend((ino, mtime, size))


# A run: files of one directory that are consecutive in manifest order, as (the
# directory's path, the prefix of their relpaths, their names).
Run = tuple[str, str, list[str]]

# Listings of at least this many files take their stats on two cores (see _stat_runs).
PARALLEL_FILES = 8192


def _names(path: str) -> list[str]:
    """A directory's regular files and subdirectories in manifest order, a directory's
    name with its "/" (the string every path under it starts with, see the module's
    docstring; a file name cannot end with "/")."""
    keys: list[str] = []
    add = keys.append
    with os.scandir(path) as it:
        for e in it:  # once per file of a data set: one type test for a file, no tuple
            if e.is_file(follow_symlinks=False):
                add(e.name)
            elif e.is_dir(follow_symlinks=False):
                add(e.name + "/")
    keys.sort()  # str keys: 40% less CPU than sorting (key, is_dir) tuples
    return keys


def _runs(top: str, prefix: str = "", entries: list[str] | None = None) -> list[Run]:
    """Every regular file under top, as runs in manifest order (names only, no stat);
    prefix: top's relpath with its "/"; entries: top's _names, when already listed."""
    runs: list[Run] = []
    # An explicit stack, not recursion: a hostile tree may be deeper than Python's stack.
    # A frame: (the directory's path, relpath prefix, its entries, where to resume).
    stack = [(top, prefix, _names(top) if entries is None else entries, 0)]
    while stack:
        path, prefix, entries, at = stack.pop()
        run: list[str] = []
        for i in range(at, len(entries)):
            key = entries[i]
            if key[-1] != "/":
                run.append(key)
                continue
            try:
                sub = _names(f"{path}/{key[:-1]}")
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed meanwhile: nothing under it to list
            stack.append((path, prefix, entries, i + 1))
            stack.append((f"{path}/{key[:-1]}", prefix + key, sub, 0))
            break
        if run:
            runs.append((path, prefix, run))
    return runs


def _stat(runs: Sequence[Run]) -> array[int]:
    """(inode, mtime, size) of every file of runs, packed; a file that is gone by now gets
    size -1. Each lstat is an fstatat on its directory's descriptor (one path component
    for the kernel to look up, not the whole path)."""
    stats: array[int] = array("q")
    ext = stats.extend
    for path, _, names in runs:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            for _ in names:
                ext((0, 0, -1))
            continue
        try:
            # The loop that runs once per file of a data set.
            for name in names:
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    ext((0, 0, -1))
                    continue
                try:
                    ext((st.st_ino, st.st_mtime_ns, st.st_size))
                except OverflowError:  # extend may have taken part of it
                    del stats[len(stats) - len(stats) % _ITEM :]
                    pack_stat(stats, st.st_ino, st.st_mtime_ns, st.st_size)
        finally:
            os.close(fd)
    return stats


def _stat_runs(runs: list[Run], nfiles: int) -> array[int]:
    """_stat(runs), on two cores when there are many files.

    Threads would not help: each file's few Python steps hold the GIL, and the two threads
    hand it to each other at every lstat (measured: more CPU, no less wall time). A forked
    child takes the stats of the second half instead and sends them back packed through a
    pipe (24 bytes a file); if it fails in any way, this process does that half itself.
    """
    if nfiles < PARALLEL_FILES or not forking.may_fork():
        return _stat(runs)
    first, second = forking.halves(runs, nfiles)
    want = _ITEM * sum(len(names) for _, _, names in second)
    stats, data = forking.with_child(lambda: _stat(second).tobytes(), lambda: _stat(first))
    theirs: array[int] = array("q")
    if data is not None and len(data) == 8 * want:
        theirs.frombytes(data)
    else:
        theirs = _stat(second)
    stats.extend(theirs)
    return stats


# A listing whose top directory has at least this many subdirectories is split by
# subdirectory between this process and a forked child, listing included (_split).
SPLIT_DIRS = 16

Block = tuple[list[str], "array[int]"]  # relpaths and packed stats of one subtree


def _subtree(top: str, key: str) -> list[Run]:
    """The runs under top's subdirectory key ("name/")."""
    try:
        return _runs(f"{top}/{key[:-1]}", key)
    except (FileNotFoundError, NotADirectoryError):
        return []  # removed meanwhile: nothing under it to list


def _block(runs: list[Run]) -> Block:
    """The files of runs, stat'ed."""
    stats = _stat(runs)
    return _rels(runs), stats  # _rels empties runs


def _rels(runs: list[Run]) -> list[str]:
    rels: list[str] = []
    for at, (_, prefix, names) in enumerate(runs):
        rels += map(prefix.__add__, names) if prefix else names
        runs[at] = ("", "", [])  # its names go now: never both lists whole in memory
    return rels


def _split(top: str, keys: list[str]) -> tuple[list[str], array[int]] | None:
    """The listing of top (whose entries are keys), listed and stat'ed by this process
    and a forked child, each taking every other subdirectory; None when it is not
    worth it (few subdirectories, or few files in the first: it is not forked for a
    small tree) or cannot be.

    Splitting only the stats (_stat_runs) leaves the listing of every directory and the
    building of every relpath to one core; split by subdirectory, each half costs one
    core. Blocks are put back in manifest order: each subdirectory's files are
    consecutive in it. The child sends its blocks' file counts, relpaths (NUL-joined)
    and packed stats through a pipe; if it fails in any way, this process lists its
    half itself.
    """
    dirs = [k for k in keys if k[-1] == "/"]
    if len(dirs) < SPLIT_DIRS or not forking.may_fork():
        return None
    first = _subtree(top, dirs[0])  # names only: a small tree costs one more scandir
    if sum(len(names) for _, _, names in first) * len(dirs) < PARALLEL_FILES:
        return None
    theirs = dirs[2::2]

    def child() -> bytes:
        blocks = [_block(_subtree(top, key)) for key in theirs]
        counts = array("q", [len(rels) for rels, _ in blocks])
        names = "\0".join(["\0".join(rels) for rels, _ in blocks if rels])
        blob = names.encode("utf-8", "surrogateescape")
        head = array("q", [len(blob)])
        return b"".join(
            [head.tobytes(), counts.tobytes(), blob, *(st.tobytes() for _, st in blocks)]
        )

    def parent() -> dict[str, Block]:
        ours = {dirs[0]: _block(first)}
        for key in dirs[1::2]:
            ours[key] = _block(_subtree(top, key))
        return ours

    ours, data = forking.with_child(child, parent)
    got = _their_blocks(data, len(theirs)) if data is not None else None
    if got is None:
        got = [_block(_subtree(top, key)) for key in theirs]
    ours.update(zip(theirs, got, strict=True))
    rels: list[str] = []
    stats: array[int] = array("q")
    files: list[str] = []
    for key in [*keys, "/"]:  # "/": a last key that flushes the top's last files
        if key[-1] != "/":
            files.append(key)
            continue
        if files:
            rels += files
            stats.extend(_stat([(top, "", files)]))
            files = []
        if key in ours:
            block_rels, block_stats = ours.pop(key)
            rels += block_rels
            stats.extend(block_stats)
        elif key != "/":  # a subdirectory neither process took: cannot be
            raise AssertionError(key)
    return rels, stats


def _their_blocks(data: bytes, nblocks: int) -> list[Block] | None:
    """The child's blocks from what it sent, or None if it is not of their shape."""
    head = 8 * (1 + nblocks)
    if len(data) < head:
        return None
    numbers = array("q")
    numbers.frombytes(data[:head])
    size, counts = numbers[0], numbers[1:]
    total = sum(counts)
    if size < 0 or min(counts, default=0) < 0 or len(data) != head + size + 8 * _ITEM * total:
        return None
    names = data[head : head + size].decode("utf-8", "surrogateescape").split("\0")
    if total and len(names) != total or not total and size:
        return None
    blocks: list[Block] = []
    at, stat_at = 0, head + size
    for n in counts:
        st: array[int] = array("q")
        st.frombytes(data[stat_at : stat_at + 8 * _ITEM * n])
        blocks.append((names[at : at + n], st))
        at, stat_at = at + n, stat_at + 8 * _ITEM * n
    return blocks


def scan(root: str | os.PathLike[str]) -> Listing:
    """Every regular file under root in manifest order; symlinks are neither followed nor
    listed (as `walk_files`). A missing root lists nothing."""
    top = os.fspath(root)
    listing = Listing(top)  # its time is taken before the first stat
    try:
        keys = _names(top)
    except (FileNotFoundError, NotADirectoryError):
        return listing
    split = _split(top, keys)
    if split is not None:
        rels, stats = split
        listing.rels = rels
    else:
        runs = _runs(top, "", keys)
        stats = _stat_runs(runs, sum(len(names) for _, _, names in runs))
        rels = listing.rels = _rels(runs)
    if stats and min(stats[2::_ITEM]) < 0:  # files removed while they were listed
        kept = Listing(top, listing.taken)
        for i, rel in enumerate(rels):
            if stats[_ITEM * i + 2] >= 0:
                kept.add(rel, *stats[_ITEM * i : _ITEM * i + _ITEM])
        return kept
    listing.stats = stats
    return listing


def manifest_chunks(
    rels: Sequence[str], md5s: bytes | bytearray, step: int = 4096
) -> Iterator[bytes]:
    """`json.dumps([{"md5", "relpath"}...], sort_keys=True)` for entries already in order,
    a few thousand entries at a time; md5s: 16 bytes a file.

    Formatted entry by entry with json's C string quoting: the same bytes as DVC's
    `Tree.as_bytes()` without building a dict (or even a string) per file first.
    """
    q = encode_basestring_ascii
    n = len(rels)
    if len(md5s) != 16 * n:
        raise ValueError("one md5 per relpath")
    yield b"["
    for a in range(0, n, step):
        b = min(n, a + step)
        hx = md5s[16 * a : 16 * b].hex()
        body = ", ".join(
            [
                f'{{"md5": "{hx[32 * k : 32 * k + 32]}", "relpath": {q(rels[a + k])}}}'
                for k in range(b - a)
            ]
        )
        yield (f", {body}" if a else body).encode()
    yield b"]"


def manifest_bytes(rels: Sequence[str], md5s: Sequence[str]) -> bytes:
    """The whole manifest for hex md5s (see manifest_chunks)."""
    return b"".join(manifest_chunks(rels, bytes.fromhex("".join(md5s))))
