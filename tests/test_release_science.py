"""The gate's statistical decision rule, judged in-process on predictions held in memory.

Each test builds notes the way `git model eval --store` and `git model commit` write them
(the real predictions record and metrics code) and hands the gate a loader of the stored
objects, so the verdict is the one every door computes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from gitmodel.bootstrap import paired_bootstrap
from gitmodel.config import parse_config_text
from gitmodel.evaluate import classification_metrics, note_entry, predictions_record
from gitmodel.evidence import PredictionsEvidence
from gitmodel.gate import Baseline, Candidate, Release, judge
from gitmodel.verdict import Verdict
from gitmodel.versions import ReleaseTag, parse_tag


class Store:
    """Predictions objects by md5, as the cache holds them."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def load(self, entry: object, where: str) -> dict[str, Any]:
        assert isinstance(entry, dict)
        return self.objects[entry["md5"]]

    def note(self, y: np.ndarray, pred: np.ndarray, **override: float) -> dict[str, Any]:
        classes = np.unique(y)
        record = predictions_record("classification", y, pred, None, classes.tolist())
        data = json.dumps(record).encode()
        md5 = hashlib.md5(data).hexdigest()
        self.objects[md5] = record
        metrics = classification_metrics(y, pred, None, classes)
        metrics.update(override)
        return {"metrics": metrics, "predictions": note_entry(record, md5, len(data))}


def policy(gates: str, release: str = "") -> Any:
    return parse_config_text(f'[release]\ntags = "v*"\n{release}\n{gates}', ".gitmodel.toml")


ACCURACY = """
[gate.accuracy]
direction = "higher"
significance = 0.05
"""


def release(name: str, n: int = 0) -> ReleaseTag:
    return ReleaseTag(parse_tag(name), f"{n:040x}", n)


def verdict(
    cfg: Any,
    store: Store,
    cand: dict[str, Any],
    history: list[tuple[str, dict[str, Any]]],
    tag: str = "v9.0.0",
) -> Verdict:
    """Judge cand as tag; history: earlier releases (name, note), nearest first."""
    earlier = [Release(release(name, i + 1), note) for i, (name, note) in enumerate(history)]
    prev = earlier[0] if earlier else None
    return judge(
        cfg, Candidate(tag, "c" * 40, cand, tag=tag), Baseline(prev, earlier),
        PredictionsEvidence(store.load),
    )  # fmt: skip


def labels(n: int, seed: int = 0, k: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, n)


def changed(y: np.ndarray, base: np.ndarray, worse: int, better: int, seed: int = 1) -> np.ndarray:
    """base with `worse` right answers made wrong and `better` wrong answers made right."""
    rng = np.random.default_rng(seed)
    out = base.copy()
    right, wrong = np.flatnonzero(base == y), np.flatnonzero(base != y)
    for i in rng.choice(right, worse, replace=False):
        out[i] = 1 - y[i]
    for i in rng.choice(wrong, better, replace=False):
        out[i] = y[i]
    return out


def base_model(y: np.ndarray, acc: float = 0.9, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y)) < acc, y, 1 - y)


def row(v: Verdict, metric: str = "accuracy", kind: str = "previous") -> Any:
    (found,) = [m for m in v.metrics if m.metric == metric and m.kind == kind]
    return found


# -- 1. both sides' predictions must reproduce their notes -----------------------------------


def test_candidate_predictions_must_reproduce_its_note() -> None:
    store = Store()
    y = labels(500)
    base = base_model(y)
    v1 = store.note(y, base)
    # Committed with --metric accuracy=0.80 while the pending predictions were stale.
    stale = store.note(y, base, accuracy=0.80)
    v = verdict(policy(ACCURACY), store, stale, [("v1.0.0", v1)])
    m = row(v)
    assert not v.passed and not m.passed
    assert m.noise["applied"] is False
    assert "stored predictions of the candidate v9.0.0 give accuracy" in m.noise["reason"]
    assert "not its note's 0.8" in m.noise["reason"]
    assert "plain rule applied" in m.noise["reason"]


def test_baseline_predictions_must_reproduce_its_note() -> None:
    store = Store()
    y = labels(500)
    base = base_model(y)
    v1 = store.note(y, base, accuracy=0.99)
    cand = store.note(y, changed(y, base, 3, 0))
    m = row(verdict(policy(ACCURACY), store, cand, [("v1.0.0", v1)]))
    assert not m.passed
    assert "stored predictions of v1.0.0 give accuracy" in m.noise["reason"]


# -- 2. one-sided at alpha, honest wording, non-inferiority ------------------------------------


