"""Content-addressed objects in a DVC 3 cache: copy-and-hash, links, the stat cache.

Objects live at ``<cache>/files/md5/<oid[:2]>/<oid[2:]>`` exactly as DVC 3 lays them out,
so real `dvc` commands read what we write and we read what `dvc add` wrote. Every write
goes to a temporary name in the cache's own `files/tmp` (the same filesystem) and is
`os.replace`d into place, so a crash never leaves a half-written object under an object
name.

The package's layers, each importing only those before it:
- errors: the expected failures; manifest: object ids, `.dir` entries, path checks;
- hashing: moving and hashing bytes (no Store);
- statcache: the SQLite stat cache and per-directory index;
- objects: ObjectStore, one object at a time (store, verify, materialise, re-use);
- dirs: Store, an ObjectStore that also stores and checks out tracked directories.
"""

from __future__ import annotations

from gitmodel.store.dirs import Store
from gitmodel.store.errors import CorruptObject, ObjectMissing, StoreError
from gitmodel.store.hashing import (
    CHUNK,
    COPY_WINDOW,
    DEFAULT_LINK_TYPES,
    LINK_TYPES,
    RING,
    SMALL,
    Progress,
    _copy,
    _copy_and_hash,
    _hash_and_copy,
    _read_small,
    _tmp_name,
    hash_file,
    parallel_map,
)
from gitmodel.store.manifest import (
    MAX_MANIFEST_ENTRIES,
    DirEntry,
    check_relpath,
    dir_manifest_bytes,
    is_oid,
    parse_manifest,
    walk_files,
)
from gitmodel.store.objects import ObjectStore
from gitmodel.store.statcache import FLUSH_ROWS, StatCache, TreeIndex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gitmodel.store.hashing import Reporter

__all__ = [
    "CHUNK",
    "COPY_WINDOW",
    "DEFAULT_LINK_TYPES",
    "FLUSH_ROWS",
    "LINK_TYPES",
    "MAX_MANIFEST_ENTRIES",
    "RING",
    "SMALL",
    "CorruptObject",
    "DirEntry",
    "ObjectMissing",
    "ObjectStore",
    "Progress",
    "Reporter",
    "StatCache",
    "Store",
    "StoreError",
    "TreeIndex",
    "_copy",
    "_copy_and_hash",
    "_hash_and_copy",
    "_read_small",
    "_tmp_name",
    "check_relpath",
    "dir_manifest_bytes",
    "hash_file",
    "is_oid",
    "parallel_map",
    "parse_manifest",
    "walk_files",
]
