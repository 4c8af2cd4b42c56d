"""Two processes at once lose nothing: concurrent adds, the same object written twice,
git's index.lock held by someone else, a lock file left by a killed process."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import Shell, write_bytes
from integrity import assert_gitignore_whole, assert_objects_intact, md5_of, objects

ROUNDS = 3


def _together(
    sh: Shell, repo: Path, *commands: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at the same moment; wait for all."""
    procs = [
        subprocess.Popen(
            c, cwd=repo, env=sh.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    out = []
    for p, c in zip(procs, commands, strict=True):
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(c, p.returncode, stdout, stderr))
    return out


def _staged(sh: Shell, repo: Path) -> set[str]:
    return set(sh.git("diff", "--cached", "--name-only", cwd=repo).stdout.split())


def test_two_adds_of_different_files(repo: Path, sh: Shell) -> None:
    for r in range(ROUNDS):
        names = [f"m{r}a.bin", f"m{r}b.bin"]
        for i, n in enumerate(names):
            write_bytes(repo / "models" / n, 400_000, seed=r * 10 + i)
        results = _together(sh, repo, *[["git", "model", "add", f"models/{n}"] for n in names])
        for res in results:
            assert res.returncode == 0, res.stderr
        assert_objects_intact(repo / ".dvc" / "cache")
        lines = assert_gitignore_whole(
            repo / "models" / ".gitignore", [f"/m{k}{s}.bin" for k in range(ROUNDS) for s in "ab"]
        )
        assert {f"/{n}" for n in names} <= set(lines), f"round {r}: a .gitignore line was lost"
        staged = _staged(sh, repo)
        for n in names:
            assert f"models/{n}.dvc" in staged, f"round {r}: {n}.dvc not staged"
            assert md5_of(repo / "models" / n) in objects(repo / ".dvc" / "cache")
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0


def test_two_adds_of_the_same_file(repo: Path, sh: Shell) -> None:
    for r in range(ROUNDS):
        write_bytes(repo / "model.bin", 2_000_000, seed=100 + r)
        for d in ("a", "b", "c"):
            write_bytes(repo / "data" / f"{d}.bin", 100_000, seed=200 + r)
        results = _together(
            sh,
            repo,
            ["git", "model", "add", "model.bin", "data"],
            ["git", "model", "add", "model.bin", "data"],
        )
        for res in results:
            assert res.returncode == 0, res.stderr
        assert_objects_intact(repo / ".dvc" / "cache")
        assert assert_gitignore_whole(repo / ".gitignore", ["/model.bin", "/data"]) == [
            "/model.bin",
            "/data",
        ]
        pointer = (repo / "model.bin.dvc").read_text()
        assert md5_of(repo / "model.bin") in pointer
        status = sh.gm("status", "--json", cwd=repo).json()
        assert status == {"modified": [], "missing": [], "not_in_cache": []} or (
            status["modified"] == [] and status["missing"] == []
        ), status
    tmp = repo / ".dvc" / "cache" / "files" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0


def test_index_lock_held_briefly_is_retried(repo: Path, sh: Shell) -> None:
    write_bytes(repo / "model.bin", 10_000)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    proc = subprocess.Popen(
        ["git", "model", "add", "model.bin"],
        cwd=repo,
        env=sh.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    lock.unlink()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "model.bin.dvc" in _staged(sh, repo)


def test_lock_left_by_a_killed_process_is_taken_over(repo: Path, sh: Shell) -> None:
    """A `.gitignore.lock` whose holder died (no flock on it) does not stall the next add."""
    write_bytes(repo / "model.bin", 10_000)
    stale = repo / ".gitignore.lock"
    stale.write_text("/half")
    old = time.time() - 5
    os.utime(stale, (old, old))
    start = time.monotonic()
    sh.gm("add", "model.bin", cwd=repo)
    assert time.monotonic() - start < 8, "waited for a dead process's lock"
    assert not stale.exists()
    assert "/model.bin" in (repo / ".gitignore").read_text().splitlines()


def test_lock_of_a_live_process_is_respected(repo: Path, sh: Shell) -> None:
    """A lock whose holder is alive (it holds the flock) is waited for, never broken."""
    write_bytes(repo / "model.bin", 10_000)
    lock = repo / ".gitignore.lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    old = time.time() - 60
    os.utime(lock, (old, old))
    proc = subprocess.Popen(
        ["git", "model", "add", "model.bin"],
        cwd=repo,
        env=sh.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    assert proc.poll() is None, "the live lock was broken"
    assert lock.exists()
    os.write(fd, b"/other\n")
    os.replace(lock, repo / ".gitignore")
    os.close(fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (repo / ".gitignore").read_text().splitlines() == ["/other", "/model.bin"]


WRITER = """
import sys
from pathlib import Path
from gitmodel.store import Store
cache, state, src = (Path(a) for a in sys.argv[1:4])
for _ in range(int(sys.argv[4])):
    # Remove the object each round, so every round races to create it.
    for p in (cache / "files" / "md5").rglob("*") if cache.exists() else []:
        if p.is_file():
            p.unlink(missing_ok=True)
    store = Store(cache, state, ("copy",))
    store.store_file(src)
    store.store_bytes(b"manifest " * 1000, ".dir")
"""


def test_two_processes_writing_the_same_object(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    srcs = []
    for i in range(2):
        # Two files, same bytes: each writer hashes and copies; neither trusts a stat cache.
        src = write_bytes(tmp_path / f"src{i}.bin", 4 << 20, seed=1)
        srcs.append(src)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(cache),
                str(tmp_path / f"state{i}.db"),
                str(src),
                "4",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, src in enumerate(srcs)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    found = objects(cache)
    assert set(found) == {md5_of(srcs[0]), next(o for o in found if o.endswith(".dir"))}
    assert assert_objects_intact(cache) == 2
    tmp = cache / "files" / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []
