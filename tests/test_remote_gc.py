"""`git model gc`: drops what no root needs, never an object of an unpushed commit."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import Shell, write_bytes


def obj(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def commit_model(sh: Shell, repo: Path, seed: int) -> str:
    write_bytes(repo / "model.bin", 50_000, seed=seed)
    sh.gm("commit", "model.bin", "-m", f"model {seed}", cwd=repo)
    return hashlib.md5((repo / "model.bin").read_bytes()).hexdigest()


def test_gc_keeps_roots_and_unpushed_commits(sh: Shell, repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.gm("remote", "add", "store", str(tmp_path / "store"), "--default", cwd=repo)
    sh.git("commit", "-q", "-m", "remote", cwd=repo)
    v1 = commit_model(sh, repo, 1)
    v2 = commit_model(sh, repo, 2)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    sh.gm("push", cwd=repo)
    v3 = commit_model(sh, repo, 3)  # never pushed...
    sh.git("reset", "-q", "--hard", "HEAD~1", cwd=repo)  # ...and only in the reflog now
    sh.gm("checkout", cwd=repo)
    # A stashed pointer change is a root as well.
    write_bytes(repo / "model.bin", 50_000, seed=4)
    sh.gm("add", "model.bin", cwd=repo)
    v4 = hashlib.md5((repo / "model.bin").read_bytes()).hexdigest()
    sh.git("stash", "-q", cwd=repo)
    sh.gm("checkout", "-f", cwd=repo)
    # An object nothing names at all.
    write_bytes(repo / "scratch.bin", 10_000, seed=5)
    sh.gm("add", "scratch.bin", cwd=repo)
    scratch = hashlib.md5((repo / "scratch.bin").read_bytes()).hexdigest()
    sh.git("rm", "-q", "--cached", "scratch.bin.dvc", cwd=repo)
    (repo / "scratch.bin.dvc").unlink()

    dry = sh.gm("gc", "--dry-run", "--grace", "0", "--json", cwd=repo).json()
    assert sorted(dry["removed"]) == sorted([v1, scratch])
    assert obj(repo, v1).exists()  # a dry run removes nothing

    recent = sh.gm("gc", "--json", cwd=repo).json()  # default grace: just-stored objects stay
    assert recent["removed"] == []

    sh.gm("gc", "--grace", "0", cwd=repo)
    assert not obj(repo, v1).exists() and not obj(repo, scratch).exists()
    for kept in (v2, v3, v4):
        assert obj(repo, kept).exists()
    # v1 is on the DVC remote: checking it out fetches it back.
    sh.gm("checkout", "HEAD~1", cwd=repo)
    assert hashlib.md5((repo / "model.bin").read_bytes()).hexdigest() == v1


def test_gc_without_git_remote_keeps_history(sh: Shell, repo: Path) -> None:
    v1 = commit_model(sh, repo, 1)
    commit_model(sh, repo, 2)
    out = sh.gm("gc", "--grace", "0", "--json", cwd=repo).json()
    assert out["removed"] == []
    assert obj(repo, v1).exists()


def test_gc_keeps_directory_entries(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "shards" / "a.bin", 1000, seed=1)
    write_bytes(repo / "shards" / "b.bin", 1000, seed=2)
    sh.gm("commit", "shards", "-m", "shards", cwd=repo)
    out = sh.gm("gc", "--grace", "0", "--json", cwd=repo).json()
    assert out["removed"] == [] and out["kept"] == 3
