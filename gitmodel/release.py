"""Release: judge a commit by the release gate, then create its annotated release tag.

What `git model release` does, callable from Python (`Repo.release`, `gitmodel.release`):
pick or check the version (GTO's grammar, gitmodel.versions), refuse a tag name git would
not take or that exists, judge the commit against the previous release, and either refuse
(ReleaseRefused carries the verdict) or create the tag whose message records the metrics
and the comparison. An override (`allow_regression=REASON`) is recorded first in the
commit's note, where every door (and the server) reads it, then in the tag message.

Never prints: warnings and remarks go to the callables handed in, in the order they arise,
and the result is a record the command renders.
"""

from __future__ import annotations

from collections.abc import Callable

from gitmodel.errors import GitModelError, Refused
from gitmodel.git import run_git
from gitmodel.record import Record

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.verdict import Verdict
    from gitmodel.workspace_view import SyncWorkspace


class ReleaseRefused(Refused):
    """The gate failed and no override reason was given (exit 1); verdict says why."""

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


class TagFailed(Refused):
    """`git tag` itself refused (a hook, a lock); stderr is git's own words."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


class Released(Record):
    """A release tag that was created: its name, commit, override reason and verdict."""

    __slots__ = ("tag", "commit", "override", "verdict")

    def __init__(self, tag: str, commit: str, override: str | None, verdict: Verdict) -> None:
        self.tag = tag
        self.commit = commit
        self.override = override  # the recorded reason, when released despite the gate
        self.verdict = verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "commit": self.commit,
            "override": self.override,
            "verdict": self.verdict.to_json(),
        }


def release(
    repo: SyncWorkspace,
    version: str | None = None,
    *,
    bump: str | None = None,
    model: str | None = None,
    message: str | None = None,
    rev: str = "HEAD",
    allow_regression: str | None = None,
    warn: Callable[[str], None] | None = None,
    info: Callable[[str], None] | None = None,
) -> Released:
    """Release rev as version (or as the next `bump` = "major" | "minor" | "patch" version
    of model's release line) if the gate passes, or despite it with allow_regression=REASON.

    Raises ReleaseRefused (the verdict on it) when the gate fails without a reason,
    GitModelError for a bad version or revision, TagFailed when git refuses the tag.
    """
    from gitmodel.evidence import gate_for
    from gitmodel.versions import below_latest, latest_version, parse_tag, same_version
    from gitmodel.versions import bump as next_version

    gate = gate_for(repo)
    for text in gate.config.warnings:
        _say(warn, text)  # unknown keys: the policy may not say what its author meant
    if (version is None) == (bump is None):
        raise GitModelError("give either VERSION or --bump major|minor|patch")
    if version is not None:
        name = version
        if model is not None and parse_tag(name).model != model:
            raise GitModelError(f"{name} is not on the release line of model {model}")
    else:
        assert bump is not None
        latest = latest_version(gate.tags, model or "")
        name = next_version(latest.tag if latest else None, bump, gate.config.release_tags, model)
    check_tag_name(repo, name, gate.config.release_tags)
    same = [t.name for t in gate.tags if same_version(t.tag, parse_tag(name))]
    if same:
        raise GitModelError(f"{name} is the same version as the release {same[0]}")
    low = below_latest(name, gate.tags)
    if low:
        _say(warn, low)
    if allow_regression is not None and not allow_regression.strip():
        raise GitModelError("--allow-regression needs a reason")
    commit = repo.rev_parse(rev)
    verdict = gate.verdict(commit, tag=name)
    override = None
    if not verdict.passed:
        if allow_regression is None:
            raise ReleaseRefused(
                f"not releasing {name}: the release gate failed "
                "(--allow-regression REASON releases anyway and records why)",
                verdict,
            )
        override = allow_regression.strip()
        record_override(repo, commit, name, override)
        verdict = gate_for(repo).verdict(commit, tag=name)  # now says OVERRIDDEN
    elif allow_regression is not None:
        _say(info, "the gate passed: --allow-regression was not needed and is not recorded")
    text = tag_message(message, name, commit, verdict, override, _metrics(repo, commit, name))
    proc = run_git(
        ["tag", "-a", "--cleanup=whitespace", "-F", "-", name, commit],
        cwd=repo.root,
        input=text,
        check=False,
    )
    if proc.returncode != 0:
        raise TagFailed(f"git tag {name} failed", proc.stderr)
    return Released(name, commit, override, verdict)


def _say(to: Callable[[str], None] | None, text: str) -> None:
    if to is not None:
        to(text)


def check_tag_name(repo: SyncWorkspace, name: str, glob: str) -> None:
    """Refuse a name git would not take as a tag, one that is not a release under the
    policy's release.tags glob, or a tag that exists."""
    from gitmodel.versions import is_release

    if not name or name.startswith("-"):
        raise GitModelError(f"{name!r} is not a valid tag name")
    if run_git(["check-ref-format", f"refs/tags/{name}"], cwd=repo.root, check=False).returncode:
        raise GitModelError(f"{name!r} is not a valid tag name")
    if not is_release(name, glob):
        raise GitModelError(f"{name} is not a release tag (release.tags = {glob!r})")
    exists = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/tags/{name}"], cwd=repo.root, check=False
    )
    if exists.returncode == 0:
        raise GitModelError(f"tag {name} already exists")


def record_override(repo: SyncWorkspace, commit: str, tag: str, reason: str) -> None:
    """Put the override in the commit's note, where every door (and the server) reads it."""
    from gitmodel.commit import record_override as record
    from gitmodel.pointer import weight_entry

    weights: dict[str, Any] = {}
    if repo.notes.read(commit) is None:  # a new note names the commit's weights, as all do
        try:
            weights = {t.path: weight_entry(t.out) for t in repo.pointers_at(commit)}
        except GitModelError:  # a damaged pointer must not block the override's record
            pass
    record(repo.notes, repo.root, commit, tag, reason, "git-model release", weights=weights)


def _metrics(repo: SyncWorkspace, commit: str, name: str) -> dict[str, float | int]:
    from gitmodel.gate import model_metrics
    from gitmodel.versions import parse_tag

    try:
        note = repo.notes.read(commit)
        return model_metrics(note, parse_tag(name).model, commit) if note else {}
    except GitModelError:
        return {}


def tag_message(
    user: str | None,
    name: str,
    commit: str,
    verdict: Verdict,
    override: str | None,
    metrics: dict[str, float | int],
) -> str:
    """The release tag's message: the user's line(s), the override, metrics and verdict."""
    from gitmodel.verdict import clean_text

    lines = [user.strip() if user and user.strip() else f"Release {name}", ""]
    if override:
        lines += [f"Released despite the release gate. Reason: {clean_text(override)}", ""]
    lines += [f"Metrics of {commit}:"]
    lines += [f"  {clean_text(k, 100)} = {v}" for k, v in metrics.items()] or ["  (none)"]
    lines += ["", "Release gate (git model release):"]
    lines += verdict.lines()
    return "\n".join(lines) + "\n"
