"""Release gate integrity: no regressing release gets out through any door.

Each numbered scenario is an attack or a mistake that got a regressing release past the
gate; the tests drive the real git, gto and a served bare repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Shell

BIN = Path(sys.executable).parent

POLICY = """\
metrics-files = ["metrics.json"]
[release]
tags = "v*"
[gate.accuracy]
direction = "higher"
"""

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")  # make history the hooks would refuse


def put_note(sh: Shell, repo: Path, rev: str, metrics: dict[str, Any]) -> None:
    body = json.dumps({"schema": 1, "metrics": metrics})
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-m", body, rev, cwd=repo)


def commit(sh: Shell, repo: Path, message: str, metrics: dict[str, Any] | None = None) -> str:
    sh.git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    if metrics is not None:
        put_note(sh, repo, "HEAD", metrics)
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def tags(sh: Shell, repo: Path) -> set[str]:
    return set(sh.git("tag", "-l", cwd=repo).stdout.split())


@pytest.fixture
def gated(repo: Path, sh: Shell) -> Path:
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("commit", "-q", "-am", "policy", cwd=repo)
    return repo


def server(sh: Shell, path: Path) -> Path:
    sh.git("init", "-q", "--bare", str(path), cwd=path.parent)
    sh.gm("install", "--server", cwd=path)
    return path


# -- 8. GTO's other tag kinds ------------------------------------------------------------------


def gto(sh: Shell, repo: Path, *args: str, check: bool = True) -> Any:
    return sh.run([str(BIN / "gto"), *args], repo, check=check)


def test_8_gto_deprecations_and_stages_are_not_releases(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "main line", {"accuracy": 0.9})
    sh.git("tag", "v1.0.0", cwd=gated)
    # One commit: the main line got worse, clf and vision are first models of their lines.
    commit(sh, gated, "models", {"accuracy": 0.5, "clf.accuracy": 0.8, "vision.accuracy": 0.7})
    gto(sh, gated, "register", "clf", "--version", "v0.1.0")
    gto(sh, gated, "register", "vision", "--version", "v1.0.0")
    # A stage of an artifact named v...: not a main-line release (it would fail against v1.0.0).
    gto(sh, gated, "assign", "vision", "--version", "v1.0.0", "--stage", "prod")
    # A deprecation (and the artifact's) are not clf releases either.
    commit(sh, gated, "other work", {"accuracy": 0.95})
    gto(sh, gated, "deprecate", "clf", "v0.1.0")
    gto(sh, gated, "deprecate", "clf")
    assert {"clf@v0.1.0!", "vision#prod#1", "clf@v0.1.0"} <= tags(sh, gated)
    # Neither is judged nor a baseline.
    for name in ("clf@v0.1.0!", "vision#prod#1", "clf@deprecated"):
        out = sh.gm("check", "--tag", name, cwd=gated, check=False)
        assert out.returncode == 2 and "not a release tag" in out.stderr
    out = sh.gm("check", "--tag", "clf@v0.2.0", "--json", cwd=gated, check=False).json()
    assert out["previous"]["tag"] == "clf@v0.1.0"
    out = sh.gm("check", "--tag", "v1.1.0", "--json", cwd=gated).json()
    assert out["previous"]["tag"] == "v1.0.0"


# -- 10. one version, however spelled -------------------------------------------------------------


def test_10_equal_versions_are_judged_against_the_release_of_that_version(
    gated: Path, sh: Shell, tmp_path: Path
) -> None:
    commit(sh, gated, "r1", {"accuracy": 0.9})
    sh.git("tag", "v1.0.0", cwd=gated)
    commit(sh, gated, "r2", {"accuracy": 0.99})
    sh.git("tag", "v1.1.0", cwd=gated)
    commit(sh, gated, "worse", {"accuracy": 0.2})
    for name in ("v1.0", "v1.1", "v1.1.0.0"):
        refused = sh.git("tag", name, cwd=gated, check=False)
        assert refused.returncode != 0 and "FAIL" in refused.stderr, name
    assert (
        sh.gm("check", "--tag", "v1.0", "--json", cwd=gated, check=False).json()["previous"]["tag"]
        == "v1.0.0"
    )
    # `git model release` refuses a second spelling of a released version outright.
    dup = sh.gm("release", "v1.1", "--allow-regression", "why not", cwd=gated, check=False)
    assert dup.returncode == 2 and "same version as the release v1.1.0" in dup.stderr
    # The server, in one push: re-spelled versions do not start a new line.
    remote = server(sh, tmp_path / "server.git")
    sh.git("remote", "add", "origin", str(remote), cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "main", "refs/notes/metrics", cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "v1.0.0", "v1.1.0", cwd=gated)
    for name in ("v1.0.0.0", "v1.1.0.0", "v1.2.0"):
        sh.git(*NO_HOOKS, "tag", name, cwd=gated)
    pushed = sh.git(
        "push", "--no-verify", "origin", "v1.0.0.0", "v1.1.0.0", "v1.2.0", cwd=gated, check=False
    )
    assert pushed.returncode != 0 and "against v1.1.0" in pushed.stderr
    assert not {"v1.0.0.0", "v1.1.0.0", "v1.2.0"} & tags(sh, remote)
