"""`git model eval`: metrics from predictions, input formats, errors, --store into the note."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import Shell, write_bytes
from sklearn import metrics as skm


def object_path(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def classification_data(n: int = 200, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.8, y, rng.integers(0, classes, n))
    proba = rng.random((n, classes)) + np.eye(classes)[pred] * 2
    proba /= proba.sum(axis=1, keepdims=True)
    return y, pred, proba


def test_classification_metrics_match_scikit_learn(sh: Shell, tmp_path: Path) -> None:
    y, pred, proba = classification_data()
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "p.npy", pred)
    np.save(tmp_path / "proba.npy", proba)
    out = sh.gm(
        "eval",
        "--y-true",
        "y.npy",
        "--y-pred",
        "p.npy",
        "--proba",
        "proba.npy",
        "--task",
        "classification",
        "-o",
        "m.json",
        "--json",
        cwd=tmp_path,
    ).json()
    m = out["metrics"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["f1_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["precision_macro"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall_weighted"] == pytest.approx(skm.recall_score(y, pred, average="weighted"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert json.loads((tmp_path / "m.json").read_text()) == m


def test_regression_metrics_and_prefix(sh: Shell, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.2, size=50)
    (tmp_path / "y.json").write_text(json.dumps(y.tolist()))
    (tmp_path / "p.csv").write_text("prediction\n" + "\n".join(repr(float(v)) for v in pred) + "\n")
    m = sh.gm(
        "eval",
        "--y-true",
        "y.json",
        "--y-pred",
        "p.csv",
        "--task",
        "regression",
        "--prefix",
        "test.",
        "-o",
        "-",
        "--json",
        cwd=tmp_path,
    ).json()["metrics"]
    assert set(m) == {"test.mse", "test.rmse", "test.mae", "test.r2"}
    assert m["test.mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["test.rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["test.mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["test.r2"] == pytest.approx(skm.r2_score(y, pred))
    assert not (tmp_path / "-").exists()


def test_string_labels_csv_and_binary_probability_column(sh: Shell, tmp_path: Path) -> None:
    y = ["cat", "dog", "dog", "cat", "dog", "cat"]
    pred = ["cat", "dog", "cat", "cat", "dog", "dog"]
    score = [0.1, 0.9, 0.6, 0.2, 0.8, 0.4]
    (tmp_path / "y.csv").write_text("label\n" + "\n".join(y) + "\n")
    (tmp_path / "p.json").write_text(json.dumps({"y_pred": pred}))
    (tmp_path / "s.csv").write_text("\n".join(str(s) for s in score) + "\n")
    m = sh.gm(
        "eval",
        "--y-true",
        "y.csv",
        "--y-pred",
        "p.json",
        "--proba",
        "s.csv",
        "--task",
        "classification",
        "-o",
        "-",
        "--json",
        cwd=tmp_path,
    ).json()["metrics"]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score([v == "dog" for v in y], score))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"y.json": [0, 1, 1], "p.json": [0, 1]}, "--y-true has 3 examples but --y-pred has 2"),
        ({"y.json": [0, 1, 1], "p.json": [0, 1, 2]}, "--y-pred has labels not in --y-true: 2"),
        ({"y.json": [0, 1, 1], "p.json": ["a", "b", "b"]}, "label sets differ"),
        (
            {"y.json": [0, 1, 1], "p.json": [0, 1, 1], "pr.json": [[0.5, 0.5, 0]] * 3},
            "--proba has 3 columns",
        ),
        ({"y.json": [0, 1, 1], "p.json": [0, 1, 1], "pr.json": [[0.5, 0.5]] * 2}, "--proba has 2"),
        ({"y.json": [], "p.json": []}, "empty array"),
        ({"y.json": {"a": 1, "b": 2}, "p.json": [1]}, "expected a JSON array"),
        ({"y.json": [[1], [2, 3]], "p.json": [1, 2]}, "--y-true y.json"),
    ],
)
def test_bad_input_is_one_line_exit_2(sh: Shell, tmp_path: Path, files: dict, message: str) -> None:
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data))
    args = ["eval", "--y-true", "y.json", "--y-pred", "p.json", "--task", "classification"]
    args += ["-o", "-"]
    if "pr.json" in files:
        args += ["--proba", "pr.json"]
    r = sh.gm(*args, cwd=tmp_path, check=False)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_missing_file_unknown_format_and_regression_nan(sh: Shell, tmp_path: Path) -> None:
    (tmp_path / "y.json").write_text("[1.0, 2.0]")
    (tmp_path / "p.json").write_text("[1.0, NaN]")
    (tmp_path / "y.parquet").write_text("x")
    cases = [
        (["--y-true", "nope.npy", "--y-pred", "p.json"], "no such file"),
        (["--y-true", "y.parquet", "--y-pred", "p.json"], "unknown format"),
        (["--y-true", "y.json", "--y-pred", "p.json"], "NaN"),
    ]
    for args, message in cases:
        r = sh.gm("eval", *args, "--task", "regression", "-o", "-", cwd=tmp_path, check=False)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_eval_writes_metrics_file_that_commit_picks_up(sh: Shell, repo: Path) -> None:
    y, pred, _ = classification_data(n=60, classes=2)
    np.save(repo / "y.npy", y)
    np.save(repo / "p.npy", pred)
    (repo / "metrics.json").write_text(json.dumps({"train_loss": 0.25}))
    sh.gm("eval", "--y-true", "y.npy", "--y-pred", "p.npy", "--task", "classification", cwd=repo)
    written = json.loads((repo / "metrics.json").read_text())
    assert written["train_loss"] == 0.25  # merged, not replaced
    assert written["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "model", cwd=repo)
    note = sh.gm("metrics", "--json", cwd=repo).json()
    assert note["metrics"]["accuracy"] == pytest.approx(written["accuracy"])
    assert "predictions" not in note  # not --store


def test_store_attaches_predictions_to_the_next_commit(sh: Shell, repo: Path) -> None:
    y, pred, proba = classification_data(n=80, classes=3)
    np.save(repo / "y.npy", y)
    np.save(repo / "p.npy", pred)
    np.save(repo / "pr.npy", proba)
    out = sh.gm(
        "eval",
        "--y-true",
        "y.npy",
        "--y-pred",
        "p.npy",
        "--proba",
        "pr.npy",
        "--task",
        "classification",
        "--store",
        "--json",
        cwd=repo,
    ).json()
    entry = out["predictions"]
    assert entry["n"] == 80 and entry["task"] == "classification" and entry["proba"] is True
    obj = object_path(repo, entry["md5"])
    assert hashlib.md5(obj.read_bytes()).hexdigest() == entry["md5"]
    record = json.loads(obj.read_bytes())
    assert record["y_true"] == y.tolist() and record["y_pred"] == pred.tolist()
    assert (
        record["labels_md5"]
        == hashlib.md5(json.dumps(y.tolist(), separators=(",", ":")).encode()).hexdigest()
    )
    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "model", cwd=repo)
    note = sh.gm("metrics", "--json", cwd=repo).json()
    assert note["predictions"] == entry
    # Taken by that commit: the next one does not carry it again.
    write_bytes(repo / "model.bin", 1000, seed=1)
    sh.gm("commit", "model.bin", "-m", "model 2", "--metric", "accuracy=0.5", cwd=repo)
    assert "predictions" not in sh.gm("metrics", "--json", cwd=repo).json()


def test_store_outside_a_repository_is_an_error(sh: Shell, tmp_path: Path) -> None:
    (tmp_path / "y.json").write_text("[0, 1]")
    r = sh.gm(
        "eval",
        "--y-true",
        "y.json",
        "--y-pred",
        "y.json",
        "--task",
        "classification",
        "--store",
        cwd=tmp_path,
        check=False,
    )
    assert r.returncode == 2 and "--store needs a git repository" in r.stderr


GATED = """\
metrics-files = ["metrics.json"]
[release]
tags = "v*"
[gate.accuracy]
direction = "higher"
tolerance = 0.5
"""


def test_evaluation_set_identity_covers_examples_at_every_door(sh: Shell, repo: Path) -> None:
    (repo / ".gitmodel.toml").write_text(GATED)
    (repo / ".gitignore").write_text("*.json\n!.gitmodel.toml\n/inputs/\n")
    sh.git("add", ".gitmodel.toml", ".gitignore", cwd=repo)
    sh.git("commit", "-q", "-m", "policy", cwd=repo)
    (repo / "y.json").write_text("[0, 1, 1, 0, 1, 0]")
    (repo / "p.json").write_text("[0, 1, 1, 0, 1, 1]")
    base = ["eval", "--y-true", "y.json", "--y-pred", "p.json", "--task", "classification"]

    def release(ids: list[str], tag: str, seed: int) -> None:
        (repo / "ids.json").write_text(json.dumps(ids))
        out = sh.gm(*base, "--ids", "ids.json", "--json", cwd=repo).json()
        assert out["eval_set"]["by"] == "ids" and out["eval_set"]["n"] == 6
        write_bytes(repo / "model.bin", 1000, seed=seed)
        sh.gm("commit", "model.bin", "-m", tag, cwd=repo)
        note = sh.gm("metrics", "--json", cwd=repo).json()
        assert note["eval_sets"][""] == out["eval_set"]

    release(["a", "b", "c", "d", "e", "f"], "v1", 1)
    sh.git("tag", "v1.0.0", cwd=repo)
    # The same labels in the same order, on other examples: the labels' md5 cannot tell.
    release(["g", "h", "i", "j", "k", "l"], "v2", 2)
    r = sh.gm("check", cwd=repo)
    line = "accuracy: HEAD and v1.0.0 were measured on different evaluation sets (ids"
    assert line in r.stdout, r.stdout
    # The plain `git tag` door says it too; the policy can make it a refusal.
    tagged = sh.git("tag", "v1.1.0", cwd=repo)
    assert "measured on different evaluation sets" in tagged.stderr
    sh.git("tag", "-d", "v1.1.0", cwd=repo)
    (repo / ".gitmodel.toml").write_text(
        GATED.replace('tags = "v*"', 'tags = "v*"\neval-set-mismatch = "refuse"')
    )
    # The committed policy is the one that judges.
    sh.git("commit", "-q", "-m", "refuse eval-set mismatches", ".gitmodel.toml", cwd=repo)
    r = sh.gm("check", "HEAD~1", cwd=repo, check=False)
    assert r.returncode == 1 and "release.eval-set-mismatch = refuse" in r.stdout
    # --inputs: a directory of examples hashed by content.
    (repo / "inputs").mkdir()
    (repo / "inputs" / "a.txt").write_text("example a")
    first = sh.gm(*base, "--inputs", "inputs", "-o", "-", "--json", cwd=repo).json()
    (repo / "inputs" / "a.txt").write_text("example A")
    second = sh.gm(*base, "--inputs", "inputs", "-o", "-", "--json", cwd=repo).json()
    assert first["eval_set"]["by"] == "inputs" != first["eval_set"]["md5"]
    assert first["eval_set"]["md5"] != second["eval_set"]["md5"]
    r = sh.gm(*base, "--ids", "ids.json", "--inputs", "inputs", cwd=repo, check=False)
    assert r.returncode == 2 and "not both" in r.stderr
