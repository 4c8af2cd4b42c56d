"""Which cache a repository's weights live in, and how they are linked into the work tree.

DVC's `cache.dir` and `cache.type`, at every DVC config level (gitmodel.config), else a
linked worktree's share of the main worktree's cache (gitmodel.worktrees), else
`.dvc/cache`; objects are flushed to disk exactly when git flushes its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gitmodel.config import read_dvc_config
from gitmodel.paths import WorkTree
from gitmodel.store import DEFAULT_LINK_TYPES, Store, git_fsyncs_loose_objects


def check_dvc_dir(wt: WorkTree) -> None:
    """`.dvc`, `.dvc/tmp` and the stat cache are ours: a clone that commits one of them
    as a link (`.dvc -> ~`) must not make us write the cache or its state through it."""
    wt.path(".dvc/tmp/gitmodel/state.db", ".dvc", allow_dvc=True)
    wt.path(".dvc/config", ".dvc/config", allow_dvc=True)  # read by DVC too: no link


def open_store(wt: WorkTree, root: Path, common_dir: Path | None) -> Store:
    """The cache of the work tree (or bare repository) at root.

    common_dir: the common git dir of a linked worktree, whose cache is the main
    worktree's unless DVC's config names one; None for a main worktree or bare repository.
    """
    check_dvc_dir(wt)
    dvc_dir = root / ".dvc"
    # DVC's settings at every level (system, global, repo, local), as DVC reads them; a
    # config that never says "cache" cannot set it: nothing is parsed.
    cfg = read_dvc_config(dvc_dir, mentioning=b"cache")
    configured = cfg.path("cache", "dir")
    cache_dir = configured or dvc_dir / "cache"
    raw = cfg.get("cache", "type")
    link_types: Sequence[str] = DEFAULT_LINK_TYPES
    if raw:
        link_types = [t.strip() for t in raw.strip("[]").replace("'", "").split(",") if t.strip()]
    if configured is None and common_dir is not None:
        from gitmodel.worktrees import share_cache

        cache_dir = share_cache(dvc_dir, common_dir)
    return Store(
        cache_dir,
        dvc_dir / "tmp" / "gitmodel" / "state.db",
        link_types,
        # Flush objects exactly when git would flush its own (core.fsync); asked only when
        # an object is written, so no-op commands pay nothing for it.
        fsync=lambda: git_fsyncs_loose_objects(root),
    )
