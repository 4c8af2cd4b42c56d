"""Which policy judges a release: the committed one, and what differs from it.

The server judges with the policy committed on its default branch, so the local doors
judge with the policy committed at HEAD too (the work tree's when none is committed yet),
and say in one line when the work tree's policy differs: a gate added but not committed
would refuse here and pass there. A verdict also says when the policy that judges it
differs from the one committed with the previous release (a gate removed or loosened).

Reads go through git plumbing with replace objects off (gitmodel.git.TRUTH_ENV).
"""

from __future__ import annotations

from pathlib import Path

from gitmodel.config import CONFIG_FILE, Config, GateRule, load_config, parse_config_text
from gitmodel.git import TRUTH_ENV, run_git

TYPE_CHECKING = False  # typing's import is not paid at run time: every door reads a policy
if TYPE_CHECKING:
    from typing import NamedTuple

    class DoorPolicy(NamedTuple):
        """The policy a local door judges with, and the one line that says what differs."""

        config: Config | None  # None: no policy anywhere (the doors stay out of the way)
        difference: str | None
        worktree: Config | None

else:
    from collections import namedtuple

    DoorPolicy = namedtuple("DoorPolicy", "config difference worktree")


def committed_policy(root: Path, rev: str = "HEAD") -> Config | None:
    """The policy in rev's tree (.gitmodel.toml, else [tool.gitmodel]); None if it has none.

    A malformed committed policy raises ConfigError, as a malformed work-tree one does.
    """
    for name, pyproject in ((CONFIG_FILE, False), ("pyproject.toml", True)):
        proc = run_git(["cat-file", "blob", f"{rev}:{name}"], cwd=root, check=False, env=TRUTH_ENV)
        if proc.returncode == 0 and (not pyproject or "gitmodel" in proc.stdout):
            where = f"{name} at {rev}" if rev == "HEAD" else f"{name} at {rev[:12]}"
            return parse_config_text(proc.stdout, where, pyproject=pyproject)
    return None


def door_policy(root: Path) -> DoorPolicy:
    """The committed policy at HEAD if there is one, else the work tree's (if any)."""
    worktree = load_config(root)
    if worktree.source is None:
        worktree_or_none = None
    else:
        worktree_or_none = worktree
    committed = committed_policy(root)
    if committed is None:
        if worktree_or_none is None:
            return DoorPolicy(None, None, None)
        worktree.source = f"{worktree.source} (work tree, not committed)"
        return DoorPolicy(
            worktree,
            f"policy: {worktree.source.split(' (')[0]} is not committed; it judges here, "
            "but a server judges with the committed policy",
            worktree,
        )
    if worktree_or_none is None:
        return DoorPolicy(
            committed,
            f"policy: the work tree has no policy file; the committed one judges "
            f"({committed.source})",
            None,
        )
    if worktree.raw != committed.raw:
        change = policy_change(committed, worktree)
        return DoorPolicy(
            committed,
            f"policy: the work tree's {worktree.source} differs from the committed one "
            f"({change or 'other keys'}); the committed policy judges, as the server will",
            worktree,
        )
    return DoorPolicy(committed, None, worktree)


def _rule_text(rule: GateRule) -> dict[str, object]:
    keys = (
        "direction",
        "tolerance",
        "relative_tolerance",
        "significance",
        "minimum",
        "maximum",
    )
    return {k: getattr(rule, k, None) for k in keys}


def policy_change(old: Config, new: Config) -> str | None:
    """What the release gate does differently under new than under old, in one line."""
    parts: list[str] = []
    if old.release_tags != new.release_tags:
        parts.append(f"release.tags {old.release_tags!r} -> {new.release_tags!r}")
    if old.require_metrics != new.require_metrics:
        parts.append(f"require-metrics {old.require_metrics} -> {new.require_metrics}")
    if old.default_gates != new.default_gates:
        parts.append(f"gate.defaults {old.default_gates} -> {new.default_gates}")
    for name in sorted(set(old.gates) | set(new.gates)):
        a, b = old.gates.get(name), new.gates.get(name)
        if b is None:
            parts.append(f"gate {name} removed")
        elif a is None:
            parts.append(f"gate {name} added")
        else:
            ta, tb = _rule_text(a), _rule_text(b)
            for key in ta:
                if ta[key] != tb[key]:
                    parts.append(f"{name}.{key.replace('_', '-')} {ta[key]} -> {tb[key]}")
    return "; ".join(parts) or None
