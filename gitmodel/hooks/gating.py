"""The hooks that can refuse: `git tag` (reference-transaction), `git push` (pre-push, and
its pre-commit framework twin) and the server (pre-receive, in gitmodel.hooks.receive).

Each hands the tags it would create to gitmodel.hooks.doors.judge_refs and writes what
the door reports; pre-push then uploads the weights and publishes the notes of what it
pushes. Imports stay light: these run inside git operations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitmodel.hooks.stream import nonzero, say

# typing is not imported at run time (see gitmodel.hooks).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, NamedTuple

    from gitmodel.store import Reporter


# -- reference-transaction -----------------------------------------------------------------


def reference_transaction(args: Sequence[str], stdin: IO[str]) -> int:
    """Refuse `git tag` of a release that fails the gate (the shim sends only tag lines)."""
    from gitmodel.config import ConfigError
    from gitmodel.versions import is_release

    if args and args[0] == "committed":
        # The shim hands over only a HEAD that a rebase or `git am` moved to other pointers.
        from gitmodel.hooks.recording import materialise

        return materialise(args, stdin)
    if not args or args[0] != "prepared":
        return 0
    candidates = []
    for line in stdin.read().splitlines():
        parts = line.split()
        if len(parts) == 2 and nonzero(parts[0]) and parts[1].startswith("refs/tags/"):
            candidates.append((parts[0], parts[1][len("refs/tags/") :]))
    root = Path.cwd()
    from gitmodel.hooks.doors import TAG_DOOR, door_gate, judge_refs

    try:
        gate = door_gate(root)
    except ConfigError as exc:
        # A broken policy cannot judge; refuse only what looks like a release under the default.
        if any(is_release(name, "v*") for _, name in candidates):
            say(f"gitmodel: cannot judge the release tag: {exc.message}")
            return 1
        return 0
    if gate is None:
        return 0
    return _refuse(TAG_DOOR, judge_refs(gate, candidates))


def _refuse(door: Any, judgement: Any) -> int:
    """Show a door's verdicts and, when it refuses, why: 1 refused, 0 let through."""
    for line in door.report(judgement):
        say(line)
    return 1 if judgement.refused else 0


# -- pre-push ------------------------------------------------------------------------------


if TYPE_CHECKING:

    class _PushFields(NamedTuple):
        local_ref: str
        local_sha: str
        remote_ref: str
        remote_sha: str

else:
    from collections import namedtuple

    _PushFields = namedtuple("_PushFields", "local_ref local_sha remote_ref remote_sha")


class PushUpdate(_PushFields):
    """One line of pre-push input."""

    __slots__ = ()

    @property
    def deletes(self) -> bool:
        return not nonzero(self.local_sha)


def parse_push_updates(text: str) -> list[PushUpdate]:
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            updates.append(PushUpdate(*parts))
    return updates


def gate_push(root: Path, updates: Sequence[PushUpdate]) -> int:
    """Refuse (1) when a release tag being pushed fails the gate; 0 otherwise."""
    tag_updates = [u for u in updates if u.remote_ref.startswith("refs/tags/") and not u.deletes]
    if not tag_updates:
        return 0  # before any import: most pushes carry no tag
    from gitmodel.hooks.doors import PUSH_DOOR, door_gate, judge_refs

    gate = door_gate(root)
    if gate is None:
        return 0
    pushed = [(u.local_sha, u.remote_ref[len("refs/tags/") :]) for u in tag_updates]
    return _refuse(PUSH_DOOR, judge_refs(gate, pushed))


def pre_push(args: Sequence[str], stdin: IO[str], reporter: Reporter | None = None) -> int:
    """reporter: draws the upload's progress (the dispatcher hands in the terminal's)."""
    remote_name = args[0] if args else ""
    remote_url = args[1] if len(args) > 1 else remote_name
    updates = parse_push_updates(stdin.read())
    root = Path.cwd()
    code = gate_push(root, updates)
    if code:
        return code
    # Then the weights go up and the notes out (no dvc import when nothing is to upload).
    return _publish(root, remote_name, remote_url, updates, reporter)


