"""gitmodel.dedup.codec and the pack format: the sparse plane kind, packs written before it,
and hostile payloads (a pack from a remote or a clone is content its author controls)."""

from __future__ import annotations

import hashlib
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gitmodel.dedup import codec
from gitmodel.dedup.codec import MAX_CHUNK, SPARSE, CodecError, decode, encode, xor
from gitmodel.dedup.packs import CorruptChunk, PackStore, chunk_id

DATA = Path(__file__).parent.parent / "data"
# tests/data/pack-v1.pack was written by the encoder before sparse chunks existed: a bf16
# chunk in two byte planes, a text chunk not grouped, and an XOR delta of a fine-tune of the
# first (depth 1). Each id is the sha256 of the chunk's raw bytes.
OLD_PACK = "d5ffeaf2fc07fcaa482e3578834c1308cd8ab043bb3092de9d36c51ae3f2a354"
OLD_CHUNKS = {
    "9f46ca450391ab5803333b83108ac66cf750000ac625804d2e2559612953c469": (12000, 2, None),
    "66dd919dd0713c0b97507094df004cf21526d1902f3d47ff7b29f8a2fb473baa": (2900, 1, None),
    "b58acfa97a199457a61f796dfcb1aa66bbb44f3dbe1cca91fa68bb2ed64d97de": (
        12000,
        2,
        "9f46ca450391ab5803333b83108ac66cf750000ac625804d2e2559612953c469",
    ),
}


