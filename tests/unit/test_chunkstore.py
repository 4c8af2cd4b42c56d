"""gitmodel.dedup.chunkstore's add path (ChunkStore.add_file) and gitmodel.dedup.staging:
a file stored whole and as chunks in one pass, in process, on a real cache directory."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from pathlib import Path

import pytest

from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
from gitmodel.dedup.recipe import Recipe
from gitmodel.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from checkpoints import base_weights, fine_tune, write_safetensors  # noqa: E402


def _store(root: Path) -> Store:
    return Store(root / ".dvc" / "cache", root / ".dvc" / "tmp" / "state.db", ("copy",), jobs=2)


def _versions(tmp: Path) -> tuple[Path, Path]:
    """A checkpoint and its fine-tune with a third of its tensors changed."""
    weights = base_weights(9, 300_000)
    v0 = write_safetensors(tmp / "v0" / "model.safetensors", weights)
    tuned = fine_tune(weights, sorted(weights)[:3], 1e-3, seed=1)
    return v0, write_safetensors(tmp / "v1" / "model.safetensors", tuned)


def _add(store: Store, path: Path, parent: str | None = None) -> tuple[str, Recipe]:
    cs = open_chunk_store(store)
    ppath = store.oid_to_path(parent) if parent else None
    trusted = bool(parent) and store.state.is_verified(parent, os.stat(ppath))  # type: ignore[arg-type]
    md5, size, _ = cs.add_file(store, path, parent, None, ppath, trusted)
    assert size == path.stat().st_size
    return md5, cs.read_recipe(md5)


def _true_ids(path: Path, recipe: Recipe) -> list[str]:
    data, at, out = path.read_bytes(), 0, []
    for _key, length, _cid in recipe.chunks:
        out.append(hashlib.sha256(data[at : at + length]).hexdigest())
        at += length
    return out


def _rebuilt(cs: ChunkStore, recipe: Recipe) -> bytes:
    return b"".join(bytes(cs.packs.read(cid)) for _k, _n, cid in recipe.chunks)


def test_add_names_every_chunk_by_its_bytes_and_the_object_by_its_md5(tmp_path: Path) -> None:
    store = _store(tmp_path)
    v0, v1 = _versions(tmp_path)
    m0, r0 = _add(store, v0)
    m1, r1 = _add(store, v1, m0)
    for path, md5, recipe in ((v0, m0, r0), (v1, m1, r1)):
        assert md5 == hashlib.md5(path.read_bytes()).hexdigest()
        assert store.oid_to_path(md5).read_bytes() == path.read_bytes()
        assert [c[2] for c in recipe.chunks] == _true_ids(path, recipe)
        assert _rebuilt(open_chunk_store(store), recipe) == path.read_bytes()
    # the unchanged tensors are the parent's chunks, named from its (vouched) recipe
    shared = {c[2] for c in r0.chunks} & {c[2] for c in r1.chunks}
    assert len(shared) >= 6


def test_a_recipe_not_vouched_for_is_not_believed(tmp_path: Path) -> None:
    """The parent's recipe names chunks that are not its object's bytes (a hostile remote's
    recipe, say): the new version's chunks are still named by their own sha256, so the lie
    does not pass on to the version just added."""
    store = _store(tmp_path)
    v0, v1 = _versions(tmp_path)
    m0, r0 = _add(store, v0)
    cs = open_chunk_store(store)
    # the same recipe with every chunk renamed to the first one, written as a pull would
    liar = Recipe(m0, r0.size, r0.chunking, [(k, n, r0.chunks[1][2]) for k, n, _ in r0.chunks])
    path = cs.recipe_path(m0)
    path.unlink()
    assert cs.write_recipe(liar)
    store.state.flush()
    m1, r1 = _add(store, v1, m0)
    assert [c[2] for c in r1.chunks] == _true_ids(v1, r1)
    assert _rebuilt(cs, r1) == v1.read_bytes()


def test_a_vouched_recipe_needs_the_parent_object_trusted(tmp_path: Path) -> None:
    """A cached parent object that changed since it was verified (its stat moved) is not
    what its recipe names: a chunk equal to its bytes is hashed, not named from the recipe."""
    store = _store(tmp_path)
    v0, v1 = _versions(tmp_path)
    m0, r0 = _add(store, v0)
    # the parent object damaged so that a changed tensor of v1 matches it byte for byte
    key, length, _ = next(c for c in r0.chunks if c[0].startswith("layers.0.weight"))
    offset = sum(n for _k, n, _c in r0.chunks[: r0.chunks.index((key, length, _))])
    obj = store.oid_to_path(m0)
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[offset : offset + length] = v1.read_bytes()[offset : offset + length]
    assert data != obj.read_bytes()
    obj.write_bytes(bytes(data))
    m1, r1 = _add(store, v1, m0)
    assert [c[2] for c in r1.chunks] == _true_ids(v1, r1)


def _assert_a_version_adds_exactly(tmp_path: Path) -> None:
    """A version added over its parent: its object is its bytes, each chunk named by them."""
    store = _store(tmp_path)
    v0, v1 = _versions(tmp_path)
    m0, _ = _add(store, v0)
    m1, r1 = _add(store, v1, m0)
    assert store.oid_to_path(m1).read_bytes() == v1.read_bytes()
    assert [c[2] for c in r1.chunks] == _true_ids(v1, r1)


def test_an_add_where_the_kernel_will_not_copy_goes_through_a_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refuse)
    _assert_a_version_adds_exactly(tmp_path)


def test_an_add_where_the_object_cannot_be_mapped_reads_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitmodel.dedup.staging as staging

    monkeypatch.setattr(staging, "map_span", lambda fd, offset, length: None)
    _assert_a_version_adds_exactly(tmp_path)


def test_a_file_that_shrinks_while_it_is_added_is_refused(tmp_path: Path) -> None:
    from gitmodel.dedup.staging import StagedObject
    from gitmodel.errors import GitModelError

    src = tmp_path / "src"
    src.write_bytes(os.urandom(100_000))
    fd = os.open(src, os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        staged = StagedObject(fd, out, src)
        span = staged.take(0, 50_000)
        assert bytes(span.view) == src.read_bytes()[:50_000]
        span.release()
        os.truncate(src, 60_000)
        with pytest.raises(GitModelError, match="changed while being stored"):
            staged.take(50_000, 50_000)
    finally:
        os.close(fd)
        os.close(out)


def _as_pulled(store: Store, recipe: Recipe) -> ChunkStore:
    """The recipe written again as a pull writes it (not vouched for) and its whole object
    dropped from the cache, as after `gc --chunks-only` or in a fresh clone's pull."""
    cs = open_chunk_store(store)
    cs.recipe_path(recipe.md5).unlink()
    assert cs.write_recipe(recipe)
    store.oid_to_path(recipe.md5).unlink()
    return cs