def test_refusal_is_one_sided_at_the_stated_level() -> None:
    store = Store()
    y = labels(2000)
    base = base_model(y)
    v1 = store.note(y, base)
    # 46 answers lost, 30 gained: z about 1.8, beyond 1.645 (one-sided 5%) but not 1.96.
    cand_pred = changed(y, base, 46, 30)
    boot = paired_bootstrap("accuracy", "classification", y, base, cand_pred)
    assert 0.025 < boot.p_value <= 0.05, boot
    v = verdict(policy(ACCURACY), store, store.note(y, cand_pred), [("v1.0.0", v1)])
    m = row(v)
    assert not v.passed and m.reason == "drop demonstrated", v.text()
    assert "one-sided 95% upper bound" in m.noise["reason"]
    assert m.noise["bootstrap"]["ci_high"] < 0


def test_a_pass_says_the_drop_is_not_demonstrated_and_what_could_be_seen() -> None:
    store = Store()
    y = labels(500)
    base = base_model(y)
    v1 = store.note(y, base)
    # Another model with independent errors, 1.2 points worse on this set.
    other = base_model(y, 0.89, seed=5)
    assert (other == y).mean() - (base == y).mean() < 0
    v = verdict(policy(ACCURACY), store, store.note(y, other), [("v1.0.0", v1)])
    m = row(v)
    assert v.passed and m.reason == "drop not demonstrated", v.text()
    text = m.noise["reason"]
    low = m.noise["bootstrap"]["ci_low"]
    assert f"drop not demonstrated (the interval allows down to {low:+.4g})" in text
    assert "one-sided 95% upper bound" in text
    assert "2000 of 2000 resamples used" in text
    detectable = float(text.split("smallest drop detectable with 80% power ")[1].split(";")[0])
    assert 0.02 < detectable < 0.08  # about 5 points at n=500, as the simulations say
    assert "not demonstrated" in v.summary and "no worse" not in v.summary
    assert "drop within noise" not in v.text()


NON_INFERIORITY = """
[gate.accuracy]
direction = "higher"
significance = 0.05
mode = "non-inferiority"
margin = {margin}
"""


def test_non_inferiority_passes_only_when_the_bound_is_above_minus_margin() -> None:
    store = Store()
    y = labels(5000)
    base = base_model(y)
    v1 = store.note(y, base)
    same = store.note(y, changed(y, base, 10, 10))
    ok = verdict(policy(NON_INFERIORITY.format(margin=0.02)), store, same, [("v1.0.0", v1)])
    m = row(ok)
    assert ok.passed and m.reason == "non-inferior", ok.text()
    assert "too small" not in m.noise["reason"]
    # A 1-point drop passes the plain rule at tolerance 0.02 but is not non-inferior at 0.005.
    worse = store.note(y, changed(y, base, 50, 0))
    bad = verdict(policy(NON_INFERIORITY.format(margin=0.005)), store, worse, [("v1.0.0", v1)])
    assert not bad.passed and row(bad).reason == "non-inferiority not shown"


def test_non_inferiority_says_when_the_set_is_too_small_for_the_margin() -> None:
    store = Store()
    y = labels(200)
    base = base_model(y)
    v1 = store.note(y, base)
    equal = store.note(y, base_model(y, 0.9, seed=7))  # as good, with its own errors
    v = verdict(policy(NON_INFERIORITY.format(margin=0.005)), store, equal, [("v1.0.0", v1)])
    m = row(v)
    assert not v.passed
    assert "too small for margin 0.005" in m.noise["reason"]
    needed = int(m.noise["reason"].split("about ")[-1].split(" examples")[0])
    assert needed > 200


def test_non_inferiority_without_predictions_fails() -> None:
    cfg = policy(NON_INFERIORITY.format(margin=0.01))
    v = verdict(
        cfg, Store(), {"metrics": {"accuracy": 0.95}}, [("v1.0.0", {"metrics": {"accuracy": 0.9}})]
    )
    assert not v.passed
    assert "no stored predictions on v1.0.0" in row(v).noise["reason"]


# -- 3. drift guard and floors --------------------------------------------------------------------

PLAIN = """
[gate.accuracy]
direction = "higher"
tolerance = 0.005
"""


def chain(values: list[float]) -> list[tuple[str, dict[str, Any]]]:
    """Releases v1.0.0... with these accuracies, returned nearest first."""
    out = [(f"v1.{i}.0", {"metrics": {"accuracy": a}}) for i, a in enumerate(values)]
    return out[::-1]


