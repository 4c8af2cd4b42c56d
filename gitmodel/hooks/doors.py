"""The release gate's doors: one `judge_refs` for `git tag`, `git push` and the server.

Every door hands the release and stage tags a git operation would create to `judge_refs`,
which judges each release tag with the door's `gitmodel.evidence.Gate` and each GTO stage
tag (`NAME#STAGE#N`) with the promotion gate (`gitmodel.registry`), and returns what it
found; `Door.report` words what that door shows and why it refuses. The doors differ only in where the
gate's evidence comes from: the local doors read the committed policy and the local notes
(`door_gate`); the server reads what it accepted before the push (gitmodel.hooks.receive).

Nothing here prints: the hook entry points (gitmodel.hooks) write what these return.
Imports stay light: these run inside git operations, and the bootstrap (numpy) is
imported only when a policy opts into the noise rule and a verdict needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.hooks.stream import nonzero

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import NamedTuple

    from gitmodel.config import Config
    from gitmodel.evidence import Gate, PredictionsEvidence
    from gitmodel.policy import DoorPolicy
    from gitmodel.store import Reporter

    class RefVerdict(NamedTuple):
        """One judged tag: its name, whether it may be created, and the verdict's text."""

        name: str
        passed: bool
        text: str

else:
    from collections import namedtuple

    RefVerdict = namedtuple("RefVerdict", "name passed text")


class Judgement:
    """What `judge_refs` found: the verdicts, in the order they were judged."""

    def __init__(self) -> None:
        self.releases: list[RefVerdict] = []
        self.stages: list[RefVerdict] = []

    @property
    def verdicts(self) -> list[RefVerdict]:
        return [*self.releases, *self.stages]

    @property
    def refused_releases(self) -> list[str]:
        return [v.name for v in self.releases if not v.passed]

    @property
    def refused_stages(self) -> list[str]:
        return [v.name for v in self.stages if not v.passed]

    @property
    def refused(self) -> bool:
        return bool(self.refused_releases or self.refused_stages)


class Door:
    """How one door words a refusal."""

    def __init__(self, releases: str, stages: str) -> None:
        self._releases = releases  # "{tags}" is replaced by the refused release tags
        self._stages = stages  # who refuses the stage tags: "refused to push" ...

    def report(self, judgement: Judgement) -> list[str]:
        """What the door shows: each verdict, then why it refuses (when it does)."""
        lines = [v.text.rstrip("\n") for v in judgement.verdicts]
        if judgement.refused_releases:
            lines.append(
                "gitmodel: " + self._releases.format(tags=", ".join(judgement.refused_releases))
            )
        if judgement.refused_stages:
            lines.append(
                f"gitmodel: {self._stages} stage tag {', '.join(judgement.refused_stages)}: "
                "the promotion gate failed "
                "(git model promote REF STAGE --allow-regression REASON records why)"
            )
        return lines


TAG_DOOR = Door(
    "refused to create release tag {tags}. "
    "To release anyway: git model release VERSION --allow-regression REASON",
    "refused to create",
)
PUSH_DOOR = Door("refused to push release tag {tags}: the release gate failed", "refused to push")
SERVER_DOOR = Door(
    "the server refused release tag {tags}: the release gate failed "
    "(push refs/notes/metrics with the tag if its note is missing here)",
    "the server refused",
)


def judge_refs(gate: Gate, refs: Sequence[tuple[str, str]]) -> Judgement:
    """Judge the tags a git operation would give an object: (object, tag name) pairs.

    Release tags (the policy's `release.tags`) face the release gate; GTO stage tags face
    the promotion gate, with the same notes (the gate's candidate and baseline notes) and
    the same noise evidence. Other tags, and deletions, are not judged.
    """
    from gitmodel.releases import peel_commit

    judgement = Judgement()
    for new, name in refs:
        if not nonzero(new) or not gate.is_release(name):
            continue
        commit = peel_commit(gate.root, new)
        if commit is None:
            text = f"release gate: {name} does not point at a commit\nFAIL: refused\n"
            judgement.releases.append(RefVerdict(name, False, text))
            continue
        verdict = gate.verdict(commit, tag=name)
        judgement.releases.append(RefVerdict(name, verdict.passed, verdict.text()))
    stages = [(new, name) for new, name in refs if nonzero(new) and "#" in name]
    if stages:
        from gitmodel.promotion import judge_stage_tags

        for name, passed, text in judge_stage_tags(
            gate.root, gate.config, stages, gate.notes, gate.baseline_notes, gate.noise
        ):
            judgement.stages.append(RefVerdict(name, passed, text))
    return judgement


