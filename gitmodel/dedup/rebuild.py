"""A file rebuilt from its chunks in one pass: into the cache, and for a checkout into the
work tree as well, each output unnamed until the whole file's md5 matched.

The pass is split so that the md5, the one step that cannot be shared out (it runs in
file order, about 0.6 GB/s on this CPU against 1.4 GB/s for sha256), has a core to
itself: decode workers (gitmodel.dedup.pipeline) each read a chunk, decode it into a
reused buffer, check it against its sha256 and write it with pwrite at its offset into
every output; the calling thread only feeds the decoded chunks, in file order, to the
md5. Writing the work-tree file in the same pass replaces a copy of the rebuilt object
afterwards (256 MiB read back and written again, after the md5 had finished).

Outputs are made unnamed (O_TMPFILE) and linked under their names only once the md5 is
right, so a corrupt chunk, a recipe that does not make the pointer's bytes, or a kill at
any moment leaves no file under the object's or the output's name, and no temporary file
either. Where the filesystem has no unnamed files, a temporary name is written and
renamed instead (removed on failure).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from gitmodel.dedup.chunking import PIECE
from gitmodel.dedup.pipeline import ordered_map
from gitmodel.dedup.recipe import BadRecipe
from gitmodel.store.hashing import _NO_NAMELESS_ERRNOS, _O_TMPFILE, _tmp_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.dedup.codec import Buffer
    from gitmodel.dedup.packs import PackStore
    from gitmodel.dedup.recipe import Recipe
    from gitmodel.store import Progress, Store

# Chunks shorter than this are hashed from a read (a map costs two system calls and a fault).
MAP_MIN = 256 * 1024


def write_chunks(
    packs: PackStore,
    recipe: Recipe,
    fds: Sequence[int],
    jobs: int,
    progress: Progress | None = None,
) -> None:
    """Write the file recipe describes into each of fds (regular files open for reading
    and writing, at its offsets from 0); every chunk is checked against its name and the
    whole against recipe.md5 (CorruptChunk / CorruptObject otherwise: what was written
    is then not the file)."""
    from gitmodel.store import StoreError

    try:
        _write_chunks(packs, recipe, fds, jobs, progress)
    except OSError as exc:
        # the disk, not a bug: full, or a recipe's size beyond what the filesystem can hold
        # (a hostile one declares 2**62 bytes: EFBIG)
        raise StoreError(
            f"cannot rebuild {recipe.md5} ({recipe.size} bytes) from its chunks: "
            f"{exc.strerror or exc}"
        ) from None


def _write_chunks(
    packs: PackStore,
    recipe: Recipe,
    fds: Sequence[int],
    jobs: int,
    progress: Progress | None,
) -> None:
    from gitmodel.store import CorruptObject

    chunks = recipe.chunks
    offsets = [0] * len(chunks)
    at = 0
    index = packs.index
    for i, (_, length, cid) in enumerate(chunks):
        info = index.get(cid)
        if info is not None and info.raw_len != length:  # before any byte is written
            raise BadRecipe(
                f"recipe {recipe.md5}: chunk {cid[:16]} is {info.raw_len} bytes, not {length}"
            )
        offsets[i] = at
        at += length
    for fd in fds:
        os.ftruncate(fd, recipe.size)  # its size from the start: the md5 maps what is written
    # A whole dense chunk is written a piece at a time as it is decoded (in the CPU's
    # cache); any other is decoded into a buffer of its worker's own, reused for every
    # chunk it takes. The md5 reads the bytes back from the first output's pages (through
    # a map, no copy), so no decoded chunk waits in memory for it. A worker's buffer is
    # as long as this file's largest chunk (up to a 16 MiB piece; a longer header is
    # decoded into a fresh one): fresh pages cost a fault each, about 4 us a page here.
    cap = min(max((c[1] for c in chunks), default=0), PIECE)
    own: dict[int, bytearray] = {}

    def buffer() -> bytearray:
        out = own.get(threading.get_ident())
        if out is None:
            out = own[threading.get_ident()] = bytearray(cap)
        return out

    def decode(i: int) -> int:
        _, length, cid = chunks[i]

        def write(piece: Buffer, at: int) -> None:
            for fd in fds:
                _pwrite_all(fd, memoryview(piece), offsets[i] + at)

        packs.read_to(cid, write, buffer if length <= cap else None)
        return length

    digest = hashlib.md5()
    # chunks are decoded, checked and written on every core, a few ahead, while this
    # thread hashes them in file order (hashlib lets go of the GIL over large buffers)
    for i, length in enumerate(ordered_map(decode, range(len(chunks)), jobs, 4 * jobs)):
        _hash_range(digest, fds[0], offsets[i], length)
        if progress:
            progress(length)
    actual = digest.hexdigest()
    if actual != recipe.md5:
        raise CorruptObject(recipe.md5, actual)


def _hash_range(digest: Any, fd: int, offset: int, length: int) -> None:
    """Feed length bytes of fd at offset to digest: a map of the written pages (a read
    would copy them), dropped at once so a 10 GB rebuild does not hold them all."""
    if length < MAP_MIN:
        digest.update(os.pread(fd, length, offset))
        return
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(fd, length + offset - start, prot=mmap.PROT_READ, offset=start) as pages:
        with memoryview(pages) as view:
            digest.update(view[offset - start :])


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


class Unnamed:
    """A file being written that has no name yet (or, where the filesystem cannot make
    unnamed files, a temporary name beside where it goes)."""

    def __init__(self, directory: Path, mode: int, stem: str = "rebuild") -> None:
        self.tmp: Path | None = None
        self.fd = -1
        if _O_TMPFILE:
            try:
                self.fd = os.open(directory, os.O_RDWR | _O_TMPFILE | os.O_CLOEXEC, mode)
            except OSError as exc:
                if exc.errno not in _NO_NAMELESS_ERRNOS:
                    raise
        if self.fd < 0:
            self.tmp = _tmp_name(directory / stem)  # stem.<12 hex>.tmp
            self.fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        os.fchmod(self.fd, mode)  # whatever the umask

    def link(self, final: Path, replace: bool) -> None:
        """Give the file the name final (replace: over whatever is there, by rename, which
        replaces a link instead of writing through it)."""
        if self.tmp is None:
            # linkat(AT_SYMLINK_FOLLOW) of the descriptor's /proc link names an unnamed
            # file without privileges; os.link makes that call only when given a
            # directory descriptor (else it calls link(2), which links the /proc link)
            own = f"/proc/self/fd/{self.fd}"
            dir_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                if not replace:
                    os.link(own, final.name, dst_dir_fd=dir_fd)  # FileExistsError if there
                    return
                tmp = _tmp_name(final)
                os.link(own, tmp.name, dst_dir_fd=dir_fd)
                self.tmp = tmp
            finally:
                os.close(dir_fd)
        os.replace(self.tmp, final)
        self.tmp = None

    def close(self) -> None:
        """Close (and, if it was never named, drop) the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


