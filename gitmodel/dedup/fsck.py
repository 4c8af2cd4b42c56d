"""Verify the chunk store: every pack's framing, every chunk against its name, every recipe;
and mend it (`git model fsck --repair`).

check_chunk_store reads only. A chunk is decoded through its delta chain and hashed, so a damaged base shows
in every chunk built on it; --fast checks framing, indexes and recipes but decodes nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
from gitmodel.dedup.packs import CorruptChunk, PackStore, chunk_id, parse_pack, read_regular
from gitmodel.dedup.transfer import _one_line
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
                rows = parse_pack(read_regular(cs.packs.pack_path(name)), name)
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


def _bad_chunks(cs: ChunkStore) -> set[str]:
    """Chunks that are themselves damaged: their chain fails while their base's holds (a
    chunk built on a damaged base is mended with the base)."""
    bad: set[str] = set()
    for name in cs.packs.pack_names():
        for row in cs.packs.pack_rows(name):
            try:
                cs.packs.read(row.id)
                continue
            except GitModelError:
                pass
            if row.base is not None:
                try:
                    cs.packs.read(row.base)
                except GitModelError:
                    continue
            bad.add(row.id)
    return bad


def _from_objects(store: Store, cs: ChunkStore, bad: set[str]) -> dict[str, tuple[bytes, int]]:
    """Raw bytes (and byte-group width) of bad chunks, read from whole-file objects still in
    the cache that a recipe cuts them from; each checked against the chunk's name."""
    from gitmodel.dedup.chunking import plan_chunks
    from gitmodel.store import CorruptObject

    found: dict[str, tuple[bytes, int]] = {}
    for md5 in cs.recipe_md5s():
        if not bad - set(found):
            break
        if not store.exists(md5):
            continue
        try:
            recipe = cs.read_recipe(md5)
        except GitModelError:
            continue
        if not bad.intersection(c[2] for c in recipe.chunks):
            continue
        try:
            store.verify(md5)
        except (CorruptObject, OSError):
            continue
        path = store.oid_to_path(md5)
        widths = {s.offset: s.width for s in plan_chunks(path)[1]}
        at = 0
        with open(path, "rb") as f:
            for _, length, cid in recipe.chunks:
                if cid in bad and cid not in found:
                    f.seek(at)
                    raw = f.read(length)
                    if len(raw) == length and chunk_id(raw) == cid:
                        found[cid] = (raw, widths.get(at, 1))
                at += length
    return found


def _from_remote(
    cs: ChunkStore, remote: Any, wanted: set[str], staging: PackStore
) -> dict[str, bytes]:
    """Entries (as packed) of wanted chunks from the remote's packs, each pack checked
    against its name; what the remote lacks is left out."""
    from gitmodel.dedup.transfer import RemoteChunks

    rc = RemoteChunks(remote, cs)
    index = rc.index()
    out: dict[str, bytes] = {}
    for name in sorted({index[c].pack for c in wanted if c in index}):
        tmp = staging.tmp_dir() / f"{name}.download"
        rc.fs.get_file(rc._path("packs", f"{name}.pack"), str(tmp))
        got = staging.import_pack(tmp, expected=name)
        for row in staging.pack_rows(got):
            if row.id in wanted and row.id not in out:
                out[row.id] = staging.entry_bytes(row)
    return out


def repair_chunk_store(
    store: Store, problems: list[tuple[str, str, str]], remote: Any | None
) -> tuple[set[str], list[str]]:
    """Mend what check_chunk_store found: a damaged chunk from a whole-file object still in
    the cache, else from the remote's packs; a recipe that is damaged or lacks chunks by
    chunking its whole-file object again, else from the remote. Returns (problem names
    now fixed, what was done), judged by checking the store again."""
    import shutil

    from gitmodel.dedup.codec import encode

    cs = open_chunk_store(store)
    done: list[str] = []
    with cs.lock(exclusive=True):
        cs.packs.forget()
        bad = _bad_chunks(cs)
        fixes_raw = _from_objects(store, cs, bad) if bad else {}
        fixes_entry: dict[str, bytes] = {}
        staging = PackStore(cs.packs.tmp_dir() / f"repair.{os.urandom(6).hex()}")
        try:
            rest = bad - set(fixes_raw)
            if rest and remote is not None:
                try:
                    fixes_entry = _from_remote(cs, remote, rest, staging)
                except Exception as exc:  # unreachable or damaged there: the rest stays
                    done.append(f"chunks not fetched from DVC remote: {_one_line(exc)}")
            fixed = set(fixes_raw) | set(fixes_entry)
            if fixed:
                # the replacements first (published), then each damaged pack without them
                with cs.packs.writer() as writer:
                    for cid, (raw, width) in sorted(fixes_raw.items()):
                        writer.add(cid, None, 0, len(raw), encode(raw, width))
                    for _cid, entry in sorted(fixes_entry.items()):
                        writer.add_entry(entry)
                new = set(writer.written)
                for name in cs.packs.pack_names():
                    if name in new:
                        continue
                    rows = cs.packs.pack_rows(name)
                    if not any(r.id in fixed for r in rows):
                        continue
                    with cs.packs.writer() as keep:
                        for r in sorted(rows, key=lambda r: r.offset):
                            if r.id not in fixed:
                                try:
                                    keep.add_entry(cs.packs.entry_bytes(r))
                                except GitModelError:
                                    continue  # unreadable: lost with the damaged pack
                    cs.packs.remove_pack(name)
                done.append(
                    f"replaced {len(fixes_raw)} damaged chunk(s) from cached objects and "
                    f"{len(fixes_entry)} from the remote"
                )
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)
    # recipes: chunk the whole object again (the shared lock of an add), else fetch
    recipes = sorted({n for k, n, _ in problems if k in ("bad-recipe", "missing-chunk")})
    for md5 in recipes:
        if not cs.can_rebuild(md5) and store.exists(md5):
            try:
                store.verify(md5)
            except GitModelError:
                continue
            cs.remove_recipe(md5)
            cs.store_object(store.oid_to_path(md5), md5)
            done.append(f"chunked {md5} again from its cached object")
    lacking = [m for m in recipes if not cs.can_rebuild(m)]
    if lacking and remote is not None:
        from gitmodel.dedup.transfer import pull_chunks_into

        for md5 in lacking:
            try:
                cs.read_recipe(md5)
            except GitModelError:
                cs.remove_recipe(md5)  # a damaged one: the remote's may be whole
        try:
            got, _ = pull_chunks_into(cs, remote, lacking)
            done += [f"fetched {m} as chunks from the remote" for m in sorted(got)]
        except GitModelError as exc:
            done.append(f"chunks not fetched from DVC remote: {exc.message}")
    cs.packs.forget()
    _, still = check_chunk_store(store)
    left = {(k, n) for k, n, _ in still}
    return {n for k, n, _ in problems if (k, n) not in left}, done
