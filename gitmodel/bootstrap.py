"""Is a metric drop real or noise? A seeded paired bootstrap (DeLong for ROC AUC) over
stored predictions.

Both models were scored on the same examples, so each resample draws example indices once
and scores both models on them: the spread of the *difference* is what matters, and the
pairing removes the variance both models share (hard examples are hard for both).

Resamples are drawn as counts (how often each example is picked), so every
metric that is a sum over examples (per-class precision/recall/F1 too, and ROC AUC as a
Mann-Whitney sum over the examples sorted once by score) is computed for a block of
resamples with array operations instead of a Python loop per resample.

The decision rule (docs/release-science.md): with significance alpha and slack s, a
candidate's drop is *demonstrated* when the one-sided test of "the candidate is no worse
than the baseline by more than s" rejects at alpha: its p-value, the share of resamples in
which the change is not beyond -s (ties half), is at most alpha; equivalently the
one-sided upper bound of the change at level 1 - alpha lies below -s (higher is better;
mirrored for lower). ROC AUC is judged the same way
with a normal bound from DeLong's variance of the paired difference (as an influence
function: one value per example, so the multi-class one-vs-rest average is covered too),
which agrees with the bootstrap and is a hundred times faster.

The statistics only: whether two notes' stored predictions are evidence at all, and which
test answers the gate's question, is gitmodel.noise_check.

numpy is imported inside the functions: this module is on no hook or --help path.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError
from gitmodel.noise import BootstrapResult, z_score

if TYPE_CHECKING:
    import numpy as np

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
PER_CLASS = tuple(m for m in CLASSIFICATION if m not in ("accuracy", "log_loss"))


class BootstrapError(GitModelError):
    pass


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
    in `classes` order) are needed for log_loss and roc_auc. Macro and weighted averages
    are over `classes` (default: the labels of y_true) in every resample, as scikit-learn
    does with `labels=`: a resample that misses a class scores it 0, it does not drop it.
    """
    import numpy as np

    _check_args(metric, task, significance, direction)
    if resamples < MIN_RESAMPLES:
        raise BootstrapError(f"at least {MIN_RESAMPLES} resamples are needed, not {resamples}")
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
        with np.errstate(divide="ignore", invalid="ignore"):
            deltas[done : done + k] = scorer_cand(counts) - scorer_prev(counts)
        done += k
    deltas = deltas[np.isfinite(deltas)]  # e.g. ROC AUC on a resample with one class
    if deltas.size < MIN_RESAMPLES // 2:
        raise BootstrapError(
            f"{metric}: only {deltas.size} of {resamples} resamples could be scored"
        )
    alpha = significance
    low, high = (float(x) for x in np.quantile(deltas, [alpha, 1 - alpha]))
    # p-value of "no drop beyond the slack": the share of resamples not beyond it, a
    # resample exactly at it counting half (mid-p: counts over a few hundred examples tie
    # often, and counting ties whole made the test conservative, 3.1% at alpha 0.05 and
    # n=200), with the usual +1 so that it is never 0.
    edge = -slack if direction == "higher" else slack
    ties = int(np.count_nonzero(np.isclose(deltas, edge, rtol=0, atol=1e-12)))
    if direction == "higher":
        not_beyond = int(np.count_nonzero(deltas > edge + 1e-12))
    else:
        not_beyond = int(np.count_nonzero(deltas < edge - 1e-12))
    p_value = (not_beyond + 0.5 * ties + 1) / (deltas.size + 1)
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
        significant=p_value <= alpha,
        n=n,
        resamples=resamples,
        seed=seed,
        used=int(deltas.size),
        se=float(np.std(deltas, ddof=1)),
        p_value=p_value,
    )


def _check_args(metric: str, task: str, significance: float, direction: str) -> None:
    if not supported(metric, task):
        raise BootstrapError(f"metric {metric!r} cannot be recomputed from {task} predictions")
    if not 0 < significance < 1:
        raise BootstrapError("significance must be between 0 and 1")
    if direction not in ("higher", "lower"):
        raise BootstrapError('direction must be "higher" or "lower"')


