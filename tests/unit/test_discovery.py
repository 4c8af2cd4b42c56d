"""gitmodel.discovery: the repository to work on, found as git finds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitmodel.discovery import discover
from gitmodel.errors import GitModelError

from .conftest import git


def test_from_anywhere_inside_the_work_tree(git_repo: Path) -> None:
    (git_repo / "deep" / "er").mkdir(parents=True)
    root, git_dir, common, hooks = discover(git_repo / "deep" / "er")
    assert root == git_repo
    assert git_dir == common == git_repo / ".git"
    assert hooks == git_repo / ".git" / "hooks"


def test_core_hooks_path_is_where_hooks_run(git_repo: Path) -> None:
    git(git_repo, "config", "core.hooksPath", ".githooks")
    assert discover(git_repo)[3] == git_repo / ".githooks"


def test_a_linked_worktree_has_its_own_git_dir_and_the_common_one(git_repo: Path) -> None:
    linked = git_repo.parent / "linked"
    git(git_repo, "worktree", "add", "-q", str(linked))
    root, git_dir, common, _ = discover(linked)
    assert root == linked
    assert git_dir == git_repo / ".git" / "worktrees" / "linked"
    assert common == git_repo / ".git"


def test_a_bare_repository_has_no_work_tree(tmp_path: Path) -> None:
    bare = tmp_path / "server.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    root, git_dir, common, hooks = discover(bare)
    assert root is None and git_dir == common == bare and hooks == bare / "hooks"


def test_git_dir_and_work_tree_from_the_environment(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `git --git-dir=... --work-tree=... model` hands them over as variables
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_DIR", os.path.relpath(git_repo / ".git", elsewhere))
    monkeypatch.setenv("GIT_WORK_TREE", str(git_repo))
    assert discover()[:2] == (git_repo, git_repo / ".git")


def test_a_git_dir_the_work_tree_does_not_lead_to_is_refused(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    git(tmp_path, "init", "-q", str(other))
    monkeypatch.chdir(git_repo)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(git_repo))
    with pytest.raises(GitModelError, match="is not the one its work tree"):
        discover()


def test_outside_a_repository_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitModelError, match=r"^not a git repository \(run `git init` first\)$"):
        discover(tmp_path / "plain")
    with pytest.raises(GitModelError, match="no such directory"):
        discover(tmp_path / "absent")