def _publish(
    root: Path,
    remote_name: str,
    remote_url: str,
    updates: Sequence[PushUpdate],
    reporter: Reporter | None,
) -> int:
    from gitmodel.hooks.doors import publish

    for line in publish(root, remote_name, remote_url, updates, reporter):
        say(line)
    return 0


def framework_pre_push(
    args: Sequence[str], stdin: IO[str], reporter: Reporter | None = None
) -> int:
    """pre-push under the pre-commit framework.

    The framework runs its pre-push hooks only when the push sends new commits, and
    hands them one ref (PRE_COMMIT_* variables) instead of git's stdin. So this door asks
    the remote which tags it lacks and gates every local release tag the push can
    publish: the ref it names, and each tag on a commit the push sends (what `git push
    REMOTE main v1.1.0` and `--follow-tags` publish). Then, as the native hook, the
    weights go up and the notes out. A push of a tag whose commit the remote already has
    runs no framework hook at all: only `git model install`'s hook and the server see it.
    """
    env = os.environ
    local_sha = env.get("PRE_COMMIT_TO_REF", "")
    local_ref = env.get("PRE_COMMIT_LOCAL_BRANCH", "")
    if not nonzero(local_sha) and local_ref:
        # A push of a whole history (its root commit too) comes without from/to refs.
        from gitmodel.git import run_git

        proc = run_git(["rev-parse", "--verify", "--quiet", local_ref], check=False)
        local_sha = proc.stdout.strip()
    if not nonzero(local_sha):
        return 0
    remote = env.get("PRE_COMMIT_REMOTE_NAME", "")
    url = env.get("PRE_COMMIT_REMOTE_URL", "") or remote
    zero = "0" * len(local_sha)
    from_sha = env.get("PRE_COMMIT_FROM_REF", "")
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH", "")
    root = Path.cwd()
    updates = [
        PushUpdate(
            local_ref,
            local_sha,
            remote_ref,
            from_sha if nonzero(from_sha) else zero,
        )
    ]
    for name, sha in _publishable_tags(root, remote or url, local_sha, from_sha):
        if f"refs/tags/{name}" != remote_ref:
            updates.append(PushUpdate(f"refs/tags/{name}", sha, f"refs/tags/{name}", zero))
    code = gate_push(root, updates)
    if code and len(updates) > 1:
        say(
            "gitmodel: under the pre-commit framework every release tag on a commit this push "
            "sends is judged (the framework does not say which refs git pushes): delete the "
            "tag, or release it with git model release --allow-regression REASON"
        )
    if code or not (remote or url):
        return code
    return _publish(root, remote or url, url, updates, reporter)


def _publishable_tags(root: Path, remote: str, to: str, since: str) -> list[tuple[str, str]]:
    """(name, object) of the local tags on the commits `to` brings (not `since`, not the
    remote's) that the remote lacks; when the remote cannot be asked, every such tag."""
    from gitmodel.git import run_git

    exclude = [f"^{since}"] if nonzero(since) else [f"--remotes={remote}"] if remote else []
    proc = run_git(["rev-list", to, "--not", *exclude], cwd=root, check=False)
    sent = set(proc.stdout.split()) if proc.returncode == 0 else set()
    listing = run_git(
        ["for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)", "refs/tags"],
        cwd=root,
        check=False,
    ).stdout.splitlines()
    found = []
    for line in listing:
        parts = line.split()
        if len(parts) >= 2 and (parts[-1] in sent or parts[1] in sent):
            found.append((parts[0], parts[1]))
    if not found or not remote:
        return found
    asked = run_git(
        ["ls-remote", "--tags", "--refs", remote],
        cwd=root,
        check=False,
        env={"GIT_TERMINAL_PROMPT": "0"},
    )
    if asked.returncode != 0:
        return found
    theirs = {
        ln.split("\t", 1)[1][len("refs/tags/") :] for ln in asked.stdout.splitlines() if "\t" in ln
    }
    return [(name, sha) for name, sha in found if name not in theirs]


# -- pre-receive (server) --------------------------------------------------------------------


def pre_receive(args: Sequence[str], stdin: IO[str]) -> int:
    """The server's door: see gitmodel.hooks.receive."""
    from gitmodel.hooks.receive import pre_receive as receive

    return receive(args, stdin)
