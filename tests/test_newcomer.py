"""The first hour: the mistakes a new user makes, and what gitmodel says back.

Each test drives the real `git` and `git model` in a temporary repository.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Shell, write_bytes
from test_errors import assert_refused


def commit_model(sh: Shell, repo: Path, seed: int, *metrics: str, msg: str = "") -> None:
    write_bytes(repo / "model.pkl", 1000, seed=seed)
    args = [a for m in metrics for a in ("--metric", m)]
    sh.gm("commit", "model.pkl", "-m", msg or f"model {seed}", *args, cwd=repo)


def gate_accuracy(sh: Shell, repo: Path, tolerance: str = "0.005") -> None:
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(
        cfg.read_text() + f'\n[gate.accuracy]\ndirection = "higher"\ntolerance = {tolerance}\n'
    )
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "gate accuracy", cwd=repo)


# -- 1. add / commit before `git model init` ----------------------------------------------


@pytest.mark.parametrize(
    "args", [["add", "model.pkl"], ["commit", "model.pkl", "-m", "x", "--metric", "a=1"]]
)
def test_add_or_commit_before_init_is_refused(sh: Shell, tmp_path: Path, args: list[str]) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    (repo / "README.md").write_text("x\n")
    sh.git("add", "README.md", cwd=repo)
    sh.git("commit", "-q", "-m", "start", cwd=repo)
    write_bytes(repo / "model.pkl", 100)
    res = sh.gm(*args, cwd=repo, check=False)
    assert_refused(res)
    assert "run `git model init` first" in res.stderr
    # nothing half-made: no .dvc/, no policy, no notes config, no commit
    assert sorted(p.name for p in repo.iterdir()) == [".git", "README.md", "model.pkl"]
    assert sh.git("config", "--get-all", "notes.displayRef", cwd=repo, check=False).stdout == ""
    assert sh.git("rev-list", "--count", "HEAD", cwd=repo).stdout.strip() == "1"
    sh.gm("init", cwd=repo)
    sh.gm(*args, cwd=repo)  # and after init it works


def test_clone_without_init_is_refused(sh: Shell, repo: Path, tmp_path: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    clone = tmp_path / "clone"
    sh.git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    write_bytes(clone / "model.pkl", 1000, seed=2)
    res = sh.gm("commit", "model.pkl", "-m", "retrain", "--metric", "a=1", cwd=clone, check=False)
    assert_refused(res)
    assert "run `git model init` first" in res.stderr
    assert not (clone / ".git" / "hooks" / "reference-transaction").exists()
    sh.gm("init", cwd=clone)
    sh.gm("commit", "model.pkl", "-m", "retrain", "--metric", "a=1", cwd=clone)
    assert (clone / ".git" / "hooks" / "reference-transaction").exists()


# -- 2, 3. a misspelled path -----------------------------------------------------------------


def test_status_of_a_misspelled_path(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    res = sh.gm("status", "modle.pkl", cwd=repo, check=False)
    assert_refused(res)
    assert "modle.pkl: no tracked weights" in res.stderr and "did you mean model.pkl?" in res.stderr
    res = sh.gm("status", "--json", "model.pkl", "nothing-like-it", cwd=repo, check=False)
    assert_refused(res)
    assert "nothing-like-it: no tracked weights" in res.stderr and "did you" not in res.stderr
    # spelled right, by its path, its pointer or its directory: fine
    for path in ("model.pkl", "model.pkl.dvc", "."):
        assert sh.gm("status", path, cwd=repo).stdout.strip() == "weights up to date"


def test_checkout_of_a_misspelled_path(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    res = sh.gm("checkout", "modle.pkl", cwd=repo, check=False)
    assert_refused(res)
    assert "modle.pkl: neither a revision nor tracked weights; did you mean model.pkl?" in (
        res.stderr
    )
    assert "unknown revision" not in res.stderr
    res = sh.gm("checkout", "HEAD", "modle.pkl", cwd=repo, check=False)
    assert_refused(res)
    assert "modle.pkl: no tracked weights at HEAD; did you mean model.pkl?" in res.stderr
    res = sh.gm("checkout", "--", "modle.pkl", cwd=repo, check=False)
    assert_refused(res)
    (repo / "model.pkl").unlink()
    sh.gm("checkout", "model.pkl", cwd=repo)  # the right spelling still restores
    assert (repo / "model.pkl").is_file()


# -- 5. --json on every read verb ------------------------------------------------------------


def test_every_read_verb_takes_json(sh: Shell, repo: Path) -> None:
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 1, "accuracy=0.9")
    sh.gm("release", "v1.0.0", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.91")
    for verb in (
        ["metrics"],
        ["log"],
        ["diff"],
        ["status"],
        ["check"],
        ["report"],
        ["fsck"],
        ["remote", "list"],
        ["gc", "--dry-run"],
    ):
        res = sh.gm(*verb, "--json", cwd=repo)
        json.loads(res.stdout)  # the whole of stdout is one JSON document


def test_report_json_equals_format_json(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    commit_model(sh, repo, 2, "accuracy=0.8")
    a = sh.gm("report", "--json", cwd=repo).json()
    b = sh.gm("report", "--format", "json", cwd=repo).json()
    assert a == b and a["metrics"]


# -- 6. log -n counts rows; --all is git's ---------------------------------------------------


def test_log_n_counts_rows_not_commits(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.8")
    (repo / "train.py").write_text("# code only\n")
    sh.git("add", "train.py", cwd=repo)
    sh.git("commit", "-q", "-m", "code, no note", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.9")
    rows = sh.gm("log", "-n", "2", "--json", cwd=repo).json()
    assert [r["metrics"]["accuracy"] for r in rows] == [0.9, 0.8]
    text = sh.gm("log", "-n", "2", cwd=repo).stdout.splitlines()
    assert len(text) == 3  # header + 2 rows
    every = sh.gm("log", "-n", "2", "--include-unnoted", "--json", cwd=repo).json()
    assert [r["subject"] for r in every] == ["model 2", "code, no note"]
    assert sh.gm("log", "-n", "0", "--json", cwd=repo).json() == []


def test_log_all_walks_every_branch_and_tag(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.8", msg="on main")
    sh.git("checkout", "-q", "-b", "experiment", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.7", msg="on experiment")
    sh.git("checkout", "-q", "main", cwd=repo)
    subjects = [r["subject"] for r in sh.gm("log", "--json", cwd=repo).json()]
    assert subjects == ["on main"]
    subjects = [r["subject"] for r in sh.gm("log", "--all", "--json", cwd=repo).json()]
    assert sorted(subjects) == ["on experiment", "on main"]  # and no notes commits
    res = sh.gm("log", "--all", "HEAD", cwd=repo, check=False)
    assert_refused(res)


def test_an_empty_log_says_so(sh: Shell, repo: Path) -> None:
    res = sh.gm("log", cwd=repo)
    assert res.stdout == ""
    assert "no commits with metrics notes in HEAD" in res.stderr
    assert sh.gm("log", "--json", cwd=repo).json() == []


# -- 7. a checkout refusal exits 1 -----------------------------------------------------------


def test_checkout_refusing_unstored_changes_exits_1(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    write_bytes(repo / "model.pkl", 1000, seed=99)  # changed, never stored
    res = sh.gm("checkout", cwd=repo, check=False)
    assert_refused(res, code=1)
    assert "not stored" in res.stderr


# -- 8. log --metric of a metric nobody has ----------------------------------------------------


def test_log_metric_unknown_is_an_error(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9", "loss=0.3")
    commit_model(sh, repo, 2, "accuracy=0.95")
    res = sh.gm("log", "--metric", "nope", cwd=repo, check=False)
    assert_refused(res)
    assert "no commit in HEAD has metric 'nope' (metrics: accuracy, loss)" in res.stderr
    # a metric of older rows than -n shows is not a typo
    rows = sh.gm("log", "-n", "1", "--metric", "loss", "--json", cwd=repo).json()
    assert rows[0]["metrics"] == {}


# -- 9. a release below the latest ----------------------------------------------------------


def test_release_below_the_latest_warns_in_one_line(sh: Shell, repo: Path) -> None:
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 1, "accuracy=0.9")
    sh.gm("release", "v1.1.0", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.91")
    res = sh.gm("release", "v0.0.1", cwd=repo)
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "git model: warning: v0.0.1 is below the latest release v1.1.0: "
        "the gate compares it only with the releases below it"
    ]
    res = sh.gm("check", "--tag", "v0.0.2", cwd=repo)
    assert "below the latest release v1.1.0" in res.stderr
    res = sh.gm("release", "v1.2.0", cwd=repo)  # above: no warning
    assert "warning" not in res.stderr


# -- 10. a diverged training run ---------------------------------------------------------------


def test_log_metrics_records_nan_and_warns(sh: Shell, repo: Path) -> None:
    script = (
        "import gitmodel, math\n"
        "gitmodel.log_metrics(step=0, loss=0.5)\n"
        "for step in (1, 2):\n"
        "    gitmodel.log_metrics(step=step, loss=float('nan'), grad=math.inf)\n"
        "gitmodel.log_metrics(step=3, loss=-math.inf)\n"
    )
    res = sh.run([sys.executable, "-c", script], cwd=repo)
    lines = [json.loads(x) for x in (repo / ".gitmodel/history.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in lines] == [0.5, "NaN", "NaN", "-Infinity"]
    assert lines[1]["grad"] == "Infinity"
    warned = [x for x in res.stderr.splitlines() if "RuntimeWarning" in x]
    assert len(warned) == 3, res.stderr  # once per metric and place, not once per step
    assert "loss is NaN; recorded as the string 'NaN'" in res.stderr

    # committed with the weights, read back as numbers; a plot shows the gap
    commit_model(sh, repo, 1, "accuracy=0.5")
    chart = sh.gm("plot", "--history", "HEAD", "--json", cwd=repo).json()
    assert chart["series"]["loss"] == [0.5, None, None, None]
    assert "NaN" not in sh.gm("plot", "--history", "HEAD", "--json", cwd=repo).stdout
    sh.gm("plot", "--history", "HEAD", cwd=repo)  # the terminal chart draws


def test_history_strings_read_back_as_floats() -> None:
    from gitmodel.history import parse_history

    data = (
        b'{"run": "a", "time": 1, "step": 0, "loss": "NaN"}\n'
        b'{"run": "a", "time": 2, "step": 1, "loss": "-Infinity"}\n'
    )
    records = parse_history(data, "h")
    assert math.isnan(records[0]["loss"]) and records[1]["loss"] == -math.inf
    from gitmodel.errors import GitModelError

    with pytest.raises(GitModelError):
        parse_history(b'{"run": "a", "time": 1, "loss": "nan"}\n', "h")  # only the three spellings
    with pytest.raises(GitModelError):
        parse_history(b'{"run": "a", "time": 1, "step": "NaN", "loss": 1}\n', "h")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_the_gate_refuses_a_non_finite_gated_metric(sh: Shell, repo: Path, value: str) -> None:
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 1, "accuracy=0.9")
    sh.gm("release", "v1.0.0", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.95")
    # a hand-written (or pushed) note with the value a diverged run would give
    note = json.loads(sh.git("notes", "--ref", "metrics", "show", "HEAD", cwd=repo).stdout)
    text = json.dumps(note).replace('"accuracy": 0.95', f'"accuracy": {value}')
    sh.git("notes", "--ref", "metrics", "add", "-f", "-m", text, "HEAD", cwd=repo)
    res = sh.gm("check", cwd=repo, check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL" in res.stdout
    res = sh.gm("release", "v1.1.0", cwd=repo, check=False)
    assert res.returncode == 1
    assert sh.git("tag", "-l", "v1.1.0", cwd=repo).stdout == ""
    res = sh.git("tag", "v1.1.0", cwd=repo, check=False)
    assert res.returncode != 0 and sh.git("tag", "-l", "v1.1.0", cwd=repo).stdout == ""


# -- 11. messages ---------------------------------------------------------------------------


def test_a_path_outside_is_named_once(sh: Shell, repo: Path, tmp_path: Path) -> None:
    outside = write_bytes(tmp_path / "outside.bin", 100)
    res = sh.gm("add", str(outside), cwd=repo, check=False)
    assert_refused(res)
    assert res.stderr.strip() == f"git model: {outside}: outside the repository"
    res = sh.gm("add", "../outside.bin", cwd=repo, check=False)
    assert res.stderr.strip() == "git model: ../outside.bin: outside the repository"


def test_values_are_spelled_as_the_file_spells_them(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "model.pkl", 100)
    for text, shown in (
        ('{"ok": true}', "(true)"),
        ('{"ok": null}', "(null)"),
        ('{"ok": "high"}', '("high")'),
        ('{"ok": [1]}', "([1])"),
    ):
        (repo / "m.json").write_text(text)
        res = sh.gm("commit", "model.pkl", "-m", "x", "--metrics", "m.json", cwd=repo, check=False)
        assert_refused(res)
        assert f"metric 'ok' is not a number {shown}" in res.stderr, res.stderr
        assert "True" not in res.stderr and "None" not in res.stderr


def test_json_numbers_carry_no_float_noise(sh: Shell, repo: Path) -> None:
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(
        cfg.read_text() + '\n[gate.log_loss]\ndirection = "lower"\nrelative-tolerance = 0.1\n'
    )
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "gate", cwd=repo)
    commit_model(sh, repo, 1, "log_loss=0.0765", "accuracy=0.91")
    sh.gm("release", "v1.0.0", cwd=repo)
    commit_model(sh, repo, 2, "log_loss=0.07", "accuracy=0.85")
    out = sh.gm("check", "--json", cwd=repo).stdout
    (metric,) = json.loads(out)["metrics"]
    assert metric["slack"] == 0.00765 and metric["delta"] == -0.0065
    diff = sh.gm("diff", "--json", cwd=repo).stdout
    assert json.loads(diff)["metrics"]["accuracy"]["delta"] == -0.06
    for text in (out, diff, sh.gm("report", "--json", cwd=repo).stdout):
        assert "00000" not in text and "99999" not in text, text


def test_a_problem_is_said_once(sh: Shell, repo: Path) -> None:
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 1, "accuracy=0.9")
    sh.gm("release", "v1.0.0", cwd=repo)
    (repo / "train.py").write_text("# code only\n")
    sh.git("add", "train.py", cwd=repo)
    sh.git("commit", "-q", "-m", "no note", cwd=repo)
    res = sh.gm("check", cwd=repo, check=False)
    assert res.returncode == 1
    fail = [line for line in res.stdout.splitlines() if line.startswith("FAIL: ")]
    assert len(fail) == 1
    problem = fail[0].removeprefix("FAIL: ")
    assert res.stdout.count(problem) == 1, res.stdout


def test_counts_are_singular_for_one(sh: Shell, repo: Path) -> None:
    commit_model(sh, repo, 1, "accuracy=0.9")
    res = sh.gm("fsck", cwd=repo)
    assert "checked 1 object, 1 pointer, 1 note: ok" in res.stderr, res.stderr
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 2, "accuracy=0.9")
    sh.gm("release", "v1.0.0", "--rev", "HEAD~0", cwd=repo)
    commit_model(sh, repo, 3, "accuracy=0.91")
    assert "on 1 gated metric\n" in sh.gm("check", cwd=repo).stdout


def test_no_escape_codes_reach_a_pipe_or_a_file(sh: Shell, repo: Path, tmp_path: Path) -> None:
    gate_accuracy(sh, repo)
    commit_model(sh, repo, 1, "accuracy=0.9")
    sh.gm("release", "v1.0.0", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.5")
    env = {k: v for k, v in sh.env.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color"}
    for verb in (["log"], ["diff"], ["status"], ["check"], ["metrics"], ["plot"], ["fsck"]):
        proc = subprocess.run(
            ["git", "model", *verb], cwd=repo, env=env, capture_output=True, text=True
        )
        assert "\x1b" not in proc.stdout + proc.stderr, (verb, proc.stdout, proc.stderr)
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        subprocess.run(["git", "model", "log"], cwd=repo, env=env, stdout=f, stderr=f)
    assert "\x1b" not in out.read_text()
    assert os.path.getsize(out) > 0


# -- 13. plots: gaps, and titles that stay true ------------------------------------------------


def _svg_line_paths(svg: str) -> list[str]:
    """The `d` of each line matplotlib drew for a series (not the axes, ticks or markers)."""
    import re

    line = r'<path d="([^"]*)"[^>]*style="fill: none; stroke: #1f77b4; stroke-width: 1\.6'
    return re.findall(line, svg)


def test_a_commit_without_the_metric_is_a_gap(sh: Shell, repo: Path) -> None:
    pytest.importorskip("matplotlib")
    for i in range(1, 6):
        metrics = [f"loss=0.{i}"] if i == 3 else [f"accuracy=0.{i}", f"loss=0.{i}"]
        commit_model(sh, repo, i, *metrics)  # the third has no accuracy
    data = sh.gm("plot", "--metric", "accuracy", "--json", cwd=repo).json()
    assert data["series"]["accuracy"] == [0.1, 0.2, None, 0.4, 0.5]
    sh.gm("plot", "--metric", "accuracy", "--metric", "loss", "-o", "m.svg", cwd=repo)
    paths = _svg_line_paths((repo / "m.svg").read_text())
    # accuracy in two pieces (each starts with a move, M), loss in one
    assert sorted(d.count("M") for d in paths) == [1, 2], paths


def test_history_title_names_the_release_or_the_commit(sh: Shell, repo: Path) -> None:
    gate_accuracy(sh, repo)
    sh.run([sys.executable, "-c", "import gitmodel; gitmodel.log_metrics(step=0, loss=1.0)"], repo)
    commit_model(sh, repo, 1, "accuracy=0.9", msg="first model")
    sha = sh.git("rev-parse", "--short=7", "HEAD", cwd=repo).stdout.strip()
    title = sh.gm("plot", "--history", "--json", cwd=repo).json()["title"]
    assert title == f"training history of {sha} (first model)"
    sh.gm("release", "v1.0.0", cwd=repo)
    commit_model(sh, repo, 2, "accuracy=0.95")
    title = sh.gm("plot", "--history", "HEAD~1", "--json", cwd=repo).json()["title"]
    assert title == f"training history of v1.0.0 ({sha})"


def test_the_demo_paints_only_a_terminal(tmp_path: Path) -> None:
    # The demo's narration piped into a file or pager carries no escape codes.
    scripts = Path(__file__).resolve().parent.parent / "scripts"
    code = f"import sys; sys.path.insert(0, {str(scripts)!r}); import demo; print(demo.paint('1', 'x'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "x\n"
