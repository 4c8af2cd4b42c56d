"""The noise rule, applied to a verdict's comparisons (opt-in per metric, `significance`).

gitmodel.gate compares each gated metric by the plain rule and hands the comparisons the
noise rule judges here: superiority with Holm's step-down over the verdict's family, or
non-inferiority against a margin. The paired test itself comes from a `NoiseEvidence`
handed in (gitmodel.evidence runs it over stored predictions); this module only reads its
records (gitmodel.noise), so it stays pure and numpy-free like the gate.
"""

from __future__ import annotations

import math

from gitmodel.record import Record
from gitmodel.verdict import MetricVerdict, Verdict, clean_text

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any, Protocol

    from gitmodel.config import GateRule
    from gitmodel.noise import NoiseCheck

    # A side of a noise test: (name, note, the note's value of the metric).
    Side = tuple[str, "dict[str, Any] | None", float]

    class NoiseEvidence(Protocol):
        """The noise rule's evidence: a paired test of one gated metric between two notes.

        gitmodel.evidence.PredictionsEvidence runs the bootstrap over the stored predictions
        the notes name. `unavailable` says why there is no evidence here (the verdict shows
        it and the plain rule judges); None when `check` can be asked.
        """

        @property
        def unavailable(self) -> str | None: ...

        def check(
            self, rule: GateRule, baseline: Side, candidate: Side, slack: float
        ) -> NoiseCheck:
            """The test's finding; never raises for missing or unusable predictions."""
            ...


class Comparison(Record):
    """A comparison the noise rule may judge: the row, its rule, the baseline side."""

    __slots__ = ("row", "rule", "baseline", "candidate_note", "check")

    def __init__(
        self,
        row: MetricVerdict,
        rule: GateRule,
        baseline: tuple[str, dict[str, Any] | None, float | int],
        candidate_note: dict[str, Any] | None,
        check: NoiseCheck | None = None,  # the noise evidence's finding
    ) -> None:
        self.row = row
        self.rule = rule
        self.baseline = baseline
        self.candidate_note = candidate_note
        self.check = check


def apply_noise_rule(
    v: Verdict, tests: list[Comparison], candidate: str, evidence: NoiseEvidence | None
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
    why = "no stored predictions can be read here" if evidence is None else evidence.unavailable
    if evidence is None or why is not None:
        v.rule = f"plain (noise rule not run: {why})"
        for t in noisy:
            if t.rule.mode == "non-inferiority":
                t.row.passed = False
                t.row.reason = "non-inferiority not shown"
            if not t.row.passed:
                t.row.noise = {"applied": False, "reason": f"{why}: plain rule applied"}
        return
    family: list[Comparison] = []
    for t in noisy:
        ni = t.rule.mode == "non-inferiority"
        if t.row.passed and not ni:
            family.append(t)  # needs no test: p is taken as 1 (it cannot be refused)
            continue
        assert t.row.new is not None
        try:
            t.check = evidence.check(
                t.rule,
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


def _holm(family: list[Comparison]) -> None:
    """Holm's step-down over the family's one-sided p-values (untested ones count as 1)."""
    if not family:
        return
    from gitmodel.noise import describe_test

    alpha = min(t.rule.significance or 1.0 for t in family)
    # Only applied checks join a family untested (p = 1): see apply_noise_rule.
    tested = [(t, t.check, t.check.result) for t in family if t.check and t.check.result]
    tested.sort(key=lambda found: found[2].p_value)
    m = len(family)
    still_rejecting = True
    for i, (t, check, result) in enumerate(tested):
        threshold = alpha / (m - i)
        refused = still_rejecting and result.p_value <= threshold
        if not refused:
            still_rejecting = False
        how = f" (Holm, {i + 1} of {m})" if m > 1 else ""
        noise = check.to_json()
        noise["reason"] = describe_test(result, threshold, refused, how)
        noise["threshold"] = threshold
        noise["refused"] = refused
        t.row.noise = noise
        t.row.passed = not refused
        t.row.reason = "drop demonstrated" if refused else "drop not demonstrated"


def _non_inferiority(t: Comparison) -> None:
    from gitmodel.noise import POWER, z_score

    check = t.check
    assert check is not None and check.result is not None  # an applied check
    result = check.result
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
    noise = check.to_json()
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
