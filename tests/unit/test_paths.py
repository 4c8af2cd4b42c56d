"""gitmodel.paths: the one path policy for every file gitmodel writes, reads or removes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitmodel.errors import EXIT_USAGE, GitModelError
from gitmodel.paths import (
    MAX_PART_BYTES,
    MAX_PATH_BYTES,
    UnsafePath,
    WorkTree,
    check_relpath,
    is_git_name,
    open_nofollow,
    read_bytes,
)


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "/etc/passwd",
        "a/../b",
        "..",
        "../outside",
        "./model.pt",
        "a//b",
        "a/",
        "a\\..\\b",  # Windows separators are separators
        "a\0b",
        ".git/config",
        ".GIT/hooks/pre-commit",
        "sub/.git/config",
        ".git./config",  # NTFS drops trailing dots
        ".git /config",  # and trailing spaces
        ".git::$INDEX_ALLOCATION/x",  # an NTFS stream of .git
        "GIT~1/config",  # its 8.3 short name
        ".g\u200cit/config",  # HFS+ ignores zero-width joiners
        "\ufeff.git/config",
        ".dvc/cache/files/md5/00/x",
        ".DVC/config",
        "x" * (MAX_PART_BYTES + 1),
        "/".join(["abcdefgh"] * (MAX_PATH_BYTES // 9 + 1)),
    ],
)
def test_check_relpath_refuses(rel: str) -> None:
    with pytest.raises(UnsafePath) as caught:
        check_relpath(rel, "model.pt.dvc: output")
    assert caught.value.message.startswith("model.pt.dvc: output")  # names the culprit
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("rel", "parts"),
    [
        ("model.pt", ("model.pt",)),
        ("models/v1/weights.bin", ("models", "v1", "weights.bin")),
        (".gitignore", (".gitignore",)),
        (".github/workflows/ci.yml", (".github", "workflows", "ci.yml")),
        ("git/x", ("git", "x")),
        ("legit.git/x", ("legit.git", "x")),
        ("data.dvc", ("data.dvc",)),
        ("sub/.dvc/x", ("sub", ".dvc", "x")),  # only the top-level .dvc is DVC's
        ("mod\u00e8le.pt", ("mod\u00e8le.pt",)),
    ],
)
def test_check_relpath_accepts(rel: str, parts: tuple[str, ...]) -> None:
    assert check_relpath(rel, "x") == parts


def test_the_dvc_directory_only_where_the_caller_allows() -> None:
    assert check_relpath(".dvc/config", "x", allow_dvc=True) == (".dvc", "config")
    with pytest.raises(UnsafePath):
        check_relpath(".dvc/../.git/config", "x", allow_dvc=True)


@pytest.mark.parametrize(
    ("part", "git"),
    [(".git", True), (".Git", True), ("git~1", True), (".git.", True), (".gitignore", False)],
)
def test_is_git_name(part: str, git: bool) -> None:
    assert is_git_name(part) is git


@pytest.fixture
def tree(tmp_path: Path) -> WorkTree:
    root = tmp_path / "work"
    (root / ".git").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "models" / "a.pt").write_bytes(b"a")
    return WorkTree(root, [root / ".git"])


def test_worktree_path_is_under_the_root(tree: WorkTree) -> None:
    assert tree.path("models/a.pt", "x") == tree.root / "models" / "a.pt"
    assert tree.path("new/dir/b.pt", "x") == tree.root / "new" / "dir" / "b.pt"  # not yet there


def test_worktree_refuses_a_link_on_the_way(tree: WorkTree, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree.root / "linked").symlink_to(outside)
    with pytest.raises(UnsafePath, match="symbolic link 'linked'"):
        tree.path("linked/model.pt", "model.pt.dvc")
    assert not (outside / "model.pt").exists()


def test_worktree_leaf_link_only_where_the_caller_says(tree: WorkTree, tmp_path: Path) -> None:
    (tree.root / "models" / "b.pt").symlink_to(tmp_path / "anywhere")
    with pytest.raises(UnsafePath, match="symbolic link"):
        tree.path("models/b.pt", "x")
    assert tree.path("models/b.pt", "x", leaf_link_ok=True) == tree.root / "models" / "b.pt"


def test_worktree_refuses_a_file_in_the_way(tree: WorkTree) -> None:
    with pytest.raises(UnsafePath, match="is not a directory"):
        tree.path("models/a.pt/inner", "x")


def test_worktree_refuses_a_git_directory_not_named_git(tmp_path: Path) -> None:
    # A separate git directory inside the work tree (git init --separate-git-dir=gitdir,
    # a linked worktree's admin dir): not called .git, still git's own.
    root = tmp_path / "work"
    (root / "meta" / "gitdir").mkdir(parents=True)
    tree = WorkTree(root, [root / "meta" / "gitdir"])
    for rel in ("meta/gitdir", "meta/gitdir/config", "meta"):
        with pytest.raises(UnsafePath, match="git's own directory"):
            tree.path(rel, "x")
    assert tree.path("meta2/x", "x")


def test_make_parents_does_not_follow_a_link_planted_after_the_check(
    tree: WorkTree, tmp_path: Path
) -> None:
    full = tree.path("fresh/sub/model.pt", "x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree.root / "fresh").symlink_to(outside)  # a race: planted between check and write
    with pytest.raises(UnsafePath, match="not a directory"):
        tree.make_parents(full, "x")
    assert list(outside.iterdir()) == []


def test_make_parents_creates_real_directories(tree: WorkTree) -> None:
    full = tree.path("a/b/c/model.pt", "x")
    tree.make_parents(full, "x")
    assert (tree.root / "a" / "b" / "c").is_dir()
    assert not (tree.root / "a").is_symlink()


def test_forget_checks_a_replaced_directory_again(tree: WorkTree, tmp_path: Path) -> None:
    tree.path("models/a.pt", "x")  # "models" is now known to be a real directory
    (tree.root / "models" / "a.pt").unlink()
    (tree.root / "models").rmdir()
    (tree.root / "models").symlink_to(tmp_path)
    tree.forget("models")
    with pytest.raises(UnsafePath, match="symbolic link"):
        tree.path("models/a.pt", "x")


def test_relative_refuses_what_is_outside(tree: WorkTree, tmp_path: Path) -> None:
    assert tree.relative(tree.root / "models" / "a.pt") == "models/a.pt"
    for outside in (tmp_path, tree.root, tmp_path / "work-other" / "x"):
        with pytest.raises(UnsafePath):
            tree.relative(outside)


def test_read_bytes_refuses_links_directories_devices_and_large_files(tmp_path: Path) -> None:
    regular = tmp_path / "policy.toml"
    regular.write_bytes(b"x" * 100)
    assert read_bytes(regular, "policy.toml") == b"x" * 100
    link = tmp_path / "link.toml"
    link.symlink_to(regular)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # O_NONBLOCK: refused, never waited on
    for path, message in (
        (link, "symbolic link"),
        (tmp_path, "not a regular file"),
        (fifo, "not a regular file"),
    ):
        with pytest.raises(UnsafePath, match=message):
            read_bytes(path, "what")
    with pytest.raises(UnsafePath, match="larger than 99 bytes"):
        read_bytes(regular, "policy.toml", limit=99)
    with pytest.raises(FileNotFoundError):  # absent: the caller words it
        read_bytes(tmp_path / "absent", "absent")


def test_open_nofollow_refuses_a_link_at_the_leaf(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(UnsafePath, match="link is a symbolic link"):
        open_nofollow(tmp_path / "link", "link", os.O_WRONLY | os.O_TRUNC)
    assert (tmp_path / "target").read_text() == "secret"


def test_unsafe_path_is_an_expected_failure() -> None:
    assert issubclass(UnsafePath, GitModelError)
