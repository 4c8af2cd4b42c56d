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
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.dedup.chunking import ChunkSpec, plan_chunks
from gitmodel.dedup.codec import Buffer
from gitmodel.dedup.packs import MAX_DEPTH, CorruptChunk, PackStore, PackWriter, chunk_id
from gitmodel.dedup.pipeline import Job, Workers, ordered_map
from gitmodel.dedup.recipe import HEX, MAX_RECIPE, BadRecipe, Recipe, parse_recipe
from gitmodel.errors import GitModelError
from gitmodel.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.store import Progress, Store

# A delta is kept without trying the full encoding when it is this small.
GOOD_DELTA = 0.5
# Chunks an add copies and hashes ahead of the oldest one still being named and encoded
# (each is only a spec and a Job: the bytes are in the object, mapped while worked on).
_WINDOW = 64
# The stat cache's mark (a `verified` row) of a recipe vouched for: see vouch_recipe.
_VOUCHED = "recipe:"


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

    def write_recipe(self, recipe: Recipe, vouch: bool = False) -> bool:
        """Publish a recipe (once its chunks are in published packs); False if one was
        there already. vouch: the recipe was made from the object's own bytes, so it is
        vouched for (vouch_recipe) as written, or the one there if it is the same, and
        replaces one that is not: a clone may commit a recipe under the md5 of bytes its
        victim will add, and kept, gc would drop the object as rebuildable from it."""
        path = self.recipe_path(recipe.md5)
        if path.exists() and (not vouch or self._vouch_if_same(recipe)):
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
            written = os.stat(tmp)  # a rename keeps the inode, the mtime and the size
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if vouch:
            self.vouch_recipe(recipe.md5, written)
        else:  # a mark left by a recipe of that name removed since is for another file
            self._forget_vouch(recipe.md5)
        return True

    def vouch_recipe(self, md5: str, st: os.stat_result) -> None:
        """Remember that the recipe of md5, as it is at stat st, lists the chunks of that
        object's own bytes: it was made from them, or rebuilt them to their md5. A chunk
        of a later version equal to the object's bytes at a vouched recipe's offset is
        then named by that recipe without being hashed. A recipe from a remote is not
        vouched for until a rebuild checked it (it could name chunks that are not the
        object's, and a version named after it would inherit the lie)."""
        if self.state is not None:
            self.state.mark_verified(_VOUCHED + md5, st)

    def _forget_vouch(self, md5: str) -> None:
        if self.state is not None:
            self.state.forget_verified(_VOUCHED + md5)

    def _vouch_if_same(self, recipe: Recipe) -> bool:
        """Vouch for the recipe there if it is recipe's bytes; whether it was."""
        try:
            fd = os.open(self.recipe_path(recipe.md5), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            if st.st_size == len(data := recipe.to_bytes()) and _read_all(fd, st.st_size) == data:
                self.vouch_recipe(recipe.md5, st)
                return True
            return False
        finally:
            os.close(fd)

    def _vouched_recipe(self, md5: str) -> tuple[Recipe, bool] | None:
        """md5's recipe and whether it is vouched for (as read: the stat of the bytes
        parsed, not of a path looked up again); None when there is none or it is bad."""
        got = self._recipe_as_read(md5)
        if got is None:
            return None
        recipe, st = got
        return recipe, self._is_vouched(md5, st)

    def _is_vouched(self, md5: str, st: os.stat_result) -> bool:
        return self.state is not None and self.state.is_verified(_VOUCHED + md5, st)

    def _recipe_as_read(self, md5: str) -> tuple[Recipe, os.stat_result] | None:
        """md5's recipe and the stat of the bytes parsed; None when there is none or it
        is bad."""
        try:
            fd = os.open(self.recipe_path(md5), os.O_RDONLY)
        except (OSError, GitModelError):
            return None
        try:
            st = os.fstat(fd)
            if st.st_size > MAX_RECIPE:
                return None
            recipe = parse_recipe(_read_all(fd, st.st_size), md5)
        except (OSError, GitModelError):
            return None
        finally:
            os.close(fd)
        return recipe, st

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
        self._forget_vouch(md5)

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
        recipes: list[tuple[Recipe, bool]] = []
        with self.lock():
            self.packs.forget()  # another process may have added or rewritten packs
            with self.packs.writer() as writer:
                for path, md5, parent_md5, parent_path, trusted in items:
                    # made from an object trusted before and after: from md5's own bytes
                    known = self._trusted_stat(md5, path)
                    stats, recipe = self._store_object(
                        path, md5, parent_md5, progress, parent_path, trusted, writer
                    )
                    for name in stats.__slots__:
                        setattr(total, name, getattr(total, name) + getattr(stats, name))
                    if recipe is not None:
                        own = known is not None and known == self._trusted_stat(md5, path)
                        recipes.append((recipe, own))
            for recipe, own in recipes:
                self.write_recipe(recipe, vouch=own)
        return total

    def _trusted_stat(self, md5: str, path: Path) -> tuple[int, int, int] | None:
        """The object's (inode, mtime, size) if the store trusts it holds md5's bytes."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        if self.state is None or not self.state.is_verified(md5, st):
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

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
        it once: on every core, each chunk is copied into the object by the kernel, named
        (sha256) and encoded from the object's bytes, while this thread, in file order,
        feeds those bytes to the file's md5 and appends the encodings to the pack. So the
        object, its md5, its chunks and its recipe are all made of the same bytes (a plain
        add copies then hashes; chunking the object afterwards read it all a second time).

        A chunk equal to the parent's chunk of the same key is named by the parent's
        recipe instead of hashed, when the parent object is trusted and its recipe vouched
        for (vouch_recipe): a 5% fine-tune is then 95% compares (XOR and a test for zero,
        ~5 ms per 16 MiB) where it was 95% sha256 (~12 ms).
        Returns (md5, size, stats)."""
        from gitmodel.dedup.codec import import_numpy
        from gitmodel.dedup.staging import StagedObject
        from gitmodel.store import _tmp_name

        _preload_codec()  # numpy and zstandard load on the other core while chunks copy
        stats = StoreStats()
        taken = time.time_ns()  # before the stat (the stat cache's racy-clean rule)
        before = os.stat(path)
        chunking, specs = plan_chunks(path)
        stats.chunks = len(specs)
        with self.lock():
            self.packs.forget()  # another process may have added or rewritten packs
            parent, vouched = self._parent_chunks(parent_md5)
            index = self.packs.index
            pfd = _open_or_none(parent_path) if parent else -1
            vouched = vouched and parent_trusted and pfd >= 0
            fd = os.open(path, os.O_RDONLY)
            tmp = _tmp_name(store._tmp_dir() / "object")
            # read and write: the chunks are read back through a map of the object
            out = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            staged = StagedObject(fd, out, path)
            digest = hashlib.md5()
            chunks: list[tuple[str, int, str]] = []
            try:
                with self.packs.writer() as writer:

                    def name_and_encode(spec: ChunkSpec) -> tuple[str, Any]:
                        import_numpy()  # waits for the preload's (OpenBLAS on one thread)
                        span = staged.reread(spec.offset, spec.length)
                        try:
                            return name_and_encode_span(spec, span.view)
                        finally:
                            span.release()

                    def name_and_encode_span(spec: ChunkSpec, raw: memoryview) -> tuple[str, Any]:
                        p = parent.get(spec.key)
                        cid, delta = None, None
                        if vouched and p is not None and p[1] == spec.length:
                            delta = self._delta_from_object(raw, p, pfd)
                            if delta is not None and _is_zero(delta):
                                cid = p[2]  # the parent's bytes, which its recipe names
                        if cid is None:
                            cid = chunk_id(raw)
                        if cid in index or cid in writer.ids:
                            return cid, None
                        return cid, self._encode(raw, spec, p, pfd, vouched, delta)

                    def keep(spec: ChunkSpec, job: Job) -> None:
                        result: tuple[str, Any] = job.result()  # type: ignore[assignment]
                        cid, enc = result
                        chunks.append((spec.key, spec.length, cid))
                        if enc is not None and cid not in writer.ids and cid not in index:
                            stats.keep(writer, cid, spec.length, enc)

                    # This thread copies each chunk into the object and feeds it to the
                    # md5, as a plain add does (that sets the pace); the workers map the
                    # same bytes of the object and name and encode them meanwhile, so
                    # neither waits for the other (nor for numpy's import) and only the
                    # chunks being worked on are mapped.
                    pending: deque[tuple[ChunkSpec, Job]] = deque()
                    with Workers(name_and_encode, self.jobs) as workers:
                        for spec in specs:
                            span = staged.take(spec.offset, spec.length)
                            pending.append((spec, workers.submit(spec)))
                            digest.update(span.view)
                            span.release()
                            if progress:
                                progress(spec.length)
                            while pending and (len(pending) >= _WINDOW or pending[0][1].done()):
                                keep(*pending.popleft())
                        while pending:
                            keep(*pending.popleft())
                    size = sum(c[1] for c in chunks)
                    if os.fstat(fd).st_size != size or os.fstat(out).st_size != size:
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
            self.write_recipe(Recipe(md5, size, chunking, chunks), vouch=True)
        return md5, size, stats

    def _parent_chunks(
        self, parent_md5: str | None
    ) -> tuple[dict[str, tuple[int, int, str]], bool]:
        """key -> (offset, length, id) of the parent version's chunks (the deltas' bases),
        and whether the parent's recipe is vouched for."""
        parent: dict[str, tuple[int, int, str]] = {}
        found = self._vouched_recipe(parent_md5) if parent_md5 else None
        if found is None:
            return parent, False
        recipe, vouched = found
        at = 0
        for key, length, cid in recipe.chunks:
            parent[key] = (at, length, cid)
            at += length
        return parent, vouched

    def _delta_from_object(self, raw: Buffer, parent: tuple[int, int, str], pfd: int) -> Any:
        """raw XOR the parent object's bytes of the same key (a view of a buffer this
        thread reuses), or None when the object is shorter than its recipe says."""
        from gitmodel.dedup.codec import xor
        from gitmodel.dedup.staging import map_span

        base = map_span(pfd, parent[0], parent[1])
        if base is None:
            return None
        try:
            return xor(raw, base.view, scratch=True)
        finally:
            base.release()

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
        # skipped when a recipe vouched for is there; another (from a remote, or one a
        # clone committed) may list other bytes: write_recipe replaces it if it does
        found = self._vouched_recipe(md5)
        if found is not None and found[1] and self.can_rebuild(md5):
            return stats, None
        chunking, specs = plan_chunks(path)
        stats.chunks = len(specs)
        parent, vouched = self._parent_chunks(parent_md5 if parent_md5 != md5 else None)
        # a base read from the parent object is its recipe's chunk only if the recipe is
        # vouched for; else it is checked against the chunk's name
        trusted = parent_trusted and vouched
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
                return cid, self._encode(raw, spec, parent.get(spec.key), pfd, trusted)

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
        delta: Buffer | None = None,
    ) -> tuple[str | None, int, bytes]:
        """(base id or None, delta depth, payload) for raw: the XOR delta against the
        parent's chunk of the same key when that is smaller. delta: that XOR, already made
        against the parent object's bytes where its recipe is vouched for."""
        from gitmodel.dedup.codec import encode, xor
        from gitmodel.dedup.staging import map_span

        best: tuple[str | None, int, bytes] | None = None
        info = self.packs.index.get(parent[2]) if parent else None
        if parent and info is not None and info.raw_len == len(raw) and info.depth < MAX_DEPTH:
            if delta is None:
                base: Any = None
                span = map_span(pfd, parent[0], parent[1]) if pfd >= 0 else None
                try:
                    # An object the store wrote or verified since it last changed, whose
                    # recipe is vouched for, is trusted to hold that recipe's chunks; any
                    # other base is checked against its name (a recipe from a remote may
                    # name chunks that are not the object's: a delta against bytes other
                    # than its base's would never decode).
                    if span is not None and (trusted or chunk_id(span.view) == info.id):
                        delta = xor(raw, span.view, scratch=True)
                finally:
                    if span is not None:
                        span.release()
                if delta is None:
                    # A base is read from the parent's whole object when the cache still
                    # has it (a map and maybe a sha256) rather than decoded from its pack
                    # (zstd, planes, its own chain).
                    try:
                        base = self.packs.read(info.id)
                    except CorruptChunk:
                        base = None
                    if base is not None:
                        delta = xor(raw, base, scratch=True)
            if delta is not None:
                best = (info.id, info.depth + 1, encode(delta, spec.width))
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
            got = self._recipe_as_read(md5)
            if got is None:
                self.read_recipe(md5)  # says why (no recipe, a bad one)
                raise GitModelError(f"no recipe for {md5}")  # pragma: no cover - raced
            recipe, st = got
            rebuild_object(store, self.packs, recipe, self.jobs, progress, dest)
            # it made the bytes of the pointer's md5 (rebuild_object returns only then):
            # the recipe, as read, lists that object's own chunks, so a later version
            # added over it (the add right after a pull) names unchanged chunks from it
            if not self._is_vouched(md5, st):
                self.vouch_recipe(md5, st)


