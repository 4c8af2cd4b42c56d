"""Garbage collection of the chunks on a DVC remote: recipes and packs no commit needs.

The caller (gitmodel.gc.collect_remote_chunks) decides the live objects: every pointer of
every commit this clone knows (all refs, reflogs, the index and work trees) after it has
checked that each git remote's refs are commits this clone has, so that no pushed pointer
is missed. Given those, on the remote:

- a recipe of an object that is not live and that is older than the grace period is
  removed (a younger one may belong to a push whose `git push` has not finished);
- a pack none of whose chunks a kept recipe needs (delta bases included) is *retired*:
  its index moves to `gitmodel/retired/<name>.idx`, so that pushes stop counting on its
  chunks, while its bytes stay for a pull that listed it before. A pack mostly dead is
  rewritten: its live entries go up in a new pack (published first), then it is retired;
- a pack retired longer than the grace period is deleted, unless a recipe now needs one of
  its chunks (a push that listed the pack before it was retired and counted on it): then
  its index is put back. This is the two-step that makes a concurrent push safe: a push
  that counted on a chunk finishes within the grace period, and its recipe then keeps the
  pack alive;
- a pack without an index (left by a killed push) older than the grace period is deleted.

Before its first removal a run writes a new token to `gitmodel/generation`: every clone's
record of what it pushed (gitmodel.remote) was made under the old one, so every push door
asks the remote again instead of trusting it (a pointer whose chunks a gc removed is
uploaded again, never published bare).

Ages come from the remote's own modification times; an entry whose age the filesystem does
not report is kept. Nothing a remote holds is believed: recipes are parsed and validated,
indexes checked against their digest; a live recipe that cannot be read stops the run
before anything is removed.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gitmodel.dedup.chunkstore import open_chunk_store
from gitmodel.dedup.packs import (
    ChunkInfo,
    PackStore,
    _idx_bytes,
    _parse_idx,
    closure,
    is_pack_name,
)
from gitmodel.dedup.recipe import BadRecipe, parse_recipe
from gitmodel.dedup.transfer import RemoteChunks, _one_line
from gitmodel.errors import GitModelError, Refused
from gitmodel.record import Record

if TYPE_CHECKING:
    from gitmodel.store import Store

# A pack with less than this fraction of its bytes live is rewritten (as in the local gc).
REPACK_BELOW = 0.5


class RemoteGcResult(Record):
    __slots__ = (
        "remote",
        "recipes_removed",
        "packs_retired",
        "packs_rewritten",
        "packs_deleted",
        "packs_restored",
        "bytes",
        "dry_run",
    )

    def __init__(self, remote: str, dry_run: bool) -> None:
        self.remote = remote
        self.recipes_removed: list[str] = []
        self.packs_retired: list[str] = []  # unpublished now, deleted by a later run
        self.packs_rewritten = 0
        self.packs_deleted: list[str] = []
        self.packs_restored: list[str] = []
        self.bytes = 0  # bytes deleted from the remote by this run
        self.dry_run = dry_run

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "recipes_removed": self.recipes_removed,
            "packs_retired": self.packs_retired,
            "packs_rewritten": self.packs_rewritten,
            "packs_deleted": self.packs_deleted,
            "packs_restored": self.packs_restored,
            "bytes": self.bytes,
            "dry_run": self.dry_run,
        }


def _mtime(entry: dict[str, Any]) -> float | None:
    """An fsspec listing entry's modification time (local/ssh `mtime`, s3 `LastModified`)."""
    for key in ("mtime", "LastModified", "last_modified", "modified"):
        value = entry.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _base(entry: dict[str, Any]) -> str:
    return str(entry.get("name", "")).rstrip("/").rsplit("/", 1)[-1]


class _Listing:
    """One directory of the remote: base name -> modification time (None: not told)."""

    def __init__(self, rc: RemoteChunks, *parts: str) -> None:
        try:
            entries = rc.fs.ls(rc._path(*parts), detail=True)
        except FileNotFoundError:
            entries = []
        self.ages: dict[str, float | None] = {}
        self.sizes: dict[str, int] = {}
        for e in entries:
            if isinstance(e, dict) and e.get("type", "file") != "directory":
                self.ages[_base(e)] = _mtime(e)
                self.sizes[_base(e)] = int(e.get("size") or 0)

    def old(self, name: str, cutoff: float) -> bool:
        t = self.ages.get(name)
        return t is not None and t <= cutoff


def collect_remote_chunks(
    store: Store, remote: Any, live: set[str], dry_run: bool = False, grace: float = 0.0
) -> RemoteGcResult:
    """Remove from the remote's chunk side what no live object needs (see the module doc)."""
    cs = open_chunk_store(store)
    rc = RemoteChunks(remote, cs)
    result = RemoteGcResult(remote.name, dry_run)
    try:
        _collect(cs.packs, rc, live, dry_run, time.time() - grace, result)
    except GitModelError:
        raise
    except Exception as exc:
        raise Refused(
            f"gc of chunks on DVC remote {remote.name!r} ({remote.url}) failed: {_one_line(exc)}"
        ) from None
    return result


