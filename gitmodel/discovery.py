"""Finding the repository to work on: its work tree root, git dirs and hooks directory.

As git itself does: from a directory, or from GIT_DIR and GIT_WORK_TREE when `git model`
is run as `git --git-dir=... --work-tree=... model` (or with them set).
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.git import run_git


def _git_says(stderr: str) -> str:
    """git's own reason (dubious ownership, a bad GIT_DIR) as one line, with its hint."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    fatal = next((line for line in lines if line.startswith("fatal: ")), "")
    if "dubious ownership" in fatal:
        hint = next(
            (line for line in lines if "safe.directory" in line and "git config" in line), ""
        )
        return fatal.removeprefix("fatal: ") + (f" (to trust it: {hint})" if hint else "")
    if fatal and "not a git repository" not in fatal:
        return fatal.removeprefix("fatal: ")
    return "not a git repository (run `git init` first)"


def _repository_env() -> dict[str, str]:
    """GIT_DIR and GIT_WORK_TREE as `git --git-dir/--work-tree` (or the user) set them for
    `git model`, made absolute: they name the repository to work on."""
    env = {}
    for key in ("GIT_DIR", "GIT_WORK_TREE"):
        value = os.environ.get(key)
        if value:
            env[key] = os.path.abspath(value)
    return env


def discover(path: str | os.PathLike[str] = ".") -> tuple[Path | None, Path, Path, Path]:
    """(work tree root or None if bare, git dir, common git dir, hooks dir) at path.

    The hooks dir is where git runs hooks from (core.hooksPath respected): commands check
    that ours are there, and it costs nothing in the same git call.

    Called with the default ".", the repository is the one git was told to use: GIT_DIR and
    GIT_WORK_TREE (what `git --git-dir=... --work-tree=...` and `git -C` hand to `git model`)
    are honoured, as every git command does.
    """
    if not os.path.isdir(path):
        raise GitModelError(f"{path}: no such directory")
    env = _repository_env() if os.fspath(path) == "." else {}
    # One git process in the common case (a work tree); it is on every command's path.
    both = run_git(
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--git-path",
            "hooks",
            "--show-toplevel",
        ],
        cwd=path,
        check=False,
        env=env,
    )
    lines = both.stdout.splitlines()
    if both.returncode == 0 and len(lines) == 4 and lines[3]:
        found = Path(lines[3]), Path(lines[0]), Path(lines[1])
        if env:
            _check_rediscoverable(*found)
        return (*found, Path(lines[2]))
    proc = run_git(
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--git-path",
            "hooks",
            "--is-bare-repository",
        ],
        cwd=path,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise GitModelError(_git_says(proc.stderr or both.stderr))
    git_dir, common_dir, hooks, bare = proc.stdout.splitlines()[:4]
    if bare == "true":
        if env:
            _check_rediscoverable(None, Path(git_dir), Path(common_dir))
        return None, Path(git_dir), Path(common_dir), Path(hooks)
    top = run_git(["rev-parse", "--show-toplevel"], cwd=path, check=False, env=env)
    if top.returncode != 0 or not top.stdout.strip():
        raise GitModelError("not inside a git work tree")
    found = Path(top.stdout.strip()), Path(git_dir), Path(common_dir)
    if env:
        _check_rediscoverable(*found)
    return (*found, Path(hooks))


def _check_rediscoverable(root: Path | None, git_dir: Path, common_dir: Path) -> None:
    """gitmodel runs git in the work tree's root (or the bare repository) without GIT_DIR,
    so that root must lead git to the same repository; say so instead of using another."""
    where = root if root is not None else git_dir
    proc = run_git(["rev-parse", "--path-format=absolute", "--git-dir"], cwd=where, check=False)
    seen = proc.stdout.strip()
    if proc.returncode != 0 or os.path.realpath(seen) != os.path.realpath(git_dir):
        raise GitModelError(
            f"git directory {git_dir} is not the one its work tree {where} leads to; "
            "gitmodel needs the work tree's own .git (a file or directory)"
        )
