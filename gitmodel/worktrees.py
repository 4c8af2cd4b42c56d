"""Linked git worktrees share one DVC cache, as they share git's object store.

`.dvc/cache` is git-ignored, so `git worktree add` would give each worktree an empty cache
of its own: weights committed there would live only in it, and `git worktree remove`
would delete them with the directory. Instead a linked worktree uses the main worktree's
cache (the same directory `git rev-parse --git-common-dir` leads to), and says so in its
own `.dvc/config.local` (`[cache] dir`, untracked and per worktree) so that the real
`dvc` run there agrees. Objects a worktree had already stored in a cache of its own are
moved into the shared one. A cache.dir the repository's own config sets is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmodel.errors import GitModelError

CACHE_SECTION = "cache"


def _configured_cache(dvc_dir: Path) -> Path | None:
    """The cache dir a DVC directory's config and config.local set, if any (one that
    cannot be read sets none: the linked worktree then shares the default cache)."""
    from gitmodel.config import read_dvc_config

    try:
        return read_dvc_config(dvc_dir, ("repo", "local"), mentioning=b"dir").path("cache", "dir")
    except GitModelError:
        return None


def main_cache(common_dir: Path) -> Path:
    """The cache every worktree of the repository whose common git dir this is shares."""
    common = Path(os.path.realpath(common_dir))
    if common.name == ".git":
        main_dvc = common.parent / ".dvc"
        return _configured_cache(main_dvc) or main_dvc / "cache"
    # A bare repository with linked worktrees has no main work tree: the cache lives with
    # the objects.
    return common / "gitmodel" / "dvc-cache"


def share_cache(dvc_dir: Path, common_dir: Path) -> Path:
    """Point a linked worktree at the shared cache (config.local) and return that cache."""
    import configparser

    from gitmodel.lockfile import update_file

    cache = main_cache(common_dir)
    if not dvc_dir.is_dir():
        return cache  # not a gitmodel/DVC work tree (yet): nothing to tell dvc

    def change(old: bytes | None) -> bytes | None:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string((old or b"").decode("utf-8"))
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise GitModelError(
                f"{dvc_dir / 'config.local'}: cannot parse ({str(exc).splitlines()[0]})"
            ) from None
        if parser.get(CACHE_SECTION, "dir", fallback=None):
            return None  # someone chose already
        text = (old or b"").decode("utf-8")
        if text and not text.endswith("\n"):
            text += "\n"
        if parser.has_section(CACHE_SECTION):
            # configparser would rewrite the whole file; add the one key under the section.
            head = f"[{CACHE_SECTION}]\n"
            at = text.index(head) + len(head) if head in text else len(text)
            return (text[:at] + f"    dir = {cache}\n" + text[at:]).encode()
        return (text + f"[{CACHE_SECTION}]\n    dir = {cache}\n").encode()

    update_file(dvc_dir / "config.local", change)
    _move_objects(dvc_dir / "cache", cache)
    return cache


def _move_objects(old_cache: Path, cache: Path) -> None:
    """Objects stored in the worktree's own cache before it shared one: into the shared one."""
    if not old_cache.is_dir() or os.path.realpath(old_cache) == os.path.realpath(cache):
        return
    for sub in (("files", "md5"), ("gitmodel", "attachments")):
        src_base = old_cache.joinpath(*sub)
        if not src_base.is_dir():
            continue
        for prefix in os.listdir(src_base):
            pdir = src_base / prefix
            if len(prefix) != 2 or not pdir.is_dir():
                continue
            for name in os.listdir(pdir):
                if name.endswith(".tmp"):
                    continue
                dest = cache.joinpath(*sub, prefix, name)
                try:
                    if not dest.exists():
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            os.replace(pdir / name, dest)
                            continue
                        except OSError:  # another file system: copy, then drop the original
                            import shutil

                            tmp = dest.with_name(f"{name}.{os.getpid()}.tmp")
                            shutil.copyfile(pdir / name, tmp)
                            os.chmod(tmp, 0o444)
                            os.replace(tmp, dest)
                    (pdir / name).unlink()
                except OSError:
                    continue  # left where it is: still readable by dvc there
