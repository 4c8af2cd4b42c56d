"""gitmodel.dedup.rebuild: a file rebuilt from its chunks into the cache and the work tree
in one pass, each output named only once the whole file's md5 matched (unnamed files, or
temporary names where the filesystem has none)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from gitmodel.dedup import rebuild
from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
from gitmodel.dedup.packs import CorruptChunk
from gitmodel.dedup.recipe import Recipe
from gitmodel.store import CorruptObject, Store


def _stored(tmp_path: Path) -> tuple[Store, ChunkStore, str, bytes]:
    """A 3 MB file stored whole and as chunks, its whole object then dropped."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 40, 3_000_000, dtype=np.uint8).tobytes()  # compresses, in chunks
    store = Store(tmp_path / ".dvc" / "cache", tmp_path / "state.db", jobs=2)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    cs = open_chunk_store(store)
    md5, _, _ = cs.add_file(store, src)
    obj = store.oid_to_path(md5)
    obj.chmod(0o644)
    obj.unlink()
    return store, cs, md5, data


def _left(store: Store, dest: Path) -> list[str]:
    return sorted(os.listdir(store._tmp_dir())) + sorted(os.listdir(dest.parent))


@pytest.fixture(params=["unnamed", "temporary names"])
def naming(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "unnamed":
        monkeypatch.setattr(rebuild, "_O_TMPFILE", 0)  # a filesystem without O_TMPFILE
    return str(request.param)


def test_a_rebuild_writes_the_object_and_the_work_tree_file(tmp_path: Path, naming: str) -> None:
    store, cs, md5, data = _stored(tmp_path)
    assert len(cs.read_recipe(md5).chunks) > 4
    dest = tmp_path / "wt" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the version before")
    cs.restore_object(store, md5, dest=dest)
    obj = store.oid_to_path(md5)
    assert dest.read_bytes() == data and obj.read_bytes() == data
    assert obj.stat().st_mode & 0o777 == 0o444 and dest.stat().st_mode & 0o777 == 0o644
    assert obj.stat().st_ino != dest.stat().st_ino
    assert _left(store, dest) == ["model.bin"]  # no temporary file anywhere
    assert store.state.lookup(os.stat(dest)) in (md5, None)  # recorded (None: racy-clean)


def test_a_corrupt_chunk_leaves_nothing_under_either_name(tmp_path: Path, naming: str) -> None:
    store, cs, md5, _ = _stored(tmp_path)
    info = cs.packs.index[cs.read_recipe(md5).chunks[2][2]]
    pack = cs.packs.pack_path(info.pack)
    raw = bytearray(pack.read_bytes())
    raw[info.offset + info.enc_len // 2] ^= 0x10
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    cs.packs.forget()
    dest = tmp_path / "wt" / "model.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the version before")
    with pytest.raises((CorruptChunk, CorruptObject)) as err:
        cs.restore_object(store, md5, dest=dest)
    assert "\n" not in err.value.message
    assert not store.exists(md5)
    assert dest.read_bytes() == b"the version before"
    assert _left(store, dest) == ["model.bin"]


def test_a_recipe_that_does_not_make_its_md5_names_nothing(tmp_path: Path, naming: str) -> None:
    store, cs, md5, data = _stored(tmp_path)
    good = cs.read_recipe(md5)
    liar = hashlib.md5(data + b"!").hexdigest()  # every chunk is right, the whole is not
    cs.write_recipe(Recipe(liar, good.size, good.chunking, good.chunks))
    dest = tmp_path / "wt" / "model.bin"
    dest.parent.mkdir()
    with pytest.raises(CorruptObject):
        cs.restore_object(store, liar, dest=dest)
    assert not store.exists(liar) and not dest.exists()
    assert _left(store, dest) == []
