"""Install, chain and uninstall the hook shims beside every other hook installer.

Git runs one script per hook. Where another tool's script is already there, ours takes its
place and the other is kept beside it as `<hook>.kept-by-gitmodel.N` (N = 1, 2, ... in the
order they were found), which our shim runs first with the same arguments and input;
uninstall puts them back. Two installers follow other rules, and we follow theirs:

- pre-commit's script runs `<hook>.legacy` itself ("migration mode") and must stay where
  git runs it: moved aside, it finds itself as its own legacy hook and fails every push.
  So under pre-commit our shim is that `<hook>.legacy`; a user hook pre-commit had kept
  there is kept by us. (We never keep hooks as `.legacy` ourselves: a later
  `pre-commit install` moves our shim onto that name, and would overwrite what was there.)
- git-lfs and husky rewrite their hooks (`git lfs install --force`, every `npm install`),
  which removes ours; `missing()` makes every command that relies on a hook say so, and
  the next `git model install` keeps the rewritten hook as one more in the chain (a copy
  identical to one already kept is dropped, not run twice).

Imports stay light: `missing()` runs on status, commit and push.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gitmodel.errors import GitModelError

TYPE_CHECKING = False  # typing is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

MARKER = "gitmodel-hook-id: 5b1f0c7e"
LEGACY_SUFFIX = ".legacy"  # pre-commit's name for the hook its script runs first
KEPT_SUFFIX = ".kept-by-gitmodel."
CLIENT_HOOKS = (
    "reference-transaction",
    "pre-push",
    "post-commit",
    "post-rewrite",
    "post-checkout",
    "post-merge",
)
SERVER_HOOKS = ("pre-receive",)
TEMPLATES = Path(__file__).parent / "templates"
# Left by `git model uninstall` / `init --no-hooks` (in the common git dir): hooks are off
# on purpose, so commands do not ask for them.
NO_HOOKS_FILE = "gitmodel/no-hooks"

# pre-commit identifies its scripts by these (pre_commit/commands/install_uninstall.py).
PRE_COMMIT_HASHES = (
    b"138fd403232d2ddd5efb44317e38bf03",
    b"4d9958c90bc262f47553e2c073f14cfe",
    b"d8ee923c46731b42cd95cc869add4062",
    b"49fd668cb42069aa1b6048464be5d395",
    b"79f09a650522a87b0da915d0d983b2de",
    b"e358c9dae00eac5d06b38dfdb1e33a8c",
)


class HookPlace:
    """What the installer needs of a repository: where git runs its hooks, and from where."""

    __slots__ = ("root", "hooks", "common_dir", "bare")

    def __init__(self, root: Path, hooks: Path | None, common_dir: Path, bare: bool) -> None:
        self.root = root
        self.hooks = hooks  # None: ask git
        self.common_dir = common_dir
        self.bare = bare

    @classmethod
    def of(cls, repo: Any) -> HookPlace:
        """The place of a gitmodel.repo.Repo (taken by its attributes, not imported)."""
        return cls(repo.root, getattr(repo, "hooks_path", None), repo.common_dir, repo.bare)


class InstallReport:
    __slots__ = ("lines", "declined")

    def __init__(self, lines: list[str], declined: list[str]) -> None:
        self.lines = lines
        self.declined = declined  # hooks left alone: `--force` would chain what is there


def hooks_dir(repo: HookPlace) -> Path:
    """Where git looks for hooks: core.hooksPath if set, else the common git dir's hooks/."""
    if repo.hooks is not None:
        return repo.hooks
    from gitmodel.git import run_git

    out = run_git(["rev-parse", "--path-format=absolute", "--git-path", "hooks"], cwd=repo.root)
    return Path(out.stdout.strip())


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def is_ours(path: Path) -> bool:
    return MARKER.encode() in _head(path)


def is_pre_commit(path: Path) -> bool:
    head = _head(path)
    return any(h in head for h in PRE_COMMIT_HASHES)


def runs_legacy(path: Path) -> bool:
    """A script that runs `<its name>.legacy` first, as pre-commit's does."""
    return is_pre_commit(path) or (not is_ours(path) and LEGACY_SUFFIX.encode() in _head(path))