def _collect(
    local: PackStore,
    rc: RemoteChunks,
    live: set[str],
    dry_run: bool,
    cutoff: float,
    result: RemoteGcResult,
) -> None:
    fs = rc.fs
    told: list[bool] = []

    def removing() -> None:
        """Before the first removal: a new generation, so no clone trusts its record."""
        if not told:
            rc.new_generation()
            told.append(True)

    recipes = _Listing(rc, "recipes")
    kept: list[str] = []
    for name in sorted(recipes.ages):
        if len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            continue  # a temporary upload, or not ours
        if name in live or not recipes.old(name, cutoff):
            kept.append(name)
        else:
            result.recipes_removed.append(name)
    needed: set[str] = set()
    for md5 in kept:
        try:
            needed |= set(parse_recipe(fs.cat_file(rc._path("recipes", md5)), md5).ids())
        except BadRecipe as exc:
            if md5 in live:
                raise Refused(
                    f"{exc.message} on DVC remote {rc.remote.name!r}: nothing was removed "
                    "(push the object again, or remove the recipe by hand)"
                ) from None
        except FileNotFoundError:
            continue  # removed meanwhile
    packs = _Listing(rc, "packs")
    retired = _Listing(rc, "retired")
    published = {n[:-4] for n in packs.ages if n.endswith(".idx") and is_pack_name(n[:-4])}
    rows: dict[str, list[ChunkInfo]] = {}
    index: dict[str, ChunkInfo] = {}
    for name in sorted(published):
        got = _parse_idx(fs.cat_file(rc._path("packs", f"{name}.idx")), name)
        if got is None:
            published.discard(name)  # a damaged index: left alone, as readers ignore it
            continue
        rows[name] = got
        for r in got:
            index.setdefault(r.id, r)
    old_retired: dict[str, list[ChunkInfo]] = {}
    for entry in sorted(retired.ages):
        name = entry[:-4]
        if not entry.endswith(".idx") or not is_pack_name(name) or name in published:
            continue
        got = _parse_idx(fs.cat_file(rc._path("retired", entry)), name)
        if got is None:
            continue
        for r in got:
            index.setdefault(r.id, r)
        if retired.old(entry, cutoff):
            old_retired[name] = got
    needed = closure(needed, index)
    in_published = {r.id for name in published for r in rows[name]}

    # 1. packs retired long enough ago: deleted, or put back if a recipe needs them now
    for name, got in sorted(old_retired.items()):
        # put back only for a chunk no published pack has (a rewrite copied the live ones)
        if any(r.id in needed and r.id not in in_published for r in got):
            result.packs_restored.append(name)
            if not dry_run:
                rc._put_bytes(_idx_bytes(got), rc._path("packs", f"{name}.idx"))
                fs.rm_file(rc._path("retired", f"{name}.idx"))
            continue
        size = packs.sizes.get(f"{name}.pack", 0)
        result.packs_deleted.append(name)
        result.bytes += size
        if not dry_run:
            removing()
            _rm(fs, rc._path("packs", f"{name}.pack"))
            fs.rm_file(rc._path("retired", f"{name}.idx"))
    # 2. published packs with no (or little) live content: retired (rewritten first)
    for name in sorted(published):
        if not packs.old(f"{name}.idx", cutoff):
            continue
        live_rows = [r for r in rows[name] if r.id in needed]
        size = packs.sizes.get(f"{name}.pack", 0)
        live_bytes = sum(r.enc_len for r in live_rows)
        if live_rows and live_bytes >= REPACK_BELOW * size:
            continue
        if live_rows:
            result.packs_rewritten += 1
            if not dry_run:
                _rewrite(local, rc, name, live_rows)
        result.packs_retired.append(name)
        if not dry_run:
            removing()
            rc._put_bytes(_idx_bytes(rows[name]), rc._path("retired", f"{name}.idx"))
            fs.rm_file(rc._path("packs", f"{name}.idx"))
    # 3. packs a killed push left without an index
    for entry, _ in sorted(packs.ages.items()):
        name = entry[:-5]
        if not entry.endswith(".pack") or not is_pack_name(name) or name in published:
            continue
        if f"{name}.idx" in retired.ages:
            continue
        if not packs.old(entry, cutoff):
            continue
        result.packs_deleted.append(name)
        result.bytes += packs.sizes.get(entry, 0)
        if not dry_run:
            removing()
            _rm(fs, rc._path("packs", entry))
    # 4. dead recipes last: a recipe goes only once nothing above failed
    if not dry_run and result.recipes_removed:
        removing()
        for md5 in result.recipes_removed:
            _rm(fs, rc._path("recipes", md5))


def _rm(fs: Any, path: str) -> None:
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def _rewrite(local: PackStore, rc: RemoteChunks, name: str, live_rows: list[ChunkInfo]) -> None:
    """Download pack name, and upload a new pack of its live entries (pack, then index)."""
    staging = PackStore(local.tmp_dir() / f"remote-gc.{os.urandom(6).hex()}")
    try:
        staging.root.mkdir(parents=True)
        got = staging.root / "old.pack"
        rc.fs.get_file(rc._path("packs", f"{name}.pack"), str(got))
        old = PackStore(staging.root)
        old_name = old.import_pack(got, expected=name)  # it must hash to its name
        mine = {r.id: r for r in old.pack_rows(old_name)}  # re-read from its own bytes
        with staging.writer() as writer:
            for info in sorted(live_rows, key=lambda r: r.offset):
                writer.add_entry(old.entry_bytes(mine[info.id]))
        old.forget()
        for new in writer.written:
            rc._put(staging.pack_path(new), rc._path("packs", f"{new}.pack"))
            rc._put(staging.idx_path(new), rc._path("packs", f"{new}.idx"))
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)
