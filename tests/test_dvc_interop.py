"""What gitmodel writes, the real `dvc` CLI reads, and the other way round."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from conftest import Shell, write_bytes


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_dvc_status_clean_after_git_model_commit(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "model.pkl", 100_000, seed=1)
    write_bytes(repo / "shards" / "a.bin", 5000, seed=2)
    write_bytes(repo / "shards" / "b" / "c.bin", 7000, seed=3)
    sh.gm("commit", "model.pkl", "shards", "-m", "weights", "--metric", "acc=0.5", cwd=repo)
    out = sh.dvc("status", cwd=repo).stdout
    assert "up to date" in out
    assert sh.dvc("status", "--json", cwd=repo).stdout.strip() == "{}"


def test_dvc_checkout_restores_what_git_model_add_stored(sh: Shell, repo: Path) -> None:
    model = write_bytes(repo / "model.pkl", 100_000, seed=4)
    digest = md5(model)
    write_bytes(repo / "shards" / "x.bin", 3000, seed=5)
    expected = md5(repo / "shards" / "x.bin")
    sh.gm("add", "model.pkl", "shards", cwd=repo)
    model.unlink()
    shutil.rmtree(repo / "shards")
    sh.dvc("checkout", cwd=repo)
    assert md5(repo / "model.pkl") == digest
    assert md5(repo / "shards" / "x.bin") == expected


def test_git_model_checkout_restores_what_dvc_add_stored(sh: Shell, repo: Path) -> None:
    model = write_bytes(repo / "other.bin", 80_000, seed=6)
    digest = md5(model)
    write_bytes(repo / "data" / "p.bin", 2000, seed=7)
    write_bytes(repo / "data" / "q" / "r.bin", 2500, seed=8)
    files = {p: md5(repo / "data" / p) for p in ("p.bin", "q/r.bin")}
    sh.dvc("add", "-q", "other.bin", "data", cwd=repo)
    sh.git("add", "other.bin.dvc", "data.dvc", ".gitignore", cwd=repo)
    sh.git("commit", "-q", "-m", "dvc add", cwd=repo)
    assert sh.gm("status", "--json", cwd=repo).json() == {
        "modified": [],
        "missing": [],
        "not_in_cache": [],
    }
    os.chmod(model, 0o644)
    model.unlink()
    shutil.rmtree(repo / "data")
    sh.gm("checkout", cwd=repo)
    assert md5(repo / "other.bin") == digest
    assert {p: md5(repo / "data" / p) for p in files} == files


def test_pointer_is_byte_identical_to_dvc_add(sh: Shell, repo: Path, tmp_path: Path) -> None:
    write_bytes(repo / "a.bin", 12345, seed=9)
    sh.gm("add", "a.bin", cwd=repo)
    ours = (repo / "a.bin.dvc").read_text()
    other = tmp_path / "dvc-only"
    other.mkdir()
    sh.git("init", "-q", cwd=other)
    sh.dvc("init", "-q", cwd=other)
    write_bytes(other / "a.bin", 12345, seed=9)
    sh.dvc("add", "-q", "a.bin", cwd=other)
    assert (other / "a.bin.dvc").read_text() == ours
    # directories too: same .dir object name and content
    for root in (repo, other):
        write_bytes(root / "d" / "one.bin", 10, seed=1)
        write_bytes(root / "d" / "two" / "three.bin", 20, seed=2)
    sh.gm("add", "d", cwd=repo)
    sh.dvc("add", "-q", "d", cwd=other)
    assert (other / "d.dvc").read_text() == (repo / "d.dvc").read_text()