def tool_of(path: Path) -> str:
    """Who probably wrote a hook that is not ours, for the messages."""
    head = _head(path)
    if any(h in head for h in PRE_COMMIT_HASHES):
        return "pre-commit"
    if b"git lfs " in head or b"git-lfs" in head:
        return "git-lfs"
    if b"husky" in head or b'/h"' in head:
        return "husky"
    return "another tool"


def render_shim(hook: str, python: str | None = None) -> str:
    import shlex

    header = (TEMPLATES / "shim.sh").read_text()
    body = (TEMPLATES / f"{hook}.sh").read_text()
    python = python or sys.executable
    return header.replace("@HOOK@", hook).replace("@PYTHON@", shlex.quote(python)) + body


def kept_hooks(directory: Path, hook: str) -> list[Path]:
    """The hooks kept beside ours, in the order our shim runs them."""
    found = []
    n = 1
    while os.path.lexists(directory / f"{hook}{KEPT_SUFFIX}{n}"):
        found.append(directory / f"{hook}{KEPT_SUFFIX}{n}")
        n += 1
    return found


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        if os.path.islink(a) or os.path.islink(b):
            return os.path.islink(a) and os.path.islink(b) and os.readlink(a) == os.readlink(b)
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _keep(directory: Path, hook: str, path: Path) -> str:
    """Move a foreign hook into the chain (or drop it when an identical copy is kept)."""
    kept = kept_hooks(directory, hook)
    for k in kept:
        if _same_bytes(k, path):
            path.unlink()
            return f"{path.name} is the same as {k.name}, which already runs before ours"
    target = directory / f"{hook}{KEPT_SUFFIX}{len(kept) + 1}"
    os.replace(path, target)
    return f"{_whose(target, path.name)} is kept as {target.name} and still runs first"


def _whose(path: Path, name: str) -> str:
    tool = tool_of(path)
    return f"{name} ({tool})" if tool != "another tool" else f"your {name}"


def _foreign(path: Path) -> bool:
    return os.path.lexists(path) and not is_ours(path)


def install(repo: HookPlace, server: bool | None = None, force: bool = False) -> InstallReport:
    """Install (or refresh) our hooks, chaining whatever is there. Returns report lines."""
    from gitmodel.lockfile import write_file

    if server is None:
        server = repo.bare
    if server and not repo.bare:
        raise GitModelError(
            "--server installs pre-receive into a bare repository; this one has a work tree"
        )
    if repo.bare and not server:
        raise GitModelError(
            "a bare repository gets the server hook: use `git model install --server`"
        )
    names = SERVER_HOOKS if server else CLIENT_HOOKS
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    declined: list[str] = []
    done: list[str] = []
    for hook in names:
        top = directory / hook
        legacy = directory / (hook + LEGACY_SUFFIX)
        notes: list[str] = []
        if is_ours(top) and _foreign(legacy):
            if runs_legacy(legacy):
                # An older gitmodel moved pre-commit's script aside (then every push
                # failed): put it back on top; ours becomes the .legacy it runs.
                os.replace(legacy, top)
                notes.append(f"{_whose(top, hook)} is back in place")
            else:
                notes.append(_keep(directory, hook, legacy))  # an older gitmodel's layout
        if _foreign(top) and runs_legacy(top):
            if _foreign(legacy):
                notes.append(_keep(directory, hook, legacy))
            write_file(legacy, render_shim(hook).encode(), mode=0o755)
            notes.append(f"{_whose(top, hook)} runs ours as {legacy.name}")
            lines.append(f"hook {hook}: " + "; ".join(notes))
            done.append(hook)
            continue
        if _foreign(top) and _foreign(legacy):
            # Nothing runs that .legacy today (the hook on top does not): chaining it would
            # start running it again, so only on request.
            if _same_bytes(top, legacy):
                legacy.unlink()
            elif not force:
                declined.append(hook)
                lines.append(
                    f"hook {hook}: left alone: {_whose(top, hook)} does not run "
                    f"{legacy.name}; `git model install --force` keeps both and runs them "
                    "before ours"
                )
                continue
            else:
                notes.append(_keep(directory, hook, legacy))
        if _foreign(top):
            notes.append(_keep(directory, hook, top))
        if is_ours(legacy):
            legacy.unlink()  # ours from when pre-commit ran it, now replaced by ours on top
        write_file(top, render_shim(hook).encode(), mode=0o755)
        done.append(hook)
        if notes:
            lines.append(f"hook {hook}: " + "; ".join(notes))
    if done:
        lines.insert(0, f"installed hooks in {_display(directory, repo)}: {', '.join(done)}")
    (repo.common_dir / NO_HOOKS_FILE).unlink(missing_ok=True)
    if not server:
        from gitmodel.hooks.fastpath import prime_cache

        prime_cache(repo.root)
    return InstallReport(lines, declined)


