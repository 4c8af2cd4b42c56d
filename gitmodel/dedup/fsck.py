"""Verify the chunk store: every pack's framing, every chunk against its name, every recipe.

Reads only. A chunk is decoded through its delta chain and hashed, so a damaged base shows
in every chunk built on it; --fast checks framing, indexes and recipes but decodes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitmodel.dedup.chunkstore import open_chunk_store
from gitmodel.dedup.packs import CorruptChunk, parse_pack
from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    from gitmodel.store import Store


def check_chunk_store(store: Store, fast: bool = False) -> tuple[int, list[tuple[str, str, str]]]:
    """(chunks checked, problems as (kind, name, message)); kinds: corrupt-chunk,
    bad-recipe, missing-chunk."""
    cs = open_chunk_store(store)
    problems: list[tuple[str, str, str]] = []
    checked = 0
    with cs.lock():
        cs.packs.forget()
        for name in cs.packs.pack_names():
            try:
                rows = parse_pack(cs.packs.pack_path(name).read_bytes(), name)
            except (OSError, CorruptChunk) as exc:
                message = exc.message if isinstance(exc, CorruptChunk) else str(exc)
                problems.append(("corrupt-chunk", name, f"pack {name[:16]}: {message}"))
                continue
            if fast:
                continue
            for row in rows:
                checked += 1
                try:
                    cs.packs.read(row.id)
                except GitModelError as exc:
                    problems.append(("corrupt-chunk", row.id, exc.message))
        index = cs.packs.index
        for md5 in cs.recipe_md5s():
            try:
                recipe = cs.read_recipe(md5)
            except GitModelError as exc:
                problems.append(("bad-recipe", md5, exc.message))
                continue
            lacking = [c for c in cs.packs.closure(recipe.ids()) if c not in index]
            if lacking:
                problems.append(
                    (
                        "missing-chunk",
                        md5,
                        f"recipe {md5}: {len(lacking)} chunk(s) not in the chunk store "
                        f"(first {lacking[0][:16]})",
                    )
                )
    return checked, problems
