"""gitmodel.log_metrics: the training-history file, and `commit` attaching it to the note."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from conftest import Shell, write_bytes

import gitmodel
from gitmodel.history import HistoryError, last_run, log_metrics, parse_history, series

TRAIN = """\
import gitmodel
for epoch in range(5):
    gitmodel.log_metrics(step=epoch, loss=1.0 / (epoch + 1), val_accuracy=0.5 + epoch / 20)
"""


def object_path(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def test_training_script_history_is_attached_by_commit(sh: Shell, repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo)
    hist = repo / ".gitmodel" / "history.jsonl"
    records = [json.loads(line) for line in hist.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert records[-1]["loss"] == pytest.approx(0.2)
    assert len({r["run"] for r in records}) == 1
    # The scratch directory ignores itself: the training run leaves the work tree clean.
    assert ".gitmodel" not in sh.git("status", "--porcelain", cwd=repo).stdout
    data = hist.read_bytes()

    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "trained", "--metric", "accuracy=0.7", cwd=repo)
    note = sh.gm("metrics", "--json", cwd=repo).json()
    entry = note["training_history"]
    assert entry["md5"] == hashlib.md5(data).hexdigest()
    assert entry["records"] == 5 and entry["size"] == len(data)
    assert object_path(repo, entry["md5"]).read_bytes() == data
    assert not hist.exists()  # taken: the next training run starts a fresh history


def test_failed_commit_keeps_the_history(sh: Shell, repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo)
    r = sh.gm("commit", "-m", "nothing staged", cwd=repo, check=False)
    assert r.returncode == 2
    assert (repo / ".gitmodel" / "history.jsonl").is_file()


def test_history_path_from_env_and_config(sh: Shell, repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo, env={"GITMODEL_HISTORY": "logs/h.jsonl"})
    assert len((repo / "logs" / "h.jsonl").read_text().splitlines()) == 5
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + '\n[eval]\nhistory = "runs/history.jsonl"\n')
    sub = repo / "src"
    sub.mkdir()
    (sub / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=sub)  # found from a subdirectory, too
    hist = repo / "runs" / "history.jsonl"
    assert len(hist.read_text().splitlines()) == 5
    write_bytes(repo / "model.bin", 1000)
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.gm("commit", "model.bin", "-m", "m", "--metric", "accuracy=1", cwd=repo)
    assert sh.gm("metrics", "--json", cwd=repo).json()["training_history"]["records"] == 5
    assert not hist.exists()


def test_log_metrics_validates_and_accepts_numpy(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    target = tmp_path / "h.jsonl"
    log_metrics(step=np.int64(3), path=target, loss=np.float32(0.5), count=7)
    (record,) = parse_history(target.read_bytes(), "h")
    assert record["step"] == 3 and record["loss"] == 0.5 and record["count"] == 7
    for bad in ({"loss": "high"}, {"ok": True}, {"time": 1.0}, {}):
        with pytest.raises(HistoryError):
            log_metrics(step=1, path=target, **bad)
    with pytest.raises(HistoryError):
        log_metrics(step="one", path=target, loss=1.0)  # type: ignore[arg-type]
    assert gitmodel.log_metrics is log_metrics


def test_parse_history_tolerates_a_torn_last_line_and_splits_runs() -> None:
    lines = [
        {"run": "a", "time": 1, "step": 0, "loss": 2.0},
        {"run": "a", "time": 2, "step": 1, "loss": 1.0},
        {"run": "b", "time": 3, "step": 0, "loss": 1.5, "acc": 0.6},
        {"run": "b", "time": 4, "step": 1, "loss": 0.5},
    ]
    data = "".join(json.dumps(r) + "\n" for r in lines).encode() + b'{"run": "b", "ti'
    records = parse_history(data, "h")
    assert len(records) == 4
    run = last_run(records)
    assert [r["time"] for r in run] == [3, 4]
    x, ys = series(run)
    assert x == [0.0, 1.0] and ys == {"loss": [1.5, 0.5], "acc": [0.6, None]}
    with pytest.raises(HistoryError):
        parse_history(b'not json\n{"loss": 1}\n', "h")
    with pytest.raises(HistoryError):
        parse_history(b'{"loss": "x"}\n', "h")


def test_import_gitmodel_stays_light() -> None:
    import subprocess

    code = (
        "import sys, gitmodel; gitmodel.log_metrics;"
        "print(sorted(m for m in ('numpy', 'sklearn', 'matplotlib', 'pygit2', 'dvc')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plain_git_commit_attaches_history_through_post_commit(sh: Shell, repo: Path) -> None:
    if not (repo / ".git" / "hooks" / "post-commit").exists():
        pytest.skip("this version installs no post-commit hook")
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo)
    (repo / "metrics.json").write_text('{"accuracy": 0.8}')
    sh.git("add", "metrics.json", "train.py", cwd=repo)
    sh.git("commit", "-q", "-m", "plain commit", cwd=repo)
    note = sh.gm("metrics", "--json", cwd=repo).json()
    assert note["source"] == "post-commit"
    assert note["training_history"]["records"] == 5
    assert not (repo / ".gitmodel" / "history.jsonl").exists()


def test_gc_keeps_objects_that_notes_name(sh: Shell, repo: Path) -> None:
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo)
    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "trained", "--metric", "accuracy=0.7", cwd=repo)
    oid = sh.gm("metrics", "--json", cwd=repo).json()["training_history"]["md5"]
    # A later commit replaces the weights; the history stays named by the older note only.
    write_bytes(repo / "model.bin", 1000, seed=5)
    sh.gm("commit", "model.bin", "-m", "retrained", "--metric", "accuracy=0.8", cwd=repo)
    # Pushed: gc may now drop what no root needs (it keeps every unpushed commit's objects).
    sh.git("init", "-q", "--bare", str(repo.parent / "remote.git"), cwd=repo)
    sh.git("remote", "add", "origin", str(repo.parent / "remote.git"), cwd=repo)
    sh.git("push", "-q", "--no-verify", "origin", "HEAD:refs/heads/main", cwd=repo)
    sh.git("fetch", "-q", "origin", cwd=repo)
    removed = sh.gm("gc", "--grace", "0", "--json", cwd=repo).json()["removed"]
    assert removed  # the first model's weights went: gc did run

    assert oid not in removed
    assert object_path(repo, oid).is_file()


def test_history_and_predictions_travel_through_the_dvc_remote(
    sh: Shell, repo: Path, tmp_path: Path
) -> None:
    (repo / "train.py").write_text(TRAIN)
    sh.run([sys.executable, "train.py"], cwd=repo)
    (repo / "y.json").write_text("[0, 1, 1, 0]")
    sh.gm(
        "eval",
        "--y-true",
        "y.json",
        "--y-pred",
        "y.json",
        "--task",
        "classification",
        "--store",
        cwd=repo,
    )
    sh.gm("remote", "add", "store", str(tmp_path / "dvc-store"), "--default", cwd=repo)
    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "trained", cwd=repo)
    note = sh.gm("metrics", "--json", cwd=repo).json()
    sh.git("init", "-q", "--bare", str(tmp_path / "origin.git"), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(tmp_path / "origin.git"), cwd=repo)
    sh.git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)  # pre-push uploads
    for key in ("training_history", "predictions"):
        md5 = note[key]["md5"]
        assert (tmp_path / "dvc-store" / "files" / "md5" / md5[:2] / md5[2:]).is_file(), key

    clone = tmp_path / "clone"
    sh.git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    sh.gm("init", cwd=clone)
    sh.gm("fetch", cwd=clone)
    out = sh.gm("plot", "--history", cwd=clone).stdout  # fetches the history object itself
    assert "training history of " in out and "(trained)" in out and "loss" in out
