"""Packs: many encoded chunks in one file, with an index, written atomically.

A checkpoint of a few hundred tensors, or a pickle of thousands of content-defined chunks,
becomes one pack file instead of thousands of small files (which cost an inode, a
directory entry and, on a remote, a round trip each). A pack is

    b"GMPACK1\\n", then per chunk: ENTRY (magic, chunk id, base id or zeros, raw length,
    payload length, delta depth) and the payload (gitmodel.dedup.codec)

and is named by the sha256 of its bytes. Every entry carries what its index row says, so
an index can always be rebuilt from its pack (`import_pack` does, for a pack that came
from a remote: nothing a remote says about a pack is believed). A chunk is named by the
sha256 of its *raw* bytes and is checked against that name every time it is decoded.

A pack is written to a temporary name, fsynced when the repository asks for it, renamed
into place, and only then its index is written (also atomically): readers list indexes,
so a pack is either wholly visible or not at all.
"""

from __future__ import annotations

import errno
import hashlib
import math
import mmap
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from gitmodel.dedup.codec import (
    SPARSE,
    STREAM_PIECE,
    Buffer,
    CodecError,
    Sparse,
    apply_sparse,
    decode_parts,
    import_numpy,
    is_sparse,
    iter_dense_planes,
    iter_sparse,
    join_planes,
    xor,
)
from gitmodel.errors import GitModelError
from gitmodel.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

PACK_MAGIC = b"GMPACK1\n"
IDX_MAGIC = b"GMIDX1\n\0"
ENTRY = struct.Struct("<4s32s32sQQB")  # b"GMCK", id, base, raw length, payload length, depth
ROW = struct.Struct("<32s32sQQQB")  # id, base, payload offset, raw length, payload length, depth
NO_BASE = bytes(32)
# Deltas chain at most this deep: decoding a chunk then costs at most MAX_DEPTH + 1 decodes.
MAX_DEPTH = 3
# A pack is closed at this many payload bytes (64 MiB, as Xet's units), another opened.
PACK_TARGET = 64 * 1024 * 1024
# Payloads shorter than this are read (a map costs two system calls and a fault).
MAP_MIN = 256 * 1024


class CorruptChunk(GitModelError):
    """A stored chunk does not decode to the bytes its name promises."""

    exit_code = 1


def chunk_id(raw: Buffer) -> str:
    return hashlib.sha256(raw).hexdigest()


class ChunkInfo(FrozenRecord):
    __slots__ = ("id", "pack", "offset", "raw_len", "enc_len", "base", "depth")

    def __init__(
        self,
        id: str,
        pack: str,
        offset: int,
        raw_len: int,
        enc_len: int,
        base: str | None,
        depth: int,
    ) -> None:
        self._set(
            id=id,
            pack=pack,
            offset=offset,
            raw_len=raw_len,
            enc_len=enc_len,
            base=base,
            depth=depth,
        )

    if TYPE_CHECKING:
        id: str
        pack: str
        offset: int
        raw_len: int
        enc_len: int
        base: str | None
        depth: int


def _hex(b: bytes) -> str | None:
    return None if b == NO_BASE else b.hex()


def parse_pack(data: bytes | memoryview, name: str) -> list[ChunkInfo]:
    """The entries of a pack's bytes; CorruptChunk if its framing is broken."""
    view = memoryview(data)
    if bytes(view[: len(PACK_MAGIC)]) != PACK_MAGIC:
        raise CorruptChunk(f"pack {name}: not a gitmodel pack")
    at = len(PACK_MAGIC)
    rows = []
    while at < len(view):
        if at + ENTRY.size > len(view):
            raise CorruptChunk(f"pack {name}: truncated entry at byte {at}")
        magic, cid, base, raw_len, enc_len, depth = ENTRY.unpack_from(view, at)
        at += ENTRY.size
        if magic != b"GMCK" or at + enc_len > len(view) or depth > MAX_DEPTH:
            raise CorruptChunk(f"pack {name}: bad entry at byte {at - ENTRY.size}")
        if (base == NO_BASE) != (depth == 0):
            raise CorruptChunk(f"pack {name}: bad delta depth at byte {at - ENTRY.size}")
        rows.append(ChunkInfo(cid.hex(), name, at, raw_len, enc_len, _hex(base), depth))
        at += enc_len
    return rows


