"""The paired bootstrap, and the noise-aware release gate built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import Shell, write_bytes
from sklearn import metrics as skm

from gitmodel.bootstrap import BootstrapError, _scorer, paired_bootstrap


def flip(pred: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """pred with k of its correct answers made wrong (a drop of exactly k / n in accuracy)."""
    rng = np.random.default_rng(seed)
    right = np.flatnonzero(pred == y)
    chosen = rng.choice(right, size=k, replace=False)
    out = pred.copy()
    out[chosen] = 1 - y[chosen]
    return out


def binary_set(n: int, acc: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < acc, y, 1 - y)
    return y, pred


def test_small_drop_on_small_set_passes_large_drop_fails() -> None:
    y, prev = binary_set(200, 0.9)
    small = flip(prev, y, 2)  # -1 point on 200 examples: noise
    large = flip(prev, y, 30)  # -15 points: real
    r_small = paired_bootstrap("accuracy", "classification", y, prev, small, slack=0.002)
    r_large = paired_bootstrap("accuracy", "classification", y, prev, large, slack=0.002)
    assert r_small.delta == pytest.approx(-0.01)
    assert not r_small.significant
    assert r_small.ci_low < -0.002 <= r_small.ci_high
    assert r_large.delta == pytest.approx(-0.15)
    assert r_large.significant
    assert r_large.ci_high < -0.002
    assert r_small.resamples >= 1000 and r_small.confidence == pytest.approx(0.95)


def test_same_drop_on_a_large_set_is_significant() -> None:
    y, prev = binary_set(20000, 0.9)
    cand = flip(prev, y, 400)  # the same -2 points, now on 20,000 examples
    result = paired_bootstrap("accuracy", "classification", y, prev, cand, slack=0.002)
    assert result.significant


def test_deterministic_by_seed() -> None:
    y, prev = binary_set(300, 0.85)
    cand = flip(prev, y, 6)
    a = paired_bootstrap("f1_macro", "classification", y, prev, cand, seed=7)
    b = paired_bootstrap("f1_macro", "classification", y, prev, cand, seed=7)
    c = paired_bootstrap("f1_macro", "classification", y, prev, cand, seed=8)
    assert a == b
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_lower_is_better_direction() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=400)
    prev = y + rng.normal(scale=0.3, size=400)
    worse = y + rng.normal(scale=0.6, size=400)
    r = paired_bootstrap("rmse", "regression", y, prev, worse, direction="lower", slack=0.01)
    assert r.delta > 0 and r.significant and r.ci_low > 0.01
    same = paired_bootstrap(
        "rmse", "regression", y, prev, prev + 1e-4, direction="lower", slack=0.01
    )
    assert not same.significant


@pytest.mark.parametrize(
    "metric",
    [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "log_loss",
        "roc_auc",
    ],
)
def test_vectorised_classification_metrics_equal_scikit_learn(metric: str) -> None:
    rng = np.random.default_rng(5)
    n, k = 150, 3
    y = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
    proba = np.round(rng.random((n, k)), 2) + 0.01  # rounded: ties in ROC AUC
    proba /= proba.sum(axis=1, keepdims=True)
    idx = rng.integers(0, n, n)
    counts = np.bincount(idx, minlength=n)[None, :].astype(float)
    reference = {
        "accuracy": lambda i: skm.accuracy_score(y[i], pred[i]),
        "precision_macro": lambda i: skm.precision_score(
            y[i], pred[i], average="macro", zero_division=0
        ),
        "recall_macro": lambda i: skm.recall_score(y[i], pred[i], average="macro", zero_division=0),
        "f1_macro": lambda i: skm.f1_score(y[i], pred[i], average="macro", zero_division=0),
        "precision_weighted": lambda i: skm.precision_score(
            y[i], pred[i], average="weighted", zero_division=0
        ),
        "recall_weighted": lambda i: skm.recall_score(
            y[i], pred[i], average="weighted", zero_division=0
        ),
        "f1_weighted": lambda i: skm.f1_score(y[i], pred[i], average="weighted", zero_division=0),
        "log_loss": lambda i: skm.log_loss(y[i], proba[i], labels=[0, 1, 2]),
        "roc_auc": lambda i: skm.roc_auc_score(y[i], proba[i], multi_class="ovr"),
    }[metric]
    score = _scorer(metric, "classification", y, pred, proba, None)
    assert score(np.ones((1, n)))[0] == pytest.approx(reference(np.arange(n)))
    assert score(counts)[0] == pytest.approx(reference(idx))


@pytest.mark.parametrize("metric", ["mse", "rmse", "mae", "r2"])
def test_vectorised_regression_metrics_equal_scikit_learn(metric: str) -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=90)
    pred = y + rng.normal(scale=0.5, size=90)
    idx = rng.integers(0, 90, 90)
    counts = np.bincount(idx, minlength=90)[None, :].astype(float)
    ref = {
        "mse": skm.mean_squared_error,
        "rmse": lambda a, b: np.sqrt(skm.mean_squared_error(a, b)),
        "mae": skm.mean_absolute_error,
        "r2": skm.r2_score,
    }[metric]
    score = _scorer(metric, "regression", y, pred, None, None)
    assert score(counts)[0] == pytest.approx(ref(y[idx], pred[idx]))


def test_refuses_too_few_resamples_and_unknown_metrics() -> None:
    y, p = binary_set(20, 0.8)
    with pytest.raises(BootstrapError, match="at least 1000"):
        paired_bootstrap("accuracy", "classification", y, p, p, resamples=100)
    with pytest.raises(BootstrapError, match="cannot be recomputed"):
        paired_bootstrap("bleu", "classification", y, p, p)
    with pytest.raises(BootstrapError, match="needs stored probabilities"):
        paired_bootstrap("roc_auc", "classification", y, p, p)


# -- the noise-aware gate, end to end --------------------------------------------------------

GATE = """\
metrics-files = ["metrics.json"]
[release]
tags = "v*"
[gate.accuracy]
direction = "higher"
tolerance = 0.002
significance = 0.05
"""


def commit_model(
    sh: Shell, repo: Path, y: np.ndarray, pred: np.ndarray, seed: int, store: bool
) -> str:
    np.save(repo / "y.npy", y)
    np.save(repo / "p.npy", pred)
    args = ["eval", "--y-true", "y.npy", "--y-pred", "p.npy", "--task", "classification"]
    sh.gm(*args, *(["--store"] if store else []), cwd=repo)
    write_bytes(repo / "model.bin", 2000, seed=seed)
    sh.gm("commit", "model.bin", "-m", f"model {seed}", cwd=repo)
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def gate_verdict(repo: Path, commit: str) -> dict:
    evidence = pytest.importorskip("gitmodel.evidence")
    from gitmodel.repo import Repo

    return evidence.gate_for(Repo(repo)).verdict(commit).to_json()


@pytest.fixture
def gated_repo(sh: Shell, repo: Path) -> Path:
    (repo / ".gitmodel.toml").write_text(GATE)
    (repo / ".gitignore").write_text("*.npy\n")
    sh.git("add", ".gitmodel.toml", ".gitignore", cwd=repo)
    sh.git("commit", "-q", "-m", "gate on accuracy, noise-aware", cwd=repo)
    return repo


def test_gate_passes_a_drop_within_noise_refuses_a_real_one(sh: Shell, gated_repo: Path) -> None:
    repo = gated_repo
    y, prev = binary_set(200, 0.9)
    commit_model(sh, repo, y, prev, seed=1, store=True)
    sh.git("tag", "v1.0.0", cwd=repo)
    small = commit_model(sh, repo, y, flip(prev, y, 2), seed=2, store=True)
    v = gate_verdict(repo, small)
    (m,) = v["metrics"]
    assert v["passed"] and m["passed"], v
    assert m["delta"] == pytest.approx(-0.01)
    boot = m["noise"]["bootstrap"]
    assert boot["ci_low"] < -0.002 <= boot["ci_high"]
    assert m["reason"] == "drop not demonstrated"
    assert "drop not demonstrated (the interval allows down to" in m["noise"]["reason"]

    large = commit_model(sh, repo, y, flip(prev, y, 30), seed=3, store=True)
    v = gate_verdict(repo, large)
    (m,) = v["metrics"]
    assert not v["passed"] and not m["passed"]
    assert m["noise"]["bootstrap"]["significant"] is True
    assert m["noise"]["bootstrap"]["ci_high"] < -0.002

    # The same verdicts at the door a plain `git tag` goes through (reference-transaction).
    if (repo / ".git" / "hooks" / "reference-transaction").exists():
        sh.git("tag", "v1.1.0", small, cwd=repo)
        r = sh.git("tag", "v1.2.0", large, cwd=repo, check=False)
        assert r.returncode != 0
        assert "drop demonstrated" in r.stderr and "one-sided 95% upper bound" in r.stderr
        assert sh.git("tag", "-l", "v1.2.0", cwd=repo).stdout == ""


def test_gate_falls_back_without_predictions_or_on_another_set(sh: Shell, gated_repo: Path) -> None:
    repo = gated_repo
    y, prev = binary_set(200, 0.9)
    commit_model(sh, repo, y, prev, seed=1, store=True)
    sh.git("tag", "v1.0.0", cwd=repo)
    unstored = commit_model(sh, repo, y, flip(prev, y, 2), seed=2, store=False)
    v = gate_verdict(repo, unstored)
    (m,) = v["metrics"]
    assert not v["passed"]  # the plain rule: -0.01 is beyond the 0.002 tolerance
    assert m["noise"]["applied"] is False
    assert f"no stored predictions on the candidate {unstored[:12]}" in m["noise"]["reason"]
    assert "plain rule" in m["noise"]["reason"]

    y2, p2 = binary_set(200, 0.75, seed=9)
    other_set = commit_model(sh, repo, y2, p2, seed=3, store=True)
    (m,) = gate_verdict(repo, other_set)["metrics"]
    assert m["noise"]["applied"] is False
    assert "different evaluation sets" in m["noise"]["reason"]


def test_gate_falls_back_when_predictions_do_not_match_the_note(
    sh: Shell, gated_repo: Path
) -> None:
    repo = gated_repo
    y, prev = binary_set(200, 0.9)
    np.save(repo / "y.npy", y)
    np.save(repo / "p.npy", prev)
    sh.gm(
        "eval",
        "--y-true",
        "y.npy",
        "--y-pred",
        "p.npy",
        "--task",
        "classification",
        "--store",
        "-o",
        "-",
        cwd=repo,
    )
    write_bytes(repo / "model.bin", 2000, seed=1)
    # The note's accuracy is not what the stored predictions give (another model's, say).
    sh.gm("commit", "model.bin", "-m", "v1", "--metric", "accuracy=0.99", cwd=repo)
    sh.git("tag", "v1.0.0", cwd=repo)
    cand = commit_model(sh, repo, y, flip(prev, y, 2), seed=2, store=True)
    (m,) = gate_verdict(repo, cand)["metrics"]
    assert not m["passed"]
    assert m["noise"]["applied"] is False
    assert (
        "stored predictions of v1.0.0 give accuracy 0.87, not its note's 0.99"
        in m["noise"]["reason"]
    )


def test_macro_averages_use_the_fixed_label_set() -> None:
    y = np.array([0, 1] * 20 + [2, 2])
    pred = y.copy()
    pred[:6] = 1 - pred[:6]
    counts = np.ones((1, len(y)))
    counts[0, -2:] = 0  # a resample that misses class 2 in both labels and predictions
    idx = np.repeat(np.arange(len(y)), counts[0].astype(int))
    for metric, ref in (
        ("precision_macro", skm.precision_score),
        ("recall_macro", skm.recall_score),
        ("f1_macro", skm.f1_score),
    ):
        score = _scorer(metric, "classification", y, pred, None, np.array([0, 1, 2]))
        expected = ref(y[idx], pred[idx], average="macro", labels=[0, 1, 2], zero_division=0)
        assert score(counts)[0] == pytest.approx(expected), metric


def test_roc_auc_reports_the_resamples_it_could_use() -> None:
    rng = np.random.default_rng(3)
    y = np.array([0] * 199 + [1])  # one positive: a resample misses it 37% of the time
    p1 = rng.random(200)
    proba = np.column_stack([1 - p1, p1])
    r = paired_bootstrap(
        "roc_auc", "classification", y, y, y, previous_proba=proba, candidate_proba=proba
    )
    assert 1000 < r.used < 1500 and r.resamples == 2000
    assert f"{r.used} of 2000 resamples used" in r.describe()
    with pytest.raises(BootstrapError, match=r"only \d+ of 2000 resamples"):
        paired_bootstrap(
            "roc_auc",
            "classification",
            y[:150],
            y[:150],
            y[:150],
            previous_proba=proba[:150],
            candidate_proba=proba[:150],
            classes=[0, 1],
        )  # fmt: skip  (no positive at all: nothing can be scored)


@pytest.mark.parametrize("k", [2, 4])
def test_delong_agrees_with_scikit_learn_and_the_bootstrap(k: int) -> None:
    from gitmodel.bootstrap import delong_auc

    rng = np.random.default_rng(11)
    n = 1500
    y = rng.integers(0, k, n)

    def scores(noise: float) -> np.ndarray:
        logits = np.eye(k)[y] * 1.5 + rng.normal(scale=noise, size=(n, k))
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    a, b = scores(1.0), scores(1.1)
    d = delong_auc(y, a, b)
    ref = (
        (lambda p: skm.roc_auc_score(y, p[:, 1]))
        if k == 2
        else (lambda p: skm.roc_auc_score(y, p, multi_class="ovr"))
    )
    assert d.previous == pytest.approx(ref(a)) and d.candidate == pytest.approx(ref(b))
    assert d.method == "DeLong" and d.delta == pytest.approx(ref(b) - ref(a))
    boot = paired_bootstrap(
        "roc_auc", "classification", y, y, y, previous_proba=a, candidate_proba=b
    )
    assert d.se == pytest.approx(boot.se, rel=0.15)
    assert d.ci_low == pytest.approx(boot.ci_low, abs=0.5 * boot.se)


def test_candidate_with_stale_predictions_is_judged_by_the_plain_rule(
    sh: Shell, gated_repo: Path
) -> None:
    repo = gated_repo
    y, prev = binary_set(200, 0.9)
    commit_model(sh, repo, y, prev, seed=1, store=True)
    sh.git("tag", "v1.0.0", cwd=repo)
    np.save(repo / "p.npy", prev)
    args = ["eval", "--y-true", "y.npy", "--y-pred", "p.npy", "--task", "classification"]
    sh.gm(*args, "--store", "-o", "-", cwd=repo)  # stale: the previous model's predictions
    write_bytes(repo / "model.bin", 2000, seed=2)
    sh.gm("commit", "model.bin", "-m", "worse", "--metric", "accuracy=0.80", cwd=repo)
    r = sh.gm("check", cwd=repo, check=False)
    assert r.returncode == 1, r.stdout
    assert "stored predictions of the candidate HEAD give accuracy" in r.stdout
    assert "not its note's 0.8: plain rule applied" in r.stdout
    assert "FAIL: accuracy is worse than v1.0.0" in r.stdout


def test_the_server_judges_with_the_noise_rule_from_its_dvc_remote(
    sh: Shell, gated_repo: Path, tmp_path: Path
) -> None:
    repo = gated_repo
    storage = tmp_path / "dvc-storage"
    storage.mkdir()
    sh.gm("remote", "add", "store", str(storage), "--default", cwd=repo)
    sh.git("add", ".dvc/config", cwd=repo)
    sh.git("commit", "-q", "-m", "DVC remote", cwd=repo)
    server = tmp_path / "server.git"
    sh.git("init", "-q", "--bare", str(server), cwd=tmp_path)
    sh.gm("install", "--server", cwd=server)
    sh.git("remote", "add", "origin", str(server), cwd=repo)
    y, prev = binary_set(200, 0.9)
    commit_model(sh, repo, y, prev, seed=1, store=True)
    sh.git("tag", "v1.0.0", cwd=repo)
    # pre-push uploads the stored predictions to the DVC remote and publishes the notes.
    sh.git("push", "-q", "origin", "HEAD:refs/heads/main", "v1.0.0", cwd=repo)
    small = commit_model(sh, repo, y, flip(prev, y, 2), seed=2, store=True)
    sh.git("tag", "v1.1.0", small, cwd=repo)  # passes locally: the drop is not demonstrated
    push = ["push", "origin", "HEAD:refs/heads/main", "v1.1.0"]
    # A server without a cache judges by the plain rule, and says so.
    r = sh.git(*push, cwd=repo, check=False)
    assert r.returncode != 0, r.stderr
    assert "rule: plain (noise rule not run: the server keeps no stored predictions" in r.stderr
    # The admin gives the server the DVC remote: the same verdict as every other door.
    (server / ".dvc").mkdir()
    (server / ".dvc" / "config").write_text(
        f"[core]\n    remote = store\n['remote \"store\"']\n    url = {storage}\n"
    )
    r = sh.git(*push, cwd=repo, check=False)
    assert r.returncode == 0, r.stderr
    assert "pass (drop not demonstrated)" in r.stderr
    assert "rule: noise (one-sided at 0.05)" in r.stderr


def test_promotions_are_judged_by_the_noise_rule_at_every_door(
    sh: Shell, gated_repo: Path, tmp_path: Path
) -> None:
    """A promotion uses the evidence a release uses: `git model promote`, a plain `git tag`
    of a stage tag, pre-push and the server all read the stored predictions, so a drop
    within noise is promoted everywhere and a demonstrated one is refused everywhere."""
    import time

    repo = gated_repo
    storage = tmp_path / "dvc-storage"
    storage.mkdir()
    sh.gm("remote", "add", "store", str(storage), "--default", cwd=repo)
    sh.git("add", ".dvc/config", cwd=repo)
    sh.git("commit", "-q", "-m", "DVC remote", cwd=repo)
    server = tmp_path / "server.git"
    sh.git("init", "-q", "--bare", str(server), cwd=tmp_path)
    sh.gm("install", "--server", cwd=server)
    (server / ".dvc").mkdir()  # the admin gives the server the DVC remote
    (server / ".dvc" / "config").write_text(
        f"[core]\n    remote = store\n['remote \"store\"']\n    url = {storage}\n"
    )
    sh.git("remote", "add", "origin", str(server), cwd=repo)
    y, prev = binary_set(200, 0.9)
    commit_model(sh, repo, y, prev, seed=1, store=True)
    sh.gm("release", "v1.0.0", cwd=repo)
    small = commit_model(sh, repo, y, flip(prev, y, 2), seed=2, store=True)
    sh.gm("release", "v1.1.0", cwd=repo)  # within noise: released
    large = commit_model(sh, repo, y, flip(prev, y, 30), seed=3, store=True)
    sh.gm("release", "v1.2.0", "--allow-regression", "smaller model", cwd=repo)
    sh.git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)  # the policy first
    sh.git("push", "-q", "origin", "--tags", cwd=repo)
    sh.gm("promote", "v1.0.0", "prod", cwd=repo)
    sh.gm("promote", "v1.0.0", "staging", cwd=repo)
    sh.git("push", "-q", "origin", "main#prod#1", "main#staging#2", cwd=repo)
    time.sleep(1.1)  # stage events are ordered by their tags' dates (seconds)

    # git model promote: within noise passes, saying what is known
    out = sh.gm("promote", "v1.1.0", "staging", cwd=repo)
    assert "drop not demonstrated" in out.stdout, out.stdout
    refused = sh.gm("promote", "v1.2.0", "staging", cwd=repo, check=False)
    assert refused.returncode == 1 and "drop demonstrated" in refused.stdout

    # a plain `git tag` of a stage tag (reference-transaction): the same verdicts
    tagged = sh.git("tag", "-a", "-m", "by hand", "main#prod#4", small, cwd=repo)
    assert "drop not demonstrated" in tagged.stderr, tagged.stderr
    r = sh.git("tag", "-a", "-m", "by hand", "main#prod#5", large, cwd=repo, check=False)
    assert r.returncode != 0 and "drop demonstrated" in r.stderr
    # pre-push and the server: the promotion within noise goes through both
    pushed = sh.git("push", "origin", "main#staging#3", "main#prod#4", cwd=repo)
    assert "remote:" in pushed.stderr and "drop not demonstrated" in pushed.stderr
    assert {"main#prod#4", "main#staging#3"} <= set(sh.git("tag", "-l", cwd=server).stdout.split())
    # a demonstrated drop written around the local doors is refused by the server
    time.sleep(1.1)
    sh.git("-c", "core.hooksPath=/dev/null", "tag", "-a", "-m", "x", "main#prod#6", large, cwd=repo)
    r = sh.git("push", "--no-verify", "origin", "main#prod#6", cwd=repo, check=False)
    assert r.returncode != 0 and "the server refused stage tag main#prod#6" in r.stderr
    assert "drop demonstrated" in r.stderr
