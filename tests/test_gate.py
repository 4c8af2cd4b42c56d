"""The release gate: the plain rule, verdicts, `git model check` and `git model release`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Shell

from gitmodel import gate
from gitmodel.config import Config, GateRule, parse_config_text
from gitmodel.gate import Baseline, Candidate, Release, compare
from gitmodel.verdict import Verdict
from gitmodel.versions import ReleaseTag, parse_tag

POLICY = """\
metrics-files = ["metrics.json"]
[release]
tags = "v*"
require-metrics = true
[gate.accuracy]
direction = "higher"
tolerance = 0.01
[gate.loss]
direction = "lower"
relative-tolerance = 0.1
"""

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")  # set up history the hooks would refuse


# -- the plain rule (no git) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "tol", "rel", "prev", "new", "passed"),
    [
        (
            "higher",
            0.01,
            0.0,
            0.9,
            0.89,
            True,
        ),  # exactly at the slack (0.9 - 0.89 > 0.01 in floats)
        ("higher", 0.01, 0.0, 0.9, 0.8899, False),
        ("higher", 0.0, 0.0, 0.9, 0.9, True),
        ("higher", 0.0, 0.0, 0.9, 0.95, True),
        ("higher", 0.0, 0.1, 0.5, 0.45, True),  # relative slack 0.05, exactly at it
        ("higher", 0.0, 0.1, 0.5, 0.4499, False),
        ("lower", 0.0, 0.1, 0.2, 0.22, True),  # lower is better: slack 0.02, exactly at it
        ("lower", 0.0, 0.1, 0.2, 0.2201, False),
        ("lower", 0.002, 0.0, -3.0, -2.998, True),  # |previous| for negative values
        ("lower", 0.001, 0.01, 100, 101.001, True),  # both slacks add up: 0.001 + 1.0
        ("lower", 0.001, 0.01, 100, 101.002, False),
    ],
)
def test_tolerance_edges(
    direction: str, tol: float, rel: float, prev: float, new: float, passed: bool
) -> None:
    rule = GateRule("m", direction, tol, rel)
    verdict = compare(rule, prev, new)
    assert verdict.passed is passed
    assert verdict.delta == pytest.approx(new - prev)
    assert verdict.slack == pytest.approx(tol + rel * abs(prev))


def config(text: str = POLICY) -> Config:
    return parse_config_text(text, ".gitmodel.toml")


def release(name: str) -> ReleaseTag:
    return ReleaseTag(parse_tag(name), "a" * 40, 1)


def note(**metrics: float) -> dict[str, Any]:
    return {"schema": 1, "metrics": metrics}


def judge(
    cfg: Config,
    name: str,
    commit: str,
    model: str | None,
    cand: dict[str, Any] | None,
    note_error: str | None,
    previous: ReleaseTag | None,
    previous_note: dict[str, Any] | None,
    tag: str | None,
) -> Verdict:
    """The pure gate's verdict for a candidate against one previous release."""
    before = Release(previous, previous_note) if previous and previous_note is not None else None
    return gate.judge(cfg, Candidate(name, commit, cand, model, tag, note_error), Baseline(before))


def test_verdict_names_every_gated_metric() -> None:
    v = judge(
        config(), "v1.1.0", "b" * 40, None, note(accuracy=0.85, loss=0.2), None,
        release("v1.0.0"), note(accuracy=0.9, loss=0.21), "v1.1.0",
    )  # fmt: skip
    assert not v.passed
    rows = {m.metric: m for m in v.metrics}
    assert rows["accuracy"].previous == 0.9 and rows["accuracy"].new == 0.85
    assert rows["accuracy"].slack == pytest.approx(0.01) and not rows["accuracy"].passed
    assert rows["loss"].passed
    text = v.text()
    assert "against v1.0.0" in text and "accuracy" in text and "loss" in text and "FAIL" in text
    assert text.rstrip().splitlines()[-1].startswith("FAIL: accuracy is worse than v1.0.0 by 0.05")
    assert v.to_json()["previous"]["tag"] == "v1.0.0"


def test_missing_gated_metric_fails() -> None:
    v = judge(config(), "v1.1.0", "b" * 40, None, note(accuracy=0.95), None,
              release("v1.0.0"), note(accuracy=0.9, loss=0.2), "v1.1.0")  # fmt: skip
    assert not v.passed
    assert [m.reason for m in v.metrics if not m.passed] == ["missing on candidate"]
    assert "loss is missing" in v.summary