# -- the local doors' evidence ----------------------------------------------------------------


def door_policy(root: Path) -> DoorPolicy:
    """The policy a local door judges by (gitmodel.policy), refreshing the shims' cache."""
    from gitmodel.hooks.fastpath import policy_stamp, write_cache
    from gitmodel.policy import door_policy as committed_door_policy

    stamp = policy_stamp(root)
    policy = committed_door_policy(root)
    write_cache(root, [policy.config, policy.worktree], stamp)
    return policy


def door_gate(root: Path) -> Gate | None:
    """The gate of a local door, or None when the repository has no policy."""
    from gitmodel.evidence import Gate
    from gitmodel.notes import PlumbingNotes

    policy = door_policy(root)
    if policy.config is None:
        return None
    gate = Gate(
        root, policy.config, PlumbingNotes.from_ref(root), noise=noise_evidence(root, policy.config)
    )
    gate.policy_difference = policy.difference
    return gate


def _opts_into_noise(config: Config) -> bool:
    return any(rule.significance is not None for rule in config.gates.values())


def noise_evidence(root: Path, config: Config) -> PredictionsEvidence | None:
    """The stored predictions a local door's noise rule reads, only when a rule opts in.

    Without them the hook would judge by the plain rule and refuse a tag that `git model
    check` and `git model release` pass.
    """
    if not _opts_into_noise(config):
        return None
    from gitmodel.evidence import PredictionsEvidence, repo_loader
    from gitmodel.repo import Repo

    try:
        return PredictionsEvidence(repo_loader(Repo(root)))
    except GitModelError:
        return None


def server_noise(root: Path, config: Config) -> PredictionsEvidence | None:
    """A server's noise evidence, or the reason it has none.

    A bare repository's `.dvc` (its cache, and in `.dvc/config` the DVC remote the
    clients push to) is the admin's: nothing pushed can reach it, and every object read
    through it is md5-verified against the note that names it. Without one the server
    judges by the plain rule and its verdict says so.
    """
    if not _opts_into_noise(config):
        return None
    from gitmodel.evidence import PredictionsEvidence, repo_loader

    if not (root / ".dvc").is_dir():
        return PredictionsEvidence(
            None,
            "the server keeps no stored predictions: no .dvc in the bare repository "
            "(docs/release-science.md, 'The server')",
        )
    from gitmodel.repo import Repo

    try:
        repo = Repo(root)
        # `git model init` makes a clone's cache; a server's .dvc may hold only its config.
        repo.store.cache_dir.mkdir(parents=True, exist_ok=True)
        return PredictionsEvidence(repo_loader(repo))
    except (GitModelError, OSError) as exc:
        why = exc.message if isinstance(exc, GitModelError) else exc.strerror
        return PredictionsEvidence(None, f"the server cannot read stored predictions ({why})")


# -- after the gate: the weights and notes a push publishes -----------------------------------


def publish(
    root: Path,
    remote_name: str,
    remote_url: str,
    updates: Sequence[Sequence[str]],
    reporter: Reporter | None = None,
) -> list[str]:
    """Upload the weights of the commits a push sends and publish the notes (pre-push).

    reporter draws the upload's progress: the hook entry point (the skin) hands in the
    terminal's. Returns the lines to show; raises Refused to stop the push.
    """
    from gitmodel.repo import Repo
    from gitmodel.sync import prepare_push
    from gitmodel.text import fmt_size, plural

    result = prepare_push(Repo(root), remote_name, remote_url, updates, reporter)
    lines = []
    if result.notes.startswith("not published"):
        lines.append(f"gitmodel: warning: metrics notes {result.notes}")
    if result.upload is not None and result.upload.transferred:
        t = result.upload
        lines.append(
            f"gitmodel: uploaded {plural(len(t.transferred), 'object')} ({fmt_size(t.bytes)}) "
            f"to DVC remote {t.remote}"
        )
    return lines
