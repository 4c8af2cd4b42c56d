"""Garbage collection of the chunk store, and of whole objects the chunks can rebuild.

Given the live object ids (gitmodel.gc decides those from every root), this removes the
recipes of dead objects, drops packs whose chunks no live recipe needs, and rewrites packs
that are mostly dead (live entries copied as they are into a new pack, published before the
old one is removed). Whole-file objects that a live recipe can rebuild are dropped too,
except those the work tree's pointers name (they are what `dvc status`/`dvc checkout` and an
instant `git model checkout` use) unless chunks_only.

`add` holds a shared lock on the chunk store from the moment it decides which chunks exist
until its recipe is written; gc holds it exclusively, so it never removes a chunk that a
recipe being written counts on. Packs and recipes younger than the grace period are
left alone, as whole objects are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gitmodel.dedup.chunkstore import open_chunk_store

if TYPE_CHECKING:
    from gitmodel.store import Store

# A pack with less than this fraction of its bytes live is rewritten.
REPACK_BELOW = 0.5


@dataclass
class ChunkGcResult:
    recipes_removed: list[str] = field(default_factory=list)
    packs_removed: int = 0
    packs_rewritten: int = 0
    bytes: int = 0  # chunk-store bytes freed
    objects_dropped: list[str] = field(default_factory=list)  # rebuildable whole objects
    objects_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "recipes_removed": len(self.recipes_removed),
            "packs_removed": self.packs_removed,
            "packs_rewritten": self.packs_rewritten,
            "bytes": self.bytes,
            "rebuildable_objects_dropped": self.objects_dropped,
            "rebuildable_bytes": self.objects_bytes,
        }


def _old(path: os.PathLike[str], cutoff: float) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return max(st.st_ctime, st.st_mtime) <= cutoff


def collect_chunks(
    store: Store,
    live: set[str],
    keep_whole: Iterable[str] = (),
    chunks_only: bool = False,
    dry_run: bool = False,
    grace: float = 3600.0,
) -> ChunkGcResult:
    cs = open_chunk_store(store)
    result = ChunkGcResult()
    cutoff = time.time() - grace
    with cs.lock(exclusive=True):
        cs.packs.forget()
        live_recipes = []
        for md5 in cs.recipe_md5s():
            if md5 in live or not _old(cs.recipe_path(md5), cutoff):
                live_recipes.append(md5)
            else:
                result.recipes_removed.append(md5)
        needed: set[str] = set()
        rebuildable: set[str] = set()
        for md5 in live_recipes:
            try:
                ids = cs.read_recipe(md5).ids()
            except Exception:  # a damaged recipe keeps nothing alive; fsck reports it
                continue
            closure = cs.packs.closure(ids)
            needed |= closure
            if all(c in cs.packs.index for c in closure):
                rebuildable.add(md5)
        for name in cs.packs.pack_names():
            if not _old(cs.packs.pack_path(name), cutoff):
                continue
            rows = cs.packs.pack_rows(name)
            size = cs.packs.pack_path(name).stat().st_size
            live_rows = [r for r in rows if r.id in needed]
            live_bytes = sum(r.enc_len for r in live_rows)
            if live_rows and live_bytes >= REPACK_BELOW * size:
                continue
            if not dry_run:
                if live_rows:
                    with cs.packs.writer() as writer:
                        for r in sorted(live_rows, key=lambda r: r.offset):
                            writer.add_entry(cs.packs.entry_bytes(r))
                cs.packs.remove_pack(name)
            if live_rows:
                result.packs_rewritten += 1
                result.bytes += size - live_bytes
            else:
                result.packs_removed += 1
                result.bytes += size
        if not dry_run:
            for md5 in result.recipes_removed:
                cs.remove_recipe(md5)
        keep = set() if chunks_only else set(keep_whole)
        for md5 in sorted(rebuildable & live):
            if md5 in keep or not store.exists(md5):
                continue
            path = store.oid_to_path(md5)
            result.objects_dropped.append(md5)
            result.objects_bytes += path.stat().st_size
            if not dry_run:
                path.unlink(missing_ok=True)
                store.state.forget_verified(md5)
    return result
