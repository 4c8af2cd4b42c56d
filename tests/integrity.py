"""Invariants the fault tests check after a crash, a race or an injected error.

Shared by test_faults, test_concurrency and test_corruption: they hash every object
themselves (not through gitmodel), so a bug in gitmodel's hashing cannot hide a bad object.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import yaml


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def objects(cache: Path) -> dict[str, Path]:
    """Object id -> path for every file under a DVC 3 `files/md5` tree."""
    root = cache / "files" / "md5"
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for prefix in os.listdir(root):
        for name in os.listdir(root / prefix):
            found[prefix + name] = root / prefix / name
    return found


def assert_objects_intact(cache: Path, temporaries: bool = False) -> int:
    """Every object's name is the md5 of its content (`.dir` manifests included).

    temporaries: tolerate `<name>.<hex>.tmp` files beside objects (an interrupted atomic
    upload to a remote leaves them; no reader takes them for objects).
    """
    found = objects(cache)
    if temporaries:
        found = {o: p for o, p in found.items() if not o.endswith(".tmp")}
    for oid, path in found.items():
        assert len(oid.removesuffix(".dir")) == 32, f"stray file {path} under the object tree"
        actual = md5_of(path) + (".dir" if oid.endswith(".dir") else "")
        assert actual == oid, f"object {oid} holds content {actual}"
    return len(found)


def assert_pointers_whole(repo: Path, cached: bool = True) -> list[Path]:
    """Every .dvc file is complete DVC 3 YAML (whose object is in the cache, if cached)."""
    pointers = [p for p in repo.rglob("*.dvc") if ".dvc" not in p.relative_to(repo).parts[:-1]]
    pointers = [p for p in pointers if p.is_file() and p.name != ".dvc"]
    cache = objects(repo / ".dvc" / "cache")
    for p in pointers:
        data = yaml.safe_load(p.read_bytes())
        assert isinstance(data, dict) and isinstance(data.get("outs"), list), f"{p} is not whole"
        for out in data["outs"]:
            assert set(out) >= {"md5", "size", "hash", "path"}, f"{p} is missing keys: {out}"
            if cached:
                assert out["md5"] in cache, f"{p} names {out['md5']}, which is not in the cache"
    return pointers


def assert_gitignore_whole(path: Path, allowed: Iterable[str]) -> list[str]:
    """A .gitignore ends in a newline and has only whole, expected, unduplicated lines."""
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"{path} ends mid-line: {text!r}"
    lines = text.splitlines()
    unexpected = set(lines) - set(allowed)
    assert not unexpected, f"{path} has torn or foreign lines {unexpected}"
    assert len(lines) == len(set(lines)), f"{path} has duplicated lines: {lines}"
    return lines


def spawn(args: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a command in its own process group, so its children can be waited for."""
    return subprocess.Popen(
        list(args),
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_when(
    proc: subprocess.Popen[bytes], started: Callable[[], bool], delay: float, timeout: float = 60
) -> bool:
    """SIGKILL the command delay seconds after started() first holds (it polls every ~1 ms).

    started() watches for the first sign of the command writing (a temporary file, a
    journal), so the kill lands inside the interesting window however slow the machine.
    """
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not started() and time.monotonic() < deadline:
        time.sleep(0.001)
    return kill_after(proc, delay)


def kill_after(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL the command itself (not its children) after delay; whether it was still running.

    Children (a `git add` or `git commit` it started) live on as orphans, as they would
    after a real crash; we wait for them so the next command does not race with them.
    """
    try:
        proc.wait(timeout=delay)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
    assert proc.stderr is not None
    proc.stderr.close()
    deadline = time.monotonic() + 30
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return killed


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in process group pgid."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
