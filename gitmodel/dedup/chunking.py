"""Where a file is cut into chunks: at tensor boundaries for safetensors, by content elsewhere.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the tensors. Cutting at those ranges means a
fine-tune that changes some tensors (or only the header's metadata) stores only what
changed: every other chunk keeps its bytes and so its name. A tensor larger than PIECE is
cut into PIECE-sized pieces counted from the tensor's own start, so a change of the header's
length shifts nothing. The header is read here rather than through the `safetensors`
package because the package does not expose byte offsets, and because a header from a
pushed repository is hostile: anything that does not describe a clean partition of the file
falls back to content-defined chunking, never to an error.

Any other file (pickles, ONNX, a safetensors file with a broken header) is cut by
content-defined chunking (FastCDC: a gear rolling hash, cut where its masked bits are
zero, a stricter mask before the average size and a looser one after), vectorised with
numpy since a Python loop over every byte runs at a few MB/s.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator

from gitmodel.record import FrozenRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    import numpy as np

# Pieces of a large tensor: large enough that a 10 GB checkpoint is ~640 chunks, small
# enough that encoding one (raw, its delta base and the compressed planes) stays within
# the streaming memory budget (256 MiB) with a worker per core.
PIECE = 16 * 1024 * 1024
# safetensors itself refuses headers over 100 MB
MAX_HEADER = 100 * 1000 * 1000
# element widths by safetensors dtype: floats are byte-grouped by this width
DTYPE_WIDTH = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})

# Content-defined chunking: 32 KiB to 512 KiB, 128 KiB on average (Xet uses 64 KiB; a
# little larger keeps a 10 GB pickle to ~80k chunks).
CDC_MIN = 32 * 1024
CDC_AVG = 128 * 1024
CDC_MAX = 512 * 1024
# Bits the two masks test: the hash's high bits, which depend on the most bytes (bit k of
# a shift-by-one gear hash mixes the last k+1 bytes). 19 bits before the average size,
# 15 after: FastCDC's normalised chunking at level 2.
_MASK_S = ((1 << 19) - 1) << 13
_MASK_L = ((1 << 15) - 1) << 17
_BLOCK = 4 * 1024 * 1024  # bytes hashed per numpy pass (~50 MiB of temporaries)


class ChunkSpec(FrozenRecord):
    """One span of a file: where it is, what to match it with in the parent version.

    key names the span across versions (a tensor name and piece number, or the header),
    so the parent's chunk of the same key is the XOR delta's base; width is the element
    size for byte-grouping (1: none).
    """

    __slots__ = ("key", "offset", "length", "width")

    def __init__(self, key: str, offset: int, length: int, width: int = 1) -> None:
        self._set(key=key, offset=offset, length=length, width=width)

    if TYPE_CHECKING:
        key: str
        offset: int
        length: int
        width: int


def plan_chunks(path: str | os.PathLike[str]) -> tuple[str, list[ChunkSpec]]:
    """("safetensors" or "cdc", the chunks that partition the file in order)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        specs = safetensors_chunks(f, size)
        if specs is not None:
            return "safetensors", specs
        return "cdc", cdc_chunks(f, size)


def _read_header(f: object, size: int) -> dict[str, object] | None:
    read = f.read  # type: ignore[attr-defined]
    head = read(8)
    if len(head) != 8:
        return None
    (n,) = struct.unpack("<Q", head)
    if n < 2 or n > MAX_HEADER or 8 + n > size:
        return None
    raw = read(n)
    if len(raw) != n:
        return None
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def safetensors_chunks(f: object, size: int) -> list[ChunkSpec] | None:
    """The tensor-boundary chunks of a safetensors file, or None if it is not a clean one."""
    f.seek(0)  # type: ignore[attr-defined]
    header = _read_header(f, size)
    if header is None:
        return None
    start = 8 + struct.unpack("<Q", _peek8(f))[0]
    data_len = size - start
    spans: list[tuple[int, int, str, int]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            return None
        offsets = info.get("data_offsets")
        dtype = info.get("dtype")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not isinstance(dtype, str)
        ):
            return None
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            return None
        width = DTYPE_WIDTH.get(dtype, 1)
        if (end - begin) % width:
            width = 1
        spans.append((begin, end, name, width))
    spans.sort()
    specs = [ChunkSpec("__header__", 0, start)]
    at = 0
    for begin, end, name, width in spans:
        if begin < at:
            return None  # overlapping tensors: not a partition
        if begin > at:
            specs += _gap(start, at, begin)
        piece = PIECE - PIECE % width
        for i, off in enumerate(range(begin, end, piece)):
            specs.append(ChunkSpec(f"{name}#{i}", start + off, min(piece, end - off), width))
        at = end
    if at < data_len:
        specs += _gap(start, at, data_len)
    return specs