def test_small_drops_do_not_add_up_unchecked() -> None:
    cfg = policy(PLAIN)
    values = [0.9 - 0.004 * i for i in range(3)]
    earlier = chain(values[:2])
    v = verdict(cfg, Store(), {"metrics": {"accuracy": values[2]}}, earlier, "v1.2.0")
    assert not v.passed, v.text()
    assert row(v).passed  # 0.4 points below v1.1.0: within the tolerance
    drift = row(v, kind="drift")
    assert not drift.passed and drift.against == "v1.0.0" and drift.previous == 0.9
    text = v.text()
    assert "v1.0.0 (drift)" in text and "v1.1.0" in text
    assert "worse than v1.0.0 (drift) by 0.008" in v.summary


def test_drift_has_its_own_slack_can_be_pinned_or_off() -> None:
    values = [0.9, 0.896, 0.892]
    cand = {"metrics": {"accuracy": 0.888}}
    loose = policy(PLAIN + "drift-tolerance = 0.02\n")
    assert verdict(loose, Store(), cand, chain(values), "v1.3.0").passed
    pinned = policy(PLAIN, 'drift = "v1.1.0"')
    v = verdict(pinned, Store(), cand, chain(values), "v1.3.0")
    assert not v.passed and row(v, kind="drift").against == "v1.1.0"
    assert "pinned" in row(v, kind="drift").reason
    off = policy(PLAIN, 'drift = "off"')
    v = verdict(off, Store(), cand, chain(values), "v1.3.0")
    assert v.passed and not [m for m in v.metrics if m.kind == "drift"]


def test_an_override_restarts_the_drift_count() -> None:
    history = chain([0.9, 0.8])
    history[0][1]["overrides"] = [{"tag": "v1.1.0", "reason": "new, harder labels"}]
    v = verdict(policy(PLAIN), Store(), {"metrics": {"accuracy": 0.799}}, history, "v1.2.0")
    assert v.passed, v.text()


def test_minimum_and_maximum_floors() -> None:
    cfg = policy(PLAIN + 'minimum = 0.85\n[gate.loss]\ndirection = "lower"\nmaximum = 0.3\n')
    v = verdict(cfg, Store(), {"metrics": {"accuracy": 0.84, "loss": 0.31}}, [], "v1.0.0")
    assert not v.passed
    assert not row(v, kind="minimum").passed and not row(v, "loss", kind="maximum").passed
    assert "accuracy 0.84 is below the minimum 0.85" in v.summary
    assert "loss 0.31 is above the maximum 0.3" in v.summary
    ok = verdict(cfg, Store(), {"metrics": {"accuracy": 0.85, "loss": 0.3}}, [], "v1.0.0")
    assert ok.passed, ok.text()


# -- 4. several gated metrics: Holm ---------------------------------------------------------------

FOUR = "".join(
    f'\n[gate.{m}]\ndirection = "higher"\nsignificance = 0.05\n'
    for m in ("accuracy", "precision_macro", "recall_macro", "f1_macro")
)


def test_holm_across_gated_metrics() -> None:
    store = Store()
    y = labels(2000)
    base = base_model(y)
    v1 = store.note(y, base)
    cand = store.note(y, changed(y, base, 52, 33))
    # Each metric alone: a drop demonstrated at 5% (p about 0.017).
    alone = verdict(policy(ACCURACY), store, cand, [("v1.0.0", v1)])
    assert not alone.passed
    assert 0.0125 < row(alone).noise["bootstrap"]["p_value"] < 0.025
    # All four: Holm's smallest threshold is 0.05 / 4, and no p-value is below it.
    together = verdict(policy(FOUR), store, cand, [("v1.0.0", v1)])
    assert together.passed, together.text()
    assert any("Holm's correction over 4" in n for n in together.notes)
    for m in together.metrics:
        assert m.reason == "drop not demonstrated"
        assert m.noise["threshold"] <= 0.05 / 4 + 1e-12 or m.noise["refused"] is False
    assert "(Holm, 1 of 4)" in together.text()
    # A real drop on all four still fails all four.
    bad = verdict(policy(FOUR), store, store.note(y, changed(y, base, 120, 20)), [("v1.0.0", v1)])
    assert not bad.passed and all(m.reason == "drop demonstrated" for m in bad.metrics)


# -- 5. rare classes ------------------------------------------------------------------------------


def test_rare_class_is_warned_about() -> None:
    store = Store()
    y = labels(300, k=3)
    y[y == 2] = 0
    y[:3] = 2  # three examples of class 2
    base = base_model(y)
    base = np.where(base > 2, 0, base)
    cfg = policy('[gate.f1_macro]\ndirection = "higher"\nsignificance = 0.05\n')
    v1 = store.note(y, base)
    cand = base.copy()
    cand[10:20] = (y[10:20] + 1) % 3
    v = verdict(cfg, store, store.note(y, cand), [("v1.0.0", v1)])
    text = v.text()
    assert "warning: f1_macro: class 2 has 3 example(s)" in text, text
    assert "resamples miss it" in text