def delong_auc(
    y_true: Any,
    previous_proba: Any,
    candidate_proba: Any,
    *,
    direction: str = "higher",
    slack: float = 0.0,
    significance: float = 0.05,
    classes: Any = None,
) -> BootstrapResult:
    """The change of ROC AUC with DeLong's variance of the paired difference.

    Each example's influence on each model's AUC (its placement among the other class,
    DeLong 1988) is summed over the one-vs-rest columns, so the variance of the
    difference keeps the pairing and the multi-class macro average is covered. Bounds are
    normal: delta -/+ z(1 - significance) * se.
    """
    import numpy as np

    _check_args("roc_auc", "classification", significance, direction)
    yt = np.asarray(y_true)
    labels = np.asarray(classes) if classes is not None else np.unique(yt)
    prev_auc, prev_psi = _auc_influence(yt, _proba(previous_proba, len(yt), labels), labels)
    cand_auc, cand_psi = _auc_influence(yt, _proba(candidate_proba, len(yt), labels), labels)
    delta = cand_auc - prev_auc
    se = float(np.sqrt(np.sum((cand_psi - prev_psi) ** 2)))
    z = z_score(1 - significance)
    low, high = delta - z * se, delta + z * se
    normal = NormalDist()
    if se > 0:
        # P(a change this low | the change is exactly at the slack)
        edge = (delta + slack) / se if direction == "higher" else (slack - delta) / se
        p_value = normal.cdf(edge)
    else:
        beyond = delta < -slack if direction == "higher" else delta > slack
        p_value = 0.0 if beyond else 1.0
    return BootstrapResult(
        metric="roc_auc",
        previous=prev_auc,
        candidate=cand_auc,
        delta=delta,
        ci_low=low,
        ci_high=high,
        confidence=1 - significance,
        slack=slack,
        direction=direction,
        significant=bool(high < -slack if direction == "higher" else low > slack),
        n=len(yt),
        resamples=0,
        seed=0,
        method="DeLong",
        used=0,
        se=se,
        p_value=p_value,
    )


def _proba(proba: Any, n: int, labels: np.ndarray) -> np.ndarray:
    import numpy as np

    if proba is None:
        raise BootstrapError("roc_auc needs stored probabilities (eval --proba)")
    pr = np.asarray(proba, dtype=np.float64)
    if pr.ndim != 2 or pr.shape != (n, len(labels)):
        raise BootstrapError("roc_auc: stored probabilities do not match the classes")
    return pr


def _auc_influence(
    y_true: np.ndarray, proba: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray]:
    """(AUC as scikit-learn computes it, each example's influence on it)."""
    import numpy as np

    n = len(y_true)
    if len(labels) == 2:
        columns = [(y_true == labels[1], proba[:, 1], labels[1])]
    else:
        rows = proba / proba.sum(axis=1, keepdims=True).clip(min=1e-300)
        columns = [(y_true == label, rows[:, i], label) for i, label in enumerate(labels)]
    aucs = []
    psi = np.zeros(n)
    for positive, values, label in columns:
        pos, neg = values[positive], values[~positive]
        m, k = len(pos), len(neg)
        if m == 0 or k == 0:
            raise BootstrapError(f"roc_auc: class {label} has no positive or no negative example")
        neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
        # Placements (ties count half): the share of negatives below each positive, and of
        # positives above each negative.
        v10 = (
            np.searchsorted(neg_sorted, pos, "left") + np.searchsorted(neg_sorted, pos, "right")
        ) / (2 * k)
        v01 = 1 - (
            np.searchsorted(pos_sorted, neg, "left") + np.searchsorted(pos_sorted, neg, "right")
        ) / (2 * m)
        auc = float(v10.mean())
        aucs.append(auc)
        psi[positive] += (v10 - auc) / m
        psi[~positive] += (v01 - auc) / k
    return float(np.mean(aucs)), psi / len(columns)


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
        # Over the fixed label set (scikit-learn's labels=): a class that a resample (or
        # one model's predictions) misses counts 0, so both models average the same classes.
        return value.mean(axis=1)

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