def _idx_bytes(rows: Iterable[ChunkInfo]) -> bytes:
    body = IDX_MAGIC + b"".join(
        ROW.pack(
            bytes.fromhex(r.id),
            bytes.fromhex(r.base) if r.base else NO_BASE,
            r.offset,
            r.raw_len,
            r.enc_len,
            r.depth,
        )
        for r in rows
    )
    return body + hashlib.sha256(body).digest()


def _parse_idx(data: bytes, name: str) -> list[ChunkInfo] | None:
    body, digest = data[:-32], data[-32:]
    if not body.startswith(IDX_MAGIC) or hashlib.sha256(body).digest() != digest:
        return None
    rows = []
    for off in range(len(IDX_MAGIC), len(body) - ROW.size + 1, ROW.size):
        cid, base, offset, raw_len, enc_len, depth = ROW.unpack_from(body, off)
        rows.append(ChunkInfo(cid.hex(), name, offset, raw_len, enc_len, _hex(base), depth))
    if (len(body) - len(IDX_MAGIC)) % ROW.size:
        return None
    return rows


# Opens a file of the chunk store: never through a link, never waiting on a FIFO.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def open_regular(path: Path | str) -> tuple[int, int]:
    """A descriptor of the regular file at path and its size; OSError for a symbolic link
    (ELOOP) or anything else that is not a regular file. A clone may commit any file of
    the chunk store as a link (`packs/<name>.idx -> /dev/zero`, endless when read to its
    end), so none is ever followed."""
    fd = os.open(path, _READ_FLAGS)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd, st.st_size


