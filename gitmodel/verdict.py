"""A release gate's verdict: what was compared with what, under which rule, and the result.

Plain records with their JSON and text forms; gitmodel.gate fills them in (pure), the
doors and commands render them.
"""

from __future__ import annotations

from gitmodel.metrics import tidy
from gitmodel.record import Record

# Records, not dataclasses: verdicts are made inside `git tag` (see gitmodel.record).
TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any


def clean_text(text: object, limit: int = 300) -> str:
    """Text from a note or tag (untrusted) made safe to print: no control characters."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return s if len(s) <= limit else s[: limit - 3] + "..."


class MetricVerdict(Record):
    __slots__ = (
        "metric",
        "direction",
        "previous",
        "new",
        "delta",
        "slack",
        "passed",
        "reason",
        "noise",
        "kind",
        "against",
        "eval_set_differs",
    )

    def __init__(
        self,
        metric: str,
        direction: str,
        previous: float | int | None,
        new: float | int | None,
        delta: float | int | None,  # new - previous
        slack: float | None,
        passed: bool,
        reason: str = "",  # why, when it is not a plain comparison
        noise: dict[str, Any] | None = None,  # the noise-aware rule's finding, when it ran
        # What the candidate was compared with: "previous" (the previous release), "drift"
        # (the best or pinned earlier release), "minimum"/"maximum" (a floor in the policy).
        kind: str = "previous",
        against: str | None = None,  # the release tag (previous, drift) or None (a floor)
        eval_set_differs: bool = False,  # measured on another evaluation set than the baseline
    ) -> None:
        self.metric = metric
        self.direction = direction
        self.previous = previous
        self.new = new
        self.delta = delta
        self.slack = slack
        self.passed = passed
        self.reason = reason
        self.noise = noise
        self.kind = kind
        self.against = against
        self.eval_set_differs = eval_set_differs

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


class Verdict(Record):
    __slots__ = (
        "candidate",
        "commit",
        "model",
        "previous_tag",
        "previous_commit",
        "metrics",
        "problems",
        "notes",
        "passed",
        "override",
        "policy",
        "summary",
        "rule",
    )

    def __init__(
        self,
        candidate: str,  # the tag name, or the revision checked
        commit: str,
        model: str | None,
        previous_tag: str | None,
        previous_commit: str | None,
        metrics: list[MetricVerdict] | None = None,
        problems: list[str] | None = None,  # failures not tied to one metric
        notes: list[str] | None = None,  # informational lines
        passed: bool = True,
        override: str | None = None,  # the recorded reason a failing candidate passes anyway
        policy: str = "",  # which policy judged (file and where it was read)
        summary: str = "",
        rule: str = "plain",  # which decision rule judged: plain, or the noise rule's statement
    ) -> None:
        self.candidate = candidate
        self.commit = commit
        self.model = model
        self.previous_tag = previous_tag
        self.previous_commit = previous_commit
        self.metrics: list[MetricVerdict] = [] if metrics is None else metrics
        self.problems: list[str] = [] if problems is None else problems
        self.notes: list[str] = [] if notes is None else notes
        self.passed = passed
        self.override = override
        self.policy = policy
        self.summary = summary
        self.rule = rule

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


def summary(v: Verdict) -> str:
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