def test_a_rebuild_that_made_the_md5_vouches_for_its_recipe(tmp_path: Path) -> None:
    """After a pull, the recipe is vouched for once a rebuild made the pointer's bytes
    from it, so the next add over that version names its unchanged chunks from it."""
    store = _store(tmp_path)
    v0, v1 = _versions(tmp_path)
    m0, r0 = _add(store, v0)
    cs = _as_pulled(store, r0)
    assert cs._vouched_recipe(m0) == (r0, False)
    cs.restore_object(store, m0)
    assert store.oid_to_path(m0).read_bytes() == v0.read_bytes()
    assert cs._vouched_recipe(m0) == (r0, True)
    assert cs._parent_chunks(m0)[1]  # what the add over it asks
    m1, r1 = _add(store, v1, m0)
    assert [c[2] for c in r1.chunks] == _true_ids(v1, r1)


def test_a_rebuild_that_did_not_make_the_md5_vouches_for_nothing(tmp_path: Path) -> None:
    """A recipe whose chunks are all sound but do not make the pointer's bytes (two
    tensors of one shape swapped) is refused at the md5 and never vouched for."""
    from gitmodel.store import CorruptObject

    store = _store(tmp_path)
    v0, _ = _versions(tmp_path)
    m0, r0 = _add(store, v0)
    chunks = list(r0.chunks)
    i, j = next(
        (i, j)
        for i in range(len(chunks))
        for j in range(i + 1, len(chunks))
        if chunks[i][1] == chunks[j][1] and chunks[i][2] != chunks[j][2]
    )
    chunks[i], chunks[j] = chunks[j], chunks[i]
    liar = Recipe(m0, r0.size, r0.chunking, chunks)
    cs = _as_pulled(store, liar)
    with pytest.raises(CorruptObject):
        cs.restore_object(store, m0)
    assert not store.exists(m0)
    assert cs._vouched_recipe(m0) == (liar, False)
