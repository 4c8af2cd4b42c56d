"""The release gate: is a candidate release no worse than the previous release?

Policy comes from `gitmodel.config` (`[release]`, `[gate.NAME]`). The previous release is
the nearest release tag before the candidate in version order (see `gitmodel.versions`)
whose commit carries metrics. Each gated metric passes when it is no worse than the
previous value beyond its slack (tolerance + relative-tolerance * |previous|); exactly at
the slack passes.

Notes are read through git plumbing (`ls-tree` of the notes commit, `cat-file`), not
pygit2: the gate runs inside hooks, where startup time counts, and inside a server's
pre-receive, where the pushed objects sit in a quarantine directory that only git (with
the environment git gave the hook) can see.

Per-model release lines (`NAME@v1.2.0`) use the note's `models.NAME.metrics`, or, when a
note has no `models` entry for NAME, its flat metrics under the prefix `NAME.` (what a
nested metrics file `{"NAME": {"accuracy": ...}}` flattens to).

An override is recorded in the candidate commit's note as
`"overrides": [{"tag": "v1.3.0", "reason": "...", "at": "...", "by": "..."}]`; a failing
candidate whose note carries an override for its tag passes, and the verdict says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.config import CONFIG_FILE, Config, GateRule
from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.metrics import MetricsError, validate_note_metrics
from gitmodel.notes import MAX_NOTE_BYTES, NOTES_REF, NoteError, parse_note
from gitmodel.versions import ReleaseTag, TagName, is_release, parse_tag, releases_before

if TYPE_CHECKING:
    from gitmodel.repo import Repo

# Float noise must not turn "exactly at the slack" into a failure: 0.9 - 0.89 is
# 0.010000000000000009 in binary floating point.
_EPSILON = 1e-9


def clean_text(text: object, limit: int = 300) -> str:
    """Text from a note or tag (untrusted) made safe to print: no control characters."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return s if len(s) <= limit else s[: limit - 3] + "..."


# -- reading notes ---------------------------------------------------------------------


class NoteSource:
    """The notes of one notes commit, read with git plumbing (quarantine-safe)."""

    def __init__(self, cwd: Path, notes_commit: str | None) -> None:
        self.cwd = cwd
        self.notes_commit = notes_commit
        self._index: dict[str, tuple[str, int]] | None = None

    @classmethod
    def from_ref(cls, cwd: Path, ref: str = NOTES_REF) -> NoteSource:
        proc = run_git(
            ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd, check=False
        )
        return cls(cwd, proc.stdout.strip() if proc.returncode == 0 else None)

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            self._index = {}
            if self.notes_commit:
                proc = run_git(
                    ["ls-tree", "-r", "-l", "-z", self.notes_commit], cwd=self.cwd, check=False
                )
                for entry in proc.stdout.split("\0") if proc.returncode == 0 else []:
                    meta, _, path = entry.partition("\t")
                    parts = meta.split()
                    key = path.replace("/", "")
                    if len(parts) == 4 and parts[1] == "blob" and len(key) in (40, 64):
                        size = int(parts[3]) if parts[3].isdigit() else MAX_NOTE_BYTES + 1
                        self._index[key.lower()] = (parts[2], size)
        return self._index

    def has(self, commit: str) -> bool:
        return commit in self._load()

    def read(self, commit: str) -> dict[str, Any] | None:
        """The note of commit, None if it has none; NoteError when it is not a JSON object."""
        entry = self._load().get(commit)
        if entry is None:
            return None
        oid, size = entry
        if size > MAX_NOTE_BYTES:
            raise NoteError(f"note on {commit[:12]} is too large")
        proc = run_git(["cat-file", "blob", oid], cwd=self.cwd, check=False)
        if proc.returncode != 0:
            return None
        return parse_note(proc.stdout, commit)


def model_metrics(note: dict[str, Any], model: str | None, commit: str) -> dict[str, float | int]:
    """The metrics a release line is judged on: the note's, or one model's."""
    where = f"note on {commit[:12]}"
    if model is None:
        return validate_note_metrics(note.get("metrics", {}), where)
    models = note.get("models")
    if isinstance(models, dict) and isinstance(models.get(model), dict):
        return validate_note_metrics(models[model].get("metrics", {}), f"{where} (model {model})")
    flat = validate_note_metrics(note.get("metrics", {}), where)
    prefix = model + "."
    return {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}


def override_for(note: dict[str, Any] | None, tag: str | None) -> str | None:
    """The recorded reason to release tag despite the gate, if the note has one."""
    if not note or not tag:
        return None
    entries = note.get("overrides")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("tag") == tag:
            reason = entry.get("reason")
            if isinstance(reason, str) and reason.strip():
                return clean_text(reason.strip())
    return None