def test_metric_new_since_the_previous_release_passes() -> None:
    v = judge(config(), "v1.1.0", "b" * 40, None, note(accuracy=0.95, loss=0.1), None,
              release("v1.0.0"), note(accuracy=0.9), "v1.1.0")  # fmt: skip
    assert v.passed
    assert {m.metric: m.reason for m in v.metrics}["loss"] == "not on v1.0.0"


def test_no_note_fails_when_metrics_are_required() -> None:
    v = judge(
        config(),
        "v1.1.0",
        "b" * 40,
        None,
        None,
        None,
        release("v1.0.0"),
        note(accuracy=0.9),
        "v1.1.0",
    )
    assert not v.passed and "no metrics note" in v.summary
    relaxed = config(POLICY.replace("require-metrics = true", "require-metrics = false"))
    v = judge(
        relaxed,
        "v1.1.0",
        "b" * 40,
        None,
        None,
        None,
        release("v1.0.0"),
        note(accuracy=0.9),
        "v1.1.0",
    )
    assert v.passed


def test_first_release_passes_with_metrics() -> None:
    v = judge(
        config(), "v1.0.0", "b" * 40, None, note(accuracy=0.5, loss=9.0), None, None, None, "v1.0.0"
    )
    assert v.passed and v.previous_tag is None
    assert "first release" in v.summary
    empty = judge(config(), "v1.0.0", "b" * 40, None, note(), None, None, None, "v1.0.0")
    assert not empty.passed


def test_override_needs_the_same_tag_and_a_reason() -> None:
    failing = note(accuracy=0.5, loss=0.2)
    failing["overrides"] = [
        {"tag": "v1.1.0", "reason": "new labels\x1b[31m"},
        {"tag": "v9", "reason": "x"},
    ]
    args = (release("v1.0.0"), note(accuracy=0.9, loss=0.2))
    v = judge(config(), "v1.1.0", "b" * 40, None, failing, None, *args, "v1.1.0")
    assert v.passed and v.override == "new labels [31m"  # control characters never reach a terminal
    assert v.summary.startswith("OVERRIDDEN")
    v = judge(config(), "v1.2.0", "b" * 40, None, failing, None, *args, "v1.2.0")
    assert not v.passed


def test_hostile_note_values_fail_cleanly() -> None:
    v = judge(config(), "v1.1.0", "b" * 40, None, {"metrics": {"accuracy": "1e9"}}, None,
              release("v1.0.0"), note(accuracy=0.9), "v1.1.0")  # fmt: skip
    assert not v.passed and "not a number" in v.summary


def test_per_model_metrics_from_models_key_or_prefix() -> None:
    cand = {
        "metrics": {"fraud.accuracy": 0.1},
        "models": {"churn": {"metrics": {"accuracy": 0.95, "loss": 0.1}}},
    }
    prev = {"metrics": {"churn.accuracy": 0.9, "churn.loss": 0.1, "fraud.accuracy": 0.99}}
    v = judge(
        config(),
        "churn@v1.1.0",
        "b" * 40,
        "churn",
        cand,
        None,
        release("churn@v1.0.0"),
        prev,
        "churn@v1.1.0",
    )
    assert v.passed, v.text()
    v = judge(
        config(),
        "fraud@v1.1.0",
        "b" * 40,
        "fraud",
        cand,
        None,
        release("fraud@v1.0.0"),
        prev,
        "fraud@v1.1.0",
    )
    assert not v.passed


# -- real repositories ---------------------------------------------------------------------


def put_note(sh: Shell, repo: Path, rev: str, metrics: dict[str, Any], **extra: Any) -> None:
    body = json.dumps({"schema": 1, "metrics": metrics, **extra})
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-m", body, rev, cwd=repo)


def commit(sh: Shell, repo: Path, message: str, metrics: dict[str, Any] | None = None) -> str:
    sh.git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    if metrics is not None:
        put_note(sh, repo, "HEAD", metrics)
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


@pytest.fixture
def gated(repo: Path, sh: Shell) -> Path:
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("commit", "-q", "-am", "policy", cwd=repo)
    return repo


