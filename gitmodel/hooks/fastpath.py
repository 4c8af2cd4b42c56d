"""What the shims may know of the policy without reading it: a cache that Python writes.

Shims decide only from what git hands them (arguments, stdin, ref names). Two of their
filters need values derived from the policy: the release globs (reference-transaction: can
this tag be a release?) and the metrics files (post-commit: did this commit change one?).
Python writes them to `<git dir>/gitmodel/hook-cache` as shell assignments, and sets the
cache's modification time to the policy file's. A shim uses the cache only while the same
policy file is there with exactly that time (`-nt`/`-ot` in shell, nanoseconds); an edit,
a checkout, a new or a deleted policy file make it stale, and the shim then runs Python,
which judges from the policy itself and writes the cache again.

The values are a superset: the globs and files of both the committed and the work tree's
policy, so that the filter never skips what either would judge.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from gitmodel.config import Config

CACHE = Path("gitmodel") / "hook-cache"
SOURCES = (".gitmodel.toml", "pyproject.toml")  # in the order load_config reads them


def cache_path(root: Path) -> Path | None:
    # A main work tree's .git directory is its git dir (what the shims assume too): no
    # git process for the common case; a linked worktree, a submodule or GIT_DIR asks git.
    if "GIT_DIR" not in os.environ and (root / ".git").is_dir():
        return root / ".git" / CACHE
    from gitmodel.git import run_git

    proc = run_git(["rev-parse", "--absolute-git-dir"], cwd=root, check=False)
    git_dir = proc.stdout.strip()
    return Path(git_dir) / CACHE if proc.returncode == 0 and git_dir else None


def policy_stamp(root: Path) -> tuple[str, int]:
    """(policy file, its mtime in ns), taken BEFORE the policy is read: a cache stamped
    with a time read afterwards could mark an edit made in between as seen."""
    for name in SOURCES:
        try:
            return name, (root / name).stat().st_mtime_ns
        except OSError:
            continue
    return "", 0


def write_cache(root: Path, configs: Sequence[Config | None], stamp: tuple[str, int]) -> None:
    """Write the shims' cache for the policies that judge (never fails a hook)."""
    try:
        path = cache_path(root)
        if path is None:
            return
        source, mtime = stamp
        present = [c for c in configs if c is not None]
        globs = list(dict.fromkeys(c.release_tags for c in present))
        files = list(dict.fromkeys(f for c in present for f in c.metrics_files))
        text = (
            "# gitmodel hook cache, written by Python from the policy; stale when the policy"
            " file changes\n"
            f"gm_source={shlex.quote(source)}\n"
            f"gm_globs={shlex.quote(chr(10).join(globs))}\n"
            f"gm_files={shlex.quote(chr(10).join(files))}\n"
        )
        if _current(path, text, mtime if source else None):
            return  # every gated command would otherwise rewrite the same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        if source:
            os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, path)
    except OSError:
        return  # the shims then keep asking Python: slower, never wrong


def _current(path: Path, text: str, mtime: int | None) -> bool:
    """Whether the cache at path already holds text, stamped with mtime (None: any)."""
    try:
        if mtime is not None and path.stat().st_mtime_ns != mtime:
            return False
        return path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def prime_cache(root: Path) -> None:
    """Write the cache for the policy as it is now (install and init do), so that the
    first hooked command after them decides in shell instead of starting Python. A policy
    that does not parse is left to the doors, which say why."""
    from gitmodel.errors import GitModelError
    from gitmodel.policy import door_policy

    stamp = policy_stamp(root)
    try:
        policy = door_policy(root)
    except GitModelError:
        return
    write_cache(root, [policy.config, policy.worktree], stamp)
