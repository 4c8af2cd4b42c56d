"""The objects of one revision's DVC remote (and, for the enclosing repository, its cache):
fetched into a temporary file, md5-verified, then renamed into place; `.dir` manifests
read through the store's one manifest check (gitmodel.store.parse_manifest).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.consume.records import CorruptDownload, GetError
from gitmodel.consume.revision import Tree
from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    from gitmodel.pointer import Out


# -- the DVC remote of the revision --------------------------------------------------------


class Objects:
    """Objects of one revision's DVC remote (and, for the enclosing repository, its cache)."""

    def __init__(
        self,
        tree: Tree,
        workdir: Path,
        remote: str | None,
        local_dvc_dir: Path | None,
        store: Any = None,
    ) -> None:
        self.tree = tree
        self.workdir = workdir
        self.remote_name = remote
        self.local_dvc_dir = local_dvc_dir
        self.store = store
        self._odb: Any = None
        self.name: str | None = None
        self.from_cache = 0
        self.jobs = 4
        self.fallback: Callable[[], Tree | None] | None = None
        self.config_from = "revision"

    def _open(self, wanted: str | None) -> Any:
        if self._odb is not None:
            return self._odb
        from dvc.fs import get_cloud_fs
        from dvc_data.hashfile.db import get_odb

        conf = self._config(self.tree, "revision")
        name = self.remote_name or wanted or conf["core"].get("remote")
        if (not name or name not in conf["remote"]) and self.fallback is not None:
            # A project that added its remote after this release: the weights were pushed
            # to the remote the repository's HEAD names (the md5 check still decides).
            head = self.fallback()
            if head is not None and head.commit != self.tree.commit:
                conf = self._config(head, "HEAD")
                name = self.remote_name or wanted or conf["core"].get("remote")
                self.config_from = f"HEAD ({head.commit[:12]})"
        if not name:
            raise GetError(
                f"revision {self.tree.commit[:12]} configures no default DVC remote "
                "(give one with --remote NAME)"
            )
        if name not in conf["remote"]:
            raise GetError(f"revision {self.tree.commit[:12]} has no DVC remote named {name!r}")
        try:
            cls, config, fs_path = get_cloud_fs(conf, name=name)
            if config.get("worktree") or config.get("version_aware"):
                raise GetError(f"DVC remote {name!r} is version-aware; gitmodel needs a plain one")
            fs = cls(**config)
            self._odb = get_odb(fs, fs.join(fs_path, "files", "md5"), hash_name="md5")
            self.jobs = max(1, min(8, int(getattr(fs, "jobs", 0) or 4)))
        except GitModelError:
            raise
        except Exception as exc:  # a missing plugin, a bad option: DVC raises many types
            raise GetError(f"DVC remote {name!r}: {one_line(exc)}") from None
        self.name = name
        return self._odb

    def _config(self, tree: Tree, what: str) -> Any:
        """DVC's merged config (system, global, the tree's `.dvc/config`, our local one)."""
        from dvc.config import Config, ConfigError

        dvc_dir = self.workdir / f"dvc-{tree.commit[:12]}"
        dvc_dir.mkdir(exist_ok=True)
        (dvc_dir / "config").write_bytes(tree.blob(".dvc/config") or b"")
        try:
            return Config(
                dvc_dir=str(dvc_dir),
                local_dvc_dir=str(self.local_dvc_dir) if self.local_dvc_dir else str(dvc_dir),
            )
        except ConfigError as exc:
            raise GetError(
                f"the DVC config at {what} {tree.commit[:12]}: {str(exc).splitlines()[0]}"
            ) from None

    def fetch(
        self,
        oid: str,
        dest: Path,
        size: int | None,
        wanted: str | None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write object oid to dest, verified; the number of bytes written."""
        from gitmodel.store import hash_file

        if self.store is not None and self.store.exists(oid):
            try:
                self.store.verify(oid)
                shutil.copyfile(self.store.oid_to_path(oid), dest)
                os.chmod(dest, 0o644)
                got = hash_file(dest) + (".dir" if oid.endswith(".dir") else "")
                if got == oid:
                    self.from_cache += 1
                    if progress:
                        progress(dest.stat().st_size)
                    return dest.stat().st_size
            except (GitModelError, OSError):
                pass  # a bad cache object: the remote has the right one
        odb = self._open(wanted)
        if not oid.endswith(".dir") and self._fetch_chunked(oid, dest, odb):
            return dest.stat().st_size
        try:
            odb.fs.get_file(odb.oid_to_path(oid), str(dest), callback=_callback(progress))
        except FileNotFoundError:
            raise GetError(
                f"object {oid} is not on DVC remote {self.name!r} (was it pushed?)"
            ) from None
        except GitModelError:
            raise
        except Exception as exc:
            raise GetError(
                f"cannot download {oid} from DVC remote {self.name!r}: {one_line(exc)}"
            ) from None
        got = hash_file(dest) + (".dir" if oid.endswith(".dir") else "")
        actual_size = dest.stat().st_size
        if got != oid or (size is not None and size >= 0 and actual_size != size):
            dest.unlink(missing_ok=True)
            raise CorruptDownload(
                f"corrupt download from DVC remote {self.name!r}: object {oid} hashes to "
                f"{got} ({actual_size} bytes); nothing was written"
            )
        return actual_size

    def _fetch_chunked(self, oid: str, dest: Path, odb: Any) -> bool:
        """Rebuild a deduplicated output (gitmodel.dedup) from the local chunk store or from
        the remote's packs, into a temporary chunk store; False if it is not stored so."""
        from gitmodel.dedup.chunkstore import ChunkStore, open_chunk_store
        from gitmodel.dedup.transfer import in_use, pull_chunks_into

        if self.store is not None and in_use(self.store):
            cs = open_chunk_store(self.store)
            if cs.can_rebuild(oid):
                self._rebuild(cs, oid, dest)
                self.from_cache += 1
                return True
        remote = _ChunkRemote(odb, self.name or "", self.jobs)
        cs = ChunkStore(self.workdir / "chunks")
        got, _ = pull_chunks_into(cs, remote, [oid])
        if oid not in got:
            return False
        self._rebuild(cs, oid, dest)
        return True

    def _rebuild(self, cs: Any, oid: str, dest: Path) -> None:
        # read as well as written: the rebuild's md5 reads the written bytes back
        fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            cs.rebuild_to(oid, fd)  # every chunk and the whole md5 checked
        except BaseException:
            os.close(fd)
            dest.unlink(missing_ok=True)
            raise
        os.close(fd)


class _ChunkRemote:
    """What gitmodel.dedup.transfer needs of a remote, from this module's object db."""

    atomic = True  # only read from here

    def __init__(self, odb: Any, name: str, jobs: int) -> None:
        self.odb, self.fs, self.name, self.jobs = odb, odb.fs, name, jobs
        self.url = str(odb.path)


def _callback(progress: Callable[[int], None] | None) -> Any:
    """An fsspec callback that hands byte deltas to progress (fsspec reports totals)."""
    from fsspec.callbacks import Callback, NoOpCallback

    if progress is None:
        return NoOpCallback()
    report = progress

    class Bytes(Callback):
        seen = 0

        def call(self, *args: Any, **kwargs: Any) -> None:
            value = int(self.value or 0)
            if value > self.seen:
                report(value - self.seen)
                self.seen = value

    return Bytes()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def manifest_entries(objects: Objects, out: Out, tmp: Path, wanted: str | None) -> list[Any]:
    """The verified, validated entries of a directory output's `.dir` manifest (the
    store's one manifest check, gitmodel.store.parse_manifest)."""
    from gitmodel.store import StoreError, parse_manifest

    path = tmp / f"manifest.{os.urandom(4).hex()}"
    objects.fetch(out.md5, path, None, wanted)
    try:
        return parse_manifest(path.read_bytes(), out.md5)
    except StoreError as exc:
        raise GetError(exc.message) from None
    finally:
        path.unlink(missing_ok=True)