def test_hotfix_ordering(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.80, "loss": 0.3})
    sh.git(*NO_HOOKS, "tag", "v1.0.0", cwd=gated)
    commit(sh, gated, "r2", {"accuracy": 0.85, "loss": 0.3})
    sh.git(*NO_HOOKS, "tag", "v1.0.1", cwd=gated)
    commit(sh, gated, "r3", {"accuracy": 0.95, "loss": 0.2})
    sh.git(*NO_HOOKS, "tag", "v1.2.0", cwd=gated)
    sh.git("checkout", "-q", "-b", "hotfix", "v1.0.1", cwd=gated)
    commit(sh, gated, "fix", {"accuracy": 0.845, "loss": 0.3})
    # Untagged, HEAD is judged as the next release: against v1.2.0, and it is worse.
    assert sh.gm("check", cwd=gated, check=False).returncode == 1
    # As the hotfix v1.0.2 it is judged against v1.0.1, within the tolerance.
    out = sh.gm("check", "--tag", "v1.0.2", "--json", cwd=gated).json()
    assert out["previous"]["tag"] == "v1.0.1" and out["passed"]
    sh.git("tag", "v1.0.2", cwd=gated)  # the hook judges it the same way
    assert sh.git("tag", "-l", "v1.0.2", cwd=gated).stdout.strip() == "v1.0.2"
    # `check TAG` judges an existing release against the one before it in version order.
    assert sh.gm("check", "v1.0.1", "--json", cwd=gated).json()["previous"]["tag"] == "v1.0.0"
    assert sh.gm("check", "v1.2.0", "--json", cwd=gated).json()["previous"]["tag"] == "v1.0.2"


