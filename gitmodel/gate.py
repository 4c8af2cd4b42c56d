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
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.config import CONFIG_FILE, Config, GateRule, direction_by_name
from gitmodel.errors import GitModelError
from gitmodel.git import TRUTH_ENV
from gitmodel.git import run_git as _run_git
from gitmodel.metrics import MetricsError, tidy, validate_note_metrics
from gitmodel.notes import MAX_NOTE_BYTES, NOTES_REF, NoteError, parse_note
from gitmodel.versions import ReleaseTag, TagName, is_release, parse_tag, releases_before

if TYPE_CHECKING:
    from gitmodel.workspace_view import Workspace


def _git(args: Sequence[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run_git(args, cwd=cwd, check=check, env=TRUTH_ENV)


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
        proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd, check=False)
        return cls(cwd, proc.stdout.strip() if proc.returncode == 0 else None)

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            self._index = {}
            if self.notes_commit:
                proc = _git(
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
        proc = _git(["cat-file", "blob", oid], cwd=self.cwd, check=False)
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
    proc = _git(["for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags/"], cwd=cwd)
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
    proc = _git(
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
    # What the candidate was compared with: "previous" (the previous release), "drift"
    # (the best or pinned earlier release), "minimum"/"maximum" (a floor in the policy).
    kind: str = "previous"
    against: str | None = None  # the release tag (previous, drift) or None (a floor)
    eval_set_differs: bool = False  # measured on another evaluation set than the baseline

    @property
    def baseline(self) -> str:
        """The comparison's name in a verdict: a tag, or the floor."""
        if self.kind in ("minimum", "maximum"):
            return self.kind
        tag = self.against or "-"
        return f"{tag} (drift)" if self.kind == "drift" else tag

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "metric": self.metric,
            "kind": self.kind,
            "against": self.against,
            "direction": self.direction,
            "previous": self.previous,
            "new": self.new,
            "delta": tidy(self.delta),
            "slack": tidy(self.slack),
            "passed": self.passed,
        }
        if self.reason:
            d["reason"] = self.reason
        if self.eval_set_differs:
            d["eval_set_differs"] = True
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
    policy: str = ""  # which policy judged (file and where it was read)
    summary: str = ""
    rule: str = "plain"  # which decision rule judged: plain, or the noise rule's statement

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
            "rule": self.rule,
            "summary": self.summary,
            "policy": self.policy,
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
            rows = [["metric", "better", "against", "was", "new", "delta", "slack", "result"]]
            for m in self.metrics:
                rows.append(
                    [
                        m.metric,
                        m.direction,
                        m.baseline,
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
                    out.append(f"  {m.metric} against {m.baseline}: {m.noise['reason']}")
                for warning in (m.noise or {}).get("warnings") or ():
                    out.append(f"  warning: {m.metric}: {warning}")
        for i, p in enumerate(self.problems):
            if i or not self.summary.endswith(p):  # the summary line already says the first
                out.append(f"  problem: {p}")
        for n in self.notes:
            out.append(f"  note: {n}")
        if self.rule != "plain":
            out.append(f"  rule: {self.rule}")
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


def compare(
    rule: GateRule, previous: float | int, new: float | int, slack: float | None = None
) -> MetricVerdict:
    """One gated metric against a baseline value under the plain rule."""
    if slack is None:
        slack = rule.slack(previous)
    worse_by = (previous - new) if rule.direction == "higher" else (new - previous)
    passed = _at_most(worse_by, slack, max(1.0, abs(previous), abs(new)))
    return MetricVerdict(rule.metric, rule.direction, previous, new, new - previous, slack, passed)


def _at_most(value: float, limit: float, scale: float) -> bool:
    return value <= limit or math.isclose(value, limit, rel_tol=_EPSILON, abs_tol=_EPSILON * scale)


def floors(rule: GateRule, new: float | int) -> list[MetricVerdict]:
    """The policy's absolute floors (`minimum`, `maximum`) for one metric."""
    out = []
    for kind, limit in (("minimum", rule.minimum), ("maximum", rule.maximum)):
        if limit is None:
            continue
        scale = max(1.0, abs(limit), abs(new))
        ok = _at_most(limit, new, scale) if kind == "minimum" else _at_most(new, limit, scale)
        out.append(
            MetricVerdict(
                rule.metric, rule.direction, limit, new, new - limit, 0.0, ok, "", None, kind
            )
        )
    return out


# A baseline: the release, its note, and its metrics for the line.
Baseline = tuple[ReleaseTag, dict[str, Any], dict[str, float | int]]


def drift_baseline(
    config: Config, rule: GateRule, history: Sequence[Baseline]
) -> tuple[Baseline, str] | None:
    """The earlier release a drift comparison uses for rule's metric, and why that one.

    history is the line's earlier releases with metrics, nearest first. The pinned
    release (`release.drift = "TAG"`) when it is on the line, else the best value since
    the latest release that was released with an override (a recorded decision to
    accept a lower bar starts the drift count afresh).
    """
    if config.drift == "off" or not history:
        return None
    if config.drift != "best":
        for entry in history:
            if entry[0].name == config.drift:
                return (entry, "pinned") if rule.metric in entry[2] else None
    since: list[Baseline] = []
    for entry in history:
        since.append(entry)
        if override_for(entry[1], entry[0].name) is not None:
            break
    candidates = [e for e in since if rule.metric in e[2]]
    if not candidates:
        return None
    sign = 1 if rule.direction == "higher" else -1
    # max() keeps the first (nearest) of equal values
    return max(candidates, key=lambda e: sign * e[2][rule.metric]), "best"


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
    *,
    history: Sequence[tuple[ReleaseTag, dict[str, Any]]] | None = None,
    predictions: Callable[[object, str], dict[str, Any]] | None = None,
    noise_server: str | None = None,
) -> Verdict:
    """The verdict for a candidate given its note and the earlier releases' (pure policy).

    `history`: the line's earlier releases with metrics, nearest first (for the drift
    guard; default: the previous release alone). `predictions` loads the predictions
    object a note names (the noise rule's evidence); `repo_for_noise` is the older way to
    hand in a Repo to load them from. Without either, the noise rule cannot run and the
    verdict says so (`noise_server` gives the reason to show).
    """
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
    if predictions is None and repo_for_noise is not None:
        predictions = repo_loader(repo_for_noise)
    earlier: list[Baseline] = []
    for release, rel_note in history or (
        [(previous, previous_note)] if previous is not None and previous_note else []
    ):
        try:
            earlier.append(
                (release, rel_note, model_metrics(rel_note, model, release.commit or ""))
            )
        except MetricsError:
            continue
    tests: list[_Test] = []
    rules, by_name, ungated = gated_rules(config, [*metrics, *prev_metrics])
    if by_name and not v.problems:
        v.notes.append(
            f"gated by name with zero slack: {', '.join(by_name)} ([gate] defaults = false "
            "turns this off; a [gate.NAME] table sets a slack)"
        )
    if ungated and not v.problems:
        v.notes.append(f"not gated: {', '.join(ungated)} (a [gate.NAME] table gates it)")
    if not v.problems:
        for rule in rules:
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
                        None,
                        "previous",
                        previous.name if previous else None,
                    )
                )
                continue
            if previous is None or old is None:
                reason = "first release" if previous is None else f"not on {previous.name}"
                v.metrics.append(
                    MetricVerdict(rule.metric, rule.direction, old, new, None, None, True, reason)
                )
            else:
                mv = compare(rule, old, new)
                mv.against = previous.name
                v.metrics.append(mv)
                tests.append(_Test(mv, rule, (previous.name, previous_note, old), note))
            drift = drift_baseline(config, rule, earlier) if history is not None else None
            if drift is not None and (previous is None or drift[0][0].name != previous.name):
                (release, rel_note, rel_metrics), why = drift
                base = rel_metrics[rule.metric]
                mv = compare(rule, base, new, rule.drift_slack(base))
                mv.kind, mv.against = "drift", release.name
                mv.reason = f"{why} earlier release"
                v.metrics.append(mv)
                tests.append(_Test(mv, rule, (release.name, rel_note, base), note))
            v.metrics.extend(floors(rule, new))
    _compare_eval_sets(v, config, tests, candidate)
    _noise_rule(v, tests, candidate, predictions, noise_server)
    v.passed = not v.regressed
    if not v.passed:
        override = override_for(note, tag)
        if override is not None:
            v.override = override
            v.passed = True
    v.summary = _summary(v)
    return v


def gated_rules(
    config: Config, names: Sequence[str]
) -> tuple[list[GateRule], list[str], list[str]]:
    """(rules to apply, metrics gated by their name, metrics not gated) for a verdict.

    A policy with [gate.NAME] tables gates exactly those. A policy without any, with
    `[gate] defaults` on (the default), gates every metric of the candidate or of the
    previous release whose name says which way is better, with zero slack (a metric
    dropped from the candidate stays gated). Metrics are claims: the verdict lists both.
    """
    rules = list(config.gates.values())
    by_name: list[str] = []
    ungated: list[str] = []
    defaults = config.default_gates and not config.gates
    for name in sorted(set(names) - set(config.gates)):
        direction = direction_by_name(name) if defaults else None
        if direction is None:
            ungated.append(name)
        else:
            rules.append(GateRule(name, direction))
            by_name.append(name)
    return rules, by_name, ungated


def eval_set_of(note: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    """The identity of the evaluation set a note's metric was measured on, if recorded.

    `eval_sets` maps metric prefixes to identities (the longest prefix of the metric
    wins); stored predictions carry one too (older ones only their labels' md5).
    """
    if not isinstance(note, dict):
        return None
    sets = note.get("eval_sets")
    if isinstance(sets, dict):
        prefixes = [k for k in sets if isinstance(k, str) and metric.startswith(k)]
        for prefix in sorted(prefixes, key=len, reverse=True):
            found = sets[prefix]
            if isinstance(found, dict) and isinstance(found.get("md5"), str):
                return found
    entry = note.get("predictions")
    if isinstance(entry, dict) and metric.startswith(str(entry.get("prefix") or "")):
        found = entry.get("eval_set")
        if isinstance(found, dict) and isinstance(found.get("md5"), str):
            return found
        if isinstance(entry.get("labels_md5"), str):
            return {"md5": None, "by": "labels", "labels_md5": entry["labels_md5"]}
    return None


def same_eval_set(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """True/False when the identities can tell; None when the labels agree but one side
    names no examples (the same labels in the same order may be other examples)."""
    if a.get("by") == b.get("by") and a.get("by") != "labels" and a.get("md5"):
        return a.get("md5") == b.get("md5")
    if a.get("labels_md5") != b.get("labels_md5"):
        return False
    return None if "labels" in (a.get("by"), b.get("by")) else False


def _compare_eval_sets(v: Verdict, config: Config, tests: list[_Test], candidate: str) -> None:
    """Say (or refuse, by policy) when a comparison is across evaluation sets."""
    said: set[tuple[str, str]] = set()
    for t in tests:
        base_name = t.baseline[0]
        mine = eval_set_of(t.candidate_note, t.row.metric)
        theirs = eval_set_of(t.baseline[1], t.row.metric)
        if mine is None and theirs is None:
            continue
        if mine is None or theirs is None:
            key = (base_name, "unknown")
            if key not in said:
                said.add(key)
                who = candidate if mine is None else base_name
                v.notes.append(
                    f"{who} recorded no evaluation set: whether {candidate} and {base_name} "
                    "were measured on the same examples is unknown"
                )
            continue
        same = same_eval_set(mine, theirs)
        if same is None and ("", "labels") not in said:
            said.add(("", "labels"))
            v.notes.append(
                "evaluation sets are identified by their labels only (`git model eval "
                "--ids FILE` or `--inputs PATH` names the examples)"
            )
        if same is False:
            t.row.eval_set_differs = True
            line = (
                f"{t.row.metric}: {candidate} and {base_name} were measured on different "
                f"evaluation sets ({_set_name(mine)} vs {_set_name(theirs)})"
            )
            if config.eval_set_mismatch == "refuse":
                v.problems.append(line + " (release.eval-set-mismatch = refuse)")
            elif (base_name, line) not in said:
                said.add((base_name, line))
                v.notes.append(line + "; the comparison may not mean what it says")


def _set_name(identity: dict[str, Any]) -> str:
    by = identity.get("by", "labels")
    md5 = identity.get("md5") if by != "labels" else identity.get("labels_md5")
    n = identity.get("n")
    return f"{by} {str(md5)[:10]}" + (f", {n} examples" if isinstance(n, int) else "")


def repo_loader(repo: Any) -> Callable[[object, str], dict[str, Any]]:
    """Loads the predictions a note names from a Repo's cache (or its DVC remote)."""

    def load(entry: object, where: str) -> dict[str, Any]:
        from gitmodel.evaluate import load_predictions

        return load_predictions(repo, entry, where)

    return load


@dataclass
class _Test:
    """A comparison the noise rule may judge: the row, its rule, the baseline side."""

    row: MetricVerdict
    rule: GateRule
    baseline: tuple[str, dict[str, Any] | None, float | int]
    candidate_note: dict[str, Any] | None
    check: Any = None  # the bootstrap's NoiseCheck


def _noise_rule(
    v: Verdict,
    tests: list[_Test],
    candidate: str,
    load: Callable[[object, str], dict[str, Any]] | None,
    unavailable: str | None,
) -> None:
    """Let the noise rule (opt-in per metric, `significance`) judge release comparisons.

    Superiority (the default): a comparison that fails the plain rule is refused only
    when the drop beyond the slack is demonstrated, one-sided at the metric's
    significance, with Holm's step-down over every noise-judged comparison of the
    verdict. Non-inferiority (`mode = "non-inferiority"`): a comparison passes only when
    the one-sided bound shows the change is above -margin; no correction is needed (all
    must pass, an intersection-union test).
    """
    noisy = [t for t in tests if t.rule.significance is not None]
    if not noisy:
        return
    if load is None:
        why = unavailable or "no stored predictions can be read here"
        v.rule = f"plain (noise rule not run: {why})"
        for t in noisy:
            if t.rule.mode == "non-inferiority":
                t.row.passed = False
                t.row.reason = "non-inferiority not shown"
            if not t.row.passed:
                t.row.noise = {"applied": False, "reason": f"{why}: plain rule applied"}
        return
    try:
        from gitmodel.bootstrap import noise_check
    except ImportError:  # the science extras are not part of this installation
        v.rule = "plain (noise rule not installed: pip install gitmodel[science])"
        return
    family: list[_Test] = []
    for t in noisy:
        ni = t.rule.mode == "non-inferiority"
        if t.row.passed and not ni:
            family.append(t)  # needs no test: p is taken as 1 (it cannot be refused)
            continue
        assert t.row.new is not None
        try:
            t.check = noise_check(
                t.rule,
                load,
                (t.baseline[0], t.baseline[1], float(t.baseline[2])),
                (f"the candidate {candidate}", t.candidate_note, float(t.row.new)),
                slack=t.rule.margin if ni else float(t.row.slack or 0.0),
            )
        except Exception as exc:  # never let the statistics turn a verdict into a crash
            t.row.noise = {
                "applied": False,
                "reason": f"noise rule failed ({clean_text(exc, 120)}): plain rule applied",
            }
            if ni:
                t.row.passed, t.row.reason = False, "non-inferiority not shown"
            continue
        if not t.check.applied:
            t.row.noise = t.check.to_json()
            if ni:
                t.row.passed, t.row.reason = False, "non-inferiority not shown"
                t.row.noise["reason"] = f"{t.check.reason}: non-inferiority cannot be shown"
            else:
                t.row.noise["reason"] = f"{t.check.reason}: plain rule applied"
            continue
        if ni:
            _non_inferiority(t)
        else:
            family.append(t)
    _holm(family)
    used = [t for t in noisy if t.check is not None and t.check.applied]
    if used:
        levels = sorted({t.rule.significance or 0.0 for t in used})
        v.rule = "noise (one-sided at " + ", ".join(f"{a:g}" for a in levels) + ")"
        if len(family) > 1:
            v.notes.append(
                f"Holm's correction over {len(family)} noise-judged comparison(s) at family "
                f"level {min(t.rule.significance or 1 for t in family):g} "
                "(those that pass the plain rule count, with p = 1)"
            )


def _holm(family: list[_Test]) -> None:
    """Holm's step-down over the family's one-sided p-values (untested ones count as 1)."""
    if not family:
        return
    from gitmodel.bootstrap import describe_test

    alpha = min(t.rule.significance or 1.0 for t in family)
    tested = [t for t in family if t.check is not None]
    tested.sort(key=lambda t: t.check.result.p_value)
    m = len(family)
    still_rejecting = True
    for i, t in enumerate(tested):
        threshold = alpha / (m - i)
        result = t.check.result
        refused = still_rejecting and result.p_value <= threshold
        if not refused:
            still_rejecting = False
        how = f" (Holm, {i + 1} of {m})" if m > 1 else ""
        noise = t.check.to_json()
        noise["reason"] = describe_test(result, threshold, refused, how)
        noise["threshold"] = threshold
        noise["refused"] = refused
        t.row.noise = noise
        t.row.passed = not refused
        t.row.reason = "drop demonstrated" if refused else "drop not demonstrated"


def _non_inferiority(t: _Test) -> None:
    from gitmodel.bootstrap import POWER, z_score

    result = t.check.result
    margin = t.rule.margin
    worst = result.worst
    shown = worst > -margin if t.rule.direction == "higher" else worst < margin
    pct = f"{result.confidence * 100:g}%"
    side = "lower" if t.rule.direction == "higher" else "upper"
    limit = -margin if t.rule.direction == "higher" else margin
    where = "above" if t.rule.direction == "higher" else "below"
    text = (
        f"non-inferiority {'shown' if shown else 'not shown'}: the one-sided {pct} {side} "
        f"bound {worst:+.4g} is {where if shown else 'not ' + where} {limit:+.4g} "
        f"(delta {result.delta:+.4g}); {result.how()}"
    )
    noise = t.check.to_json()
    # An equal model passes with 80% power only when margin > (z_a + z_power) * se.
    needed = (z_score(result.confidence) + z_score(POWER)) * result.se
    if needed >= margin and result.se > 0:
        n_needed = int(math.ceil(result.n * (needed / margin) ** 2))
        text += (
            f"; the evaluation set ({result.n} examples) is too small for margin {margin:g}: "
            f"even an equal model passes with less than {POWER:.0%} power (about "
            f"{n_needed} examples needed)"
        )
        noise["too_small"] = True
    noise["reason"] = text
    t.row.noise = noise
    t.row.passed = shown
    t.row.slack = margin
    t.row.reason = "non-inferior" if shown else "non-inferiority not shown"


def _summary(v: Verdict) -> str:
    failed = [m for m in v.metrics if not m.passed]
    if v.problems:
        why = v.problems[0]
    elif failed:
        parts = []
        for m in failed:
            if m.new is None:
                parts.append(f"{m.metric} is missing")
            elif m.kind in ("minimum", "maximum"):
                side = "below" if m.kind == "minimum" else "above"
                parts.append(f"{m.metric} {_num(m.new)} is {side} the {m.kind} {_num(m.previous)}")
            elif m.reason == "non-inferiority not shown":
                parts.append(f"{m.metric}: non-inferiority to {m.against} not shown")
            else:
                worse = abs(m.delta or 0)
                what = f" ({m.reason})" if m.reason and m.kind == "previous" else ""
                parts.append(
                    f"{m.metric} is worse than {m.baseline} by {worse:.6g} "
                    f"(slack {_num(m.slack)}){what}"
                )
        why = "; ".join(parts)
    else:
        why = ""
    if v.override is not None:
        return f"OVERRIDDEN: {why}; released anyway: {v.override}"
    if not v.passed:
        return f"FAIL: {why}"
    if v.previous_tag is None and not any(m.kind != "previous" for m in v.metrics):
        return f"PASS: {v.candidate} is the first release of its line with metrics"
    if not v.metrics:
        return (
            "PASS: no gated metrics (no [gate.NAME] table, and no metric named for its direction)"
        )
    gated = list(dict.fromkeys(m.metric for m in v.metrics))
    against = f" than {v.previous_tag}" if v.previous_tag else ""
    since = f" from {v.previous_tag}" if v.previous_tag else ""
    unshown = list(
        dict.fromkeys(m.metric for m in v.metrics if m.reason == "drop not demonstrated")
    )
    if unshown:
        return (
            f"PASS: {v.candidate}: a drop{since} on {', '.join(unshown)} is not demonstrated "
            f"(see the bounds); {_metrics_count(len(gated))}"
        )
    return f"PASS: {v.candidate} is no worse{against} on {_metrics_count(len(gated))}"


def _metrics_count(n: int) -> str:
    return f"{n} gated metric" if n == 1 else f"{n} gated metrics"


# -- the gate over a repository ----------------------------------------------------------


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
        notes: NoteSource | Sequence[NoteSource],
        baseline_notes: Sequence[NoteSource] | None = None,
        tags: list[ReleaseTag] | None = None,
        repo: Workspace | None = None,
        reference: str | None = LOCAL_REFERENCE,
        pinned: bool = False,
    ) -> None:
        self.root = root
        self.config = config
        self.notes = [notes] if isinstance(notes, NoteSource) else list(notes)
        self.baseline_notes = list(baseline_notes) if baseline_notes else self.notes
        self._tags = tags
        self.repo = repo
        # The noise rule's evidence: a loader of stored predictions (from the repository's
        # cache, or its DVC remote); without one, verdicts say why the rule could not run.
        self.predictions: Callable[[object, str], dict[str, Any]] | None = (
            repo_loader(repo) if repo is not None else None
        )
        self.noise_unavailable: str | None = None
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
        for release in releases_before(candidate, model or "", when, self.tags):
            note = self._metrics_note(release, model)
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
            note = self._first_note(self.notes, commit)
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
            label or tag or commit[:12],
            commit,
            model,
            note,
            note_error,
            previous[0] if previous else None,
            previous[1] if previous else None,
            tag,
            history=history,
            predictions=self.predictions,
            noise_server=self.noise_unavailable,
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
    gate = Gate(repo.root, policy.config or repo.config, NoteSource.from_ref(repo.root), repo=repo)
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
