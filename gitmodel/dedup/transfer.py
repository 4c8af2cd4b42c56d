"""Chunks to and from a DVC remote: packs of what the remote lacks, recipes after them.

On the remote, beside DVC's `files/md5/`:

    gitmodel/packs/<sha256>.pack, .idx   chunks, as in the local store
    gitmodel/recipes/<md5>               which chunks make the file of that md5

A push lists the remote's pack indexes once (each index is fetched once and then cached
locally: packs are immutable and named by their bytes), packs exactly the chunks the
remote lacks (delta bases included) into as few packs as PACK_TARGET allows, uploads each
pack and then its index, and only after every pack is up, the recipes. So a recipe on the
remote means its chunks are there, and the pre-push hook, which runs this before git
moves any ref, never publishes a pointer whose chunks are missing. A killed push leaves at
most a pack without an index, which no reader sees.

A pull fetches the recipes it needs, then the packs holding the chunks those recipes need
that the local store lacks, whole (one request per pack, not per chunk). A downloaded pack
must hash to its name and is re-indexed from its own entries; its chunks are checked
against their names when decoded; a recipe is kept only once every chunk it needs is local.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
from gitmodel.dedup.packs import ChunkInfo, PackStore, _parse_idx, is_pack_name, read_regular
from gitmodel.dedup.recipe import BadRecipe, parse_recipe
from gitmodel.errors import GitModelError, Refused
from gitmodel.record import Record
from gitmodel.remote import GENERATION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.store import Store


# Up to this many recipes are asked about one by one; more, and the remote's recipe
# directory is listed once (a listing page holds about a thousand names on S3).
RECIPE_QUERIES = 64


class ChunkRemoteError(GitModelError):
    """Chunks cannot be fetched from a remote (unreachable, or damaged there)."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class ChunkTransfer(Record):
    __slots__ = ("objects", "packs", "chunks", "bytes")

    def __init__(self) -> None:
        self.objects: list[str] = []  # file objects moved as recipes + chunks
        self.packs = 0
        self.chunks = 0
        self.bytes = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": len(self.objects),
            "packs": self.packs,
            "chunks": self.chunks,
            "bytes": self.bytes,
        }


def in_use(store: Store) -> bool:
    """Whether this cache holds any recipe (else nothing here costs a thing)."""
    return (store.cache_dir / "gitmodel" / "recipes").is_dir()


