"""The release gate's evidence, gathered from a repository: release tags, notes, policy
history and stored predictions, handed to the pure judge (gitmodel.gate.judge).

`Gate` judges candidates against the release tags and notes of one repository. Notes are
read through `gitmodel.notes.PlumbingNotes` (git plumbing, quarantine-safe): the gate runs
inside hooks, where startup time counts, and inside a server's pre-receive, where the
pushed objects sit in a quarantine directory that only git (with the environment git
gave the hook) can see.

`PredictionsEvidence` is the noise rule's evidence: the stored predictions a note names
(from a repository's cache, or its DVC remote) and the paired bootstrap over them
(gitmodel.bootstrap, imported only when a policy opts into the rule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from gitmodel.config import CONFIG_FILE, Config
from gitmodel.errors import GitModelError
from gitmodel.gate import Baseline, Candidate, Release, judge, model_metrics
from gitmodel.git import TRUTH_ENV, run_git
from gitmodel.metrics import MetricsError
from gitmodel.notes import NoteError, PlumbingNotes, first_note
from gitmodel.releases import list_release_tags, peel_commit
from gitmodel.verdict import Verdict
from gitmodel.versions import ReleaseTag, TagName, is_release, parse_tag, releases_before

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from gitmodel.config import GateRule
    from gitmodel.noise import NoiseCheck
    from gitmodel.noise_rule import Side
    from gitmodel.workspace_view import Workspace

# A loader of the predictions object a note entry names: (entry, where) -> the record.
PredictionsLoader = Callable[[object, str], "dict[str, Any]"]


def _git(args: Sequence[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_git(args, cwd=cwd, check=check, env=TRUTH_ENV)


class PredictionsEvidence:
    """The noise rule's evidence: a paired test over the stored predictions notes name.

    `load` reads a predictions object (md5-verified); without one, `unavailable` says why
    (shown in the verdict, which the plain rule then judges).
    """

    def __init__(self, load: PredictionsLoader | None, unavailable: str | None = None) -> None:
        self.load = load
        self._unavailable = unavailable

    @property
    def unavailable(self) -> str | None:
        if self.load is None:
            return self._unavailable or "no stored predictions can be read here"
        return None

    def check(self, rule: GateRule, baseline: Side, candidate: Side, slack: float) -> NoiseCheck:
        from gitmodel.noise_check import noise_check

        assert self.load is not None
        return noise_check(rule, self.load, baseline, candidate, slack=slack)


def repo_loader(repo: Workspace) -> PredictionsLoader:
    """Loads the predictions a note names from a repository's cache (or its DVC remote)."""

    def load(entry: object, where: str) -> dict[str, Any]:
        from gitmodel.evaluate import load_predictions

        return load_predictions(repo, entry, where)

    return load


LOCAL_REFERENCE = "--branches"


