"""The noise rule's findings: a bootstrap's result, what it showed, and its wording.

Records only, with no numpy: the pure gate (gitmodel.gate) reads them inside a `git tag`
hook, and gitmodel.bootstrap computes them (over stored predictions, with numpy) where
the evidence is gathered (gitmodel.evidence).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

POWER = 0.8  # the power at which the smallest detectable drop is reported


def z_score(p: float) -> float:
    return NormalDist().inv_cdf(p)


@dataclass(frozen=True)
class BootstrapResult:
    """The change of one metric from a baseline to a candidate, and how sure it is.

    `ci_low`/`ci_high` are each a one-sided bound at level `confidence` (together a
    two-sided interval at 1 - 2 * significance). `p_value` tests "no drop beyond the
    slack"; `significant` is that test at the unadjusted level (the gate may adjust it
    for several metrics, see gitmodel.gate).
    """

    metric: str
    previous: float  # the metric of the previous model on the whole evaluation set
    candidate: float
    delta: float  # candidate - previous
    ci_low: float
    ci_high: float
    confidence: float
    slack: float
    direction: str
    significant: bool  # the drop beyond the slack is demonstrated at the unadjusted level
    n: int
    resamples: int  # asked for (0 for DeLong)
    seed: int
    method: str = "paired bootstrap"
    used: int = 0  # resamples that could be scored (a resample may miss a class)
    se: float = 0.0  # standard error of delta
    p_value: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def significance(self) -> float:
        return 1 - self.confidence

    @property
    def bound(self) -> float:
        """The one-sided bound the refusal rule looks at (the better end)."""
        return self.ci_high if self.direction == "higher" else self.ci_low

    @property
    def worst(self) -> float:
        """How bad the change may be, at the same level (the worse end)."""
        return self.ci_low if self.direction == "higher" else self.ci_high

    def detectable(self, alpha: float | None = None, power: float = POWER) -> float:
        """The smallest drop beyond zero this test refuses with the given power."""
        a = self.significance if alpha is None else alpha
        return self.slack + (z_score(1 - a) + z_score(power)) * self.se

    def how(self) -> str:
        if self.method == "DeLong":
            return f"DeLong on {self.n} examples"
        return (
            f"paired bootstrap on {self.n} examples, {self.used} of {self.resamples} "
            f"resamples used, seed {self.seed}"
        )

    def describe(self) -> str:
        """One line for the verdict (unadjusted level; the gate words adjusted ones)."""
        return describe_test(self, self.significance, self.significant)


def describe_test(result: BootstrapResult, threshold: float, refused: bool, how: str = "") -> str:
    """The honest wording: what was shown, against which threshold, and what was not.

    `threshold` is the level the p-value was held to (alpha, or Holm's share of it).
    """
    pct = f"{result.confidence * 100:g}%"
    side = "upper" if result.direction == "higher" else "lower"
    limit = (-result.slack if result.direction == "higher" else result.slack) + 0.0  # no -0
    bad = "down" if result.direction == "higher" else "up"
    if refused:
        head = "drop demonstrated"
    else:
        head = f"drop not demonstrated (the interval allows {bad} to {result.worst:+.4g})"
    parts = [
        f"delta {result.delta:+.4g}",
        f"one-sided {pct} {side} bound {result.bound:+.4g} against {limit:+.4g}",
        f"p {result.p_value:.3g} {'<=' if refused else '>'} {threshold:.3g}" + how,
    ]
    if not refused:
        parts.append(
            f"smallest drop detectable with {POWER:.0%} power {result.detectable(threshold):.4g}"
        )
    parts.append(result.how())
    return f"{head}: " + "; ".join(parts)


@dataclass(frozen=True)
class NoiseCheck:
    """What the noise-aware rule found for one comparison of one gated metric."""

    result: BootstrapResult | None  # None: the noise rule could not be used
    reason: str  # why not, or the test's one-line summary
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def applied(self) -> bool:
        return self.result is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "reason": self.reason,
            "bootstrap": self.result.to_json() if self.result else None,
            "warnings": list(self.warnings),
        }
