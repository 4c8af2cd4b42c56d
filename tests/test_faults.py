"""Crashes and write errors lose nothing.

SIGKILL lands at a random moment during `add`, `commit` and `checkout` (5 trials each by
default, 25 under `-m slow`; GITMODEL_CRASH_TRIALS overrides both). After every crash: no
cache object whose name disagrees with its content, no half-written pointer or `.gitignore`,
the next command works and `fsck` is clean. A crash between `git commit` and the note is
reported by `fsck` and completed by the next command. Disk full / a write error while
storing leaves no partial object, a one-line error and the workspace file untouched.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BIN, Shell, write_bytes
from integrity import (
    assert_gitignore_whole,
    assert_objects_intact,
    assert_pointers_whole,
    kill_after,
    kill_when,
    md5_of,
    objects,
    spawn,
)

DEFAULT_TRIALS = int(os.environ.get("GITMODEL_CRASH_TRIALS", "5"))
SLOW_TRIALS = int(os.environ.get("GITMODEL_CRASH_TRIALS", "25"))
NFILES = 24  # many small files stretch the window in which a kill lands mid-write
JOURNAL = Path(".git") / "gitmodel" / "pending-note.json"


def _gm_args(*args: str) -> list[str]:
    # The console script itself: `git model` would make the kill hit git's wrapper process
    # while git-model carried on as an orphan and finished.
    return [str(BIN / "git-model"), *args]


def _fill(repo: Path, seed: int) -> dict[str, str]:
    """Write the trial's weights (new content every seed); return path -> md5."""
    contents: dict[str, str] = {}
    rnd = random.Random(seed)
    for rel, size in [("models/a.bin", 1 << 20), ("models/b.bin", 300_000)]:
        p = repo / rel
        if p.exists():
            os.chmod(p, 0o644)
        write_bytes(p, size, seed=rnd.randrange(1 << 30))
        contents[rel] = md5_of(p)
    for i in range(NFILES):
        p = repo / "data" / f"part-{i:03d}.bin"
        if p.exists():
            os.chmod(p, 0o644)
        write_bytes(p, 2048 + i, seed=rnd.randrange(1 << 30))
        contents[f"data/{p.name}"] = md5_of(p)
    return contents


