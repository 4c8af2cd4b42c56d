"""The deduplicating store: files as recipes of chunks kept in packs.

Lives beside DVC's objects, in `<cache>/gitmodel/`:

    recipes/<md5[:2]>/<md5[2:]>   which chunks make the file whose md5 that is (JSON)
    packs/<sha256>.pack, .idx     the chunks (gitmodel.dedup.packs)

DVC never looks there (its objects are `files/md5/..`, its 2.x ones two-hex-digit
directories), so `dvc gc` cannot remove chunks and `dvc status` never lists them. A recipe
is written only after every chunk it names is in a published pack, so a recipe that exists
can be rebuilt; the rebuilt file is checked against the md5 the recipe is named by (the
pointer's) before it takes that name.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.dedup.buffers import Buffers, pread_scratch
from gitmodel.dedup.chunking import ChunkSpec, plan_chunks
from gitmodel.dedup.codec import Buffer
from gitmodel.dedup.packs import MAX_DEPTH, CorruptChunk, PackStore, PackWriter, chunk_id
from gitmodel.dedup.pipeline import ordered_map
from gitmodel.dedup.recipe import HEX, MAX_RECIPE, BadRecipe, Recipe, parse_recipe
from gitmodel.errors import GitModelError
from gitmodel.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.store import Progress, Store

# A delta is kept without trying the full encoding when it is this small.
GOOD_DELTA = 0.5


class StoreStats(Record):
    __slots__ = ("chunks", "new_chunks", "new_raw", "new_stored", "deltas")

    def __init__(self) -> None:
        self.chunks = 0
        self.new_chunks = 0
        self.new_raw = 0  # raw bytes of the chunks that were new
        self.new_stored = 0  # what they take encoded
        self.deltas = 0  # of the new chunks, how many are XOR deltas

    def keep(self, writer: PackWriter, cid: str, length: int, enc: Any) -> None:
        """Write a new chunk's encoding (base, depth, payload) to the pack and count it."""
        base, depth, payload = enc
        writer.add(cid, base, depth, length, payload)
        self.new_chunks += 1
        self.new_raw += length
        self.new_stored += len(payload)
        self.deltas += base is not None

    def to_json(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}


