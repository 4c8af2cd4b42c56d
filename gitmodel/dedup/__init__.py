"""Deduplicated storage of weights (opt-in: `[storage] dedup = true` in .gitmodel.toml).

What the rest of gitmodel calls: `add_file` to store a file whole and as chunks in one
read, `dedup_output` after `add` stored an output whole (a directory, a linked cache),
`rebuildable` / `ensure_object` where a whole-file object is needed (push of DVC
objects, fsck, a directory's checkout), `rebuilt_size` / `checkout_rebuilt` where checkout
writes a file whose object the cache dropped (the work-tree file in the same pass). Whole-file objects in `.dvc/cache/files/md5` stay what pointers name
and what DVC reads; with dedup they become a cache that the chunk store can rebuild
(see docs/dedup.md). Every function here takes a Store, never the Repo. numpy and
zstandard are imported only when chunks are written or read.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from gitmodel.dedup.chunkstore import StoreStats
    from gitmodel.store import Progress, Store


def dedup_output(
    store: Store, md5: str, parent_md5: str | None, progress: Progress | None = None
) -> StoreStats:
    """Chunk a stored output (a file object, or every file of a `.dir`) into the chunk store.

    parent_md5 is the same path's object in the parent commit: its chunks are the XOR
    deltas' bases (for a directory, file by file through the two manifests).
    """
    from gitmodel.dedup.chunkstore import open_chunk_store

    cs = open_chunk_store(store)
    if not md5.endswith(".dir"):
        parent = _file_md5(parent_md5)
        ppath, trusted = _cached_parent(store, parent)
        return cs.store_object(store.oid_to_path(md5), md5, parent, progress, ppath, trusted)
    parents: dict[str, str] = {}
    if parent_md5 and parent_md5.endswith(".dir") and store.exists(parent_md5):
        try:
            parents = {e.relpath: e.md5 for e in store.read_dir(parent_md5)}
        except Exception:  # a damaged parent manifest only costs the deltas
            parents = {}
    items = []
    for e in store.read_dir(md5):
        parent = parents.get(e.relpath)
        items.append((store.oid_to_path(e.md5), e.md5, parent, *_cached_parent(store, parent)))
    return cs.store_objects(items, progress)


def add_file(
    store: Store, path: Path, parent_md5: str | None, progress: Progress | None = None
) -> tuple[str, int] | None:
    """Store a work-tree file whole and as chunks in one read (ChunkStore.add_file);
    (md5, size), or None when the plain store plus dedup_output is the better way: the
    file is stored already (the stat cache knows it), it has holes, or the cache clones
    or links files instead of copying them (nothing to save by reading once)."""
    from gitmodel.dedup.chunkstore import open_chunk_store
    from gitmodel.store.hashing import _is_sparse

    st = os.stat(path)
    known = store.state.lookup(st)
    if (known and store.exists(known)) or _is_sparse(st):
        return None
    store.probe_reflink()
    kinds = [k for k in store.link_types if k != "reflink" or store._reflink_ok]
    if not kinds or kinds[0] not in ("copy", "symlink"):
        return None
    parent = _file_md5(parent_md5)
    ppath, trusted = _cached_parent(store, parent)
    cs = open_chunk_store(store)
    md5, size, _ = cs.add_file(store, path, parent, progress, ppath, trusted)
    return md5, size


def _cached_parent(store: Store, oid: str | None) -> tuple[Path | None, bool]:
    """The parent's whole object when the cache has it, and whether the store wrote or
    verified it since it last changed (then its bytes are not checked again)."""
    if not oid or not store.exists(oid):
        return None, False
    path = store.oid_to_path(oid)
    try:
        return path, store.state.is_verified(oid, os.stat(path))
    except OSError:
        return None, False


def _file_md5(oid: str | None) -> str | None:
    return oid if oid and not oid.endswith(".dir") else None


def rebuildable(store: Store, oid: str) -> bool:
    """Whether the chunk store can rebuild file object oid (cheap when dedup was never used)."""
    if oid.endswith(".dir") or not (store.cache_dir / "gitmodel" / "recipes").is_dir():
        return False
    from gitmodel.dedup.chunkstore import open_chunk_store

    return open_chunk_store(store).can_rebuild(oid)


def available(store: Store, oid: str) -> bool:
    """A whole object in the cache, or one the chunk store can rebuild."""
    return store.exists(oid) or rebuildable(store, oid)


def ensure_object(store: Store, oid: str, progress: Progress | None = None) -> bool:
    """Make file object oid a whole object in the cache, rebuilding it from chunks if needed.

    False when it is neither there nor rebuildable. Raises CorruptChunk / CorruptObject
    when the chunks do not rebuild exactly the bytes the md5 names.
    """
    if store.exists(oid):
        return True
    if not rebuildable(store, oid):
        return False
    from gitmodel.dedup.chunkstore import open_chunk_store

    open_chunk_store(store).restore_object(store, oid, progress)
    return True


def rebuilt_size(store: Store, oid: str) -> int | None:
    """The size of file object oid when checkout should write it straight from its chunks:
    the cache lacks the whole object, the chunk store can rebuild it, and the cache copies
    files (a linked or cloned work-tree file is made from the object instead). None when
    the object is placed the usual way (after ensure_object)."""
    if store.exists(oid) or not rebuildable(store, oid):
        return None
    store.probe_reflink()
    kinds = [k for k in store.link_types if k != "reflink" or store._reflink_ok]
    if not kinds or kinds[0] != "copy":
        return None
    from gitmodel.dedup.chunkstore import open_chunk_store

    return open_chunk_store(store).read_recipe(oid).size


def checkout_rebuilt(store: Store, oid: str, dest: Path, progress: Progress | None = None) -> None:
    """Rebuild file object oid from its chunks into the cache and at dest (the work-tree
    file, a copy), in one pass: neither is named before the md5 matched. Raises
    CorruptChunk / CorruptObject when the chunks do not make the bytes the md5 names."""
    from gitmodel.dedup.chunkstore import open_chunk_store

    open_chunk_store(store).restore_object(store, oid, progress, dest)
