"""Lossless encodings of a chunk: byte-grouped planes, zstd, XOR against a base chunk.

ZipNN's observation (arXiv 2411.05239): in a float tensor the byte holding the sign and
exponent is very repetitive while the low mantissa bytes are close to random. Splitting
each element's bytes into planes (all first bytes, then all second bytes...) lets zstd
shrink the exponent plane hard, and a plane that does not shrink is stored as it is
instead of paying zstd for nothing. For a chunk whose counterpart in the parent version
changed, XOR against it leaves zeros wherever the two agree (a fine-tune moves most bf16
values by at most an ulp), which the same planes + zstd then store in a fraction of
the bytes (ZipLLM/BitX).

A chunk that is mostly zero elements (the XOR delta of a fine-tune: a 1e-3 step leaves
~85% of bf16 values bit-identical, and zstd still runs at ~230 MB/s over such a plane) is
stored sparse instead: a bitmap of its nonzero elements and the byte planes of those
elements only. Measured on a 16 MiB bf16 XOR delta (density 0.15, one core): 19 ms at
0.061 of the raw size, against 40 ms at 0.097 for planes + zstd; it decodes faster too
(one scatter instead of zstd over the mostly-zero plane and a join).

Payload of an encoded chunk, dense: one byte `planes` (1 = not grouped), then per plane
one byte kind (0 raw, 1 zstd), an 8-byte little-endian length and the bytes. Sparse: one
byte 0x80 | width, an 8-byte little-endian count k of nonzero elements, then in the same
plane framing the bitmap (bit i, little-endian bit order, set when element i is nonzero;
ceil(n / 8) bytes) and the width byte planes of the k nonzero elements. Decoding checks
every length, and every zstd frame's declared size, against what the entry's raw length
allows before it allocates, so a hostile pack cannot make it allocate more than that.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

from gitmodel.errors import GitModelError
from gitmodel.record import FrozenRecord

TYPE_CHECKING = False

# What chunk bytes travel as: bytes from a read, or a byte view of a numpy array (no copy).
Buffer: TypeAlias = "bytes | memoryview"
_local = threading.local()

# zstd's fast strategy with a small hash table (1 KiB entries) and 7-byte matches: on the
# byte planes of bf16 weights what pays is zstd's entropy coding of literals, while long
# matches are rare, so a small match finder costs less and loses nothing. Measured (CPU
# time, 32 MiB of bf16 weights) against level 1: whole planes 48 ms vs 116 ms at 0.674 vs
# 0.684 of the raw size, XOR-delta planes 62 ms vs 66 ms at 0.097 vs 0.099 (level 3: the
# exponent plane 0.42 vs 0.37 at three times the time). Decoding is plain zstd.
ZSTD_PARAMS = {
    "window_log": 17,
    "hash_log": 10,
    "chain_log": 10,
    "search_log": 1,
    "min_match": 7,
    "target_length": 0,
}
# A plane whose first SAMPLE bytes do not shrink below RAW_RATIO is stored raw.
SAMPLE = 64 * 1024
RAW_RATIO = 0.97
_PLANE = struct.Struct("<BQ")
_COUNT = struct.Struct("<Q")
# The first payload byte of a sparse chunk is SPARSE | width.
SPARSE = 0x80
# Stored sparse when at most this share of its elements is nonzero. Measured on 16 MiB bf16
# XOR deltas (CPU ms / share of the raw size, dense vs sparse): density 0.04: 32 / 0.043 vs
# 22 / 0.028; 0.15: 40 / 0.097 vs 19 / 0.061; 0.42: 53 / 0.153 vs 33 / 0.134; 0.78:
# 26 / 0.236 vs 49 / 0.236 (the dense planes are stored raw by then).
SPARSE_MAX = 0.5
# Element widths that have a numpy integer type (the others are never stored sparse).
_SPARSE_WIDTHS = (1, 2, 4, 8)
# No chunk this encoder writes is larger: a safetensors header is at most 100 MB (plus its
# 8-byte length), a tensor piece 16 MiB, a content-defined chunk 512 KiB. A hostile entry
# claiming more is refused before anything is allocated for it.
MAX_CHUNK = 128 * 1024 * 1024
# Planes of these sizes are decompressed into a thread's reused buffers when the caller
# asks (smaller ones cost few page faults; a larger one is a long header, kept by no one).
SCRATCH_MIN = 64 * 1024
SCRATCH_MAX = 32 * 1024 * 1024
# A dense chunk is streamed (iter_dense) in pieces of this many bytes: a piece and its
# planes stay in the CPU's cache while the caller hashes and writes them.
STREAM_PIECE = 256 * 1024
# The sparse mask a thread keeps: one element per byte of a 16 MiB piece (chunking.PIECE).
PIECE_ELEMENTS = 16 * 1024 * 1024
_LITTLE = sys.byteorder == "little"


class CodecError(GitModelError):
    """An encoded chunk cannot be decoded (damaged or hostile pack)."""

    exit_code = 1


def _zstd() -> object:
    try:
        import zstandard
    except ModuleNotFoundError:  # pragma: no cover - an install without the dedup extra
        raise GitModelError(
            "[storage] dedup needs the `zstandard` and `numpy` packages: "
            "pip install 'gitmodel[dedup]'"
        ) from None
    return zstandard


_numpy_lock = threading.Lock()
_numpy: Any = None


def import_numpy() -> Any:
    """numpy, imported (the first time) with its OpenBLAS held to one thread.

    At import, numpy's OpenBLAS starts a thread per core that spins for a while waiting
    for matrix work gitmodel never gives it: `perf stat` of `import numpy, zstandard` here,
    300 ms of CPU against 157 ms with one thread, and on two cores that spin takes the
    core a rebuild's md5 or an add's encoding runs on. OpenBLAS reads the variable only
    when it loads, so it is set for the import alone (a value the user set is left as it
    is) and nothing started later sees it.
    """
    global _numpy
    if _numpy is not None:
        return _numpy
    key = "OPENBLAS_NUM_THREADS"
    with _numpy_lock:  # held until the import is whole (a second thread waits for it)
        if _numpy is None:
            ours = key not in os.environ and "numpy" not in sys.modules
            if ours:
                os.environ[key] = "1"
            try:
                import numpy
            finally:
                if ours:
                    os.environ.pop(key, None)
            _numpy = numpy
    return _numpy


def _planes(raw: Buffer, width: int) -> list[Buffer]:
    """raw's byte planes, in buffers this thread reuses (valid until its next call)."""
    if width <= 1 or len(raw) % width or not raw:
        return [raw]
    import numpy as np

    n = len(raw) // width
    bufs = getattr(_local, "planes", None)
    if bufs is None or len(bufs) < width or len(bufs[0]) < n:
        # Fresh pages cost a fault each (an 8 MiB chunk is 2,048 of them): a thread keeps
        # its plane buffers from one chunk to the next.
        bufs = _local.planes = [np.empty(n, dtype=np.uint8) for _ in range(width)]
    planes = [b[:n] for b in bufs[:width]]
    if width in (2, 4, 8):
        # element >> 8*i, truncated to a byte, is plane i (little-endian): one vectorised
        # pass per plane instead of a strided gather, 2-3 times faster on bf16
        elements = np.frombuffer(raw, dtype=f"<u{width}")
        np.copyto(planes[0], elements, casting="unsafe")
        for i in range(1, width):
            np.right_shift(elements, 8 * i, out=planes[i], casting="unsafe")
    else:
        grid = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
        for i in range(width):
            np.copyto(planes[i], grid[:, i])
    return [p.data for p in planes]


