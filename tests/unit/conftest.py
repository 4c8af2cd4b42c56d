"""Unit tests: gitmodel imported and called in process, on real git repositories.

The isolated HOME of tests/conftest.py applies here too (its autouse fixture); git is the
real binary, run with that environment.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def git(repo: Path, *args: str, input: str | None = None) -> str:
    """Run real git in repo; its stdout, or an AssertionError with its stderr."""
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=input, text=True, capture_output=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def commit_file(repo: Path, rel: str, text: str, message: str = "change") -> str:
    """Write rel, commit it, return the new commit's id."""
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", "--", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A git repository (no gitmodel) with one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit_file(repo, "README.md", "project\n", "initial")
    return repo