def _signature(repo: Path) -> list[tuple[str, int, int]]:
    """What a command changes first: temporaries, the stat cache, pointers, weights."""
    sig = []
    for d in (
        repo / ".dvc" / "cache" / "files" / "tmp",
        repo / ".dvc" / "tmp" / "gitmodel",
        repo / "data",
        repo / "models",
        repo,
        repo / JOURNAL.parent,
    ):
        try:
            for e in os.scandir(d):
                if e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    sig.append((e.path, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            continue
    return sig


def _tree_signature(root: Path) -> list[tuple[str, int, int]]:
    sig = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            sig.append((os.path.join(dirpath, name), st.st_mtime_ns, st.st_size))
    return sorted(sig)


def _crash(
    sh: Shell,
    repo: Path,
    args: list[str],
    rnd: random.Random,
    full: float,
    i: int,
    journal: bool = False,
    watch: Path | None = None,
) -> tuple[bool, str]:
    """Run `git model ARGS` and SIGKILL it; even trials just after it starts writing (or,
    with journal, just after the commit journal appears), odd ones at a random moment."""
    if i % 2 == 0:
        if journal:

            def started() -> bool:
                return (repo / JOURNAL).exists()

            delay = rnd.uniform(0, 0.15)
        else:

            def sign() -> list[tuple[str, int, int]]:
                return _signature(repo) + (_tree_signature(watch) if watch else [])

            base = sign()

            def started() -> bool:
                return sign() != base

            delay = rnd.uniform(0, 0.05)
        proc = spawn(_gm_args(*args), repo, sh.env)
        killed = kill_when(proc, started, delay)
        when = f"{delay * 1000:.0f} ms after it began {'committing' if journal else 'writing'}"
    else:
        delay = rnd.uniform(0, full)
        killed = kill_after(spawn(_gm_args(*args), repo, sh.env), delay)
        when = f"{delay:.3f} s after start"
    return killed, f"`git model {args[0]}` killed {when} (trial {i})"


def _attempts(trials: int, seen: dict[str, int]) -> Iterator[int]:
    """Trial numbers: `trials` of them, then more (up to four times as many) while fewer
    than half were killed. A fast machine finishes some commands before the kill lands, and
    a test of killed commands is only a test when its kills happened."""
    i = 0
    while i < trials or (seen["killed"] < trials // 2 and i < 4 * trials):
        yield i
        i += 1


def _assert_consistent(repo: Path, what: str, cached: bool = True) -> None:
    try:
        assert_objects_intact(repo / ".dvc" / "cache")
        assert_pointers_whole(repo, cached)
        assert_gitignore_whole(repo / "models" / ".gitignore", ["/a.bin", "/b.bin"])
        assert_gitignore_whole(repo / ".gitignore", ["/data"])
    except AssertionError as exc:
        raise AssertionError(f"after {what}: {exc}") from None


def _fsck_clean(sh: Shell, repo: Path, what: str) -> None:
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 0, f"fsck after {what}: {r.stdout}{r.stderr}"


def _timed(sh: Shell, repo: Path, *args: str) -> float:
    start = time.monotonic()
    sh.gm(*args, cwd=repo)
    return time.monotonic() - start


# -- add ------------------------------------------------------------------------------

ADD = ["add", "models/a.bin", "models/b.bin", "data"]


def _crash_add(sh: Shell, repo: Path, trials: int, seed: int) -> int:
    rnd = random.Random(seed)
    _fill(repo, seed)
    full = _timed(sh, repo, *ADD)
    seen = {"killed": 0}
    for i in _attempts(trials, seen):
        contents = _fill(repo, seed * 1000 + i + 1)
        killed, what = _crash(sh, repo, ADD, rnd, full, i)
        seen["killed"] += killed
        _assert_consistent(repo, what)
        # The next command works, and does the whole job.
        sh.gm(*ADD, cwd=repo)
        _assert_consistent(repo, f"re-running the {what}")
        status = sh.gm("status", "--json", cwd=repo).json()
        assert status["modified"] == [] and status["missing"] == [], (what, status)
        for rel in ("models/a.bin", "models/b.bin"):
            assert md5_of(repo / rel) == contents[rel], f"{what}: {rel} changed"
    _fsck_clean(sh, repo, f"{trials} killed adds")
    return seen["killed"]


def test_sigkill_during_add(repo: Path, sh: Shell) -> None:
    assert _crash_add(sh, repo, DEFAULT_TRIALS, seed=1) >= DEFAULT_TRIALS // 2


@pytest.mark.slow
def test_sigkill_during_add_long(repo: Path, sh: Shell) -> None:
    assert _crash_add(sh, repo, SLOW_TRIALS, seed=2) >= SLOW_TRIALS // 2


def _has_nameless_files(directory: Path) -> bool:
    """Whether this filesystem writes files with no name (O_TMPFILE), as the store does."""
    try:
        fd = os.open(directory, os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    os.close(fd)
    return hasattr(os, "O_TMPFILE")


def test_killed_directory_add_names_only_whole_objects(repo: Path, sh: Shell) -> None:
    """A fresh add of a many-file directory, killed while its objects are written: every
    object under its final name holds exactly the bytes its name says, and no temporary is
    left behind (each object is written with no name, then linked whole)."""
    rnd = random.Random(21)
    n = 3000
    for i in range(n):
        p = repo / "data" / f"d{i % 10}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(8192))
    cache = repo / ".dvc" / "cache"
    nameless = _has_nameless_files(repo)
    midway = 0
    for trial in range(40):
        shutil.rmtree(cache, ignore_errors=True)  # a fresh add every time
        shutil.rmtree(repo / ".dvc" / "tmp" / "gitmodel", ignore_errors=True)
        proc = spawn(_gm_args("add", "data"), repo, sh.env)
        kill_when(proc, (cache / "files" / "md5").exists, rnd.uniform(0, 0.15))
        written = assert_objects_intact(cache)
        if nameless:
            tmp = cache / "files" / "tmp"
            left = sorted(os.listdir(tmp)) if tmp.is_dir() else []
            assert left == [], f"trial {trial}: temporaries left by a killed add: {left[:3]}"
        midway += 0 < written < n
        if midway >= 4:
            break
    assert midway >= 1, "no kill landed while objects were being written"
    sh.gm("add", "data", cwd=repo)
    assert assert_objects_intact(cache) == n + 1  # and its manifest
    _fsck_clean(sh, repo, "killed directory adds")


# -- commit ---------------------------------------------------------------------------


def _head(sh: Shell, repo: Path) -> str:
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def _crash_commit(sh: Shell, repo: Path, trials: int, seed: int) -> dict[str, int]:
    rnd = random.Random(seed)
    _fill(repo, seed)
    full = _timed(
        sh, repo, "commit", "models/a.bin", "data", "-m", "calibrate", "--metric", "acc=0.5"
    )
    seen = {"killed": 0, "commit made": 0, "note pending": 0}
    for i in _attempts(trials, seen):
        _fill(repo, seed * 1000 + i + 1)
        before = _head(sh, repo)
        acc = f"0.{i + 1:03d}"
        args = ["commit", "models/a.bin", "data", "-m", f"trial {i}", "--metric", f"acc={acc}"]
        killed, what = _crash(sh, repo, args, rnd, full, i, journal=True)
        seen["killed"] += killed
        _assert_consistent(repo, what)
        after = _head(sh, repo)
        report = json.loads(sh.gm("fsck", "--json", "--fast", cwd=repo, check=False).stdout)
        problems = [(p["kind"], p["name"]) for p in report["problems"]]
        if after != before:
            seen["commit made"] += 1
            if problems:
                # Detected by fsck, naming the commit ...
                seen["note pending"] += 1
                assert problems == [("pending-note", after)], (what, problems)
        assert problems in ([], [("pending-note", after)]), (what, problems)
        # ... and completed by the next command that writes.
        sh.gm("add", "models/a.bin", "data", cwd=repo)
        if after != before:
            note = sh.gm("metrics", "HEAD", "--json", cwd=repo).json()
            assert note["metrics"] == {"acc": float(acc)}, (what, note)
        else:
            sh.gm("commit", "-m", f"finish trial {i}", "--metric", f"acc={acc}", cwd=repo)
    _fsck_clean(sh, repo, f"{trials} killed commits")
    return seen


def test_sigkill_during_commit(repo: Path, sh: Shell) -> None:
    seen = _crash_commit(sh, repo, DEFAULT_TRIALS, seed=3)
    assert seen["killed"] >= DEFAULT_TRIALS // 2, seen


@pytest.mark.slow
def test_sigkill_during_commit_long(repo: Path, sh: Shell) -> None:
    seen = _crash_commit(sh, repo, SLOW_TRIALS, seed=4)
    assert seen["killed"] >= SLOW_TRIALS // 2, seen
    assert seen["note pending"] >= 1, seen


def _journal(repo: Path, parent: str, tree: str, note: dict[str, object]) -> Path:
    journal = repo / JOURNAL
    journal.parent.mkdir(exist_ok=True)
    journal.write_text(json.dumps({"parent": parent, "tree": tree, "note": note}))
    return journal


def test_crash_between_commit_and_note_is_reported_then_completed(repo: Path, sh: Shell) -> None:
    """The exact window: the journal is written, `git commit` ran, the note did not."""
    write_bytes(repo / "m.bin", 10_000)
    sh.gm("add", "m.bin", cwd=repo)
    tree = sh.git("write-tree", cwd=repo).stdout.strip()
    note = {"schema": 1, "metrics": {"acc": 0.9}, "source": "git-model commit"}
    journal = _journal(repo, _head(sh, repo), tree, note)
    sh.git("commit", "-q", "-m", "weights", cwd=repo)
    head = _head(sh, repo)

    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    assert f"commit {head[:12]} has no metrics note" in r.stdout
    assert "Traceback" not in r.stderr
    r = sh.gm("fsck", "--repair", cwd=repo, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    shown = sh.gm("metrics", "HEAD", "--json", cwd=repo).json()
    assert shown["metrics"] == {"acc": 0.9}
    assert shown["weights"]["m.bin"]["md5"] == md5_of(repo / "m.bin")
    assert not journal.exists()
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0


def test_pending_note_completed_by_next_command(repo: Path, sh: Shell) -> None:
    parent = _head(sh, repo)
    write_bytes(repo / "m.bin", 10_000)
    sh.gm("add", "m.bin", cwd=repo)
    tree = sh.git("write-tree", cwd=repo).stdout.strip()
    journal = _journal(repo, parent, tree, {"metrics": {"acc": 1}})
    sh.git("commit", "-q", "-m", "weights", cwd=repo)
    write_bytes(repo / "n.bin", 10_000, seed=5)
    sh.gm("add", "n.bin", cwd=repo)
    assert sh.gm("metrics", "HEAD", "--json", cwd=repo).json()["metrics"] == {"acc": 1}
    assert not journal.exists()


def test_stale_journal_never_lands_on_an_unrelated_commit(repo: Path, sh: Shell) -> None:
    """Killed before `git commit` ran; the user then commits something else by hand."""
    parent = _head(sh, repo)
    write_bytes(repo / "m.bin", 10_000)
    sh.gm("add", "m.bin", cwd=repo)
    tree = sh.git("write-tree", cwd=repo).stdout.strip()
    journal = _journal(repo, parent, tree, {"metrics": {"acc": 1}})
    (repo / "other.txt").write_text("unrelated\n")
    sh.git("add", "other.txt", cwd=repo)
    sh.git("commit", "-q", "-m", "by hand", cwd=repo)
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
    write_bytes(repo / "n.bin", 10_000, seed=5)
    sh.gm("add", "n.bin", cwd=repo)
    assert sh.gm("metrics", "HEAD", cwd=repo, check=False).returncode == 1
    assert not journal.exists()


# -- checkout -------------------------------------------------------------------------

# Hooks off: a post-checkout hook would materialise the weights before we could crash it.
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def _crash_checkout(sh: Shell, repo: Path, trials: int, seed: int) -> int:
    rnd = random.Random(seed)
    versions = []
    for v in range(2):
        contents = _fill(repo, seed * 100 + v)
        sh.gm("commit", *ADD[1:], "-m", f"v{v}", "--metric", "acc=1", cwd=repo)
        versions.append((_head(sh, repo), contents))
    known: dict[str, set[str]] = {}
    for _, contents in versions:
        for rel, md5 in contents.items():
            known.setdefault(rel, set()).add(md5)
    sh.git(*NO_HOOKS, "checkout", "-q", versions[0][0], cwd=repo)
    full = _timed(sh, repo, "checkout", "--force")
    seen = {"killed": 0}
    for i in _attempts(trials, seen):
        target, contents = versions[(i + 1) % 2]
        sh.git(*NO_HOOKS, "checkout", "-q", target, cwd=repo)
        killed, what = _crash(sh, repo, ["checkout"], rnd, full, i)
        seen["killed"] += killed
        _assert_consistent(repo, what)
        # Every weights file is absent, its old version or its new version: never partial.
        for rel, md5s in known.items():
            p = repo / rel
            if p.exists():
                assert md5_of(p) in md5s, f"{what}: {rel} holds partial or foreign content"
        sh.gm("checkout", cwd=repo)
        for rel, md5 in contents.items():
            assert md5_of(repo / rel) == md5, f"{what}: {rel} not restored by the next checkout"
        status = sh.gm("status", "--json", cwd=repo).json()
        assert status["modified"] == [] and status["missing"] == [], (what, status)
    _fsck_clean(sh, repo, f"{trials} killed checkouts")
    return seen["killed"]


def test_temporaries_of_a_killed_checkout_are_removed_by_the_next(repo: Path, sh: Shell) -> None:
    """A leftover inside a tracked directory would show as a change and be stored by `add`."""
    for i in range(3):
        write_bytes(repo / "data" / f"{i}.bin", 1000, seed=i)
    write_bytes(repo / "model.bin", 1000, seed=9)
    sh.gm("commit", "data", "model.bin", "-m", "v1", "--metric", "acc=1", cwd=repo)
    left = [repo / "data" / "1.bin.0123456789ab.tmp", repo / "model.bin.a1b2c3d4e5f6.tmp"]
    for p in left:
        p.write_bytes(b"half")
    mine = repo / "data" / "notes.0123456789ab.tmp"  # not beside a tracked file: not ours
    mine.write_bytes(b"keep")
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == ["data"]
    # The user's file is not in this version of data and not stored: checkout refuses to
    # remove it (tests/test_core.py), but the leftovers are gone and the user's file stays.
    refused = sh.gm("checkout", cwd=repo, check=False)
    assert refused.returncode == 1 and "data/notes.0123456789ab.tmp" in refused.stderr
    assert not any(p.exists() for p in left) and mine.exists()


def test_killed_directory_checkout_leaves_only_whole_files(repo: Path, sh: Shell) -> None:
    """A checkout of a many-file directory (its second half written by a forked child),
    killed while it writes: every file there holds its version's bytes, and the next
    checkout restores the rest and leaves no temporary behind."""
    rnd = random.Random(22)
    want = {}
    for i in range(3000):
        rel = f"data/d{i % 10}/f{i:05d}.bin"
        write_bytes(repo / rel, 8192, seed=rnd.randrange(1 << 30))
        want[rel] = md5_of(repo / rel)
    sh.gm("commit", "data", "-m", "data", "--metric", "acc=1", cwd=repo)
    midway = 0
    for trial in range(40):
        shutil.rmtree(repo / "data")
        proc = spawn(_gm_args("checkout"), repo, sh.env)
        kill_when(proc, (repo / "data").exists, rnd.uniform(0, 0.15))  # waits for its child
        present = [rel for rel in want if (repo / rel).exists()]
        for rel in present:
            assert md5_of(repo / rel) == want[rel], f"trial {trial}: {rel} is not whole"
        midway += 0 < len(present) < len(want)
        if midway >= 4:
            break
    assert midway >= 1, "no kill landed while files were being written"
    sh.gm("checkout", cwd=repo)
    for rel, md5 in want.items():
        assert md5_of(repo / rel) == md5, rel
    assert sorted(str(p.relative_to(repo)) for p in (repo / "data").rglob("*") if p.is_file()) == (
        sorted(want)
    )
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []


def test_sigkill_during_checkout(repo: Path, sh: Shell) -> None:
    assert _crash_checkout(sh, repo, DEFAULT_TRIALS, seed=5) >= DEFAULT_TRIALS // 2


@pytest.mark.slow
def test_sigkill_during_checkout_long(repo: Path, sh: Shell) -> None:
    assert _crash_checkout(sh, repo, SLOW_TRIALS, seed=6) >= SLOW_TRIALS // 2


# -- push and pull --------------------------------------------------------------------


def _with_remotes(sh: Shell, repo: Path, tmp_path: Path) -> Path:
    """A bare git origin and a local-directory DVC remote (returned)."""
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    storage = tmp_path / "storage"
    sh.gm("remote", "add", "store", str(storage), "--default", cwd=repo)
    sh.git("add", ".dvc/config", cwd=repo)
    sh.git("commit", "-qm", "remote", cwd=repo)
    return storage


def _assert_remote_consistent(repo: Path, storage: Path, what: str) -> None:
    try:
        assert_objects_intact(storage, temporaries=True)
        on_remote = objects(storage)
        # The local record of what the remote holds (trusted by the pre-push hook) never
        # names an object the remote does not have.
        from gitmodel.remote import read_record

        for record in (repo / ".dvc" / "tmp").rglob("*.present"):
            for oid in read_record(record)[1]:
                assert oid in on_remote, f"record {record.name} names {oid}, not on the remote"
    except AssertionError as exc:
        raise AssertionError(f"after {what}: {exc}") from None


def _needed(sh: Shell, repo: Path) -> set[str]:
    """Every object the work tree's pointers need (manifests and their files)."""
    cache = objects(repo / ".dvc" / "cache")
    need = set()
    for pointer in (repo / "models" / "a.bin.dvc", repo / "data.dvc"):
        oid = pointer.read_text().split("md5: ")[1].split()[0]
        need.add(oid)
        if oid.endswith(".dir"):
            need |= {e["md5"] for e in json.loads(cache[oid].read_bytes())}
    return need


def _crash_push(sh: Shell, repo: Path, tmp_path: Path, trials: int, seed: int) -> int:
    rnd = random.Random(seed)
    storage = _with_remotes(sh, repo, tmp_path)
    _fill(repo, seed)
    sh.gm("commit", "models/a.bin", "data", "-m", "calibrate", "--metric", "acc=1", cwd=repo)
    full = _timed(sh, repo, "push")
    seen = {"killed": 0}
    for i in _attempts(trials, seen):
        _fill(repo, seed * 1000 + i + 1)
        sh.gm("commit", "models/a.bin", "data", "-m", f"v{i}", "--metric", "acc=1", cwd=repo)
        killed, what = _crash(sh, repo, ["push"], rnd, full, i, watch=storage)
        seen["killed"] += killed
        _assert_consistent(repo, what)
        _assert_remote_consistent(repo, storage, what)
        sh.gm("push", cwd=repo)  # the next command works ...
        _assert_remote_consistent(repo, storage, f"re-running the {what}")
        missing = _needed(sh, repo) - set(objects(storage))
        assert not missing, f"{what}: the next push left {missing} off the remote"
    return seen["killed"]


def test_sigkill_during_push(repo: Path, sh: Shell, tmp_path: Path) -> None:
    assert _crash_push(sh, repo, tmp_path, DEFAULT_TRIALS, seed=7) >= DEFAULT_TRIALS // 2


@pytest.mark.slow
def test_sigkill_during_push_long(repo: Path, sh: Shell, tmp_path: Path) -> None:
    assert _crash_push(sh, repo, tmp_path, SLOW_TRIALS, seed=8) >= SLOW_TRIALS // 2


def _crash_pull(sh: Shell, repo: Path, tmp_path: Path, trials: int, seed: int) -> int:
    rnd = random.Random(seed)
    _with_remotes(sh, repo, tmp_path)
    clone = tmp_path / "clone"
    known: dict[str, set[str]] = {}

    def publish(v: int) -> dict[str, str]:
        contents = _fill(repo, seed * 1000 + v)
        sh.gm("commit", *ADD[1:], "-m", f"v{v}", "--metric", "acc=1", cwd=repo)
        sh.gm("push", cwd=repo)
        sh.git(*NO_HOOKS, "push", "-q", "origin", "HEAD", cwd=repo)
        for rel, md5 in contents.items():
            known.setdefault(rel, set()).add(md5)
        return contents

    publish(0)
    sh.git("clone", "-q", str(tmp_path / "origin.git"), str(clone), cwd=tmp_path)
    sh.gm("init", cwd=clone)
    full = _timed(sh, clone, "pull")
    seen = {"killed": 0}
    for i in _attempts(trials, seen):
        contents = publish(i + 1)
        sh.git(*NO_HOOKS, "pull", "-q", "--ff-only", cwd=clone)
        killed, what = _crash(sh, clone, ["pull"], rnd, full, i)
        seen["killed"] += killed
        _assert_consistent(clone, what, cached=False)  # git pull brought pointers first
        for rel, md5s in known.items():
            p = clone / rel
            if p.exists():
                assert md5_of(p) in md5s, f"{what}: {rel} holds partial or foreign content"
        sh.gm("pull", cwd=clone)  # the next command works, and does the whole job
        for rel, md5 in contents.items():
            assert md5_of(clone / rel) == md5, f"{what}: {rel} not restored by the next pull"
    _fsck_clean(sh, clone, f"{trials} killed pulls")
    return seen["killed"]


def test_sigkill_during_pull(repo: Path, sh: Shell, tmp_path: Path) -> None:
    assert _crash_pull(sh, repo, tmp_path, DEFAULT_TRIALS, seed=9) >= DEFAULT_TRIALS // 2


@pytest.mark.slow
def test_sigkill_during_pull_long(repo: Path, sh: Shell, tmp_path: Path) -> None:
    assert _crash_pull(sh, repo, tmp_path, SLOW_TRIALS, seed=10) >= SLOW_TRIALS // 2


# -- disk full and write errors -------------------------------------------------------


def _limit_file_size(limit: int) -> None:
    # Python ignores SIGXFSZ, so an over-limit write fails with EFBIG instead of killing us.
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _tree_snapshot(repo: Path) -> dict[str, str]:
    out = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if p.is_file() and not p.is_symlink() and rel.parts[0] != ".git" and "tmp" not in rel.parts:
            out[str(rel)] = md5_of(p)
    return out


def _assert_failed_store_left_nothing(repo: Path, before: dict[str, str], stderr: str) -> None:
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    assert_objects_intact(repo / ".dvc" / "cache")
    tmp = repo / ".dvc" / "cache" / "files" / "tmp"
    assert not tmp.exists() or not os.listdir(tmp), f"partial temporaries left: {os.listdir(tmp)}"
    assert _tree_snapshot(repo) == before, "the work tree changed"


def test_write_error_while_storing_rlimit_fsize(repo: Path, sh: Shell) -> None:
    write_bytes(repo / "small.bin", 1000)
    sh.gm("add", "small.bin", cwd=repo)
    write_bytes(repo / "big.bin", 3 << 20, seed=7)
    before = _tree_snapshot(repo)
    objs = set(objects(repo / ".dvc" / "cache"))
    proc = subprocess.run(
        _gm_args("add", "big.bin"),
        cwd=repo,
        env=sh.env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limit_file_size(1 << 20),
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot store" in proc.stderr and "big.bin" in proc.stderr, proc.stderr
    _assert_failed_store_left_nothing(repo, before, proc.stderr)
    assert set(objects(repo / ".dvc" / "cache")) == objs
    assert not (repo / "big.bin.dvc").exists()
    # With room again, the same command works.
    sh.gm("add", "big.bin", cwd=repo)
    assert md5_of(repo / "big.bin") in objects(repo / ".dvc" / "cache")


def test_write_error_while_storing_a_directory(repo: Path, sh: Shell) -> None:
    for i in range(5):
        write_bytes(repo / "data" / f"{i}.bin", 600_000, seed=i)
    before = _tree_snapshot(repo)
    proc = subprocess.run(
        _gm_args("add", "data"),
        cwd=repo,
        env=sh.env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limit_file_size(500_000),
    )
    assert proc.returncode == 2, proc.stderr
    _assert_failed_store_left_nothing(repo, before, proc.stderr)
    assert not (repo / "data.dvc").exists()


@pytest.fixture
def small_fs(tmp_path: Path) -> Path:
    """A 6 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_storing(small_fs: Path, sh: Shell) -> None:
    repo = small_fs / "repo"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    sh.gm("init", "--no-hooks", cwd=repo)
    write_bytes(repo / "model.bin", 4 << 20, seed=9)
    before = _tree_snapshot(repo)
    r = sh.gm("add", "model.bin", cwd=repo, check=False)
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "model.bin" in r.stderr, r.stderr
    _assert_failed_store_left_nothing(repo, before, r.stderr)
    assert objects(repo / ".dvc" / "cache") == {}
    subprocess.run(["mount", "-o", "remount,size=32m", str(small_fs)], check=True)
    sh.gm("add", "model.bin", cwd=repo)
    assert_objects_intact(repo / ".dvc" / "cache")
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
