"""The gate's noise question for one rule: is the candidate's drop against the baseline
real, judged on both notes' stored predictions?

The predictions must be evidence for their notes before any test runs: both sides on the
same evaluation set and labels, the metric recomputable from them, and each side's
predictions reproducing its note's value. Then ROC AUC goes to DeLong's test and every
other metric to the paired bootstrap (gitmodel.bootstrap, the statistics). Never raises
for missing or unusable predictions: the answer says why, and the gate applies the plain
rule.

numpy is imported inside the functions: this module is on no hook or --help path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitmodel.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PER_CLASS,
    BootstrapError,
    _scorer,
    delong_auc,
    paired_bootstrap,
    supported,
)
from gitmodel.errors import GitModelError
from gitmodel.noise import NoiseCheck

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from gitmodel.config import GateRule

# A resample misses a class of k examples with probability about e^-k: below 10 examples
# (5% at k=3, 0.7% at k=5) its per-class metrics are degenerate in a visible share.
RARE_CLASS = 10


def noise_check(
    rule: GateRule,
    load: Callable[[object, str], dict[str, Any]],
    baseline: tuple[str, dict[str, Any] | None, float],
    candidate: tuple[str, dict[str, Any] | None, float],
    *,
    slack: float,
    significance: float | None = None,
    resamples: int | None = None,
    seed: int = DEFAULT_SEED,
) -> NoiseCheck:
    """The paired test of rule's metric between two notes, each (name, note, note value).

    Both sides' stored predictions must reproduce their note's value (rounded to 4
    decimals still matches): predictions of another model, stale ones, or a hand-edited
    note are not evidence for the note. Never raises for missing or unusable predictions:
    it says why and which side, and the gate applies the plain rule.
    """
    import numpy as np

    alpha = significance if significance is not None else rule.significance
    if alpha is None:
        return NoiseCheck(None, "no significance set")
    (base_name, base_note, base_value), (cand_name, cand_note, cand_value) = baseline, candidate
    base_entry = (base_note or {}).get("predictions")
    cand_entry = (cand_note or {}).get("predictions")
    for entry, name in ((base_entry, base_name), (cand_entry, cand_name)):
        if not isinstance(entry, dict):
            return NoiseCheck(None, f"no stored predictions on {name}")
    assert isinstance(base_entry, dict) and isinstance(cand_entry, dict)
    sets = [e.get("eval_set") for e in (base_entry, cand_entry)]
    named = [(x.get("by"), x.get("md5")) for x in sets if isinstance(x, dict)]
    if len(named) == 2 and named[0][0] == named[1][0] != "labels" and named[0] != named[1]:
        return NoiseCheck(
            None, f"predictions of {base_name} and {cand_name} are on different evaluation sets"
        )
    if base_entry.get("labels_md5") != cand_entry.get("labels_md5"):
        return NoiseCheck(
            None, f"predictions of {base_name} and {cand_name} are on different evaluation sets"
        )
    try:
        base = load(base_entry, base_name)
        cand = load(cand_entry, cand_name)
    except GitModelError as exc:
        return NoiseCheck(None, exc.message)
    if base.get("y_true") != cand.get("y_true") or base.get("task") != cand.get("task"):
        return NoiseCheck(
            None, f"predictions of {base_name} and {cand_name} are on different evaluation sets"
        )
    task = str(cand.get("task"))
    metric = rule.metric
    prefix = str(cand.get("prefix") or "")
    if prefix and metric.startswith(prefix):
        metric = metric[len(prefix) :]
    if not supported(metric, task):
        return NoiseCheck(None, f"{rule.metric} cannot be recomputed from stored predictions")
    try:
        y_true = _array(cand["y_true"])
        classes = _array(cand["classes"]) if cand.get("classes") else None
        sides = (
            (base_name, _array(base["y_pred"]), base.get("proba"), base_value),
            (cand_name, _array(cand["y_pred"]), cand.get("proba"), cand_value),
        )
        ones = np.ones((1, len(y_true)))
        for name, pred, proba, value in sides:
            full = float(_scorer(metric, task, y_true, pred, proba, classes)(ones)[0])
            if not abs(full - value) <= 1e-4 * max(1.0, abs(value)):
                return NoiseCheck(
                    None,
                    f"the stored predictions of {name} give {metric} {full:.6g}, not its "
                    f"note's {value:.6g}",
                )
        warnings = _rare_classes(metric, task, y_true, classes)
        if metric == "roc_auc":
            result = delong_auc(
                y_true,
                sides[0][2],
                sides[1][2],
                direction=rule.direction,
                slack=slack,
                significance=alpha,
                classes=classes,
            )
        else:
            result = paired_bootstrap(
                metric,
                task,
                y_true,
                sides[0][1],
                sides[1][1],
                direction=rule.direction,
                slack=slack,
                significance=alpha,
                resamples=resamples or DEFAULT_RESAMPLES,
                seed=seed,
                previous_proba=sides[0][2],
                candidate_proba=sides[1][2],
                classes=classes,
            )
    except (BootstrapError, ValueError, TypeError, IndexError) as exc:
        message = exc.message if isinstance(exc, BootstrapError) else str(exc).splitlines()[0]
        return NoiseCheck(None, f"noise test not possible ({message})")
    return NoiseCheck(result, result.describe(), warnings)


def _rare_classes(metric: str, task: str, y_true: np.ndarray, classes: Any) -> tuple[str, ...]:
    """A warning per class so rare that resamples missing it make its metric degenerate."""
    import numpy as np

    if task != "classification" or metric not in PER_CLASS:
        return ()
    labels = np.asarray(classes) if classes is not None else np.unique(y_true)
    out = []
    for label in labels:
        count = int(np.count_nonzero(y_true == label))
        if count < RARE_CLASS:
            missed = (1 - count / len(y_true)) ** len(y_true)  # about e^-count
            out.append(
                f"class {label} has {count} example(s): about {missed:.1%} of resamples miss "
                f"it, and {metric} is degenerate on those"
            )
    return tuple(out)


def _array(values: list[Any]) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype == object:
        raise BootstrapError("stored predictions are not a flat array")
    return arr
