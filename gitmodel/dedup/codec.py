"""Lossless encodings of a chunk: byte-grouped planes, zstd, XOR against a base chunk.

ZipNN's observation (arXiv 2411.05239): in a float tensor the byte holding the sign and
exponent is very repetitive while the low mantissa bytes are close to random. Splitting
each element's bytes into planes (all first bytes, then all second bytes...) lets zstd
shrink the exponent plane hard, and a plane that does not shrink is stored as it is
instead of paying zstd for nothing. For a chunk whose counterpart in the parent version
changed, XOR against it leaves zeros wherever the two agree (a fine-tune moves most bf16
values by at most an ulp), which the same planes + zstd then store in a fraction of
the bytes (ZipLLM/BitX).

Payload of an encoded chunk: one byte `planes` (1 = not grouped), then per plane one byte
kind (0 raw, 1 zstd), an 8-byte little-endian length and the bytes. Decoding checks every
length against the raw size the entry declares, so a hostile pack cannot make it allocate
more than that.
"""

from __future__ import annotations

import struct

from gitmodel.errors import GitModelError

# zstd level 1, measured on 16 MiB planes of bf16 weights: the exponent plane shrinks to
# 0.37 of its size (level 3: 0.42, at a third of the speed; negative levels: 0.66-0.76),
# the low bytes of an XOR delta to 0.20 (level 3: 0.195 at half the speed).
LEVEL = 1
# A plane whose first SAMPLE bytes do not shrink below RAW_RATIO is stored raw.
SAMPLE = 64 * 1024
RAW_RATIO = 0.97
_PLANE = struct.Struct("<BQ")


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


def _planes(raw: bytes | memoryview, width: int) -> list[bytes]:
    if width <= 1 or len(raw) % width or not raw:
        return [bytes(raw)]
    import numpy as np

    grid = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    return [grid[:, i].tobytes() for i in range(width)]


def encode(raw: bytes | memoryview, width: int) -> bytes:
    """The payload for raw, byte-grouped by width (1: not grouped)."""
    zstandard = _zstd()
    compressor = zstandard.ZstdCompressor(level=LEVEL)  # type: ignore[attr-defined]
    out = []
    planes = _planes(raw, width)
    out.append(bytes([len(planes)]))
    for plane in planes:
        kind, data = 0, plane
        if len(plane) > 64:
            probe = plane[:SAMPLE]
            if len(plane) <= SAMPLE or len(compressor.compress(probe)) < RAW_RATIO * len(probe):
                packed = compressor.compress(plane)
                if len(packed) < len(plane):
                    kind, data = 1, packed
        out.append(_PLANE.pack(kind, len(data)))
        out.append(data)
    return b"".join(out)


def decode(payload: bytes | memoryview, raw_len: int) -> bytes:
    """raw bytes of a payload; CodecError if it is malformed or not raw_len long."""
    zstandard = _zstd()
    view = memoryview(payload)
    if not view:
        raise CodecError("empty chunk payload")
    n = view[0]
    if n < 1 or n > 8 or raw_len % n:
        raise CodecError("bad plane count in chunk payload")
    plane_len = raw_len // n
    planes = []
    at = 1
    decompressor = zstandard.ZstdDecompressor()  # type: ignore[attr-defined]
    for _ in range(n):
        if at + _PLANE.size > len(view):
            raise CodecError("truncated chunk payload")
        kind, length = _PLANE.unpack_from(view, at)
        at += _PLANE.size
        data = view[at : at + length]
        at += length
        if len(data) != length:
            raise CodecError("truncated chunk payload")
        if kind == 0:
            plane = bytes(data)
        elif kind == 1:
            try:
                plane = decompressor.decompress(data, max_output_size=plane_len)
            except zstandard.ZstdError as exc:  # type: ignore[attr-defined]
                raise CodecError(f"bad zstd frame in chunk payload ({exc})") from None
        else:
            raise CodecError(f"unknown plane kind {kind} in chunk payload")
        if len(plane) != plane_len:
            raise CodecError("chunk plane has the wrong length")
        planes.append(plane)
    if at != len(view):
        raise CodecError("trailing bytes in chunk payload")
    if n == 1:
        return planes[0]
    import numpy as np

    grid = np.empty((plane_len, n), dtype=np.uint8)
    for i, plane in enumerate(planes):
        grid[:, i] = np.frombuffer(plane, dtype=np.uint8)
    return grid.tobytes()


def xor(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    """a XOR b (equal lengths)."""
    import numpy as np

    return np.bitwise_xor(
        np.frombuffer(a, dtype=np.uint8), np.frombuffer(b, dtype=np.uint8)
    ).tobytes()