class RemoteChunks:
    """The chunk side of one DVC remote (its fs and a local cache of its pack indexes)."""

    def __init__(self, remote: Any, cs: ChunkStore) -> None:
        self.remote = remote
        self.fs = remote.fs
        base = self.fs.parent(self.fs.parent(remote.odb.path))  # the remote's root
        self.root = self.fs.join(base, "gitmodel")
        key = hashlib.sha1(f"{remote.name}\0{remote.url}".encode()).hexdigest()[:16]
        self.idx_cache = cs.root / "remote-index" / key
        self.cs = cs

    def _path(self, *parts: str) -> str:
        return self.fs.join(self.root, *parts)

    def _put(self, local: Path, dest: str) -> None:
        if self.remote.atomic:
            self.fs.put_file(str(local), dest)
            return
        from dvc_objects.fs.utils import as_atomic

        with as_atomic(self.fs, dest, create_parents=True) as tmp:
            self.fs.put_file(str(local), tmp)

    def _put_bytes(self, data: bytes, dest: str) -> None:
        tmp = self.cs.packs.tmp_dir() / f"upload.{os.urandom(6).hex()}.tmp"
        try:
            tmp.write_bytes(data)
            self._put(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def new_generation(self) -> None:
        """Tell every clone that what it remembers pushing may be gone: called by the remote
        gc before it removes anything (gitmodel.remote's record, checked by every push)."""
        token = f"{time.time_ns()}-{os.urandom(8).hex()}\n".encode()
        self._put_bytes(token, self.fs.join(self.fs.parent(self.root), *GENERATION.split("/")))

    def pack_names(self) -> list[str]:
        try:
            entries = self.fs.ls(self._path("packs"), detail=False)
        except FileNotFoundError:
            return []
        names = []
        for e in entries:
            base = str(e).rstrip("/").rsplit("/", 1)[-1]
            if base.endswith(".idx") and is_pack_name(base[:-4]):
                names.append(base[:-4])
        return sorted(names)

    def index(self) -> dict[str, ChunkInfo]:
        """Chunk id -> where it is on the remote, from every published pack index."""
        out: dict[str, ChunkInfo] = {}
        # never through a link: a clone may commit `.dvc/cache/gitmodel/remote-index -> ~`
        self.cs.real_dir(self.idx_cache, create=True)
        self.idx_cache.mkdir(parents=True, exist_ok=True)
        for name in self.pack_names():
            cached = self.idx_cache / f"{name}.idx"
            try:
                data: bytes | None = read_regular(cached)
            except OSError:
                data = None
            if data is None:
                data = self.fs.cat_file(self._path("packs", f"{name}.idx"))
                if _parse_idx(data, name) is None:
                    continue  # a damaged index: as if the pack were not there
                tmp = cached.with_name(f"{cached.name}.{os.urandom(6).hex()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, cached)
            for row in _parse_idx(data, name) or []:
                out.setdefault(row.id, row)
        return out

    def recipes_present(self, md5s: Sequence[str]) -> set[str]:
        if not md5s:
            return set()
        if len(md5s) > RECIPE_QUERIES:
            # One listing instead of a stat per object: a pull of 50,000 small files from
            # a remote with no recipe at all spent half its time asking about each one.
            try:
                names = self.fs.ls(self._path("recipes"), detail=False)
            except FileNotFoundError:
                return set()
            listed = {str(n).rstrip("/").rsplit("/", 1)[-1] for n in names}
            return {m for m in md5s if m in listed}
        paths = [self._path("recipes", m) for m in md5s]
        infos = self.fs.info(paths, batch_size=self.remote.jobs, return_exceptions=True)
        return {m for m, i in zip(md5s, infos, strict=True) if isinstance(i, dict)}


def push_chunks(store: Store, remote: Any, oids: Sequence[str]) -> tuple[set[str], ChunkTransfer]:
    """Put on the remote the recipes (and the chunks they need) of the oids stored as chunks.

    Returns (oids that are on the remote as recipes, what moved). Raises Refused on failure.
    """
    report = ChunkTransfer()
    if not in_use(store):
        return set(), report
    cs = open_chunk_store(store)
    mine = [o for o in oids if not o.endswith(".dir") and cs.can_rebuild(o)]
    if not mine:
        return set(), report
    rc = RemoteChunks(remote, cs)
    try:
        with cs.lock():  # gc rewrites no pack while this reads them
            return _push_chunks(cs, rc, mine, report)
    except GitModelError:
        raise
    except Exception as exc:
        raise Refused(
            f"upload of chunks to DVC remote {remote.name!r} ({remote.url}) failed: {_one_line(exc)}"
        ) from None


def _push_chunks(
    cs: ChunkStore, rc: RemoteChunks, mine: list[str], report: ChunkTransfer
) -> tuple[set[str], ChunkTransfer]:
    there = rc.recipes_present(mine)
    todo = [o for o in mine if o not in there]
    if not todo:
        return set(mine), report
    needed: set[str] = set()
    for o in todo:
        needed |= cs.packs.closure(cs.read_recipe(o).ids())
    have = rc.index()
    missing = needed - set(have)
    if missing:
        _upload_packs(cs, rc, missing, report)
    for o in todo:
        rc._put(cs.recipe_path(o), rc._path("recipes", o))
    report.objects = todo
    return set(mine), report


def _upload_packs(
    cs: ChunkStore, rc: RemoteChunks, missing: set[str], report: ChunkTransfer
) -> None:
    packs = cs.packs
    by_pack: dict[str, list[ChunkInfo]] = {}
    for cid in missing:
        info = packs.index[cid]
        by_pack.setdefault(info.pack, []).append(info)
    staging = PackStore(packs.tmp_dir() / f"outgoing.{os.urandom(6).hex()}")
    try:
        ready: list[tuple[PackStore, str]] = []
        with staging.writer() as writer:
            for name, rows in sorted(by_pack.items()):
                if len(rows) == len(packs.pack_rows(name)):
                    ready.append((packs, name))  # the whole pack is missing: send it as it is
                    continue
                for info in sorted(rows, key=lambda r: r.offset):
                    writer.add_entry(packs.entry_bytes(info))
        ready += [(staging, n) for n in writer.written]
        for where, name in ready:
            rc._put(where.pack_path(name), rc._path("packs", f"{name}.pack"))
            rc._put(where.idx_path(name), rc._path("packs", f"{name}.idx"))
            report.packs += 1
            report.chunks += len(where.pack_rows(name))
            report.bytes += where.pack_path(name).stat().st_size
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)


def pull_chunks(store: Store, remote: Any, oids: Sequence[str]) -> tuple[set[str], ChunkTransfer]:
    """Fetch recipes and the packs their chunks are in, for the oids the remote has as chunks.

    Returns (oids now rebuildable locally, what moved).
    """
    return pull_chunks_into(open_chunk_store(store), remote, oids)


def pull_chunks_into(
    cs: ChunkStore, remote: Any, oids: Sequence[str]
) -> tuple[set[str], ChunkTransfer]:
    """pull_chunks into any chunk store (`git model get` uses a temporary one)."""
    report = ChunkTransfer()
    files = [o for o in oids if not o.endswith(".dir")]
    recipes: dict[str, Any] = {}
    if not files:
        return set(), report
    try:
        rc = RemoteChunks(remote, cs)
        on_remote = rc.recipes_present(files)
        if not on_remote:
            return set(), report
        for o in sorted(on_remote):
            try:
                recipes[o] = parse_recipe(rc.fs.cat_file(rc._path("recipes", o)), o)
            except BadRecipe:
                continue  # a damaged recipe: the whole object may still be there
        needed: set[str] = set()
        for r in recipes.values():
            needed |= set(r.ids())
        remote_index: dict[str, ChunkInfo] | None = None
        fetched: set[str] = set()
        for _ in range(8):  # each round brings the delta bases the last one named
            local = cs.packs.index
            lacking = {c for c in cs.packs.closure(needed) if c not in local} | {
                c for c in needed if c not in local
            }
            if not lacking:
                break
            if remote_index is None:
                remote_index = rc.index()
            packs = sorted({remote_index[c].pack for c in lacking if c in remote_index} - fetched)
            if not packs:
                break
            for name in packs:
                _download_pack(cs, rc, name, report)
                fetched.add(name)
            needed = cs.packs.closure(needed)
    except GitModelError:
        raise
    except Exception as exc:
        raise ChunkRemoteError(
            f"cannot fetch chunks from DVC remote {remote.name!r} ({remote.url}): {_one_line(exc)}"
        ) from None
    done = set()
    index = cs.packs.index
    for o, r in recipes.items():
        if all(c in index for c in cs.packs.closure(r.ids())):
            cs.write_recipe(r)
            done.add(o)
    report.objects = sorted(done)
    return done, report


def _download_pack(cs: ChunkStore, rc: RemoteChunks, name: str, report: ChunkTransfer) -> None:
    tmp = cs.packs.tmp_dir() / f"download.{os.urandom(6).hex()}.tmp"
    try:
        rc.fs.get_file(rc._path("packs", f"{name}.pack"), str(tmp))
        size = tmp.stat().st_size
        cs.packs.import_pack(tmp, expected=name)
        report.packs += 1
        report.bytes += size
        report.chunks += len(cs.packs.pack_rows(name))
    finally:
        tmp.unlink(missing_ok=True)