class ChunkStore:
    """Recipes and packs under `<cache>/gitmodel`."""

    def __init__(
        self, cache_dir: Path, fsync: Callable[[], bool] | bool = False, jobs: int | None = None
    ) -> None:
        self.root = cache_dir / "gitmodel"
        self.packs = PackStore(self.root / "packs", fsync)
        self.jobs = jobs or max(1, os.cpu_count() or 1)
        # checks (and creates) a directory under the cache without following links
        self.real_dir: Callable[..., Path] = lambda d, create=False: d
        self.state: Any = None  # the store's stat cache (gitmodel.store.StatCache), if any

    def lock(self, exclusive: bool = False) -> Any:
        """The chunk store's lock: shared while an add decides and writes, exclusive for gc."""
        import contextlib
        import fcntl

        @contextlib.contextmanager
        def held() -> Any:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                yield
            finally:
                os.close(fd)

        return held()

    # -- recipes ----------------------------------------------------------------------------

    def recipe_path(self, md5: str) -> Path:
        from gitmodel.store import is_oid

        if not is_oid(md5, dirs=False):
            raise GitModelError(f"not an md5 object id: {md5!r}")
        return self.root / "recipes" / md5[:2] / md5[2:]

    def has_recipe(self, md5: str) -> bool:
        return not md5.endswith(".dir") and self.recipe_path(md5).is_file()

    def read_recipe(self, md5: str) -> Recipe:
        path = self.recipe_path(md5)
        try:
            if path.stat().st_size > MAX_RECIPE:
                raise BadRecipe(f"recipe {md5}: too large")
            return parse_recipe(path.read_bytes(), md5)
        except FileNotFoundError:
            raise GitModelError(f"no recipe for {md5}") from None

    def write_recipe(self, recipe: Recipe) -> bool:
        """Publish a recipe (once its chunks are in published packs); False if one was
        there already."""
        path = self.recipe_path(recipe.md5)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.real_dir(path.parent, create=True)
        tmp = path.with_name(f"{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            with open(tmp, "xb") as f:
                f.write(recipe.to_bytes())
                if self.packs.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return True

    def recipe_md5s(self) -> list[str]:
        base = self.root / "recipes"
        out = []
        try:
            prefixes = sorted(os.listdir(base))
        except FileNotFoundError:
            return []
        for p in prefixes:
            if len(p) != 2:
                continue
            try:
                names = os.listdir(base / p)
            except NotADirectoryError:
                continue
            out += [p + n for n in names if len(n) == 30 and HEX.issuperset(n)]
        return sorted(out)

    def remove_recipe(self, md5: str) -> None:
        self.recipe_path(md5).unlink(missing_ok=True)

    def can_rebuild(self, md5: str) -> bool:
        """Whether the recipe of md5 and every chunk it needs are here."""
        if not self.has_recipe(md5):
            return False
        try:
            recipe = self.read_recipe(md5)
        except GitModelError:
            return False
        index = self.packs.index
        needed = self.packs.closure(recipe.ids())
        return all(c in index for c in needed)

    # -- storing ----------------------------------------------------------------------------

    def store_object(
        self,
        path: Path,
        md5: str,
        parent_md5: str | None = None,
        progress: Progress | None = None,
        parent_path: Path | None = None,
        parent_trusted: bool = False,
    ) -> StoreStats:
        """Chunk the file at path (whose md5 is md5) into packs and write its recipe.

        parent_md5: the same path's version in the parent commit; each chunk that changed
        is stored as an XOR delta against the parent's chunk of the same key when that is
        smaller. Chunks already stored (in any version, any file) are not stored again.
        """
        return self.store_objects([(path, md5, parent_md5, parent_path, parent_trusted)], progress)

    def store_objects(
        self,
        items: Sequence[tuple[Path, str, str | None, Path | None, bool]],
        progress: Progress | None = None,
    ) -> StoreStats:
        """store_object for many files (a directory's) into one pack writer: a directory of
        many small files becomes a few packs, not a pack per file. Recipes are written once
        the packs holding their chunks are published."""
        total = StoreStats()
        recipes: list[tuple[Recipe, Path]] = []
        with self.lock():
            self.packs.forget()  # another process may have added or rewritten packs
            with self.packs.writer() as writer:
                for path, md5, parent_md5, parent_path, trusted in items:
                    stats, recipe = self._store_object(
                        path, md5, parent_md5, progress, parent_path, trusted, writer
                    )
                    for name in stats.__slots__:
                        setattr(total, name, getattr(total, name) + getattr(stats, name))
                    if recipe is not None:
                        recipes.append((recipe, path))
            for recipe, _path in recipes:
                self.write_recipe(recipe)
        return total

    def add_file(
        self,
        store: Store,
        path: Path,
        parent_md5: str | None = None,
        progress: Progress | None = None,
        parent_path: Path | None = None,
        parent_trusted: bool = False,
    ) -> tuple[str, int, StoreStats]:
        """Store the work-tree file at path whole (the DVC object) and as chunks, reading
        it once: each chunk is read, named (sha256) and encoded on every core, while this
        thread, in file order, feeds it to the file's md5, writes it to the object and
        appends it to the pack. So the object, its md5, its chunks and its recipe are all
        made of the same bytes (a plain add copies then hashes; chunking the object
        afterwards read it all a second time).
        Returns (md5, size, stats)."""
        from gitmodel.store import _tmp_name

        stats = StoreStats()
        taken = time.time_ns()  # before the stat (the stat cache's racy-clean rule)
        before = os.stat(path)
        chunking, specs = plan_chunks(path)
        stats.chunks = len(specs)
        with self.lock():
            self.packs.forget()  # another process may have added or rewritten packs
            parent = self._parent_chunks(parent_md5)
            index = self.packs.index
            pfd = _open_or_none(parent_path) if parent else -1
            fd = os.open(path, os.O_RDONLY)
            tmp = _tmp_name(store._tmp_dir() / "object")
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            digest = hashlib.md5()
            chunks: list[tuple[str, int, str]] = []
            pool = Buffers()
            try:
                with self.packs.writer() as writer:

                    def encode_one(spec: ChunkSpec) -> tuple[Any, memoryview, str, Any]:
                        buf, raw = pool.read(fd, spec.length, spec.offset)
                        if len(raw) != spec.length:
                            raise GitModelError(f"{path} changed while being stored")
                        cid = chunk_id(raw)
                        if cid in index or cid in writer.ids:
                            return buf, raw, cid, None
                        enc = self._encode(raw, spec, parent.get(spec.key), pfd, parent_trusted)
                        return buf, raw, cid, enc

                    for spec, (buf, raw, cid, enc) in zip(
                        specs, ordered_map(encode_one, specs, self.jobs), strict=True
                    ):
                        digest.update(raw)
                        view = raw
                        while view:
                            view = view[os.write(out, view) :]
                        pool.give_back(buf)
                        chunks.append((spec.key, spec.length, cid))
                        if enc is not None and cid not in writer.ids and cid not in index:
                            stats.keep(writer, cid, spec.length, enc)
                        if progress:
                            progress(spec.length)
                    size = sum(c[1] for c in chunks)
                    if os.fstat(fd).st_size != size:
                        raise GitModelError(f"{path} changed while being stored")
                if store.fsync_objects:
                    os.fsync(out)
                os.close(out)
                out = -1
                md5 = digest.hexdigest()
                store._place_from_tmpdir(tmp, md5)  # named only now, by the md5 of its bytes
            except BaseException:
                if out >= 0:
                    os.close(out)
                tmp.unlink(missing_ok=True)
                raise
            finally:
                os.close(fd)
                if pfd >= 0:
                    os.close(pfd)
            after = os.stat(path)
            if (after.st_ino, after.st_mtime_ns, after.st_size) == (
                before.st_ino,
                before.st_mtime_ns,
                before.st_size,
            ):  # unchanged while it was read: the object is what the stat describes
                store.state.record(after, md5, taken)
            self.write_recipe(Recipe(md5, size, chunking, chunks))
        return md5, size, stats

    def _parent_chunks(self, parent_md5: str | None) -> dict[str, tuple[int, int, str]]:
        """key -> (offset, length, id) of the parent version's chunks: the deltas' bases."""
        parent: dict[str, tuple[int, int, str]] = {}
        if parent_md5 and self.has_recipe(parent_md5):
            try:
                at = 0
                for key, length, cid in self.read_recipe(parent_md5).chunks:
                    parent[key] = (at, length, cid)
                    at += length
            except GitModelError:
                parent = {}
        return parent

    def _store_object(
        self,
        path: Path,
        md5: str,
        parent_md5: str | None,
        progress: Progress | None,
        parent_path: Path | None,
        parent_trusted: bool,
        writer: PackWriter,
    ) -> tuple[StoreStats, Recipe | None]:
        stats = StoreStats()
        if self.can_rebuild(md5):
            return stats, None
        chunking, specs = plan_chunks(path)
        stats.chunks = len(specs)
        # key -> (offset, length, id) of the parent version's chunks: the deltas' bases
        parent: dict[str, tuple[int, int, str]] = {}
        if parent_md5 and parent_md5 != md5 and self.has_recipe(parent_md5):
            try:
                at = 0
                for key, length, cid in self.read_recipe(parent_md5).chunks:
                    parent[key] = (at, length, cid)
                    at += length
            except GitModelError:
                parent = {}
        index = self.packs.index
        # A base is read from the parent's whole object when the cache still has it (a
        # read and a sha256) rather than decoded from its pack (zstd, planes, its own chain).
        pfd = -1
        if parent and parent_path is not None:
            try:
                pfd = os.open(parent_path, os.O_RDONLY)
            except OSError:
                pfd = -1
        fd = os.open(path, os.O_RDONLY)
        try:

            def encode_one(spec: ChunkSpec) -> tuple[str, Any]:
                raw = os.pread(fd, spec.length, spec.offset)
                if len(raw) != spec.length:
                    raise GitModelError(f"{path} changed while being stored")
                cid = chunk_id(raw)
                if cid in index or cid in writer.ids:
                    return cid, None
                return cid, self._encode(raw, spec, parent.get(spec.key), pfd, parent_trusted)

            chunks: list[tuple[str, int, str]] = []
            for spec, (cid, enc) in zip(
                specs, ordered_map(encode_one, specs, self.jobs), strict=True
            ):
                chunks.append((spec.key, spec.length, cid))
                if enc is not None and cid not in writer.ids and cid not in index:
                    stats.keep(writer, cid, spec.length, enc)
                if progress:
                    progress(spec.length)
        finally:
            os.close(fd)
            if pfd >= 0:
                os.close(pfd)
        size = sum(c[1] for c in chunks)
        return stats, Recipe(md5, size, chunking, chunks)

    def _encode(
        self,
        raw: Buffer,
        spec: ChunkSpec,
        parent: tuple[int, int, str] | None,
        pfd: int,
        trusted: bool,
    ) -> tuple[str | None, int, bytes]:
        from gitmodel.dedup.codec import encode, xor

        best: tuple[str | None, int, bytes] | None = None
        info = self.packs.index.get(parent[2]) if parent else None
        if parent and info is not None and info.raw_len == len(raw) and info.depth < MAX_DEPTH:
            base: Buffer | None = None
            if pfd >= 0:
                base = pread_scratch(pfd, parent[1], parent[0])
                # An object the store wrote or verified since it last changed is trusted
                # (as checkout trusts it); any other is checked against the base's name.
                if len(base) != parent[1] or (not trusted and chunk_id(base) != info.id):
                    base = None  # the cached parent object is not what its recipe says
            if base is None:
                try:
                    base = self.packs.read(info.id)
                except CorruptChunk:
                    base = None
            if base is not None:
                best = (info.id, info.depth + 1, encode(xor(raw, base, scratch=True), spec.width))
                if len(best[2]) <= GOOD_DELTA * len(raw):
                    return best
        full = encode(raw, spec.width)
        if best is None or len(full) <= len(best[2]):
            return None, 0, full
        return best

    # -- rebuilding -------------------------------------------------------------------------

    def rebuild_to(self, md5: str, fd: int, progress: Progress | None = None) -> None:
        """Write the file whose md5 is md5 to fd; CorruptChunk/CorruptObject on any mismatch."""
        from gitmodel.dedup.rebuild import write_chunks

        write_chunks(self.packs, self.read_recipe(md5), [fd], self.jobs, progress)

    def restore_object(
        self, store: Store, md5: str, progress: Progress | None = None, dest: Path | None = None
    ) -> None:
        """Rebuild md5 into the DVC cache as a whole-file object, and at dest when it is
        given (a work-tree file of its own), in one pass; each verified before it is named."""
        from gitmodel.dedup.rebuild import rebuild_object

        if dest is None and store.exists(md5):
            return
        with self.lock():
            rebuild_object(store, self.packs, self.read_recipe(md5), self.jobs, progress, dest)


def _open_or_none(path: Path | None) -> int:
    if path is None:
        return -1
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return -1


def open_chunk_store(store: Store) -> ChunkStore:
    """The chunk store beside a DVC cache (one per Store object).

    Its directories go through the store's path policy (Store.real_dir): a clone that
    commits `.dvc/cache/gitmodel -> ~` must not aim pack writes or gc at the user's files.
    """
    cs = getattr(store, "_chunk_store", None)
    if cs is None:
        cs = ChunkStore(store.cache_dir, lambda: store.fsync_objects, store.jobs)
        store.cache_dir.mkdir(parents=True, exist_ok=True)  # a fresh clone has none yet
        for d in (cs.root, cs.packs.root, cs.packs.root / "tmp", cs.root / "recipes"):
            store.real_dir(d, create=True)
        cs.real_dir = store.real_dir
        cs.state = store.state
        store._chunk_store = cs  # type: ignore[attr-defined]
    return cs


def stored_md5s(store: Store, oids: Sequence[str]) -> set[str]:
    """Which oids the store can provide: a whole object, or a recipe it can rebuild."""
    have = {o for o in oids if store.exists(o)}
    rest = [o for o in oids if o not in have and not o.endswith(".dir")]
    root = store.cache_dir / "gitmodel" / "recipes"
    if rest and root.is_dir():
        cs = open_chunk_store(store)
        have |= {o for o in rest if cs.can_rebuild(o)}
    return have
