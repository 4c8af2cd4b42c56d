"""Real git in temporary repositories, with an isolated HOME and git config.

Every test drives the real `git` binary and the real `git model` executable as
subprocesses; nothing in git is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
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


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
        "[advice]\n\tdetachedHead = false\n"
    )
    return home


@pytest.fixture(scope="session")
def base_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") and k not in ("GITMODEL_DEBUG",)
    }
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1",
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