def read_regular(path: Path | str) -> bytes:
    """The bytes of the regular file at path (open_regular), as many as its size says."""
    fd, size = open_regular(path)
    try:
        parts, got = [], 0
        while got < size and (part := os.pread(fd, size - got, got)):
            parts.append(part)
            got += len(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def is_pack_name(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class PackStore:
    """The packs of one directory and the union of their indexes."""

    def __init__(self, root: Path, fsync: Callable[[], bool] | bool = False) -> None:
        self.root = root
        self._fsync = fsync
        self._index: dict[str, ChunkInfo] | None = None
        self._lock = threading.Lock()
        self._fds: dict[str, tuple[int, int]] = {}

    @property
    def fsync(self) -> bool:
        if not isinstance(self._fsync, bool):
            self._fsync = bool(self._fsync())
        return self._fsync

    def pack_path(self, name: str) -> Path:
        return self.root / f"{name}.pack"

    def idx_path(self, name: str) -> Path:
        return self.root / f"{name}.idx"

    def tmp_dir(self) -> Path:
        d = self.root / "tmp"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def pack_names(self) -> list[str]:
        """Packs with an index (a pack without one is being written, or was abandoned)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n[:-4] for n in names if n.endswith(".idx") and is_pack_name(n[:-4]))

    @property
    def index(self) -> dict[str, ChunkInfo]:
        with self._lock:
            if self._index is None:
                index: dict[str, ChunkInfo] = {}
                for name in self.pack_names():
                    for row in self.pack_rows(name):
                        index.setdefault(row.id, row)
                self._index = index
            return self._index

    def pack_rows(self, name: str) -> list[ChunkInfo]:
        """A pack's rows from its index, rebuilt from the pack if the index is damaged."""
        try:
            data = read_regular(self.idx_path(name))
        except OSError:  # gone, or not a regular file: as if the pack were not there
            return []
        rows = _parse_idx(data, name)
        if rows is None:
            try:
                rows = parse_pack(read_regular(self.pack_path(name)), name)
            except (OSError, CorruptChunk):
                return []
        return rows

    def forget(self) -> None:
        """Drop the loaded index (packs were added or removed by this process)."""
        with self._lock:
            self._index = None
            for fd, _ in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def has(self, cid: str) -> bool:
        return cid in self.index

    def _fd(self, pack: str) -> tuple[int, int]:
        """A pack's descriptor and its size (packs never change once published; a
        payload is checked to lie within the size before it is read or mapped)."""
        with self._lock:
            got = self._fds.get(pack)
            if got is None:
                got = self._fds[pack] = open_regular(self.pack_path(pack))
            return got

    def payload(self, info: ChunkInfo, mapped: bool = False) -> Buffer:
        """A chunk's payload as its pack holds it. mapped: a view of the pack's pages
        (unmapped when the last view of it goes) rather than a copy, for a payload that is
        decoded at once: a read copies it, into a fresh bytes object that costs a page
        fault per 4 KiB (a rebuild of 256 MiB reads about 170 MB of payloads)."""
        fd, size = self._fd(info.pack)
        if info.offset + info.enc_len > size:
            raise CorruptChunk(f"chunk {info.id[:16]}: pack {info.pack[:16]} is truncated")
        if mapped and info.enc_len >= MAP_MIN:
            start = info.offset - info.offset % mmap.ALLOCATIONGRANULARITY
            pages = mmap.mmap(
                fd, info.enc_len + info.offset - start, prot=mmap.PROT_READ, offset=start
            )
            return memoryview(pages)[info.offset - start :]
        data = os.pread(fd, info.enc_len, info.offset)
        if len(data) != info.enc_len:
            raise CorruptChunk(f"chunk {info.id[:16]}: pack {info.pack[:16]} is truncated")
        return data

    def entry_bytes(self, info: ChunkInfo) -> bytes:
        """The entry as it sits in its pack (header + payload), for copying into another."""
        head = ENTRY.pack(
            b"GMCK",
            bytes.fromhex(info.id),
            bytes.fromhex(info.base) if info.base else NO_BASE,
            info.raw_len,
            info.enc_len,
            info.depth,
        )
        return head + self.payload(info)

    def chain(self, cid: str) -> list[ChunkInfo]:
        """cid's entry and its delta bases down to a whole chunk (each base strictly less
        deep and as long, so a hostile index cannot loop or mix lengths)."""
        info = self.index.get(cid)
        if info is None:
            raise GitModelError(f"chunk {cid[:16]} is not in the local chunk store")
        out = [info]
        while info.base is not None:
            base = self.index.get(info.base)
            if base is None:
                raise GitModelError(
                    f"chunk {cid[:16]}: its delta base {info.base[:16]} is not in the local "
                    "chunk store"
                )
            if base.depth >= info.depth:
                raise CorruptChunk(f"chunk {cid[:16]}: its delta chain loops")
            if base.raw_len != info.raw_len:
                raise CorruptChunk(f"chunk {cid[:16]}: its delta base has another length")
            out.append(base)
            info = base
        return out

    def _decode_chain(self, chain: list[ChunkInfo], out: bytearray | None = None) -> Buffer:
        """The raw bytes of chain[0]: every dense link decoded to its byte planes and the
        planes XORed (the grouping is a permutation of bytes, so XOR commutes with it),
        joined once; then each sparse link XORed in at its nonzero elements only.

        With out (large enough), every link's payload is mapped rather than read, its
        planes are decompressed into this thread's reused buffers (slot k for link k) and
        the result is always in out; without, the result is fresh bytes or arrays."""
        size = chain[0].raw_len
        reuse = out is not None and len(out) >= size
        planes: list[Buffer] | None = None
        sparse: list[Sparse] = []
        for k, info in enumerate(chain):
            slot = k if reuse else None
            try:
                mine = decode_parts(self.payload(info, reuse), info.raw_len, slot)
            except CodecError as exc:
                raise CorruptChunk(
                    f"corrupt chunk {info.id[:16]} in pack {info.pack[:16]}: {exc.message}"
                ) from None
            except OSError as exc:
                raise CorruptChunk(
                    f"corrupt chunk {info.id[:16]}: pack unreadable ({exc.strerror})"
                ) from None
            if isinstance(mine, Sparse):
                sparse.append(mine)
            elif planes is None:
                planes = mine
            elif len(mine) == len(planes):
                planes = [xor(a, b) for a, b in zip(planes, mine, strict=True)]
            else:
                planes = [xor(join_planes(planes), join_planes(mine))]
        if not sparse and (not reuse or len(planes or ()) > 1):
            assert planes is not None
            return join_planes(planes, out)
        if out is None or len(out) < size:
            out = bytearray(size)
        target = memoryview(out)[:size]
        if planes is None:
            target[:] = bytes(size)
        elif len(planes) == 1:
            target[:] = planes[0]
        else:
            join_planes(planes, out)  # into out: it is large enough
        for part in sparse:
            apply_sparse(target, part)
        return target

    def read(self, cid: str, out: bytearray | None = None) -> Buffer:
        """The raw bytes of chunk cid, decoded and checked against its name (joined into out
        when it is given and large enough, a buffer the caller reuses).

        Only the chunk asked for is hashed (its bytes are right or the read fails, whatever
        its bases were); when it fails, each base is checked to name the damaged one."""
        chain = self.chain(cid)
        raw = self._decode_chain(chain, out)
        if chunk_id(raw) != cid:
            for k in range(len(chain) - 1, 0, -1):
                base = chain[k]
                if chunk_id(self._decode_chain(chain[k:])) != base.id:
                    raise CorruptChunk(
                        f"chunk {cid[:16]}: its delta base {base.id[:16]} in pack "
                        f"{base.pack[:16]} is corrupt (its bytes hash otherwise)"
                    )
            raise CorruptChunk(
                f"corrupt chunk {cid[:16]} in pack {chain[0].pack[:16]} (its bytes hash otherwise)"
            )
        return raw

    def read_to(
        self,
        cid: str,
        write: Callable[[Buffer, int], None],
        buffer: Callable[[], bytearray | None] | None = None,
    ) -> None:
        """Decode chunk cid, handing its bytes to write(piece, offset in the chunk) as they
        are made, and check them against its name at the end (CorruptChunk then: what
        write was given is not the chunk, and the caller must not keep it).

        Every link of its delta chain is decoded a piece at a time from its pack's pages
        (a whole chunk, XOR deltas over one, sparse links among them: a fine-tune's
        deltas), the dense links' plane pieces XORed and joined (codec.iter_dense_planes),
        then each sparse link's nonzero elements of the piece XORed in
        (codec.iter_sparse). Only a chain whose dense links are grouped differently (their
        pieces would not line up) is decoded whole, as read() does, into the buffer that
        buffer() gives (asked only then)."""
        chain = self.chain(cid)
        payloads = []
        for info in chain:
            try:
                payloads.append(self.payload(info, mapped=True))
            except OSError as exc:
                raise CorruptChunk(
                    f"corrupt chunk {info.id[:16]}: pack unreadable ({exc.strerror})"
                ) from None
        piece = _piece_bytes(payloads)
        if piece is None:
            write(self.read(cid, buffer() if buffer else None), 0)
            return
        dense = [k for k, p in enumerate(payloads) if not is_sparse(p)]
        sparse = [k for k, p in enumerate(payloads) if is_sparse(p)]
        digest = hashlib.sha256()
        at = 0
        n = payloads[dense[0]][0] if dense else 1  # planes per dense link (alike, checked)
        np = import_numpy() if len(chain) > 1 else None
        # the XOR of the dense links' plane pieces, then their join (XOR commutes with the
        # grouping, so the planes are XORed and joined once, as the whole decode does)
        total = [bytearray(piece) for _ in range(n)] if len(dense) > 1 else []
        out = bytearray(piece) if n > 1 or sparse else None
        links: list[Iterator[Any]] = [_pieces(payloads[k], chain[k], k, piece) for k in dense]
        links += [_sparse_pieces(payloads[k], chain[k], k, piece) for k in sparse]
        nd = len(dense)
        # (the links are as long as each other and cut alike: their pieces line up)
        for link_parts in zip(*links, strict=True):
            if nd:
                parts = link_parts[0]
                if len(total):
                    assert np is not None
                    mixed: list[Buffer] = []
                    for j, plane in enumerate(parts):
                        acc = np.frombuffer(total[j], dtype=np.uint8, count=len(plane))
                        np.copyto(acc, np.frombuffer(plane, dtype=np.uint8))
                        for other in link_parts[1:nd]:
                            np.bitwise_xor(acc, np.frombuffer(other[j], dtype=np.uint8), out=acc)
                        mixed.append(acc.data)
                    parts = mixed
                if out is None:
                    joined = parts[0]
                elif n > 1:
                    joined = join_planes(parts, out)
                else:  # one plane, maybe a view of the pack: into out, where it is XORed
                    joined = memoryview(out)[: len(parts[0])]
                    joined[:] = parts[0]
            else:  # every link sparse: XORed into zeros
                assert out is not None
                joined = memoryview(out)[: link_parts[0][0]]
                joined[:] = bytes(len(joined))
            for length, index, values in link_parts[nd:]:
                assert np is not None
                if length != len(joined):
                    raise CorruptChunk(f"chunk {cid[:16]}: its delta links do not line up")
                if len(index):
                    elements = np.frombuffer(joined, dtype=values.dtype)
                    elements[index] ^= values
            digest.update(joined)
            write(joined, at)
            at += len(joined)
        if digest.hexdigest() != cid:
            if len(chain) > 1:
                self.read(cid)  # decodes each link whole to name the damaged one
            raise CorruptChunk(
                f"corrupt chunk {cid[:16]} in pack {chain[0].pack[:16]} (its bytes hash otherwise)"
            )

    def closure(self, ids: Iterable[str]) -> set[str]:
        """ids and every delta base they need, transitively (those in the index)."""
        return closure(ids, self.index)

    def writer(self) -> PackWriter:
        return PackWriter(self)

    # -- placing packs ----------------------------------------------------------------------

    def place(self, tmp: Path, name: str, rows: list[ChunkInfo]) -> None:
        """Rename a finished pack into place, then write its index (the pack's publication)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.pack_path(name)
        if final.exists():
            tmp.unlink(missing_ok=True)
        else:
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        idx = self.idx_path(name)
        if not idx.exists():
            itmp = self.tmp_dir() / f"{name}.{os.urandom(6).hex()}.idx.tmp"
            try:
                with open(itmp, "xb") as f:
                    f.write(_idx_bytes(rows))
                    if self.fsync:
                        f.flush()
                        os.fsync(f.fileno())
                os.chmod(itmp, 0o444)
                os.replace(itmp, idx)
            except BaseException:
                itmp.unlink(missing_ok=True)
                raise
        with self._lock:
            if self._index is not None:
                for row in rows:
                    self._index.setdefault(row.id, row)

    def import_pack(self, tmp: Path, expected: str | None = None) -> str:
        """Take in a pack file (from a remote): check its name and framing, index it."""
        data = tmp.read_bytes()
        name = hashlib.sha256(data).hexdigest()
        if expected is not None and name != expected:
            raise CorruptChunk(f"pack {expected[:16]} from the remote hashes to {name[:16]}")
        rows = parse_pack(data, name)
        self.place(tmp, name, rows)
        return name

    def remove_pack(self, name: str) -> None:
        """Unpublish (index first) and delete a pack."""
        self.idx_path(name).unlink(missing_ok=True)
        self.pack_path(name).unlink(missing_ok=True)
        self.forget()

    def iter_pack_entries(self, name: str) -> Iterator[ChunkInfo]:
        yield from parse_pack(read_regular(self.pack_path(name)), name)


class PackWriter:
    """Appends entries to new packs (closing one at PACK_TARGET); publish with close()."""

    def __init__(self, packs: PackStore) -> None:
        self.packs = packs
        self.written: list[str] = []  # names of the packs published
        self._f: BinaryIO | None = None
        self._tmp: Path | None = None
        self._hash = hashlib.sha256()
        self._rows: list[tuple[str, int, int, int, str | None, int]] = []
        self._at = 0
        self.ids: set[str] = set()

    def _open(self) -> None:
        self._tmp = self.packs.tmp_dir() / f"pack.{os.urandom(6).hex()}.tmp"
        self._f = open(self._tmp, "xb")
        self._hash = hashlib.sha256()
        self._rows = []
        self._f.write(PACK_MAGIC)
        self._hash.update(PACK_MAGIC)
        self._at = len(PACK_MAGIC)

    def add(self, cid: str, base: str | None, depth: int, raw_len: int, payload: bytes) -> None:
        if cid in self.ids:
            return
        if self._f is None:
            self._open()
        assert self._f is not None
        head = ENTRY.pack(
            b"GMCK",
            bytes.fromhex(cid),
            bytes.fromhex(base) if base else NO_BASE,
            raw_len,
            len(payload),
            depth,
        )
        self._f.write(head)
        self._hash.update(head)
        offset = self._at + len(head)
        self._f.write(payload)
        self._hash.update(payload)
        self._at = offset + len(payload)
        self._rows.append((cid, offset, raw_len, len(payload), base, depth))
        self.ids.add(cid)
        if self._at >= PACK_TARGET:
            self._finish()

    def add_entry(self, entry: bytes) -> None:
        """Append an entry copied whole from another pack (see PackStore.entry_bytes)."""
        magic, cid, base, raw_len, enc_len, depth = ENTRY.unpack_from(entry, 0)
        self.add(cid.hex(), _hex(base), depth, raw_len, entry[ENTRY.size :])

    def _finish(self) -> None:
        if self._f is None:
            return
        f, tmp = self._f, self._tmp
        assert tmp is not None
        self._f = None
        try:
            f.flush()
            if self.packs.fsync:
                os.fsync(f.fileno())
        finally:
            f.close()
        name = self._hash.hexdigest()
        rows = [ChunkInfo(c, name, o, r, e, b, d) for c, o, r, e, b, d in self._rows]
        self.packs.place(tmp, name, rows)
        self.written.append(name)

    def close(self) -> list[str]:
        """Publish what was written; the names of every pack this writer published."""
        self._finish()
        return self.written

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _piece_bytes(payloads: list[Buffer]) -> int | None:
    """The length of the pieces a delta chain with these payloads is streamed in (about
    STREAM_PIECE, a whole number of every dense link's rows and of 8 of every sparse
    link's elements, so that the links' pieces line up), or None when it cannot be
    streamed: its dense links are grouped differently, or a payload is empty or of no
    known kind (decoded whole then, where it is refused with its reason)."""
    step = 8
    planes = None
    for p in payloads:
        if not len(p):
            return None
        kind = p[0]
        if kind & SPARSE:
            width = kind & ~SPARSE
            if width not in (1, 2, 4, 8):
                return None
            step = math.lcm(step, 8 * width)
        else:
            if not 1 <= kind <= 8 or (planes is not None and kind != planes):
                return None
            planes = kind
            step = math.lcm(step, kind)
    return STREAM_PIECE - STREAM_PIECE % step


def _pieces(payload: Buffer, info: ChunkInfo, slot: int, piece: int) -> Iterator[list[Buffer]]:
    """iter_dense_planes of one link's payload, its faults named by that link's chunk."""
    try:
        yield from iter_dense_planes(payload, info.raw_len, piece, slot=slot)
    except CodecError as exc:
        raise CorruptChunk(
            f"corrupt chunk {info.id[:16]} in pack {info.pack[:16]}: {exc.message}"
        ) from None


def _sparse_pieces(
    payload: Buffer, info: ChunkInfo, slot: int, piece: int
) -> Iterator[tuple[int, Any, Any]]:
    """iter_sparse of one link's payload, its faults named by that link's chunk."""
    try:
        yield from iter_sparse(payload, info.raw_len, piece, slot=slot)
    except CodecError as exc:
        raise CorruptChunk(
            f"corrupt chunk {info.id[:16]} in pack {info.pack[:16]}: {exc.message}"
        ) from None


def closure(ids: Iterable[str], index: dict[str, ChunkInfo]) -> set[str]:
    """ids and every delta base they need, transitively (those in index)."""
    out: set[str] = set()
    todo = list(ids)
    while todo:
        cid = todo.pop()
        if cid in out:
            continue
        out.add(cid)
        info = index.get(cid)
        if info is not None and info.base is not None:
            todo.append(info.base)
    return out