# -- release tags ----------------------------------------------------------------------

_TAG_FORMAT = "%00".join(
    (
        "%(refname)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objecttype)",
        "%(*objectname)",
        "%(creatordate:unix)",
    )
)


def list_release_tags(cwd: Path, glob: str) -> list[ReleaseTag]:
    """Every release tag of the repository, with the commit it points at, in one git call."""
    proc = run_git(["for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags/"], cwd=cwd)
    tags: list[ReleaseTag] = []
    for line in proc.stdout.splitlines():
        fields = line.split("\0")
        if len(fields) != 6:
            continue
        ref, otype, oid, ptype, poid, date = fields
        name = ref[len("refs/tags/") :]
        if not is_release(name, glob):
            continue
        commit: str | None = None
        if otype == "commit":
            commit = oid
        elif otype == "tag" and ptype == "commit":
            commit = poid
        elif otype == "tag":  # a tag of a tag: let git peel it
            commit = peel_commit(cwd, oid)
        tags.append(ReleaseTag(parse_tag(name), commit, int(date) if date.isdigit() else 0))
    return tags


def peel_commit(cwd: Path, oid: str) -> str | None:
    """The commit an object (commit or tag) points at; None for trees, blobs, unknowns."""
    proc = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{oid}^{{commit}}"],
        cwd=cwd,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


# -- verdicts --------------------------------------------------------------------------


@dataclass
class MetricVerdict:
    metric: str
    direction: str
    previous: float | int | None
    new: float | int | None
    delta: float | int | None  # new - previous
    slack: float | None
    passed: bool
    reason: str = ""  # why, when it is not a plain comparison
    noise: dict[str, Any] | None = None  # the noise-aware rule's finding, when it ran

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "metric": self.metric,
            "direction": self.direction,
            "previous": self.previous,
            "new": self.new,
            "delta": self.delta,
            "slack": self.slack,
            "passed": self.passed,
        }
        if self.reason:
            d["reason"] = self.reason
        if self.noise is not None:
            d["noise"] = self.noise
        return d


@dataclass
class Verdict:
    candidate: str  # the tag name, or the revision checked
    commit: str
    model: str | None
    previous_tag: str | None
    previous_commit: str | None
    metrics: list[MetricVerdict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures not tied to one metric
    notes: list[str] = field(default_factory=list)  # informational lines
    passed: bool = True
    override: str | None = None  # the recorded reason a failing candidate passes anyway
    summary: str = ""

    @property
    def regressed(self) -> bool:
        """Failed on its merits (an override may still let it pass)."""
        return bool(self.problems) or any(not m.passed for m in self.metrics)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": {"name": self.candidate, "commit": self.commit, "model": self.model},
            "previous": (
                {"tag": self.previous_tag, "commit": self.previous_commit}
                if self.previous_tag
                else None
            ),
            "passed": self.passed,
            "overridden": self.override is not None,
            "override_reason": self.override,
            "metrics": [m.to_json() for m in self.metrics],
            "problems": self.problems,
            "notes": self.notes,
            "summary": self.summary,
        }

    def lines(self) -> list[str]:
        """The verdict as text: a header, one row per gated metric, the one-line summary."""
        head = f"release gate: {self.candidate} ({self.commit[:10]})"
        if self.model:
            head += f" [model {self.model}]"
        if self.previous_tag:
            head += f" against {self.previous_tag} ({(self.previous_commit or '')[:10]})"
        else:
            head += " (no previous release with metrics)"
        out = [head]
        if self.metrics:
            rows = [["metric", "better", "previous", "new", "delta", "slack", "result"]]
            for m in self.metrics:
                rows.append(
                    [
                        m.metric,
                        m.direction,
                        _num(m.previous),
                        _num(m.new),
                        _num(m.delta, signed=True),
                        _num(m.slack),
                        ("pass" if m.passed else "FAIL") + (f" ({m.reason})" if m.reason else ""),
                    ]
                )
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for r in rows:
                cells = (v.ljust(w) for v, w in zip(r, widths, strict=True))
                out.append(("  " + "  ".join(cells)).rstrip())
            for m in self.metrics:
                if m.noise and m.noise.get("reason"):
                    out.append(f"  {m.metric}: {m.noise['reason']}")
        for p in self.problems:
            out.append(f"  problem: {p}")
        for n in self.notes:
            out.append(f"  note: {n}")
        out.append(self.summary)
        return out

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"


