"""Is a metric drop real or noise? A seeded paired bootstrap over stored predictions.

Both models were scored on the same examples, so each resample draws example indices once
and scores both models on them: the spread of the *difference* is what matters, and the
pairing removes the variance both models share (hard examples are hard for both).

Resamples are drawn as counts (how often each example is picked), so every
metric that is a sum over examples (per-class precision/recall/F1 too, and ROC AUC as a
Mann-Whitney sum over the examples sorted once by score) is computed for a block of
resamples with array operations instead of a Python loop per resample.

A gate refuses only when the whole confidence interval of the change (at level
1 - significance) lies beyond the slack: the drop is then bigger than the tolerance *and*
bigger than the evaluation set's noise.

numpy is imported inside the functions: this module is on no hook or --help path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    import numpy as np

    from gitmodel.config import GateRule
    from gitmodel.repo import Repo

DEFAULT_RESAMPLES = 2000
MIN_RESAMPLES = 1000
DEFAULT_SEED = 0
_BLOCK_CELLS = 4_000_000  # resamples x examples held in memory at once

CLASSIFICATION = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "log_loss",
    "roc_auc",
)
REGRESSION = ("mse", "rmse", "mae", "r2")


class BootstrapError(GitModelError):
    pass


@dataclass(frozen=True)
class BootstrapResult:
    metric: str
    previous: float  # the metric of the previous model on the whole evaluation set
    candidate: float
    delta: float  # candidate - previous
    ci_low: float  # confidence interval of delta
    ci_high: float
    confidence: float
    slack: float
    direction: str
    significant: bool  # the drop beyond the slack is significant: refuse
    n: int
    resamples: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        pct = f"{self.confidence * 100:g}%"
        verdict = (
            "drop beyond the slack is significant"
            if self.significant
            else "no significant drop beyond the slack"
        )
        return (
            f"paired bootstrap on {self.n} examples: delta {self.delta:+.4g}, "
            f"{pct} CI [{self.ci_low:+.4g}, {self.ci_high:+.4g}], slack {self.slack:.4g}: {verdict}"
        )


def supported(metric: str, task: str) -> bool:
    return metric in (CLASSIFICATION if task == "classification" else REGRESSION)


def paired_bootstrap(
    metric: str,
    task: str,
    y_true: Any,
    previous: Any,
    candidate: Any,
    *,
    direction: str = "higher",
    slack: float = 0.0,
    significance: float = 0.05,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    previous_proba: Any = None,
    candidate_proba: Any = None,
    classes: Any = None,
) -> BootstrapResult:
    """Bootstrap the change of `metric` from previous to candidate predictions.

    Deterministic for a given seed. `previous_proba`/`candidate_proba` (n x classes, columns
    in `classes` order) are needed for log_loss and roc_auc.
    """
    import numpy as np

    if not supported(metric, task):
        raise BootstrapError(f"metric {metric!r} cannot be recomputed from {task} predictions")
    if resamples < MIN_RESAMPLES:
        raise BootstrapError(f"at least {MIN_RESAMPLES} resamples are needed, not {resamples}")
    if not 0 < significance < 1:
        raise BootstrapError("significance must be between 0 and 1")
    if direction not in ("higher", "lower"):
        raise BootstrapError('direction must be "higher" or "lower"')
    yt = np.asarray(y_true)
    n = len(yt)
    if n == 0 or len(previous) != n or len(candidate) != n:
        raise BootstrapError("predictions and labels must have the same, non-zero length")
    scorer_prev = _scorer(metric, task, yt, np.asarray(previous), previous_proba, classes)
    scorer_cand = _scorer(metric, task, yt, np.asarray(candidate), candidate_proba, classes)
    ones = np.ones((1, n))
    prev_full = float(scorer_prev(ones)[0])
    cand_full = float(scorer_cand(ones)[0])

    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, _BLOCK_CELLS // n))
    deltas = np.empty(resamples)
    done = 0
    while done < resamples:
        k = min(block, resamples - done)
        # How often each example is drawn, per resample (a multinomial draw, done as
        # uniform indices + one bincount: much faster than rng.multinomial for large n).
        picks = rng.integers(0, n, size=(k, n)) + (np.arange(k) * n)[:, None]
        counts = np.bincount(picks.ravel(), minlength=k * n).reshape(k, n).astype(np.float64)
        deltas[done : done + k] = scorer_cand(counts) - scorer_prev(counts)
        done += k
    deltas = deltas[np.isfinite(deltas)]  # e.g. ROC AUC on a resample with one class
    if deltas.size < MIN_RESAMPLES // 2:
        raise BootstrapError(f"{metric}: too few resamples could be scored")
    alpha = significance
    low, high = (float(x) for x in np.quantile(deltas, [alpha / 2, 1 - alpha / 2]))
    # Worst acceptable change: the previous value minus (higher) or plus (lower) the slack.
    if direction == "higher":
        significant = high < -slack
    else:
        significant = low > slack
    return BootstrapResult(
        metric=metric,
        previous=prev_full,
        candidate=cand_full,
        delta=cand_full - prev_full,
        ci_low=low,
        ci_high=high,
        confidence=1 - alpha,
        slack=slack,
        direction=direction,
        significant=bool(significant),
        n=n,
        resamples=resamples,
        seed=seed,
    )


def _scorer(
    metric: str, task: str, y_true: np.ndarray, pred: np.ndarray, proba: Any, classes: Any
) -> Any:
    """A function: counts (k resamples x n examples) -> the metric of each resample."""
    import numpy as np

    n = len(y_true)

    def mean_of(values: np.ndarray) -> Any:
        return lambda c: (c @ values) / n

    if task == "regression":
        yt, yp = y_true.astype(np.float64), pred.astype(np.float64)
        err = yp - yt
        if metric == "mse":
            return mean_of(err**2)
        if metric == "rmse":
            return lambda c: np.sqrt((c @ err**2) / n)
        if metric == "mae":
            return mean_of(np.abs(err))
        # r2 = 1 - SSE / SST, with the mean of y taken over the resample
        sq_err, y, y2 = err**2, yt, yt**2

        def r2(c: np.ndarray) -> np.ndarray:
            sst = c @ y2 - (c @ y) ** 2 / n
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(sst > 0, 1 - (c @ sq_err) / sst, np.nan)

        return r2

    if metric == "accuracy":
        return mean_of((pred == y_true).astype(np.float64))
    labels = np.asarray(classes) if classes is not None else np.unique(y_true)
    if metric in ("log_loss", "roc_auc"):
        if proba is None:
            raise BootstrapError(f"{metric} needs stored probabilities (eval --proba)")
        pr = np.asarray(proba, dtype=np.float64)
        if pr.ndim != 2 or pr.shape != (n, len(labels)):
            raise BootstrapError(f"{metric}: stored probabilities do not match the classes")
        index = np.searchsorted(labels, y_true)
        if metric == "log_loss":
            # scikit-learn normalises rows and clips at the dtype's epsilon; so do we.
            rows = pr / pr.sum(axis=1, keepdims=True).clip(min=1e-300)
            eps = np.finfo(np.float64).eps
            return mean_of(-np.log(np.clip(rows[np.arange(n), index], eps, 1 - eps)))
        return _roc_auc_scorer(y_true, pr, labels)

    onehot_true = (y_true[:, None] == labels[None, :]).astype(np.float64)
    onehot_pred = (pred[:, None] == labels[None, :]).astype(np.float64)
    hits = onehot_true * onehot_pred
    kind, _, average = metric.partition("_")

    def per_class(c: np.ndarray) -> np.ndarray:
        tp, pp, tt = c @ hits, c @ onehot_pred, c @ onehot_true
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "precision":
                value = np.where(pp > 0, tp / pp, 0.0)
            elif kind == "recall":
                value = np.where(tt > 0, tp / tt, 0.0)
            else:
                value = np.where(pp + tt > 0, 2 * tp / (pp + tt), 0.0)
        if average == "weighted":
            return (value * tt).sum(axis=1) / tt.sum(axis=1)
        # Like scikit-learn, average over the labels present in the (re)sample.
        present = (pp + tt) > 0
        return (value * present).sum(axis=1) / present.sum(axis=1)

    return per_class


def _roc_auc_scorer(y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> Any:
    """Weighted ROC AUC (Mann-Whitney, ties count half) for a block of resamples at once.

    Binary: the score is the second column. More classes: the macro average of one-vs-rest
    AUCs on row-normalised probabilities, as scikit-learn's multi_class="ovr".
    """
    import numpy as np

    if len(labels) == 2:
        columns = [(y_true == labels[1], proba[:, 1])]
    else:
        rows = proba / proba.sum(axis=1, keepdims=True).clip(min=1e-300)
        columns = [(y_true == label, rows[:, i]) for i, label in enumerate(labels)]
    prepared = []
    for positive, values in columns:
        pos_idx, neg_idx = np.flatnonzero(positive), np.flatnonzero(~positive)
        neg_order = neg_idx[np.argsort(values[neg_idx], kind="stable")]
        neg_sorted = values[neg_order]
        # For each positive: how many negatives score strictly lower, and lower or equal.
        below = np.searchsorted(neg_sorted, values[pos_idx], side="left")
        upto = np.searchsorted(neg_sorted, values[pos_idx], side="right")
        prepared.append((pos_idx, neg_order, below, upto))

    def score(c: np.ndarray) -> np.ndarray:
        aucs = []
        for pos_idx, neg_order, below, upto in prepared:
            # cum[:, j] = weight of the j lowest-scoring negatives
            cum = np.zeros((len(c), len(neg_order) + 1))
            np.cumsum(c[:, neg_order], axis=1, out=cum[:, 1:])
            wins = 0.5 * (cum[:, below] + cum[:, upto])  # ties count half
            posw = c[:, pos_idx]
            num = (posw * wins).sum(axis=1)
            den = posw.sum(axis=1) * cum[:, -1]
            with np.errstate(divide="ignore", invalid="ignore"):
                aucs.append(np.where(den > 0, num / den, np.nan))
        return np.mean(aucs, axis=0)  # NaN when any class lacks positives or negatives

    return score


# -- the gate's question ----------------------------------------------------------------


@dataclass(frozen=True)
class NoiseCheck:
    """What the noise-aware rule found for one gated metric."""

    result: BootstrapResult | None  # None: fell back to the plain rule
    reason: str  # why it fell back, or the bootstrap's one-line summary

    @property
    def applied(self) -> bool:
        return self.result is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "reason": self.reason,
            "bootstrap": self.result.to_json() if self.result else None,
        }


def noise_check(
    repo: Repo,
    rule: GateRule,
    previous_note: dict[str, Any] | None,
    candidate_note: dict[str, Any] | None,
    previous_value: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> NoiseCheck:
    """Run the bootstrap for rule when both notes carry predictions on the same labels.

    Never raises for missing or unusable predictions: it says why and the gate falls back
    to the plain rule.
    """
    from gitmodel.evaluate import EvalError, load_predictions

    if rule.significance is None:
        return NoiseCheck(None, "no significance set")
    prev_entry = (previous_note or {}).get("predictions")
    cand_entry = (candidate_note or {}).get("predictions")
    if not isinstance(prev_entry, dict) or not isinstance(cand_entry, dict):
        which = "the previous release" if not isinstance(prev_entry, dict) else "the candidate"
        return NoiseCheck(None, f"no stored predictions on {which}: plain rule applied")
    if prev_entry.get("labels_md5") != cand_entry.get("labels_md5"):
        return NoiseCheck(None, "predictions are on different evaluation sets: plain rule applied")
    try:
        prev = load_predictions(repo, prev_entry, "previous release")
        cand = load_predictions(repo, cand_entry, "candidate")
    except EvalError as exc:
        return NoiseCheck(None, f"{exc.message}: plain rule applied")
    if prev.get("y_true") != cand.get("y_true") or prev.get("task") != cand.get("task"):
        return NoiseCheck(None, "predictions are on different evaluation sets: plain rule applied")
    task = str(cand.get("task"))
    metric = rule.metric
    prefix = str(cand.get("prefix") or "")
    if prefix and metric.startswith(prefix):
        metric = metric[len(prefix) :]
    if not supported(metric, task):
        return NoiseCheck(
            None, f"{rule.metric} cannot be recomputed from stored predictions: plain rule applied"
        )
    try:
        result = paired_bootstrap(
            metric,
            task,
            _array(cand["y_true"]),
            _array(prev["y_pred"]),
            _array(cand["y_pred"]),
            direction=rule.direction,
            slack=rule.slack(previous_value),
            significance=rule.significance,
            resamples=resamples,
            seed=seed,
            previous_proba=prev.get("proba"),
            candidate_proba=cand.get("proba"),
            classes=_array(cand["classes"]) if cand.get("classes") else None,
        )
    except (BootstrapError, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, BootstrapError) else str(exc).splitlines()[0]
        return NoiseCheck(None, f"bootstrap not possible ({message}): plain rule applied")
    # The predictions must be the ones the note's metric came from (same model, same
    # metric); metrics written rounded to 4 decimals still match.
    if abs(result.previous - previous_value) > 1e-4 * max(1.0, abs(previous_value)):
        return NoiseCheck(
            None,
            f"the stored predictions give {metric} {result.previous:.6g}, not the previous "
            f"release's {previous_value:.6g}: plain rule applied",
        )
    return NoiseCheck(result, result.describe())


def _array(values: list[Any]) -> np.ndarray:
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype == object:
        raise BootstrapError("stored predictions are not a flat array")
    return arr