def uninstall(repo: HookPlace) -> list[str]:
    """Remove our hooks and put back what was there before. Returns report lines."""
    directory = hooks_dir(repo)
    lines: list[str] = []
    for hook in CLIENT_HOOKS + SERVER_HOOKS:
        top = directory / hook
        legacy = directory / (hook + LEGACY_SUFFIX)
        if is_ours(top):
            top.unlink()
            lines.append(f"removed hook {hook}")
        if is_ours(legacy):
            legacy.unlink()
            lines.append(f"removed hook {legacy.name} (your {hook} stays)")
        # The kept hooks go back newest first: on top if that is free, then as .legacy (what
        # pre-commit's script runs, and where a second hook was before `install --force`).
        slots = [s for s in (top, legacy) if not os.path.lexists(s)]
        for k in reversed(kept_hooks(directory, hook)):
            if not slots:
                lines.append(f"hook {hook}: {k.name} left in place (no free name to restore it)")
                continue
            os.replace(k, slots[0])
            lines.append(f"hook {hook}: restored your previous hook as {slots.pop(0).name}")
    marker = repo.common_dir / NO_HOOKS_FILE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("hooks removed by `git model uninstall`; `git model install` restores them\n")
    return lines or ["no gitmodel hooks were installed"]


def mark_no_hooks(repo: HookPlace) -> None:
    """`init --no-hooks`: the user runs without hooks on purpose; commands do not nag."""
    marker = repo.common_dir / NO_HOOKS_FILE
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("hooks declined by `git model init --no-hooks`\n")


def _runs_ours(directory: Path, hook: str) -> str | None:
    """None when git will run our shim for hook; else why not, in a few words."""
    top = directory / hook
    if not os.path.lexists(top):
        return "missing"
    if is_ours(top):
        return None if os.access(top, os.X_OK) else "not executable"
    legacy = directory / (hook + LEGACY_SUFFIX)
    if runs_legacy(top) and is_ours(legacy) and os.access(legacy, os.X_OK):
        return None if os.access(top, os.X_OK) else "not executable"
    return f"replaced by {tool_of(top)}"


def missing(repo: HookPlace) -> str | None:
    """One line when git will not run some of our hooks (and how to restore them), else None.

    Commands that rely on the hooks (commit, push, release, status, fsck) show it: a hook
    that git-lfs or husky rewrote, or a core.hooksPath set after install, is never silent.
    """
    if repo.bare or (repo.common_dir / NO_HOOKS_FILE).exists():
        return None  # a server's pre-receive is the admin's choice
    directory = hooks_dir(repo)
    names = SERVER_HOOKS if repo.bare else CLIENT_HOOKS
    why: dict[str, list[str]] = {}
    for hook in names:
        reason = _runs_ours(directory, hook)
        if reason is not None:
            why.setdefault(reason, []).append(hook)
    if not why:
        return None
    force = any(
        _foreign(directory / h)
        and not runs_legacy(directory / h)
        and _foreign(directory / (h + LEGACY_SUFFIX))
        and not _same_bytes(directory / h, directory / (h + LEGACY_SUFFIX))
        for h in names
    )
    detail = "; ".join(f"{', '.join(hooks)} {reason}" for reason, hooks in why.items())
    command = "git model install --server" if repo.bare else "git model install"
    if force:
        command += " --force"
    return (
        f"git will not run gitmodel's hooks in {_display(directory, repo)} ({detail}): "
        f"`{command}` restores them and keeps what is there"
    )


def _display(path: Path, repo: HookPlace) -> str:
    try:
        return str(path.relative_to(repo.root))
    except ValueError:
        return str(path)
