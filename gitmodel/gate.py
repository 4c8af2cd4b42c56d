"""The release gate, pure: policy + candidate + baseline -> verdict.

`judge` reads no file, runs no git and imports no DVC: what it judges is handed in as
records (a `Candidate`, a `Baseline` of earlier releases with their notes, the policy as a
`gitmodel.config.Config`), and so is the noise rule's evidence (a `NoiseEvidence`, which
runs the bootstrap over stored predictions where they can be read). Gathering all that
from a repository (release tags, notes, the committed policy, stored predictions) is
gitmodel.evidence; the doors that call it are gitmodel.hooks.doors and the commands.

Each gated metric passes when it is no worse than the previous release's value beyond its
slack (tolerance + relative-tolerance * |previous|); exactly at the slack passes.
Metrics that opt into the noise rule are then judged by gitmodel.noise_rule (Holm's
step-down, non-inferiority) on the evidence handed in.

Per-model release lines (`NAME@v1.2.0`) use the note's `models.NAME.metrics`, or, when a
note has no `models` entry for NAME, its flat metrics under the prefix `NAME.` (what a
nested metrics file `{"NAME": {"accuracy": ...}}` flattens to).

An override is recorded in the candidate commit's note as
`"overrides": [{"tag": "v1.3.0", "reason": "...", "at": "...", "by": "..."}]`; a failing
candidate whose note carries an override for its tag passes, and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gitmodel.config import Config, GateRule, direction_by_name
from gitmodel.eval_sets import eval_set_of, same_eval_set, set_name
from gitmodel.metrics import MetricsError, validate_note_metrics
from gitmodel.noise_rule import Comparison, apply_noise_rule
from gitmodel.record import FrozenRecord
from gitmodel.verdict import MetricVerdict, Verdict, clean_text, summary

# Records, not dataclasses: the gate runs inside `git tag` (see gitmodel.record).
TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

    from gitmodel.noise_rule import NoiseEvidence
    from gitmodel.versions import ReleaseTag

# Float noise must not turn "exactly at the slack" into a failure: 0.9 - 0.89 is
# 0.010000000000000009 in binary floating point.
_EPSILON = 1e-9


# -- what is judged ----------------------------------------------------------------------


class Candidate(FrozenRecord):
    """What is judged: a commit's note, as the release `tag` (None: untagged, no override)."""

    __slots__ = ("name", "commit", "note", "model", "tag", "note_error")

    def __init__(
        self,
        name: str,  # how the verdict names it: the tag, a label, or the revision
        commit: str,
        note: dict[str, Any] | None = None,
        model: str | None = None,  # the release line (NAME@...), None for the main line
        tag: str | None = None,  # whose override counts
        note_error: str | None = None,  # the note exists but cannot be read
    ) -> None:
        self._set(name=name, commit=commit, note=note, model=model, tag=tag, note_error=note_error)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        name: str
        commit: str
        note: dict[str, Any] | None
        model: str | None
        tag: str | None
        note_error: str | None


class Release(FrozenRecord):
    """An earlier release and its note."""

    __slots__ = ("tag", "note")

    def __init__(self, tag: ReleaseTag, note: dict[str, Any]) -> None:
        self._set(tag=tag, note=note)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        tag: ReleaseTag
        note: dict[str, Any]


class Baseline(FrozenRecord):
    """What the candidate is compared with.

    `previous`: the release it must be no worse than (None: the first release).
    `history`: the line's earlier releases with metrics, nearest first, for the drift
    guard; None turns the guard off (an explicit `--against`, a promotion).
    """

    __slots__ = ("previous", "history")

    def __init__(
        self, previous: Release | None = None, history: Sequence[Release] | None = None
    ) -> None:
        self._set(previous=previous, history=history)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        previous: Release | None
        history: Sequence[Release] | None


NO_BASELINE = Baseline()  # a first release: nothing to compare with


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


# -- the plain rule ---------------------------------------------------------------------


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


if TYPE_CHECKING:
    # An earlier release with its metrics for the line being judged.
    _Earlier = tuple[ReleaseTag, dict[str, Any], dict[str, float | int]]


def drift_baseline(
    config: Config, rule: GateRule, history: Sequence[_Earlier]
) -> tuple[_Earlier, str] | None:
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
    since: list[_Earlier] = []
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
    policy: Config,
    candidate: Candidate,
    baseline: Baseline = NO_BASELINE,
    noise: NoiseEvidence | None = None,
) -> Verdict:
    """The verdict for a candidate against its baseline under policy (pure).

    Without `noise`, a metric the policy gates by the noise rule (`significance`) is
    judged by the plain rule and the verdict says why.
    """
    name, commit, model, note = candidate.name, candidate.commit, candidate.model, candidate.note
    previous = baseline.previous.tag if baseline.previous else None
    previous_note = baseline.previous.note if baseline.previous else None
    v = Verdict(name, commit, model, previous.name if previous else None,
                previous.commit if previous else None)  # fmt: skip
    metrics: dict[str, float | int] = {}
    if candidate.note_error:
        v.problems.append(candidate.note_error)
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
        if policy.require_metrics:
            v.problems.append(
                f"{name} ({commit[:10]}) has {missing} (release.require-metrics is true)"
            )
        else:
            v.notes.append(f"{name} has {missing}: not gated (release.require-metrics is false)")
            v.summary = f"PASS: {name} is not gated ({missing})"
            return v
    history = baseline.history
    earlier: list[_Earlier] = []
    for before in history or ([baseline.previous] if baseline.previous else []):
        try:
            line_metrics = model_metrics(before.note, model, before.tag.commit or "")
            earlier.append((before.tag, before.note, line_metrics))
        except MetricsError:
            continue
    tests: list[Comparison] = []
    rules, by_name, ungated = gated_rules(policy, [*metrics, *prev_metrics])
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
                tests.append(Comparison(mv, rule, (previous.name, previous_note, old), note))
            drift = drift_baseline(policy, rule, earlier) if history is not None else None
            if drift is not None and (previous is None or drift[0][0].name != previous.name):
                (release, rel_note, rel_metrics), why = drift
                base = rel_metrics[rule.metric]
                mv = compare(rule, base, new, rule.drift_slack(base))
                mv.kind, mv.against = "drift", release.name
                mv.reason = f"{why} earlier release"
                v.metrics.append(mv)
                tests.append(Comparison(mv, rule, (release.name, rel_note, base), note))
            v.metrics.extend(floors(rule, new))
    _compare_eval_sets(v, policy, tests, name)
    apply_noise_rule(v, tests, name, noise)
    v.passed = not v.regressed
    if not v.passed:
        override = override_for(note, candidate.tag)
        if override is not None:
            v.override = override
            v.passed = True
    v.summary = summary(v)
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


def _compare_eval_sets(v: Verdict, config: Config, tests: list[Comparison], candidate: str) -> None:
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
                f"evaluation sets ({set_name(mine)} vs {set_name(theirs)})"
            )
            if config.eval_set_mismatch == "refuse":
                v.problems.append(line + " (release.eval-set-mismatch = refuse)")
            elif (base_name, line) not in said:
                said.add((base_name, line))
                v.notes.append(line + "; the comparison may not mean what it says")
