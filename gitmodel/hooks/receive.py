"""The server's door (`pre-receive`): a push cannot get a regressing release in, nor lower
the bar that later releases are judged against.

Everything pushed is hostile. The previous releases come from the server's tags and notes
as they were accepted before this push (refs move only after this hook), read with
replace objects off. On top of the gate itself, a push is refused (one line each, naming
the ref) when it would

- push `refs/replace/*` (replace objects would change what the gate reads);
- delete or move a release tag (it is a baseline of the releases after it);
- delete `refs/notes/metrics`, or change, add or remove the metrics of a commit that a
  release tag points at (the note as accepted is what later candidates are compared with);
- remove the policy from the default branch (loosening it is allowed, and the verdicts
  of later releases say that the policy changed).

An admin who must do one of these (a release withdrawn for legal reasons, a note that was
wrong) sets a one-shot override with a reason in the bare repository,
`git config gitmodel.adminOverride "REASON"`; the next push that needs it is let through,
the override is recorded in `<git dir>/gitmodel/overrides.log` (one JSON line: when, who,
why, what) and removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from gitmodel.hooks.stream import is_oid, nonzero, say

if TYPE_CHECKING:
    from gitmodel.config import Config

OVERRIDE_KEY = "gitmodel.adminOverride"
OVERRIDE_LOG = Path("gitmodel") / "overrides.log"
ZERO = "0" * 40


class RefUpdate(NamedTuple):
    """One line of pre-receive input."""

    old: str
    new: str
    ref: str

    @property
    def creates(self) -> bool:
        return nonzero(self.new)

    @property
    def existed(self) -> bool:
        return nonzero(self.old)


def parse_updates(text: str) -> list[RefUpdate]:
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and is_oid(parts[0]) and is_oid(parts[1]):
            updates.append(RefUpdate(*parts))
    return updates


def _git(args: Sequence[str], root: Path) -> Any:
    from gitmodel.git import TRUTH_ENV, run_git

    return run_git(args, cwd=root, check=False, env=TRUTH_ENV)


def default_branch(root: Path) -> str | None:
    proc = _git(["symbolic-ref", "-q", "HEAD"], root)
    return proc.stdout.strip() or None


def has_policy(root: Path, commit: str) -> bool:
    """Whether commit's tree carries a gitmodel policy (.gitmodel.toml or [tool.gitmodel])."""
    from gitmodel.config import CONFIG_FILE

    if _git(["cat-file", "-e", f"{commit}:{CONFIG_FILE}"], root).returncode == 0:
        return True
    proc = _git(["cat-file", "blob", f"{commit}:pyproject.toml"], root)
    return proc.returncode == 0 and "tool.gitmodel" in proc.stdout


def gate_view(note: dict[str, Any] | None) -> str:
    """What the gate reads from a release's note, as text to compare: metrics, per-model
    metrics, and the stored predictions the noise-aware rule uses."""
    if note is None:
        return ""
    keys = ("metrics", "models", "predictions")
    return json.dumps({k: note.get(k) for k in keys}, sort_keys=True)


def lowering_the_bar(
    root: Path,
    updates: Sequence[RefUpdate],
    release_glob: str,
    accepted: Any,
    incoming: Any,
    pinned: bool,
) -> list[str]:
    """Why this push would change what later releases are judged against (empty: it does not)."""
    from gitmodel.notes import NOTES_REF, NoteError
    from gitmodel.releases import list_release_tags, peel_commit

    problems: list[str] = []
    releases = {t.name: t for t in list_release_tags(root, release_glob)}
    branch = default_branch(root)
    for u in updates:
        if u.ref.startswith("refs/replace/"):
            if not u.creates:
                continue  # dropping a replace ref restores the objects as they are
            problems.append(
                f"{u.ref}: replace refs are refused on a gated server "
                "(they would change the objects the release gate reads)"
            )
        elif u.ref.startswith("refs/tags/") and u.existed:
            release = releases.get(u.ref[len("refs/tags/") :])
            if release is None:
                continue
            if not u.creates:
                problems.append(
                    f"deleting release tag {release.name} is refused "
                    "(later releases are judged against it)"
                )
            elif peel_commit(root, u.new) != release.commit:
                problems.append(
                    f"moving release tag {release.name} is refused "
                    "(later releases are judged against it)"
                )
        elif u.ref == NOTES_REF:
            if not u.creates:
                if u.existed:
                    problems.append(
                        f"deleting {NOTES_REF} is refused (it holds the metrics of the releases)"
                    )
                continue
            changed = []
            for release in releases.values():
                if release.commit is None:
                    continue
                try:
                    before = gate_view(accepted.read(release.commit))
                except NoteError:
                    before = "broken"
                try:
                    after = gate_view(incoming.read(release.commit))
                except NoteError:
                    after = "broken"
                if before != after:
                    changed.append(release.name)
            if changed:
                problems.append(
                    f"the push changes the metrics of release {', '.join(sorted(changed))} "
                    "(later releases are judged against them)"
                )
        elif u.ref == branch and u.existed and not pinned:
            if has_policy(root, u.old) and not (u.creates and has_policy(root, u.new)):
                problems.append(
                    f"the push removes the release policy from {branch[len('refs/heads/') :]} "
                    "(edit the gates instead: every later verdict says what changed)"
                )
    return problems