def rebuild_object(
    store: Store,
    packs: PackStore,
    recipe: Recipe,
    jobs: int,
    progress: Progress | None = None,
    dest: Path | None = None,
) -> None:
    """Rebuild recipe's file into the cache as the object recipe.md5 and, when dest is
    given, as the work-tree file dest too (a copy of its own, 0644, its stat recorded as
    materialise records it), in one pass; each named only after the md5 matched."""
    outputs = [Unnamed(store._tmp_dir(), 0o444)]
    try:
        if dest is not None:
            if dest.is_dir() and not dest.is_symlink():
                from gitmodel.store import StoreError

                raise StoreError(f"cannot write {dest}: a directory is in the way")
            outputs.append(Unnamed(dest.parent, 0o644, dest.name))
        write_chunks(packs, recipe, [o.fd for o in outputs], jobs, progress)
        obj = outputs[0]
        if store.fsync_objects:
            os.fsync(obj.fd)
        st = os.fstat(obj.fd)
        if not store.reuse(recipe.md5):  # stored meanwhile (another checkout): keep that
            final = store.oid_to_path(recipe.md5)
            store.real_dir(final.parent, create=True)
            try:
                obj.link(final, replace=obj.tmp is not None)
                store.state.mark_verified(recipe.md5, st)
            except FileExistsError:
                pass  # placed by another process between the check and the link
        if dest is not None:
            try:
                outputs[1].link(dest, replace=True)
            except OSError as exc:
                from gitmodel.store import StoreError

                raise StoreError(f"cannot write {dest}: {exc.strerror or exc}") from exc
            taken = time.time_ns()
            store.state.record(os.stat(dest), recipe.md5, taken)
    finally:
        for o in outputs:
            o.close()
