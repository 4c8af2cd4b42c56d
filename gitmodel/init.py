"""`git model init`'s setup of a work tree, and whether a clone has had it.

The work tree becomes a valid DVC repository (what `dvc init` writes, byte for byte) with
a default policy, and the clone's git config shows, keeps and fetches the metrics notes.
(The hooks are installed by gitmodel.hooks.installer, called by the command.)
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmodel.cache import check_dvc_dir
from gitmodel.config import CONFIG_FILE, DEFAULT_CONFIG
from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.lockfile import write_file
from gitmodel.notes import NOTES_REF
from gitmodel.paths import WorkTree

# What `dvc init` writes, byte for byte, so the repository is a valid DVC repository.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
DVCIGNORE = (
    "# Add patterns of files dvc should ignore, which could improve\n"
    "# the performance. Learn more at\n"
    "# https://dvc.org/doc/user-guide/dvcignore\n"
)


def init(root: Path, wt: WorkTree) -> list[str]:
    """Make the work tree at root DVC-compatible and gitmodel-ready; return what was
    created (and staged). Idempotent."""
    created: list[str] = []
    check_dvc_dir(wt)
    dvc_dir = root / ".dvc"
    dvc_dir.mkdir(exist_ok=True)
    for rel, content in (
        (".dvc/.gitignore", DVC_GITIGNORE),
        (".dvc/config", ""),
        (".dvcignore", DVCIGNORE),
    ):
        path = root / rel
        if not os.path.lexists(path):
            write_file(path, content.encode())
            created.append(rel)
    (dvc_dir / "tmp").mkdir(exist_ok=True)
    cfg = root / CONFIG_FILE
    pyproject = root / "pyproject.toml"
    has_pyproject_cfg = pyproject.is_file() and "[tool.gitmodel" in pyproject.read_text(
        errors="replace"
    )
    if not cfg.exists() and not has_pyproject_cfg:
        write_file(cfg, DEFAULT_CONFIG.encode())
        created.append(CONFIG_FILE)
    for key in ("notes.displayRef", "notes.rewriteRef"):
        values = run_git(["config", "--get-all", key], cwd=root, check=False).stdout.split()
        if NOTES_REF not in values:
            run_git(["config", "--add", key, NOTES_REF], cwd=root)
    # Amend and rebase carry notes only when rewriteRef is set and the mode allows it.
    run_git(["config", "notes.rewriteMode", "concatenate"], cwd=root, check=False)
    # Plain `git fetch`/`git pull` bring each remote's notes (see gitmodel.notes_sync).
    from gitmodel.notes_sync import configure_fetch

    configure_fetch(root)
    if created:
        run_git(["add", "--", *created], cwd=root, retry_lock=True)
    return created


def is_initialised(root: Path, common_dir: Path) -> bool:
    """Whether `git model init` has run in this clone (see require_init)."""
    if not (root / ".dvc").is_dir():
        return False
    try:
        if NOTES_REF.encode() in (common_dir / "config").read_bytes():
            return True
    except OSError:
        pass
    refs = run_git(["config", "--get-all", "notes.displayRef"], cwd=root, check=False)
    return NOTES_REF in refs.stdout.split()  # set through an include, or globally


def require_init(root: Path, common_dir: Path) -> None:
    """Refuse to store or commit in a clone that `git model init` has not set up.

    Half a set-up is worse than none: without the hooks a plain `git tag` is not gated
    and `git push` uploads no weights, and nothing would say so. `init` sets
    notes.displayRef in this clone's config (a clone does not inherit it).
    """
    if not is_initialised(root, common_dir):
        raise GitModelError(
            "gitmodel is not set up in this clone: run `git model init` first "
            "(it installs the hooks that gate `git tag` and upload weights on `git push`)"
        )