def take_override(root: Path, problems: Sequence[str], updates: Sequence[RefUpdate]) -> str | None:
    """The admin's one-shot override: recorded, consumed; None when none is set."""
    from gitmodel.git import run_git

    reason = _git(["config", "--get", OVERRIDE_KEY], root).stdout.strip()
    if not reason:
        return None
    git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=root, check=False).stdout.strip()
    log = Path(git_dir or root) / OVERRIDE_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "reason": reason,
        "by": os.environ.get("GL_USERNAME") or os.environ.get("REMOTE_USER") or _user(),
        "refused": list(problems),
        "refs": [f"{u.old} {u.new} {u.ref}" for u in updates],
    }
    with open(log, "a", encoding="utf-8") as f:  # O_APPEND: one line, whole
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    run_git(["config", "--unset-all", OVERRIDE_KEY], cwd=root, check=False)
    return reason


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no name for this uid
        return str(os.getuid())


def server_policy(root: Path) -> tuple[Config, bool]:
    """A server's policy and whether it is pinned: `<bare repo>/.gitmodel.toml` (set by the
    admin, cannot be pushed), else the policy in the server's HEAD as accepted before this
    push, else the defaults."""
    from gitmodel.config import CONFIG_FILE, Config, load_config, parse_config_text

    own = load_config(root)
    if own.source is not None:
        own.source = f"{CONFIG_FILE} of the server repository (pinned by its admin)"
        return own, True
    for name, pyproject in ((CONFIG_FILE, False), ("pyproject.toml", True)):
        proc = _git(["cat-file", "blob", f"HEAD:{name}"], root)
        if proc.returncode == 0 and (not pyproject or "gitmodel" in proc.stdout):
            where = f"{name} at the server's HEAD"
            return parse_config_text(proc.stdout, where, pyproject=pyproject), False
    return Config(), False


def pre_receive(args: Sequence[str], stdin: IO[str]) -> int:
    """Refuse a push that lowers the bar, then gate the release tags it creates."""
    from gitmodel.config import ConfigError
    from gitmodel.evidence import Gate
    from gitmodel.hooks.doors import SERVER_DOOR, judge_refs, server_noise
    from gitmodel.notes import NOTES_REF, PlumbingNotes
    from gitmodel.releases import list_release_tags, peel_commit
    from gitmodel.versions import ReleaseTag, is_release, parse_tag

    root = Path.cwd()
    updates = parse_updates(stdin.read())
    try:
        config, pinned = server_policy(root)
    except ConfigError as exc:
        say(
            "gitmodel: the server's release policy is broken, release tags are refused: "
            + exc.message
        )
        return 1
    accepted = PlumbingNotes.from_ref(root, NOTES_REF)
    pushed_notes = [u.new for u in updates if u.ref == NOTES_REF and u.creates]
    incoming = PlumbingNotes(root, pushed_notes[-1]) if pushed_notes else accepted

    problems = lowering_the_bar(root, updates, config.release_tags, accepted, incoming, pinned)
    if problems:
        reason = take_override(root, problems, updates)
        if reason is None:
            for p in problems:
                say(f"gitmodel: {p}")
            say(
                "gitmodel: refused: a push cannot lower the bar later releases are judged "
                f"against (an admin can allow one push: git config {OVERRIDE_KEY} REASON)"
            )
            return 1
        say(f"gitmodel: admin override used and recorded ({reason}): {'; '.join(problems)}")

    creations = [
        (u.new, u.ref[len("refs/tags/") :])
        for u in updates
        if u.ref.startswith("refs/tags/")
        and u.creates
        and is_release(u.ref[len("refs/tags/") :], config.release_tags)
    ]
    tags: dict[str, ReleaseTag] = {}
    if creations:
        now = int(time.time())
        tags = {t.name: t for t in list_release_tags(root, config.release_tags)}
        for new, name in creations:  # tags made by this push are releases too, for each other
            tags[name] = ReleaseTag(parse_tag(name), peel_commit(root, new), now)
    gate = Gate(
        root,
        config,
        [incoming, accepted],
        baseline_notes=[accepted, incoming],
        tags=list(tags.values()),
        noise=server_noise(root, config),  # the noise rule, as at the other doors
        reference=_reference(root, updates),
        pinned=pinned,
    )
    # Release tags face the release gate, GTO stage tags (NAME#STAGE#N) the promotion gate.
    pushed = [
        (u.new, u.ref[len("refs/tags/") :]) for u in updates if u.ref.startswith("refs/tags/")
    ]
    judgement = judge_refs(gate, pushed)
    for line in SERVER_DOOR.report(judgement):
        say(line)
    return 1 if judgement.refused else 0


def _reference(root: Path, updates: Sequence[RefUpdate]) -> str | None:
    """The history that says when the project adopted gitmodel: the default branch as the
    server accepted it; on a server that has none yet, the one this push brings."""
    proc = _git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], root)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    branch = default_branch(root)
    for u in updates:
        if u.ref == branch and u.creates:
            return u.new
    return None