class Gate:
    """Judge candidates against the release tags and notes of one repository.

    `notes` (tried in order) supply the candidate's note, `baseline_notes` (default: the
    same) the previous releases' notes; a server passes its accepted notes first there,
    so that a push cannot rewrite the baseline it is judged against.
    """

    def __init__(
        self,
        root: Path,
        config: Config,
        notes: PlumbingNotes | Sequence[PlumbingNotes],
        baseline_notes: Sequence[PlumbingNotes] | None = None,
        tags: list[ReleaseTag] | None = None,
        noise: PredictionsEvidence | None = None,
        reference: str | None = LOCAL_REFERENCE,
        pinned: bool = False,
    ) -> None:
        self.root = root
        self.config = config
        self.notes = [notes] if isinstance(notes, PlumbingNotes) else list(notes)
        self.baseline_notes = list(baseline_notes) if baseline_notes else self.notes
        self._tags = tags
        # The noise rule's evidence: stored predictions (from the repository's cache, or
        # its DVC remote); without them, verdicts say why the rule could not run.
        self.noise = noise or PredictionsEvidence(None)
        # The history whose first policy commit marks the adoption of gitmodel (locally
        # every branch; on a server its default branch as accepted, never a pushed one),
        # and whether the policy is pinned by the server's admin.
        self.reference = reference
        self.pinned = pinned
        self._adoption: list[str] | None = None
        # One line each verdict carries: how the work tree's policy differs from the one
        # that judges (set by the local doors).
        self.policy_difference: str | None = None

    @property
    def tags(self) -> list[ReleaseTag]:
        if self._tags is None:
            self._tags = list_release_tags(self.root, self.config.release_tags)
        return self._tags

    def is_release(self, name: str) -> bool:
        return is_release(name, self.config.release_tags)

    def _baseline_note(self, commit: str) -> dict[str, Any] | None:
        return first_note(self.baseline_notes, commit)

    def _baseline_notes_of(
        self, commits: Sequence[str]
    ) -> dict[str, dict[str, Any] | NoteError | None]:
        """first_note for many commits, one batch read per reader."""
        out: dict[str, dict[str, Any] | NoteError | None] = {}
        pending = list(dict.fromkeys(commits))
        for reader in self.baseline_notes:
            mine = [c for c in pending if reader.has(c)]
            if mine:
                got = reader.read_many(mine)
                out.update((c, got.get(c)) for c in mine)
                pending = [c for c in pending if c not in out]
        return out

    def _metrics_note(
        self,
        release: ReleaseTag,
        model: str | None,
        prefetched: Mapping[str, dict[str, Any] | NoteError | None] | None = None,
    ) -> dict[str, Any] | None:
        """The release's note if it carries metrics for the line, else None (skipped)."""
        if release.commit is None:
            return None
        try:
            if prefetched is None:
                note = self._baseline_note(release.commit)
            else:
                found = prefetched.get(release.commit)
                if isinstance(found, NoteError):
                    raise found
                note = found
            if note is None or not model_metrics(note, model, release.commit):
                return None
        except (NoteError, MetricsError):
            return None  # a broken note cannot be a baseline
        return note

    def previous_release(
        self, candidate: TagName | None, model: str | None, date: int | None = None
    ) -> tuple[ReleaseTag, dict[str, Any]] | None:
        """The nearest release before the candidate whose commit has metrics."""
        for found in self.earlier_releases(candidate, model, date, first_only=True):
            return found
        return None

    def earlier_releases(
        self,
        candidate: TagName | None,
        model: str | None,
        date: int | None = None,
        first_only: bool = False,
    ) -> list[tuple[ReleaseTag, dict[str, Any]]]:
        """The releases of the line before the candidate whose commits have metrics,
        nearest first (the previous release, then the drift guard's choice)."""
        when = int(time.time()) if date is None else date
        found = []
        releases = releases_before(candidate, model or "", when, self.tags)
        # Every earlier release is read for the drift guard: all their notes in one go.
        prefetched = (
            None
            if first_only
            else self._baseline_notes_of([r.commit for r in releases if r.commit])
        )
        for release in releases:
            note = self._metrics_note(release, model, prefetched)
            if note is not None:
                found.append((release, note))
                if first_only:
                    break
        return found

    def verdict(
        self,
        commit: str,
        tag: str | None = None,
        model: str | None = None,
        against: str | None = None,
        label: str | None = None,
    ) -> Verdict:
        """Judge commit as release `tag` (or, untagged, as the next release of its line)."""
        candidate: TagName | None = None
        date: int | None = None
        if tag is not None:
            candidate = parse_tag(tag)
            model = candidate.model
            existing = [t for t in self.tags if t.name == tag]
            date = existing[0].date if existing else None
        else:
            # An already tagged commit is judged as its own (greatest) release.
            own = [t for t in self.tags if t.commit == commit and t.tag.line == (model or "")]
            versioned = [t for t in own if t.tag.version is not None]
            if versioned:
                best = max(versioned, key=lambda t: t.tag.version)  # type: ignore[arg-type, return-value]
                candidate, date, tag = best.tag, best.date, best.name
        note: dict[str, Any] | None = None
        note_error = None
        try:
            note = first_note(self.notes, commit)
        except NoteError as exc:
            note_error = exc.message
        previous: tuple[ReleaseTag, dict[str, Any]] | None
        # An explicit --against is the one comparison asked for: no drift guard.
        history = self.earlier_releases(candidate, model, date) if against is None else None
        if against is not None:
            previous = self._against(against, model)
        else:
            previous = history[0] if history else None
        if (
            note is None
            and note_error is None
            and tag is not None
            and self.config.require_metrics
            and self.predates_policy(commit)
        ):
            return self._with_policy(self._not_gated_old_release(label or tag, commit, model), None)
        v = judge(
            self.config,
            Candidate(label or tag or commit[:12], commit, note, model, tag, note_error),
            Baseline(
                Release(*previous) if previous else None,
                [Release(*r) for r in history] if history is not None else None,
            ),
            self.noise,
        )
        return self._with_policy(v, previous[0] if previous else None)

    def _with_policy(self, v: Verdict, previous: ReleaseTag | None) -> Verdict:
        """Name the policy that judged, and say what changed since the previous release's."""
        from gitmodel.config import ConfigError
        from gitmodel.policy import committed_policy, policy_change

        v.policy = self.config.source or "defaults (no policy file)"
        lines = [f"policy: {v.policy}"]
        if self.policy_difference:
            lines.append(self.policy_difference)
        if previous is not None and previous.commit and not self.pinned:
            try:
                before = committed_policy(self.root, previous.commit)
            except ConfigError:
                before = None
            change = policy_change(before, self.config) if before is not None else None
            if change:
                lines.append(f"policy changed since {previous.name}: {change}")
        v.notes[:0] = lines
        return v

    def adopting_commits(self) -> list[str]:
        """The commits of the reference history that first had a gitmodel policy (one per
        policy file, oldest first); empty when that history never had one."""
        if self._adoption is None:
            self._adoption = []
            if self.reference is not None:
                for option, path in (
                    ("--diff-filter=A", CONFIG_FILE),
                    ("-S[tool.gitmodel", "pyproject.toml"),
                ):
                    if self.reference.startswith("--"):
                        revs = [self.reference, "--end-of-options"]
                    else:
                        revs = ["--end-of-options", self.reference]
                    proc = _git(
                        ["log", "--reverse", "--format=%H", option, *revs, "--", path],
                        cwd=self.root,
                        check=False,
                    )
                    self._adoption += proc.stdout.split()[:1] if proc.returncode == 0 else []
        return self._adoption

    def predates_policy(self, commit: str) -> bool:
        """True for a release made before the project adopted gitmodel: a strict ancestor of
        the commit that adopted the policy. An orphan history, or a branch forked before
        the adoption, is not "before": it was tagged after, and it would be a way around
        the gate. A history that never had a policy (a project that has not adopted
        gitmodel) counts as before, unless an admin pinned the policy on the server.
        """
        adoption = self.adopting_commits()
        if not adoption:
            return not self.pinned and not self._has_policy_history(commit)
        for adopted in adoption:
            if commit == adopted:
                continue
            proc = _git(
                ["merge-base", "--is-ancestor", commit, adopted], cwd=self.root, check=False
            )
            if proc.returncode == 0:
                return True
        return False

    def _has_policy_history(self, commit: str) -> bool:
        policy_commits = _git(
            ["log", "-1", "--format=%H", commit, "--", CONFIG_FILE], cwd=self.root, check=False
        )
        if policy_commits.returncode != 0 or policy_commits.stdout.strip():
            return True  # unknown commit (be strict), or the policy file is in its history
        in_pyproject = _git(
            ["log", "-1", "--format=%H", "-S", "[tool.gitmodel", commit, "--", "pyproject.toml"],
            cwd=self.root,
            check=False,
        )
        return in_pyproject.returncode != 0 or bool(in_pyproject.stdout.strip())

    def _not_gated_old_release(self, candidate: str, commit: str, model: str | None) -> Verdict:
        v = Verdict(candidate, commit, model, None, None)
        v.notes.append(
            f"{candidate} ({commit[:10]}) has no metrics note and predates the project's "
            "gitmodel policy (an ancestor of the commit that adopted it)"
        )
        v.summary = f"PASS: {candidate} is not gated (a release from before gitmodel)"
        return v

    def _against(self, name: str, model: str | None) -> tuple[ReleaseTag, dict[str, Any]]:
        proc = _git(
            ["for-each-ref", "--format=%(creatordate:unix)", f"refs/tags/{name}"],
            cwd=self.root,
            check=False,
        )
        commit = peel_commit(self.root, f"refs/tags/{name}") if proc.stdout.strip() else None
        if commit is None:
            raise GitModelError(f"--against {name}: no such tag")
        date = int(proc.stdout.split()[0]) if proc.stdout.split()[0].isdigit() else 0
        release = ReleaseTag(parse_tag(name), commit, date)
        note = self._metrics_note(release, model)
        if note is None:
            raise GitModelError(f"--against {name}: its commit {commit[:12]} has no metrics")
        return release, note


def gate_for(repo: Workspace) -> Gate:
    """The gate of a local repository: its committed policy (see gitmodel.policy), tags and
    notes."""
    from gitmodel.policy import door_policy

    policy = door_policy(repo.root)
    gate = Gate(
        repo.root,
        policy.config or repo.config,
        PlumbingNotes.from_ref(repo.root),
        noise=PredictionsEvidence(repo_loader(repo)),
    )
    gate.policy_difference = policy.difference
    if policy.worktree is not None and policy.worktree is not policy.config:
        # A typo in the work tree's policy is worth a warning even while it does not judge.
        gate.config.warnings += [
            w for w in policy.worktree.warnings if w not in gate.config.warnings
        ]
    return gate


def previous_release_tag(repo: Workspace, rev: str = "HEAD") -> str | None:
    """The release `git model diff` starts from: the one rev would be judged against."""
    gate = gate_for(repo)
    commit = repo.rev_parse(rev)
    own = [
        t
        for t in gate.tags
        if t.commit == commit and t.tag.line == "" and t.tag.version is not None
    ]
    candidate = max(own, key=lambda t: t.tag.version).tag if own else None  # type: ignore[arg-type, return-value]
    found = gate.previous_release(candidate, None)
    return found[0].name if found else None
