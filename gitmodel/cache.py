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
from gitmodel.store import DEFAULT_LINK_TYPES, Store


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


# git's core.fsync components (git 2.36+) and the words that name several of them.
_FSYNC_GROUPS = {
    "objects": {"loose-object", "pack"},
    "derived-metadata": {"pack-metadata", "commit-graph"},
    "committed": {"loose-object", "pack", "reference"},
    "added": {"loose-object", "pack", "reference", "index"},
    "all": {"loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference"},
}
_FSYNC_DEFAULT = {"pack", "pack-metadata", "commit-graph"}


def git_fsyncs_loose_objects(cwd: Path) -> bool:
    """Whether the repository's git config asks git to fsync its own loose objects.

    Git does not by default (`core.fsync` leaves out `loose-object`), nor does DVC; with
    `core.fsync=objects` (or `added`, `committed`, `all`, `loose-object`) or the older
    `core.fsyncObjectFiles=true`, weights get the same durability as git's objects.
    """
    from gitmodel.git import run_git

    proc = run_git(["config", "--get-regexp", r"^core\.fsync"], cwd=cwd, check=False)
    flush = False
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "core.fsyncobjectfiles":
            flush = flush or value.strip().lower() in ("true", "yes", "on", "1", "")
        elif key == "core.fsync":
            components = set(_FSYNC_DEFAULT)
            for word in (w.strip() for w in value.split(",")):
                if word == "none":
                    components = set()
                elif word.startswith("-"):
                    components -= _FSYNC_GROUPS.get(word[1:], {word[1:]})
                elif word:
                    components |= _FSYNC_GROUPS.get(word, {word})
            flush = flush or "loose-object" in components
    return flush