def _compressor() -> Any:
    """One compressor per thread: a ZstdCompressor must not be shared between threads."""
    c = getattr(_local, "compressor", None)
    if c is None:
        zstandard: Any = _zstd()
        params = zstandard.ZstdCompressionParameters(
            strategy=zstandard.STRATEGY_FAST, write_content_size=True, **ZSTD_PARAMS
        )
        c = _local.compressor = zstandard.ZstdCompressor(compression_params=params)
    return c


def encode(raw: Buffer, width: int) -> bytes:
    """The payload for raw, byte-grouped by width (1: not grouped); sparse when at most
    SPARSE_MAX of its width-byte elements are nonzero."""
    sparse = _encode_sparse(raw, width)
    if sparse is not None:
        return sparse
    compressor = _compressor()
    planes = _planes(raw, width)
    out: list[Buffer] = [bytes([len(planes)])]
    for plane in planes:
        _put_plane(out, plane, compressor)
    return b"".join(out)


def _put_plane(out: list[Buffer], plane: Buffer, compressor: Any) -> None:
    """Append a plane's framing and bytes: zstd when that pays, else raw."""
    view = memoryview(plane)
    kind, data = 0, view
    if len(view) > 64:
        probe = view[:SAMPLE]
        if len(view) <= SAMPLE or len(compressor.compress(probe)) < RAW_RATIO * len(probe):
            packed = compressor.compress(view)
            if len(packed) < len(view):
                kind, data = 1, packed
    out.append(_PLANE.pack(kind, len(data)))
    out.append(data)