def _num(value: float | int | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if signed:
        return f"{value:+.6g}"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def compare(rule: GateRule, previous: float | int, new: float | int) -> MetricVerdict:
    """One gated metric against the previous release under the plain rule."""
    slack = rule.slack(previous)
    worse_by = (previous - new) if rule.direction == "higher" else (new - previous)
    scale = max(1.0, abs(previous), abs(new))
    passed = worse_by <= slack or math.isclose(
        worse_by, slack, rel_tol=_EPSILON, abs_tol=_EPSILON * scale
    )
    return MetricVerdict(rule.metric, rule.direction, previous, new, new - previous, slack, passed)


def judge(
    config: Config,
    candidate: str,
    commit: str,
    model: str | None,
    note: dict[str, Any] | None,
    note_error: str | None,
    previous: ReleaseTag | None,
    previous_note: dict[str, Any] | None,
    tag: str | None,
    repo_for_noise: Any = None,
) -> Verdict:
    """The verdict for a candidate given its note and the previous release's (pure policy)."""
    v = Verdict(
        candidate,
        commit,
        model,
        previous.name if previous else None,
        previous.commit if previous else None,
    )
    metrics: dict[str, float | int] = {}
    if note_error:
        v.problems.append(note_error)
    elif note is not None:
        try:
            metrics = model_metrics(note, model, commit)
        except MetricsError as exc:
            v.problems.append(exc.message)
    prev_metrics: dict[str, float | int] = {}
    if previous is not None and previous_note is not None:
        prev_metrics = model_metrics(previous_note, model, previous.commit or "")
    what = f"model {model}" if model else "metrics"
    if not v.problems and not metrics:
        missing = "no metrics note" if note is None else f"no {what} in its note"
        if config.require_metrics:
            v.problems.append(
                f"{candidate} ({commit[:10]}) has {missing} (release.require-metrics is true)"
            )
        else:
            v.notes.append(
                f"{candidate} has {missing}: not gated (release.require-metrics is false)"
            )
            v.summary = f"PASS: {candidate} is not gated ({missing})"
            return v
    if not v.problems:
        for rule in config.gates.values():
            new = metrics.get(rule.metric)
            old = prev_metrics.get(rule.metric)
            if new is None:
                v.metrics.append(
                    MetricVerdict(
                        rule.metric,
                        rule.direction,
                        old,
                        None,
                        None,
                        None,
                        False,
                        "missing on candidate",
                    )
                )
            elif previous is None or old is None:
                reason = "first release" if previous is None else f"not on {previous.name}"
                v.metrics.append(
                    MetricVerdict(rule.metric, rule.direction, old, new, None, None, True, reason)
                )
            else:
                mv = compare(rule, old, new)
                if not mv.passed and rule.significance is not None and repo_for_noise is not None:
                    _noise_aware(mv, rule, repo_for_noise, previous_note, note, old)
                v.metrics.append(mv)
    v.passed = not v.regressed
    if not v.passed:
        override = override_for(note, tag)
        if override is not None:
            v.override = override
            v.passed = True
    v.summary = _summary(v)
    return v


def _noise_aware(
    mv: MetricVerdict, rule: GateRule, repo: Any, previous_note: Any, note: Any, old: float
) -> None:
    """Let the noise-aware rule (opt-in per metric, `significance`) overrule a plain failure."""
    try:
        from gitmodel.bootstrap import noise_check
    except ImportError:  # the science extras are not part of this installation
        return
    try:
        check = noise_check(repo, rule, previous_note, note, old)
    except Exception as exc:  # never let the bootstrap turn a verdict into a crash
        mv.noise = {
            "applied": False,
            "reason": f"noise check failed ({clean_text(exc, 120)}): plain rule applied",
        }
        return
    mv.noise = check.to_json()
    if check.applied and check.result is not None:
        mv.passed = not check.result.significant
        if mv.passed:
            mv.reason = "drop within noise"


def _summary(v: Verdict) -> str:
    failed = [m for m in v.metrics if not m.passed]
    against = f" than {v.previous_tag}" if v.previous_tag else ""
    if v.problems:
        why = v.problems[0]
    elif failed:
        parts = []
        for m in failed:
            if m.new is None:
                parts.append(f"{m.metric} is missing")
            else:
                worse = abs(m.delta or 0)
                parts.append(f"{m.metric} is worse{against} by {worse:.6g} (slack {_num(m.slack)})")
        why = "; ".join(parts)
    else:
        why = ""
    if v.override is not None:
        return f"OVERRIDDEN: {why}; released anyway: {v.override}"
    if not v.passed:
        return f"FAIL: {why}"
    if v.previous_tag is None:
        return f"PASS: {v.candidate} is the first release of its line with metrics"
    if not v.metrics:
        return "PASS: no gated metrics configured (add [gate.NAME] tables to .gitmodel.toml)"
    return f"PASS: {v.candidate} is no worse{against} on {len(v.metrics)} gated metric(s)"


# -- the gate over a repository ----------------------------------------------------------


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
        notes: NoteSource | Sequence[NoteSource],
        baseline_notes: Sequence[NoteSource] | None = None,
        tags: list[ReleaseTag] | None = None,
        repo: Repo | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.notes = [notes] if isinstance(notes, NoteSource) else list(notes)
        self.baseline_notes = list(baseline_notes) if baseline_notes else self.notes
        self._tags = tags
        self.repo = repo

    @property
    def tags(self) -> list[ReleaseTag]:
        if self._tags is None:
            self._tags = list_release_tags(self.root, self.config.release_tags)
        return self._tags

    def is_release(self, name: str) -> bool:
        return is_release(name, self.config.release_tags)

    @staticmethod
    def _first_note(sources: Sequence[NoteSource], commit: str) -> dict[str, Any] | None:
        for source in sources:
            if source.has(commit):
                return source.read(commit)
        return None

    def _baseline_note(self, commit: str) -> dict[str, Any] | None:
        return self._first_note(self.baseline_notes, commit)

    def _metrics_note(self, release: ReleaseTag, model: str | None) -> dict[str, Any] | None:
        """The release's note if it carries metrics for the line, else None (skipped)."""
        if release.commit is None:
            return None
        try:
            note = self._baseline_note(release.commit)
            if note is None or not model_metrics(note, model, release.commit):
                return None
        except (NoteError, MetricsError):
            return None  # a broken note cannot be a baseline
        return note

    def previous_release(
        self, candidate: TagName | None, model: str | None, date: int | None = None
    ) -> tuple[ReleaseTag, dict[str, Any]] | None:
        """The nearest release before the candidate whose commit has metrics."""
        when = int(time.time()) if date is None else date
        for release in releases_before(candidate, model or "", when, self.tags):
            note = self._metrics_note(release, model)
            if note is not None:
                return release, note
        return None

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
            note = self._first_note(self.notes, commit)
        except NoteError as exc:
            note_error = exc.message
        previous: tuple[ReleaseTag, dict[str, Any]] | None
        if against is not None:
            previous = self._against(against, model)
        else:
            previous = self.previous_release(candidate, model, date)
        if (
            note is None
            and note_error is None
            and tag is not None
            and self.config.require_metrics
            and self.predates_policy(commit)
        ):
            return self._not_gated_old_release(label or tag, commit, model)
        return judge(
            self.config,
            label or tag or commit[:12],
            commit,
            model,
            note,
            note_error,
            previous[0] if previous else None,
            previous[1] if previous else None,
            tag,
            repo_for_noise=self.repo,
        )

    def predates_policy(self, commit: str) -> bool:
        """True when no commit in commit's history ever had a gitmodel policy: a release
        made before the project adopted gitmodel. Deleting the policy later does not make a
        commit old again (its history still has the file), so this is no way around the gate.
        """
        policy_commits = run_git(
            ["log", "-1", "--format=%H", commit, "--", CONFIG_FILE], cwd=self.root, check=False
        )
        if policy_commits.returncode != 0 or policy_commits.stdout.strip():
            return False  # unknown commit (be strict), or the policy file is in its history
        in_pyproject = run_git(
            ["log", "-1", "--format=%H", "-S", "[tool.gitmodel", commit, "--", "pyproject.toml"],
            cwd=self.root,
            check=False,
        )
        return in_pyproject.returncode == 0 and not in_pyproject.stdout.strip()

    def _not_gated_old_release(self, candidate: str, commit: str, model: str | None) -> Verdict:
        v = Verdict(candidate, commit, model, None, None)
        v.notes.append(
            f"{candidate} ({commit[:10]}) has no metrics note and predates the project's "
            f"gitmodel policy (no {CONFIG_FILE} or [tool.gitmodel] anywhere in its history)"
        )
        v.summary = f"PASS: {candidate} is not gated (a release from before gitmodel)"
        return v

    def _against(self, name: str, model: str | None) -> tuple[ReleaseTag, dict[str, Any]]:
        proc = run_git(
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


def gate_for(repo: Repo) -> Gate:
    """The gate of a local repository: its policy, tags and notes."""
    return Gate(repo.root, repo.config, NoteSource.from_ref(repo.root), repo=repo)


def previous_release_tag(repo: Repo, rev: str = "HEAD") -> str | None:
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