def test_previous_release_must_have_metrics(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    sh.git(*NO_HOOKS, "tag", "v1.0.0", cwd=gated)
    commit(sh, gated, "r2 (no metrics)")
    sh.git(*NO_HOOKS, "tag", "v1.1.0", cwd=gated)
    commit(sh, gated, "r3", {"accuracy": 0.7, "loss": 0.3})
    out = sh.gm("check", "--json", cwd=gated, check=False)
    assert out.returncode == 1
    assert out.json()["previous"]["tag"] == "v1.0.0"


def test_check_exit_codes_and_against(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    sh.git("tag", "v1.0.0", cwd=gated)
    commit(sh, gated, "r2", {"accuracy": 0.95, "loss": 0.25})
    sh.git("tag", "v1.1.0", cwd=gated)
    commit(sh, gated, "r3", {"accuracy": 0.92, "loss": 0.25})
    assert sh.gm("check", cwd=gated, check=False).returncode == 1  # vs v1.1.0
    ok = sh.gm("check", "--against", "v1.0.0", cwd=gated)
    assert "against v1.0.0" in ok.stdout and ok.stdout.rstrip().splitlines()[-1].startswith("PASS")
    assert sh.gm("check", "nosuchrev", cwd=gated, check=False).returncode == 2
    bad = sh.gm("check", "--against", "v9.9.9", cwd=gated, check=False)
    assert bad.returncode == 2 and "no such tag" in bad.stderr
    (gated / ".gitmodel.toml").write_text('[gate.accuracy]\ndirection = "up"\n')
    broken = sh.gm("check", cwd=gated, check=False)
    assert (
        broken.returncode == 2 and "direction" in broken.stderr and "Traceback" not in broken.stderr
    )


def test_release_creates_an_annotated_tag_with_metrics(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    res = sh.gm("release", "--bump", "minor", "-m", "First model", cwd=gated)
    assert "released v0.1.0" in res.stderr
    assert sh.git("cat-file", "-t", "v0.1.0", cwd=gated).stdout.strip() == "tag"
    body = sh.git("tag", "-l", "--format=%(contents)", "v0.1.0", cwd=gated).stdout
    assert body.startswith("First model") and "accuracy = 0.9" in body and "first release" in body
    commit(sh, gated, "r2", {"accuracy": 0.95, "loss": 0.28})
    sh.gm("release", "--bump", "patch", cwd=gated)
    body = sh.git("tag", "-l", "--format=%(contents)", "v0.1.1", cwd=gated).stdout
    assert "against v0.1.0" in body and "PASS" in body
    assert sh.gm("release", "v0.1.1", cwd=gated, check=False).returncode == 2  # exists
    assert sh.gm("release", "wip", cwd=gated, check=False).returncode == 2  # not a release tag
    assert sh.gm("release", cwd=gated, check=False).returncode == 2


def test_release_refuses_then_override_is_recorded(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    sh.gm("release", "v1.0.0", cwd=gated)
    sha = commit(sh, gated, "r2", {"accuracy": 0.8, "loss": 0.3})
    refused = sh.gm("release", "v1.1.0", cwd=gated, check=False)
    assert refused.returncode == 1
    assert "FAIL: accuracy is worse than v1.0.0" in refused.stdout
    assert sh.git("tag", "-l", "v1.1.0", cwd=gated).stdout == ""
    sh.gm("release", "v1.1.0", "--allow-regression", "relabelled test set", cwd=gated)
    body = sh.git("tag", "-l", "--format=%(contents)", "v1.1.0", cwd=gated).stdout
    assert "Reason: relabelled test set" in body and "OVERRIDDEN" in body
    note = json.loads(sh.git("notes", "--ref=refs/notes/metrics", "show", sha, cwd=gated).stdout)
    assert note["overrides"][0]["tag"] == "v1.1.0"
    assert note["overrides"][0]["reason"] == "relabelled test set"
    assert note["metrics"]["accuracy"] == 0.8  # the metrics are kept
    # Every later door agrees: the override is in the note.
    assert sh.gm("check", "v1.1.0", cwd=gated).returncode == 0


def test_diff_defaults_to_the_previous_release(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    sh.git("tag", "v1.0.0", cwd=gated)
    commit(sh, gated, "r2", {"accuracy": 0.91, "loss": 0.3})
    commit(sh, gated, "r3", {"accuracy": 0.93, "loss": 0.3})
    out = sh.gm("diff", "--json", cwd=gated).json()
    assert out["a"]["rev"] == "v1.0.0"
    assert out["metrics"]["accuracy"]["delta"] == pytest.approx(0.03)


def test_per_model_release_lines(gated: Path, sh: Shell) -> None:
    commit(
        sh,
        gated,
        "both",
        {"churn.accuracy": 0.9, "churn.loss": 0.1, "fraud.accuracy": 0.8, "fraud.loss": 0.1},
    )
    sh.git("tag", "churn@v1.0.0", cwd=gated)
    sh.git("tag", "fraud@v1.0.0", cwd=gated)
    sha = commit(sh, gated, "churn better, fraud worse")
    models = {
        "churn": {"metrics": {"accuracy": 0.95, "loss": 0.1}},
        "fraud": {"metrics": {"accuracy": 0.5, "loss": 0.1}},
    }
    put_note(sh, gated, sha, {"churn.accuracy": 0.1}, models=models)
    sh.git("tag", "churn@v1.1.0", cwd=gated)
    refused = sh.git("tag", "fraud@v1.1.0", cwd=gated, check=False)
    assert refused.returncode != 0 and "against fraud@v1.0.0" in refused.stderr
    assert sh.gm("check", "--model", "fraud", cwd=gated, check=False).returncode == 1
    # HEAD is churn@v1.1.0 already: it is judged as that release.
    out = sh.gm("check", "--model", "churn", "--json", cwd=gated).json()
    assert out["candidate"]["name"] == "HEAD" and out["previous"]["tag"] == "churn@v1.0.0"
    # The main line has no release yet: the per-model tags are not its history.
    main_line = sh.gm("check", "--tag", "v1.0.0", "--json", cwd=gated, check=False).json()
    assert main_line["previous"] is None
    assert (
        sh.gm(
            "release", "--bump", "minor", "--model", "churn", "--allow-regression", "n/a", cwd=gated
        ).returncode
        == 0
    )
    assert sh.git("tag", "-l", "churn@v1.2.0", cwd=gated).stdout.strip() == "churn@v1.2.0"


def test_unknown_policy_keys_are_warnings(gated: Path, sh: Shell) -> None:
    (gated / ".gitmodel.toml").write_text(POLICY + "tolerence = 0.5\n")  # typo, in [gate.loss]
    commit(sh, gated, "r1", {"accuracy": 0.9, "loss": 0.3})
    out = sh.gm("check", cwd=gated)
    assert "warning" in out.stderr and "gate.loss.tolerence" in out.stderr