def _encode_sparse(raw: Buffer, width: int) -> bytes | None:
    """The sparse payload for raw, or None when too many of its elements are nonzero."""
    if width not in _SPARSE_WIDTHS or len(raw) % width or len(raw) < 64 * width:
        return None
    import numpy as np

    elements = np.frombuffer(raw, dtype=f"<u{width}")
    n = len(elements)
    mask = getattr(_local, "mask", None)
    if mask is None or len(mask) < n:
        mask = _local.mask = np.empty(max(n, PIECE_ELEMENTS), dtype=np.bool_)  # reused
    nonzero = mask[:n]
    np.not_equal(elements, 0, out=nonzero)
    k = int(np.count_nonzero(nonzero))  # under 1 ms per 16 MiB: cheap to ask every chunk
    if k > SPARSE_MAX * n:
        return None
    bitmap = np.packbits(nonzero, bitorder="little")
    # np.compress, not elements[nonzero]: 7.5 ms against 27 ms for 8M bytes
    values = np.compress(nonzero, elements)
    compressor = _compressor()
    out: list[Buffer] = [bytes([SPARSE | width]), _COUNT.pack(k)]
    _put_plane(out, bitmap.data, compressor)
    for plane in _planes(values.view(np.uint8).data, width) if k else [b""] * width:
        _put_plane(out, plane, compressor)
    return b"".join(out)


class Sparse(FrozenRecord):
    """A decoded sparse chunk: the indices of its nonzero width-byte elements (int64, in
    order) and those elements (a numpy array of <u{width})."""

    __slots__ = ("width", "index", "values")

    def __init__(self, width: int, index: Any, values: Any) -> None:
        self._set(width=width, index=index, values=values)

    if TYPE_CHECKING:
        width: int
        index: Any
        values: Any


def _kind(payload: Buffer, raw_len: int) -> tuple[memoryview, int]:
    """A payload as a view and its first byte (its kind: a plane count, or SPARSE |
    width), after the checks every decoder makes first."""
    view = memoryview(payload)
    if not view:
        raise CodecError("empty chunk payload")
    if raw_len > MAX_CHUNK:
        raise CodecError(f"chunk of {raw_len} bytes is larger than any gitmodel writes")
    return view, view[0]


def _check_planes(n: int, raw_len: int) -> None:
    if n < 1 or n > 8 or raw_len % n:
        raise CodecError("bad plane count in chunk payload")


