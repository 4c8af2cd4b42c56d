"""No test sees the developer's git or DVC config (tests/conftest.py: isolated_home).

A developer's ~/.gitconfig may set core.hooksPath (hooks installed elsewhere, so an
install test passes or fails for the wrong reason), notes.rewriteRef or notes.displayRef
(git copies or shows notes that gitmodel did not ask for), and ~/.config/dvc/config a
cache.type; a test run from inside a git hook inherits GIT_DIR. Each of those is planted
here in a fake developer environment, and a session started in it must not see them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pygit2

from gitmodel.git import run_git

CONFTEST = Path(__file__).with_name("conftest.py")

# What a session under the developer's environment checks, in process: git through
# gitmodel's runner, libgit2 through pygit2, DVC's config levels through dvc itself.
PROBE = """
import os
import subprocess

import pygit2

from gitmodel.git import run_git

PLANTED = ("core.hooksPath", "notes.rewriteRef", "notes.displayRef", "gitmodel.planted")


def test_developer_config_is_invisible(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for key in PLANTED:
        seen = run_git(["config", "--get-all", key], cwd=repo, check=False).stdout
        assert seen == "", f"git sees the developer's {key} = {seen.strip()}"
    config = pygit2.Repository(str(repo)).config
    for key in PLANTED:
        assert key not in config, f"pygit2 sees the developer's {key}"
    assert run_git(["rev-parse", "--absolute-git-dir"], cwd=repo).stdout.strip() == str(
        repo / ".git"
    )
    from dvc.config import Config

    cache = Config(validate=False).get("cache", {})
    assert "type" not in cache, f"dvc sees the developer's cache.type = {cache}"
"""


def _developer_env(dev: Path, foreign_repo: Path) -> dict[str, str]:
    """An environment as a developer's shell (or a git hook) hands it to pytest."""
    (dev / ".config" / "git").mkdir(parents=True)
    (dev / ".config" / "dvc").mkdir(parents=True)
    (dev / "etc").mkdir()
    planted = (
        "[core]\n\thooksPath = /nonexistent/developer-hooks\n"
        "[notes]\n\trewriteRef = refs/notes/developer\n\tdisplayRef = refs/notes/developer\n"
        "[gitmodel]\n\tplanted = global\n"
    )
    (dev / ".gitconfig").write_text(planted)
    (dev / ".config" / "git" / "config").write_text("[gitmodel]\n\tplanted = xdg\n")
    (dev / "etc" / "gitconfig").write_text("[gitmodel]\n\tplanted = system\n")
    (dev / ".config" / "dvc" / "config").write_text("[cache]\n    type = symlink\n")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "XDG_", "PYTEST_"))
    }
    env.update(
        {
            "HOME": str(dev),
            "GIT_CONFIG_SYSTEM": str(dev / "etc" / "gitconfig"),
            # a test run from a git hook: git's variables point at another repository
            "GIT_DIR": str(foreign_repo / ".git"),
            "GIT_WORK_TREE": str(foreign_repo),
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "gitmodel.planted",
            "GIT_CONFIG_VALUE_0": "command-line",
        }
    )
    return env


def _run_probe(tmp_path: Path, conftest: str) -> subprocess.CompletedProcess[str]:
    session = tmp_path / "session"
    session.mkdir()
    (session / "pytest.ini").write_text("[pytest]\n")  # not the project's addopts
    (session / "conftest.py").write_text(conftest)
    (session / "test_probe.py").write_text(PROBE)
    dev = tmp_path / "developer"
    dev.mkdir()
    foreign = tmp_path / "foreign"
    subprocess.run(["git", "init", "-q", str(foreign)], check=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=session,
        env=_developer_env(dev, foreign),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_developer_config_does_not_leak_into_a_session(tmp_path: Path) -> None:
    proc = _run_probe(tmp_path, CONFTEST.read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_probe_sees_the_planted_config_without_the_fixture(tmp_path: Path) -> None:
    # The same probe with no isolation fails: the planted config is really visible, so
    # the test above can fail.
    proc = _run_probe(tmp_path, "")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "developer's" in proc.stdout


def test_this_session_is_isolated(isolated_home: Path, tmp_path: Path) -> None:
    assert os.environ["HOME"] == str(isolated_home)
    assert not any(k in os.environ for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert run_git(["config", "--global", "user.name"], cwd=repo).stdout == "Test User\n"
    # a global setting written in one test stays in that test's HOME
    run_git(["config", "--global", "gitmodel.written", "yes"], cwd=repo)
    assert "written = yes" in (isolated_home / ".gitconfig").read_text()
    assert pygit2.settings.search_path[pygit2.GIT_CONFIG_LEVEL_GLOBAL] == str(isolated_home)
    assert pygit2.Repository(str(repo)).config["gitmodel.written"] == "yes"
