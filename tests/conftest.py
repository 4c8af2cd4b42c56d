"""Real git in temporary repositories, with an isolated HOME and git config.

End-to-end tests drive the real `git` binary and the real `git model` executable as
subprocesses (the `sh` fixture); unit tests (tests/unit/) import gitmodel and call it in
process. Both run with a HOME, git config and DVC config of their own: nothing of the
developer's (~/.gitconfig, /etc/gitconfig, ~/.config/dvc, a hook's GIT_DIR) reaches a
test, and nothing in git is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Shell:
    """Runs git / git model / other commands with the isolated environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self,
        args: Sequence[str],
        cwd: Path | str,
        check: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
    ) -> Result:
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        proc = subprocess.run(
            list(args),
            cwd=cwd,
            env=full_env,
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return result

    def git(self, *args: str, cwd: Path | str, check: bool = True, **kw: Any) -> Result:
        return self.run(["git", *args], cwd, check=check, **kw)

    def gm(self, *args: str, cwd: Path | str, check: bool = True, **kw: Any) -> Result:
        return self.run(["git", "model", *args], cwd, check=check, **kw)

    def dvc(self, *args: str, cwd: Path | str, check: bool = True, **kw: Any) -> Result:
        return self.run([str(BIN / "dvc"), *args], cwd, check=check, **kw)


GITCONFIG = (
    "[user]\n\tname = Test User\n\temail = test@example.com\n"
    "[init]\n\tdefaultBranch = main\n"
    "[advice]\n\tdetachedHead = false\n"
)


def isolated_env(home: Path) -> dict[str, str]:
    """The variables that point git, libgit2's callers and DVC at home's config only."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        # dvc.dirs: global_config_dir() and system_config_dir() read these first, then
        # platformdirs (~/.config/dvc and /etc/xdg/dvc); site_cache_dir() is /var/tmp/dvc.
        "DVC_GLOBAL_CONFIG_DIR": str(home / ".config" / "dvc"),
        "DVC_SYSTEM_CONFIG_DIR": str(home / "etc" / "dvc"),
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
    }


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test, in process or not, runs under a HOME and git/DVC config of its own.

    In-process tests call gitmodel, which runs git with the process's environment and
    opens repositories with pygit2; either would otherwise read the developer's
    ~/.gitconfig (a core.hooksPath, a notes.rewriteRef, a global cache.type) or, under a
    git hook, its GIT_DIR. libgit2 reads HOME once, when pygit2 is imported, so its
    search path is set here too.
    """
    import pygit2

    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(GITCONFIG)
    for name in list(os.environ):
        if name.startswith("GIT_"):  # GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_PARAMETERS, ...
            monkeypatch.delenv(name)
    for name, value in isolated_env(home).items():
        monkeypatch.setenv(name, value)
    levels = {
        pygit2.GIT_CONFIG_LEVEL_SYSTEM: home / "etc",
        pygit2.GIT_CONFIG_LEVEL_XDG: home / ".config" / "git",
        pygit2.GIT_CONFIG_LEVEL_GLOBAL: home,
        pygit2.GIT_CONFIG_LEVEL_PROGRAMDATA: home / "etc",
    }
    search = pygit2.settings.search_path
    saved = {level: search[level] for level in levels}
    for level, path in levels.items():
        search[level] = str(path)
    yield home
    for level, path in saved.items():
        search[level] = path


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(GITCONFIG)
    return home


@pytest.fixture(scope="session")
def base_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k not in ("GITMODEL_DEBUG",)
    }
    env.update(isolated_env(home))
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1",
            "DVC_NO_UPDATER": "1",
            "LC_ALL": "C.UTF-8",
            "NO_COLOR": "1",
        }
    )
    return env


@pytest.fixture
def sh(base_env: dict[str, str]) -> Shell:
    return Shell(dict(base_env))


@pytest.fixture
def repo(tmp_path: Path, sh: Shell) -> Path:
    """A fresh git repository with one commit, after `git model init`."""
    path = tmp_path / "repo"
    path.mkdir()
    sh.git("init", "-q", cwd=path)
    # identity in the repo too, so in-process library calls (no isolated HOME) can commit
    sh.git("config", "user.name", "Test User", cwd=path)
    sh.git("config", "user.email", "test@example.com", cwd=path)
    (path / "README.md").write_text("project\n")
    sh.git("add", "README.md", cwd=path)
    sh.git("commit", "-q", "-m", "initial", cwd=path)
    sh.gm("init", cwd=path)
    sh.git("commit", "-q", "-m", "gitmodel init", cwd=path)
    return path


def write_bytes(path: Path, size: int, seed: int = 0) -> Path:
    """size pseudo-random bytes (deterministic by seed), without numpy."""
    import random

    rnd = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rnd.randbytes(size))
    return path