def decode_parts(
    payload: Buffer, raw_len: int, scratch: int | None = None
) -> list[Buffer] | Sparse:
    """A payload decoded to its byte planes (one plane when it is not grouped), or to its
    nonzero elements when it is sparse; CodecError if it is malformed or does not make
    raw_len bytes. A raw plane is a view of payload.

    scratch: decompress into buffers this thread keeps under that number (valid until
    its next call with the same number), for planes that are joined at once: a fresh
    8 MiB plane costs 2,048 page faults, and a rebuild decodes hundreds of them."""
    view, n = _kind(payload, raw_len)
    if n & SPARSE:
        return _decode_sparse(view, raw_len, n & ~SPARSE, scratch)
    _check_planes(n, raw_len)
    planes, at = _read_planes(view, 1, [raw_len // n] * n, scratch)
    if at != len(view):
        raise CodecError("trailing bytes in chunk payload")
    return planes


def decode_planes(payload: Buffer, raw_len: int) -> list[Buffer]:
    """The byte planes of a payload (a sparse one as a single plane of its raw bytes)."""
    parts = decode_parts(payload, raw_len)
    if isinstance(parts, Sparse):
        out = bytearray(raw_len)
        apply_sparse(out, parts)
        return [memoryview(out)]
    return parts


def _frames(view: memoryview, at: int, lengths: list[int]) -> tuple[list[tuple[int, Any]], int]:
    """The (kind, bytes) of the planes framed from view[at:], each of the length given,
    and where they end; checked before anything is decompressed or allocated: a zstd
    frame must declare its size, and that size must be the plane's."""
    zstandard: Any = _zstd()
    frames: list[tuple[int, Any]] = []
    for plane_len in lengths:
        if at + _PLANE.size > len(view):
            raise CodecError("truncated chunk payload")
        kind, length = _PLANE.unpack_from(view, at)
        at += _PLANE.size
        data = view[at : at + length]
        at += length
        if len(data) != length:
            raise CodecError("truncated chunk payload")
        if kind == 0:
            if length != plane_len:
                raise CodecError("chunk plane has the wrong length")
        elif kind == 1:
            try:
                # zstd allocates what a frame's header declares: refuse a declared size
                # other than the plane's before it does (a hostile 2**40 is a MemoryError)
                declared = zstandard.frame_content_size(data)
            except zstandard.ZstdError as exc:
                raise CodecError(f"bad zstd frame in chunk payload ({exc})") from None
            if declared != plane_len:
                raise CodecError("chunk plane has the wrong length")
        else:
            raise CodecError(f"unknown plane kind {kind} in chunk payload")
        frames.append((kind, data))
    return frames, at


def _read_planes(
    view: memoryview, at: int, lengths: list[int], scratch: int | None = None
) -> tuple[list[Buffer], int]:
    """The planes framed from view[at:], each of the length given (see _frames)."""
    frames, at = _frames(view, at, lengths)
    zstandard: Any = _zstd()
    decompressor = _decompressor()
    planes: list[Buffer] = []
    for (kind, data), plane_len in zip(frames, lengths, strict=True):
        plane: Buffer = data
        if kind == 1:
            try:
                if scratch is None or not SCRATCH_MIN <= plane_len <= SCRATCH_MAX:
                    plane = decompressor.decompress(data, max_output_size=plane_len)
                else:
                    out = _scratch_plane(scratch, len(planes), plane_len)
                    plane = _decompress_into(decompressor, data, out)
            except zstandard.ZstdError as exc:
                raise CodecError(f"bad zstd frame in chunk payload ({exc})") from None
        if len(plane) != plane_len:
            raise CodecError("chunk plane has the wrong length")
        planes.append(plane)
    return planes, at


def is_sparse(payload: Buffer) -> bool:
    """Whether a (non-empty) payload is of the sparse kind."""
    return bool(payload[0] & SPARSE)


def iter_dense(
    payload: Buffer, raw_len: int, piece: int = STREAM_PIECE, slot: int = 0
) -> Iterator[Buffer]:
    """The raw bytes of a dense payload a piece at a time (iter_dense_planes, joined)."""
    out = None
    for parts in iter_dense_planes(payload, raw_len, piece, slot):
        if len(parts) == 1:
            yield parts[0]
            continue
        if out is None:
            out = _local.pieces[slot][-1]
        yield join_planes(parts, out)


def iter_dense_planes(
    payload: Buffer, raw_len: int, piece: int = STREAM_PIECE, slot: int = 0
) -> Iterator[list[Buffer]]:
    """The byte planes of a dense (not sparse) payload, a piece at a time and in order.

    Each piece's planes (about `piece` bytes together, valid until the next piece is
    asked for) are decompressed into this thread's small buffers, so that a caller that
    joins, hashes
    and writes it finds it in the CPU's cache: decoding a 16 MiB chunk whole passes its
    planes and its bytes through memory several times (measured here: copying memory runs
    at about 2 GB/s). The same checks as decode_parts, before the first piece; a zstd
    frame that ends early or runs on is refused when that shows (CodecError). Iterators
    alive at once in one thread (the links of a delta chain) take different slots."""
    view, n = _kind(payload, raw_len)
    _check_planes(n, raw_len)  # a sparse kind (0x80 | width) is above 8: refused
    rows = raw_len // n
    frames, at = _frames(view, 1, [rows] * n)
    if at != len(view):
        raise CodecError("trailing bytes in chunk payload")
    step = max(1, piece // n)
    slots = getattr(_local, "pieces", None)
    if slots is None:
        slots = _local.pieces = {}
    bufs = slots.get(slot)
    if bufs is None or len(bufs[0]) < step * n:
        bufs = slots[slot] = [bytearray(step * n) for _ in range(9)]  # 8 planes at most
    with _plane_readers(frames, 8 * slot) as readers:
        for r0 in range(0, rows, step):
            m = min(step, rows - r0)
            parts: list[Buffer] = []
            for i, (kind, data) in enumerate(frames):
                if kind == 0:
                    parts.append(data[r0 : r0 + m])
                    continue
                dst = memoryview(bufs[i])[:m]
                if readers[i].readinto(dst) != m:
                    raise CodecError("chunk plane has the wrong length")
                parts.append(dst)
            yield parts


@contextmanager
def _plane_readers(frames: list[tuple[int, Buffer]], first: int) -> Iterator[list[Any]]:
    """A zstd reader for each compressed plane of frames (None for a stored one), on
    decompressors first, first + 1, ...: a reader decodes through its decompressor's
    context, which two readers cannot share. Leaving the block normally, a plane with
    bytes left over is refused; a zstd error in it is a CodecError; the readers are
    closed however it is left."""
    zstandard: Any = _zstd()
    readers: list[Any] = []
    try:
        for i, (kind, data) in enumerate(frames):
            readers.append(_decompressor(first + i).stream_reader(data) if kind == 1 else None)
        yield readers
        if any(r is not None and r.read(1) for r in readers):
            raise CodecError("chunk plane has the wrong length")
    except zstandard.ZstdError as exc:
        raise CodecError(f"bad zstd frame in chunk payload ({exc})") from None
    finally:
        for r in readers:
            if r is not None:
                r.close()


# Decompressor numbers of the streamed sparse links (iter_sparse): above any dense link's.
_SPARSE_SLOTS = 1 << 16


def iter_sparse(
    payload: Buffer, raw_len: int, piece: int = STREAM_PIECE, slot: int = 0
) -> Iterator[tuple[int, Any, Any]]:
    """A sparse payload's nonzero elements a piece of `piece` bytes at a time, in order:
    for each piece its length in bytes, the indices of its nonzero elements within it
    (int64) and those elements (<u{width}); valid until the next piece is asked for.

    For a chunk with a sparse link, so that it is XORed into its base a piece at a time,
    in the CPU's cache, as a dense chunk streams (iter_dense_planes): the bitmap and the
    value planes are read through their own zstd readers, a piece's share each. Picking
    the nonzero elements of a whole 16 MiB chunk and scattering them into it measured
    twice the CPU time of the same work piece by piece. piece must be a multiple of
    8 * width (a piece's bitmap is whole bytes). The checks of decode_parts come before
    the first piece; a bitmap whose bits do not add up to the element count is refused
    when that shows (CodecError), at the latest after the last piece."""
    np = import_numpy()
    view, kind = _kind(payload, raw_len)
    width = kind & ~SPARSE
    if not kind & SPARSE:
        raise CodecError("bad element width in sparse chunk payload")
    n, k = _sparse_counts(view, raw_len, width)
    if piece <= 0 or piece % (8 * width):
        raise ValueError(f"piece {piece} is not a multiple of {8 * width}")
    frames, at = _frames(view, 1 + _COUNT.size, [(n + 7) // 8] + [k] * width)
    if at != len(view):
        raise CodecError("trailing bytes in chunk payload")
    per = piece // width  # elements per piece, a multiple of 8
    slots = getattr(_local, "sparse", None)
    if slots is None:
        slots = _local.sparse = {}
    bufs = slots.get(slot)
    if bufs is None or len(bufs[-1]) < piece:
        # the bitmap's share, a value plane's share (one per byte of an element), the join
        bufs = slots[slot] = [bytearray(per // 8)] + [bytearray(per) for _ in range(8)]
        bufs.append(bytearray(piece))
    readers: list[Any] = []  # the planes' zstd readers, below
    done = [0] * len(frames)  # bytes of each plane taken so far

    def take(i: int, count: int) -> Buffer:
        kind, data = frames[i]
        if kind == 0:
            part = data[done[i] : done[i] + count]
        else:
            part = memoryview(bufs[i])[:count]
            if readers[i].readinto(part) != count:
                raise CodecError("chunk plane has the wrong length")
        done[i] += count
        return part

    taken = 0
    with _plane_readers(frames, _SPARSE_SLOTS + 16 * slot) as opened:
        readers[:] = opened
        for e0 in range(0, n, per):
            m = min(per, n - e0)
            bits = np.unpackbits(
                np.frombuffer(take(0, (m + 7) // 8), dtype=np.uint8), bitorder="little"
            )
            if len(bits) > m and bits[m:].any():
                raise CodecError("sparse chunk bitmap marks elements past its end")
            # flatnonzero of a bool view: 3 times faster than of the uint8 bits
            index = np.flatnonzero(bits[:m].view(np.bool_))
            c = len(index)
            taken += c
            if taken > k:
                raise CodecError("sparse chunk bitmap does not match its element count")
            planes = [take(1 + j, c) for j in range(width)]
            joined = join_planes(planes, bufs[-1]) if c else b""
            yield m * width, index, np.frombuffer(joined, dtype=f"<u{width}", count=c)
        if taken != k:
            raise CodecError("sparse chunk bitmap does not match its element count")


def _scratch_plane(scratch: int, i: int, size: int) -> memoryview:
    """Plane i's buffer under number scratch, this thread's, at least size bytes."""
    bufs = getattr(_local, "decoded", None)
    if bufs is None:
        bufs = _local.decoded = {}
    buf = bufs.get((scratch, i))
    if buf is None or len(buf) < size:
        buf = bufs[scratch, i] = bytearray(size)
    return memoryview(buf)[:size]


def _decompress_into(decompressor: Any, frame: memoryview, out: memoryview) -> memoryview:
    """A zstd frame decompressed into out, which it must fill exactly (a short frame,
    a longer one or a second frame after it is refused)."""
    with decompressor.stream_reader(frame) as reader:
        got = reader.readinto(out)
        more = reader.read(1)
    if got != len(out) or more:
        raise CodecError("chunk plane has the wrong length")
    return out


def _sparse_counts(view: memoryview, raw_len: int, width: int) -> tuple[int, int]:
    """A sparse payload's element count and nonzero count, checked against its width,
    its raw length and each other."""
    if width not in _SPARSE_WIDTHS or raw_len % width:
        raise CodecError("bad element width in sparse chunk payload")
    n = raw_len // width
    if 1 + _COUNT.size > len(view):
        raise CodecError("truncated chunk payload")
    (k,) = _COUNT.unpack_from(view, 1)
    if k > n:
        raise CodecError("sparse chunk payload counts more elements than it has")
    return n, k


def _decode_sparse(view: memoryview, raw_len: int, width: int, scratch: int | None) -> Sparse:
    np = import_numpy()

    n, k = _sparse_counts(view, raw_len, width)
    (bitmap, *planes), at = _read_planes(
        view, 1 + _COUNT.size, [(n + 7) // 8] + [k] * width, scratch
    )
    if at != len(view):
        raise CodecError("trailing bytes in chunk payload")
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    if bits[n:].any():
        raise CodecError("sparse chunk bitmap marks elements past its end")
    # flatnonzero of a bool view: 3 times faster than of the uint8 bits
    index = np.flatnonzero(bits[:n].view(np.bool_))
    if len(index) != k:
        raise CodecError("sparse chunk bitmap does not match its element count")
    values = np.frombuffer(join_planes(planes) if k else b"", dtype=f"<u{width}")
    return Sparse(width, index, values)


def apply_sparse(out: Buffer | bytearray, sparse: Sparse) -> None:
    """XOR a sparse chunk into out (writable, the chunk's length): out[i] ^= element i."""
    np = import_numpy()

    if not len(sparse.index):
        return
    elements = np.frombuffer(out, dtype=f"<u{sparse.width}")
    elements[sparse.index] ^= sparse.values


def _decompressor(i: int = 0) -> Any:
    """This thread's decompressor number i (one per plane a chunk streams at once)."""
    ds = getattr(_local, "decompressors", None)
    if ds is None:
        ds = _local.decompressors = {}
    d = ds.get(i)
    if d is None:
        zstandard: Any = _zstd()
        d = ds[i] = zstandard.ZstdDecompressor()
    return d


def join_planes(planes: Sequence[Buffer], out: bytearray | None = None) -> Buffer:
    """The raw bytes whose byte planes these are (the inverse of the grouping), written
    into out when it is given and large enough (a buffer the caller reuses)."""
    if len(planes) == 1:
        return planes[0]
    np = import_numpy()

    n = len(planes)
    rows = len(planes[0])
    if n == 2 and _LITTLE:
        # two planes (bf16, fp16): each element is low | high << 8, two vectorised passes
        # instead of two strided copies: half the CPU time (58 ms against 121 ms per
        # 256 MiB in 256 KiB pieces)
        if out is not None and len(out) >= rows * 2:
            pairs = np.frombuffer(out, dtype=np.uint16, count=rows)
        else:
            pairs = np.empty(rows, dtype=np.uint16)
        high = np.frombuffer(planes[1], dtype=np.uint8)
        np.left_shift(high, 8, out=pairs, dtype=np.uint16)
        np.bitwise_or(pairs, np.frombuffer(planes[0], dtype=np.uint8), out=pairs)
        return pairs.view(np.uint8).data
    if out is not None and len(out) >= rows * n:
        grid = np.frombuffer(out, dtype=np.uint8, count=rows * n).reshape(rows, n)
    else:
        grid = np.empty((rows, n), dtype=np.uint8)
    for i, plane in enumerate(planes):
        grid[:, i] = np.frombuffer(plane, dtype=np.uint8)
    return grid.reshape(-1).data


def decode(payload: Buffer, raw_len: int) -> Buffer:
    """raw bytes of a payload; CodecError if it is malformed or not raw_len long."""
    return join_planes(decode_planes(payload, raw_len))


def xor(a: Buffer, b: Buffer, scratch: bool = False) -> Buffer:
    """a XOR b (equal lengths), eight bytes at a time where the length allows. scratch:
    into a buffer this thread reuses (valid until its next scratch call), for a result
    that is encoded at once rather than kept."""
    np = import_numpy()

    dtype = np.uint64 if len(a) % 8 == 0 else np.uint8
    x, y = np.frombuffer(a, dtype=dtype), np.frombuffer(b, dtype=dtype)
    if not scratch:
        return np.bitwise_xor(x, y).view(np.uint8).data
    buf = getattr(_local, "xor", None)
    if buf is None or len(buf) < len(a):
        buf = _local.xor = np.empty(len(a), dtype=np.uint8)
    out = buf[: len(a)].view(dtype)
    np.bitwise_xor(x, y, out=out)
    return out.view(np.uint8).data
