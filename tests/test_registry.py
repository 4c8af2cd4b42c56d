"""Stages and promotion: `git model promote/demote/releases` beside the real `gto`, and
the promotion gate at the push doors (pre-push, and a server's pre-receive).

GTO orders events by tag time in whole seconds; the tests wait a second between events
so both tools see one order (an ordering need, not a timed assertion).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, Shell

GTO = str(BIN / "gto")

POLICY = '[release]\ntags = "v*"\n\n[gate.accuracy]\ndirection = "higher"\n'


def tick() -> None:
    time.sleep(1.1)


def commit_model(sh: Shell, repo: Path, n: int, main: float, clf: float) -> str:
    (repo / "model.bin").write_bytes(bytes([n]) * 1000)
    sh.gm(
        "commit",
        "model.bin",
        "-m",
        f"model {n}",
        "--metric",
        f"accuracy={main}",
        "--metric",
        f"clf.accuracy={clf}",
        cwd=repo,
    )
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


@pytest.fixture
def reg(sh: Shell, repo: Path) -> dict[str, str]:
    """Three versions on both lines: v1/clf@v1.0.0 (0.90), v1.1.0 (0.93), v1.2.0 (0.80)."""
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "policy", cwd=repo)
    commits = {}
    for n, (acc, name) in enumerate(((0.90, "v1.0.0"), (0.93, "v1.1.0"), (0.80, "v1.2.0"))):
        commits[name] = commit_model(sh, repo, n + 1, acc, acc)
        extra = ["--allow-regression", "smaller model"] if name == "v1.2.0" else []
        sh.gm("release", name, *extra, cwd=repo)
        if name == "v1.0.0":
            # GTO registers the first version of the clf line itself
            sh.run([GTO, "register", "clf", "--version", name], repo)
        else:
            sh.gm("release", f"clf@{name}", *extra, cwd=repo)
    return commits


def releases(sh: Shell, repo: Path) -> dict[str, Any]:
    data = sh.gm("releases", "--json", cwd=repo).json()
    return {line["name"]: line for line in data["lines"]}


def gto_show(sh: Shell, repo: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(sh.run([GTO, "show", "--json"], repo).stdout)
    return result


def test_promote_rollback_demote_agree_with_gto(sh: Shell, repo: Path, reg: dict[str, str]) -> None:
    sh.run([GTO, "assign", "clf", "--version", "v1.0.0", "--stage", "prod"], repo)
    tick()
    r = sh.gm("promote", "clf@v1.1.0", "prod", cwd=repo)
    assert "against clf@v1.0.0" in r.stdout and "clf#prod#2" in r.stderr
    tick()
    # worse than the holder: refused, no tag
    r = sh.gm("promote", "clf@v1.2.0", "prod", cwd=repo, check=False)
    assert r.returncode == 1 and "FAIL" in r.stdout and "not promoting" in r.stderr
    assert sh.git("tag", "-l", "clf#prod#3", cwd=repo).stdout == ""
    # a rollback: worse, promoted with a reason that is recorded
    r = sh.gm(
        "promote",
        "clf@v1.0.0",
        "prod",
        "--allow-regression",
        "rollback: v1.1.0 leaks",
        "--json",
        cwd=repo,
    )
    change = r.json()
    assert change["tag"] == "clf#prod#3" and change["previous"]["version"] == "clf@v1.1.0"
    assert change["verdict"]["overridden"]
    note = sh.gm("metrics", reg["v1.0.0"], "--json", cwd=repo).json()
    entries = [e for e in json.dumps(note).split("rollback: v1.1.0 leaks")]
    assert len(entries) == 2
    message = sh.git("tag", "-l", "--format=%(contents)", "clf#prod#3", cwd=repo).stdout
    assert "rollback: v1.1.0 leaks" in message
    tick()
    sh.run([GTO, "assign", "clf", "--version", "v1.1.0", "--stage", "staging"], repo)
    tick()
    sh.gm("promote", "v1.1.0", "prod", cwd=repo)  # the main line: main#prod#1
    ours, theirs = releases(sh, repo), gto_show(sh, repo)
    assert theirs["clf"]["stage"]["prod"] == "v1.0.0"
    assert theirs["clf"]["stage"]["staging"] == "v1.1.0"
    assert ours["clf"]["stages"]["prod"]["version"] == "clf@v1.0.0"
    assert ours["clf"]["stages"]["staging"]["version"] == "clf@v1.1.0"
    assert theirs["main"]["stage"]["prod"] == reg["v1.1.0"]
    assert ours["main"]["stages"]["prod"]["version"] == "v1.1.0"
    by_tag = {r["tag"]: r for r in ours["clf"]["releases"]}
    assert by_tag["clf@v1.0.0"]["stages"] == ["prod"]
    assert by_tag["clf@v1.1.0"]["stages"] == ["staging"]
    assert [r["tag"] for r in ours["clf"]["releases"]] == ["clf@v1.2.0", "clf@v1.1.0", "clf@v1.0.0"]
    assert ours["main"]["releases"][0]["verdict"]["result"] == "overridden"
    assert ours["main"]["releases"][1]["verdict"]["result"] == "pass"
    assert ours["main"]["releases"][0]["metrics"] == {"accuracy": 0.8}
    tick()
    # demote: GTO's unassign; prod falls back to v1.1.0, still in prod since #2
    r = sh.gm("demote", "clf", "prod", "--json", cwd=repo).json()
    assert r["tag"] == "clf#prod!#5" and r["holder"]["version"] == "clf@v1.1.0"
    ours, theirs = releases(sh, repo), gto_show(sh, repo)
    assert theirs["clf"]["stage"]["prod"] == "v1.1.0"
    assert ours["clf"]["stages"]["prod"]["version"] == "clf@v1.1.0"
    history = json.loads(sh.run([GTO, "history", "clf", "--json"], repo).stdout)
    gto_events = sorted(
        (e["ref"], e["event"]) for e in history if e["event"] in ("assignment", "unassignment")
    )
    our_events = sorted((e["tag"], e["action"] + "ment") for e in ours["clf"]["history"])
    assert gto_events == our_events
    text = sh.gm("releases", cwd=repo).stdout
    assert "stages: prod=clf@v1.1.0, staging=clf@v1.1.0" in text
    assert "[prod] [staging]" in text


def test_promote_bad_input(sh: Shell, repo: Path, reg: dict[str, str]) -> None:
    for args, words in (
        (["v9.9.9", "prod"], "no release tag v9.9.9"),
        (["main", "prod"], "not a release tag"),
        (["v1.0.0", "bad stage"], "not a stage name"),
        (["v1.0.0", "prod", "--allow-regression", " "], "needs a reason"),
    ):
        r = sh.gm("promote", *args, cwd=repo, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr
    r = sh.gm("demote", "clf", "prod", cwd=repo, check=False)
    assert r.returncode == 2 and "holds prod" in r.stderr
    sh.gm("promote", "v1.0.0", "prod", cwd=repo)
    r = sh.gm("promote", "v1.0.0", "prod", cwd=repo)
    assert "already holds prod" in r.stderr
    # stage tags are never releases nor baselines: v1.1.0 is still judged against v1.0.0
    check = sh.gm("check", "--json", reg["v1.1.0"], cwd=repo, check=False)
    assert "main#prod" not in check.stdout


def test_stage_tags_are_gated_at_push_and_on_the_server(
    sh: Shell, repo: Path, reg: dict[str, str], tmp_path: Path
) -> None:
    server = tmp_path / "server.git"
    sh.git("init", "-q", "--bare", str(server), cwd=tmp_path)
    sh.gm("install", "--server", cwd=server)
    sh.git("remote", "add", "origin", str(server), cwd=repo)
    sh.gm("remote", "add", "store", str(tmp_path / "store"), "--default", cwd=repo)
    sh.git("push", "-q", "origin", "main", "--tags", cwd=repo)
    sh.gm("promote", "v1.1.0", "prod", cwd=repo)
    sh.git("push", "-q", "origin", "main#prod#1", cwd=repo)
    tick()
    # a stage tag written by hand on a worse version: plain `git tag` refuses it...
    r = sh.git("tag", "-a", "-m", "sneaky", "main#prod#2", reg["v1.2.0"], cwd=repo, check=False)
    assert r.returncode != 0 and "refused to create stage tag main#prod#2" in r.stderr
    assert sh.git("tag", "-l", "main#prod#2", cwd=repo).stdout == ""
    # (git has no --no-verify for `git tag`: step around the reference-transaction hook)
    sh.git(
        "-c",
        "core.hooksPath=/dev/null",
        "tag",
        "-a",
        "-m",
        "sneaky",
        "main#prod#2",
        reg["v1.2.0"],
        cwd=repo,
    )
    # ...the push refuses it before it leaves...
    r = sh.git("push", "origin", "main#prod#2", cwd=repo, check=False)
    assert r.returncode != 0 and "promotion gate failed" in r.stderr
    # ...and by the server, which --no-verify does not skip
    r = sh.git("push", "--no-verify", "origin", "main#prod#2", cwd=repo, check=False)
    assert r.returncode != 0 and "the server refused stage tag main#prod#2" in r.stderr
    assert sh.git("tag", "-l", "main#*", cwd=server).stdout.split() == ["main#prod#1"]
    # a rollback with a recorded reason passes both doors (the note travels with it)
    sh.git("tag", "-d", "main#prod#2", cwd=repo)
    sh.gm("promote", "v1.0.0", "prod", "--allow-regression", "rollback", cwd=repo)
    sh.git("push", "origin", "main#prod#2", cwd=repo)
    assert "main#prod#2" in sh.git("tag", "-l", "main#*", cwd=server).stdout
    # demotions are not gated
    sh.gm("demote", "main", "prod", cwd=repo)
    sh.git("push", "-q", "origin", "main#prod!#3", cwd=repo)
    # two promotions in one push are judged in turn: the second against the first
    sh.gm("promote", "v1.1.0", "staging", cwd=repo)
    counter = 1 + max(
        int(t.rsplit("#", 1)[1]) for t in sh.git("tag", "-l", "main#*", cwd=repo).stdout.split()
    )
    tick()
    sh.git(
        "-c",
        "core.hooksPath=/dev/null",
        "tag",
        "-a",
        "-m",
        "sneaky",
        f"main#staging#{counter}",
        reg["v1.2.0"],
        cwd=repo,
    )
    both = [f"main#staging#{counter - 1}", f"main#staging#{counter}"]
    r = sh.git("push", "origin", *both, cwd=repo, check=False)
    assert r.returncode != 0 and f"stage tag main#staging#{counter}:" in r.stderr
    r = sh.git("push", "--no-verify", "origin", *both, cwd=repo, check=False)
    assert r.returncode != 0 and f"the server refused stage tag main#staging#{counter}:" in r.stderr