def _is_zero(buf: Buffer) -> bool:
    import numpy as np

    dtype = np.uint64 if len(buf) % 8 == 0 else np.uint8
    words = np.frombuffer(buf, dtype=dtype)
    # a changed chunk (every chunk of a full fine-tune) shows it in its first bytes; then
    # count_nonzero: 1.4 ms per 16 MiB of uint64, any() 1.7 (it casts to bool first)
    return not np.count_nonzero(words[:512]) and not np.count_nonzero(words)


def _preload_codec() -> None:
    """Import numpy and zstandard on a thread of their own (most of it on the other core
    while this one copies and hashes the first chunks), once per process."""
    global _preloaded
    if _preloaded:
        return
    _preloaded = True

    def load() -> None:
        from gitmodel.dedup.codec import import_numpy

        try:
            import_numpy()  # OpenBLAS held to one thread (its spin would take a core)
            import zstandard  # noqa: F401
        except ImportError:  # pragma: no cover - reported where they are needed
            pass

    threading.Thread(target=load, daemon=True).start()


_preloaded = False


def _read_all(fd: int, size: int) -> bytes:
    parts, got = [], 0
    while got < size and (part := os.pread(fd, size - got, got)):
        parts.append(part)
        got += len(part)
    return b"".join(parts)


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