def bf16(values: np.ndarray) -> np.ndarray:
    u = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def fine_tune_delta(n: int = 50_000, noise: float = 1e-3, seed: int = 3) -> tuple[bytes, bytes]:
    """(a version's bf16 bytes, its XOR against the fine-tuned next version)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.02, n).astype(np.float32)
    a = bf16(w)
    b = bf16((w * (1 + rng.normal(0, noise, n))).astype(np.float32))
    return a.tobytes(), (a ^ b).tobytes()


# -- the sparse kind ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_a_fine_tune_delta_is_stored_sparse_smaller_and_round_trips(width: int) -> None:
    _, delta = fine_tune_delta()
    payload = encode(delta, width)
    assert payload[0] == SPARSE | width
    assert bytes(decode(payload, len(delta))) == delta
    dense = _dense(delta, width)
    assert len(payload) < len(dense)  # smaller than planes + zstd of the same delta


def test_sparse_edge_cases_round_trip() -> None:
    one = bytearray(4096)
    one[-1] = 7  # a single nonzero element, the last one
    cases = [bytes(4096), bytes(one), bytes(8 * 1000 + 6)]
    rng = np.random.default_rng(0)
    half = np.zeros(3000, dtype=np.uint16)
    half[rng.choice(3000, 1500, replace=False)] = rng.integers(1, 65535, 1500)
    cases.append(half.tobytes())  # exactly at the threshold
    for raw in cases:
        for width in (1, 2, 4, 8):
            payload = encode(raw, width)
            assert bytes(decode(payload, len(raw))) == raw, (len(raw), width)
    assert encode(half.tobytes(), 2)[0] == SPARSE | 2


def test_dense_weights_keep_the_dense_kind() -> None:
    whole, _ = fine_tune_delta()
    payload = encode(whole, 2)
    assert payload[0] == 2  # two byte planes, as before
    assert bytes(decode(payload, len(whole))) == whole


def test_a_delta_chain_mixing_sparse_and_dense_links_rebuilds(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.02, 40_000).astype(np.float32)
    versions = [bf16(w).tobytes()]
    for _ in range(3):
        w = (w * (1 + rng.normal(0, 1e-3, w.size))).astype(np.float32)
        versions.append(bf16(w).tobytes())
    store = PackStore(tmp_path / "packs")
    ids = [chunk_id(v) for v in versions]
    with store.writer() as writer:
        writer.add(ids[0], None, 0, len(versions[0]), encode(versions[0], 2))
        for k in range(1, 4):
            writer.add(
                ids[k],
                ids[k - 1],
                k,
                len(versions[k]),
                encode(xor(versions[k], versions[k - 1]), 2),
            )
    kinds = [store.payload(store.index[i])[0] for i in ids]
    assert kinds == [2, SPARSE | 2, SPARSE | 2, SPARSE | 2]
    for i, v in zip(ids, versions, strict=True):
        assert bytes(store.read(i)) == v
        out = bytearray(len(v) + 100)  # a reused buffer larger than the chunk
        assert bytes(store.read(i, out)) == v


# -- packs written before the sparse kind ------------------------------------------------------


def test_packs_written_before_the_sparse_kind_still_decode(tmp_path: Path) -> None:
    store = PackStore(tmp_path / "packs")
    tmp = store.tmp_dir() / "incoming"
    shutil.copyfile(DATA / "pack-v1.pack", tmp)
    assert store.import_pack(tmp, expected=OLD_PACK) == OLD_PACK
    for cid, (raw_len, first_byte, base) in OLD_CHUNKS.items():
        info = store.index[cid]
        assert (info.raw_len, info.base) == (raw_len, base)
        assert store.payload(info)[0] == first_byte  # the old dense kinds
        raw = store.read(cid)  # decoded, and checked against its sha256
        assert hashlib.sha256(raw).hexdigest() == cid


# -- hostile payloads ---------------------------------------------------------------------------


def _dense(raw: bytes, width: int) -> bytes:
    saved = codec.SPARSE_MAX
    codec.SPARSE_MAX = -1.0
    try:
        return encode(raw, width)
    finally:
        codec.SPARSE_MAX = saved


def _frame_claiming(size: int) -> bytes:
    """A zstd frame whose header declares size bytes of content (it holds a few)."""
    import zstandard

    real = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 100)
    # frame header descriptor: single segment, 8-byte content size
    return real[:4] + bytes([0xE0]) + struct.pack("<Q", size) + real[5:]


def _sparse_parts(payload: bytes) -> list[tuple[int, int, int]]:
    """(offset of the kind byte, kind, length) of each plane of a sparse payload."""
    at, out = 9, []
    while at < len(payload):
        kind, length = struct.unpack_from("<BQ", payload, at)
        out.append((at, kind, length))
        at += 9 + length
    return out


def _hostile_payloads() -> list[object]:
    _, delta = fine_tune_delta(n=20_000)
    good = encode(delta, 2)
    n = len(delta)
    k = struct.unpack_from("<Q", good, 1)[0]
    parts = _sparse_parts(good)
    bitmap_at, _, bitmap_len = parts[0]
    cases = [
        ("empty", b"", n),
        ("bad width", bytes([SPARSE | 3]) + good[1:], n),
        ("count over the elements", good[:1] + struct.pack("<Q", n) + good[9:], n),
        ("count off by one", good[:1] + struct.pack("<Q", k + 1) + good[9:], n),
        ("trailing bytes", good + b"\0", n),
        ("raw length past MAX_CHUNK", good, MAX_CHUNK + 2),
        ("raw length not a multiple of the width", good, n - 1),
        ("unknown plane kind", good[:bitmap_at] + b"\x07" + good[bitmap_at + 1 :], n),
        (
            "plane length past the payload",
            good[: bitmap_at + 1] + struct.pack("<Q", 1 << 62) + good[bitmap_at + 9 :],
            n,
        ),
    ]
    for cut in (1, 5, 9, 12, bitmap_at + 9 + bitmap_len // 2, len(good) - 1):
        cases.append((f"truncated at {cut}", good[:cut], n))
    # a zstd plane whose frame declares 2**40 bytes (zstd would try to allocate them)
    huge = _frame_claiming(1 << 40)
    cases.append(
        (
            "sparse plane declaring 2**40 bytes",
            good[:9] + struct.pack("<BQ", 1, len(huge)) + huge,
            n,
        )
    )
    dense_huge = bytes([1]) + struct.pack("<BQ", 1, len(huge)) + huge
    cases.append(("dense plane declaring 2**40 bytes", dense_huge, 1 << 36))
    cases.append(("dense plane declaring 2**40 bytes, small chunk", dense_huge, 1000))
    # bits past the last element: a raw bitmap with its padding bits set
    odd = bytes(8 * 7 * 100 + 3 * 8)  # 703 elements of 8 bytes, all zero
    bad = bytes([SPARSE | 8]) + struct.pack("<Q", 1)
    bad += struct.pack("<BQ", 0, 88) + b"\x01" + bytes(86) + b"\x80"  # element 0 and a padding bit
    bad += b"".join(struct.pack("<BQ", 0, 1) + b"\x01" for _ in range(8))
    cases.append(("bitmap bit past the end", bad, len(odd)))
    return [pytest.param(payload, raw_len, id=name) for name, payload, raw_len in cases]


def _decode_streamed(payload: bytes, raw_len: int, piece: int = 64 * 1024) -> None:
    """Decode a sparse payload through the streamed decoder, to its end."""
    for _ in codec.iter_sparse(payload, raw_len, piece=piece):
        pass


@pytest.mark.parametrize("decoder", [decode, _decode_streamed], ids=["whole", "streamed"])
@pytest.mark.parametrize("payload,raw_len", _hostile_payloads())
def test_a_hostile_payload_refuses_in_one_line(
    decoder: Callable[[bytes, int], object], payload: bytes, raw_len: int
) -> None:
    with pytest.raises(CodecError) as err:
        decoder(payload, raw_len)
    assert "\n" not in err.value.message and err.value.message


def _flip_bytes(decoder: Callable[[bytes, int], object], n: int, seed: int, trials: int) -> None:
    """Decode a fine-tune delta of n elements with three bytes flipped, trials times."""
    _, delta = fine_tune_delta(n=n)
    good = encode(delta, 2)
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        bad = bytearray(good)
        for at in rng.integers(0, len(bad), 3):
            bad[at] ^= int(rng.integers(1, 256))
        try:
            decoder(bytes(bad), len(delta))
        except CodecError:
            pass  # a damaged payload that decodes is caught by the chunk's sha256


def test_flipped_bytes_never_escape_as_another_error() -> None:
    _flip_bytes(decode, 4000, seed=1, trials=400)


def test_a_corrupt_sparse_entry_in_a_pack_refuses_with_its_name(tmp_path: Path) -> None:
    base, delta = fine_tune_delta()
    version = xor(base, delta)
    store = PackStore(tmp_path / "packs")
    with store.writer() as writer:
        writer.add(chunk_id(base), None, 0, len(base), encode(base, 2))
        writer.add(chunk_id(version), chunk_id(base), 1, len(base), encode(delta, 2))
    info = store.index[chunk_id(version)]
    pack = store.pack_path(info.pack)
    data = bytearray(pack.read_bytes())
    data[info.offset + 1] ^= 0xFF  # the sparse count
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    store.forget()
    with pytest.raises(CorruptChunk) as err:
        store.read(chunk_id(version))
    assert chunk_id(version)[:16] in err.value.message and "\n" not in err.value.message


# -- streaming a dense chunk (iter_dense, PackStore.read_to) ------------------------------------


def _weights(n: int, seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    return bf16(rng.normal(0, 0.02, n)).tobytes()


@pytest.mark.parametrize(
    "raw,width",
    [
        (_weights(300_000), 2),  # planes across many pieces, the exponent one in zstd
        (_weights(1000), 2),  # less than a piece
        (_weights(200_000, seed=6)[:399_996], 4),  # four planes, some raw
        (bytes(range(256)) * 3000, 1),  # not grouped, one zstd plane
        (np.random.default_rng(7).bytes(700_001), 1),  # one raw plane (odd length)
        (b"", 2),
    ],
)
def test_a_dense_chunk_streamed_in_pieces_is_its_bytes(raw: bytes, width: int) -> None:
    payload = encode(raw, width)
    assert not codec.is_sparse(payload) or not raw
    if not raw:
        return
    pieces = [bytes(p) for p in codec.iter_dense(payload, len(raw), piece=64 * 1024)]
    assert b"".join(pieces) == raw
    assert len(pieces) == -(-len(raw) // (64 * 1024 // width * width))


def _dense_hostile() -> list[object]:
    raw = _weights(100_000)
    good = encode(raw, 2)
    n = len(raw)
    (lo_at, lo_kind, lo_len), (hi_at, hi_kind, hi_len) = _planes_of(good)
    assert (lo_kind, hi_kind) == (0, 1)  # the low plane raw, the exponents in zstd
    frame = good[hi_at + 9 : hi_at + 9 + hi_len]
    cases = [
        ("empty", b"", n),
        ("sparse kind", bytes([SPARSE | 2]) + good[1:], n),
        ("no planes", bytes([0]) + good[1:], n),
        ("trailing bytes", good + b"\0", n),
        ("raw length past MAX_CHUNK", good, MAX_CHUNK + 2),
        ("raw length not a multiple of the width", good, n - 1),
        ("raw plane of the wrong length", good, n + 2),
        ("unknown plane kind", good[:lo_at] + b"\x07" + good[lo_at + 1 :], n),
        ("zstd frame cut short", good[: hi_at + 9 + hi_len // 2], n),
        (
            "zstd frame cut short, framing mended",
            good[:hi_at] + struct.pack("<BQ", 1, hi_len // 2) + frame[: hi_len // 2],
            n,
        ),
        (
            "a second zstd frame after the plane's",
            good[:hi_at] + struct.pack("<BQ", 1, 2 * hi_len) + frame + frame,
            n,
        ),
    ]
    huge = _frame_claiming(1 << 40)
    cases.append(
        ("plane declaring 2**40 bytes", good[:hi_at] + struct.pack("<BQ", 1, len(huge)) + huge, n)
    )
    for cut in (1, 5, lo_at + 9 + lo_len // 2, len(good) - 1):
        cases.append((f"truncated at {cut}", good[:cut], n))
    return [pytest.param(payload, raw_len, id=name) for name, payload, raw_len in cases]


def _planes_of(payload: bytes) -> list[tuple[int, int, int]]:
    out, at = [], 1
    while at < len(payload):
        kind, length = struct.unpack_from("<BQ", payload, at)
        out.append((at, kind, length))
        at += 9 + length
    return out


@pytest.mark.parametrize("payload,raw_len", _dense_hostile())
def test_a_hostile_dense_payload_refuses_when_streamed(payload: bytes, raw_len: int) -> None:
    with pytest.raises(CodecError) as err:
        for _ in codec.iter_dense(payload, raw_len, piece=16 * 1024):
            pass
    assert "\n" not in err.value.message and err.value.message


def test_flipped_bytes_in_a_streamed_chunk_never_escape_as_another_error() -> None:
    raw = _weights(20_000)
    good = encode(raw, 2)
    rng = np.random.default_rng(2)
    for _ in range(400):
        bad = bytearray(good)
        for at in rng.integers(0, len(bad), 3):
            bad[at] ^= int(rng.integers(1, 256))
        try:
            for _ in codec.iter_dense(bytes(bad), len(raw), piece=4096):
                pass
        except CodecError:
            pass  # a damaged payload that decodes is caught by the chunk's sha256


def test_a_streamed_chunk_is_checked_against_its_name(tmp_path: Path) -> None:
    raw = _weights(300_000)
    base, delta = fine_tune_delta(n=150_000)
    version = xor(base, delta)
    store = PackStore(tmp_path / "packs")
    # a retrained tensor: most elements change, its XOR delta is dense
    rng = np.random.default_rng(9)
    w = rng.normal(0, 0.02, 150_000)
    old, new = bf16(w).tobytes(), bf16(w + rng.normal(0, 0.002, w.shape)).tobytes()
    dense_delta = encode(xor(new, old), 2)
    assert not codec.is_sparse(dense_delta)
    with store.writer() as writer:
        writer.add(chunk_id(raw), None, 0, len(raw), encode(raw, 2))
        writer.add(chunk_id(base), None, 0, len(base), encode(base, 2))
        writer.add(chunk_id(version), chunk_id(base), 1, len(base), encode(delta, 2))
        writer.add(chunk_id(old), None, 0, len(old), encode(old, 2))
        writer.add(chunk_id(new), chunk_id(old), 1, len(new), dense_delta)

    def streamed(cid: str) -> bytes:
        out = bytearray()

        def write(piece: object, at: int) -> None:
            assert at == len(out)
            out.extend(piece)  # type: ignore[call-overload]

        store.read_to(cid, write, lambda: bytearray(len(raw)))
        return bytes(out)

    assert streamed(chunk_id(raw)) == raw  # whole and dense: in pieces
    assert streamed(chunk_id(version)) == version  # a sparse delta: whole, into the buffer
    assert streamed(chunk_id(new)) == new  # a dense delta: in pieces, XORed
    pack = store.pack_path(store.index[chunk_id(raw)].pack)
    data = bytearray(pack.read_bytes())
    for cid in (chunk_id(raw), chunk_id(old)):
        data[store.index[cid].offset + 9 + 100] ^= 0x01  # a byte of its raw (low) plane
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    store.forget()
    for cid, named in ((chunk_id(raw), chunk_id(raw)), (chunk_id(new), chunk_id(old))):
        with pytest.raises(CorruptChunk) as err:
            streamed(cid)
        assert named[:16] in err.value.message and "\n" not in err.value.message


# -- streaming a chunk with sparse links (iter_sparse, PackStore.read_to) ---------------------


def _streamed(store: PackStore, cid: str) -> bytes:
    out = bytearray()

    def write(piece: object, at: int) -> None:
        assert at == len(out)
        out.extend(piece)  # type: ignore[call-overload]

    def no_buffer() -> bytearray:
        raise AssertionError("a chain with sparse links is streamed, not decoded whole")

    store.read_to(cid, write, no_buffer)
    return bytes(out)


def test_a_chain_with_sparse_links_streams_in_pieces(tmp_path: Path) -> None:
    """Sparse deltas over a dense chunk, over a dense delta, and over a chunk that is itself
    sparse (mostly zeros), each long enough for several pieces: streamed piece by piece,
    they are the chunk's bytes, as the whole decode is."""
    rng = np.random.default_rng(11)
    n = 400_003  # not a whole number of pieces (nor of bitmap bytes)
    w = rng.normal(0, 0.02, n).astype(np.float32)
    mostly_zero = np.zeros(n, np.float32)
    mostly_zero[rng.choice(n, n // 10, replace=False)] = 1.5
    store = PackStore(tmp_path / "packs")
    chains: list[list[bytes]] = []
    with store.writer() as writer:
        for start in (w, mostly_zero):
            versions = [bf16(start).tobytes()]
            cur = start
            for _ in range(3):
                cur = (cur * (1 + rng.normal(0, 1e-3, n))).astype(np.float32)
                versions.append(bf16(cur).tobytes())
            chains.append(versions)
        # a retrained tensor (a dense delta) under a fine-tune of it (a sparse one)
        old = bf16(w).tobytes()
        new_w = w + rng.normal(0, 0.002, n).astype(np.float32)
        tuned = bf16(new_w * (1 + rng.normal(0, 1e-3, n))).tobytes()
        chains.append([old, bf16(new_w).tobytes(), tuned])
        for versions in chains:
            ids = [chunk_id(v) for v in versions]
            writer.add(ids[0], None, 0, len(versions[0]), encode(versions[0], 2))
            for k in range(1, len(versions)):
                delta = encode(xor(versions[k], versions[k - 1]), 2)
                writer.add(ids[k], ids[k - 1], k, len(versions[k]), delta)
    kinds = [[store.payload(store.index[chunk_id(v)])[0] for v in vs] for vs in chains]
    assert kinds[0] == [2, SPARSE | 2, SPARSE | 2, SPARSE | 2]
    assert kinds[1][0] == SPARSE | 2  # the chain's whole chunk is sparse: XORed into zeros
    assert kinds[2] == [2, 2, SPARSE | 2]
    for versions in chains:
        for v in versions[1:]:
            assert _streamed(store, chunk_id(v)) == v == bytes(store.read(chunk_id(v)))
    # a damaged byte of a sparse link's value plane: refused, the damaged link named
    version = chains[0][1]
    info = store.index[chunk_id(version)]
    pack = store.pack_path(info.pack)
    data = bytearray(pack.read_bytes())
    data[info.offset + info.enc_len - 10] ^= 0x01
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    store.forget()
    with pytest.raises(CorruptChunk) as err:
        _streamed(store, chunk_id(chains[0][3]))
    assert "\n" not in err.value.message


def test_flipped_bytes_streamed_never_escape_as_another_error() -> None:
    _flip_bytes(lambda p, n: _decode_streamed(p, n, piece=16 * 1024), 40_000, seed=2, trials=300)