def _gap(start: int, begin: int, end: int) -> list[ChunkSpec]:
    """Bytes between tensors (or after the last), in PIECE-sized pieces like a tensor's, so
    no chunk outgrows what a decoder accepts (codec.MAX_CHUNK) or the streaming memory."""
    return [
        ChunkSpec(f"__gap__@{begin}" + (f"#{i}" if i else ""), start + off, min(PIECE, end - off))
        for i, off in enumerate(range(begin, end, PIECE))
    ]


def _peek8(f: object) -> bytes:
    f.seek(0)  # type: ignore[attr-defined]
    return f.read(8)  # type: ignore[attr-defined]


def _gear_table() -> np.ndarray:
    import hashlib

    import numpy as np

    # Fixed for ever: cut points (and so chunk names) must agree across machines and versions.
    seed = hashlib.sha256(b"gitmodel gear table v1").digest()
    stream = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(32))
    return np.frombuffer(stream, dtype="<u4").astype(np.uint32)


def _candidates(f: object, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (of the last byte of a chunk) where each mask's bits of the hash are zero.

    h[i] = sum over j < 32 of gear[b[i-j]] << j (mod 2**32) is the shift-by-one gear hash
    of FastCDC with a 32-bit state; it is built by doubling (5 shifted adds per block)
    instead of a loop over bytes. Blocks overlap by 31 bytes so a window never straddles.
    """
    import numpy as np

    gear = _gear_table()
    small: list[np.ndarray] = []
    large: list[np.ndarray] = []
    f.seek(0)  # type: ignore[attr-defined]
    carry = b""
    pos = 0  # file offset of the first new byte of the block
    while True:
        block = f.read(_BLOCK)  # type: ignore[attr-defined]
        if not block:
            break
        data = carry + block
        h = gear[np.frombuffer(data, dtype=np.uint8)]
        for shift in (1, 2, 4, 8, 16):
            h[shift:] += h[:-shift] << np.uint32(shift)
        skip = len(carry)
        tail = h[skip:]
        base = pos
        small.append(np.flatnonzero((tail & np.uint32(_MASK_S)) == 0) + base)
        large.append(np.flatnonzero((tail & np.uint32(_MASK_L)) == 0) + base)
        pos += len(block)
        carry = data[-31:]
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.concatenate(small) if small else empty,
        np.concatenate(large) if large else empty,
    )


def cdc_cuts(f: object, size: int) -> Iterator[int]:
    """Chunk end offsets (exclusive) of FastCDC over the file."""
    import numpy as np

    if size == 0:
        return
    small, large = _candidates(f, size)
    start = 0
    while start < size:
        if size - start <= CDC_MIN:
            yield size
            return
        lo, mid, hi = start + CDC_MIN - 1, start + CDC_AVG - 1, min(start + CDC_MAX, size) - 1
        cut = None
        i = int(np.searchsorted(small, lo))
        if i < len(small) and small[i] < min(mid, hi):
            cut = int(small[i]) + 1
        else:
            j = int(np.searchsorted(large, min(mid, hi)))
            if j < len(large) and large[j] < hi:
                cut = int(large[j]) + 1
        if cut is None:
            cut = hi + 1
        yield cut
        start = cut


def cdc_chunks(f: object, size: int) -> list[ChunkSpec]:
    specs = []
    start = 0
    for end in cdc_cuts(f, size):
        specs.append(ChunkSpec(f"@{start}", start, end - start))
        start = end
    return specs
