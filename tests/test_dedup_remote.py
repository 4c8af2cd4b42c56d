# ruff: noqa: F811  (pytest fixtures imported from remote_servers are parameters here)
"""Deduplicated outputs through real remotes: push, clone, pull, checkout, gc, a killed push."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Shell
from integrity import kill_after, spawn
from remote_servers import Storage, local_storage, s3_server, sshd, storage  # noqa: F401
from test_dedup import check_every_version, chunk_root, commit_versions, md5, versions
from test_remote import clone_project, configure_remote

DEDUP = "\n[storage]\ndedup = true\n"


def dedup_project(sh: Shell, tmp_path: Path, origin: Path, st: Storage, extra: str = "") -> Path:
    repo = tmp_path / "a"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.gm("init", cwd=repo)
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + DEDUP + extra)
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "gitmodel init, dedup on", cwd=repo)
    configure_remote(sh, repo, st, st.fresh_url())
    return repo


@pytest.fixture
def origin(tmp_path: Path, sh: Shell) -> Path:
    path = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(path), cwd=tmp_path)
    return path


def remote_root(sh: Shell, repo: Path) -> Path | None:
    url = sh.dvc("remote", "list", cwd=repo).stdout.split()[1]
    return Path(url) if url.startswith("/") else None


def test_round_trip_every_version_through_a_remote(
    sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    sh.env.update(storage.env)
    a = dedup_project(sh, tmp_path, origin, storage)
    files = versions(tmp_path / "ckpt", 4)
    done = []
    pushed: list[int] = []
    for f in files:
        done += commit_versions(sh, a, [f])
        out = sh.gm("push", "--json", cwd=a).json()  # weights (and notes) only
        pushed.append(out["weights"]["bytes"])
    sh.git("push", "-q", "origin", "main", cwd=a)  # the hook finds nothing left to upload
    size = files[0].stat().st_size
    assert pushed[0] < size  # compressed on the way
    assert all(p < 0.5 * size for p in pushed[1:]), pushed  # later versions: deltas only
    root = remote_root(sh, a)
    if root is not None:
        assert list((root / "gitmodel" / "packs").glob("*.idx"))
        assert not (root / "files" / "md5").exists()  # no whole object without dvc-objects

    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("pull", cwd=b)
    assert md5(b / "model.safetensors") == done[-1][1]
    check_every_version(sh, b, done)  # older versions are fetched as chunks on demand
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=b)
    assert not [p for p in (b / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file()]
    check_every_version(sh, b, done)
    assert sh.gm("fsck", cwd=b, check=False).returncode == 0


def test_dvc_objects_keeps_plain_dvc_pull_working(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = dedup_project(sh, tmp_path, origin, local_storage, "dvc-objects = true\n")
    files = versions(tmp_path / "ckpt", 2)
    done = commit_versions(sh, a, files)
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=a)  # whole objects are rebuilt to push
    sh.git("push", "-q", "origin", "main", cwd=a)
    c = tmp_path / "c"
    sh.git("clone", "-q", str(origin), str(c), cwd=tmp_path)
    sh.dvc("pull", "-q", cwd=c)
    assert md5(c / "model.safetensors") == done[-1][1]


def test_plain_dvc_pull_fails_loudly_without_dvc_objects(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = dedup_project(sh, tmp_path, origin, local_storage)
    commit_versions(sh, a, versions(tmp_path / "ckpt", 1))
    sh.git("push", "-q", "origin", "main", cwd=a)
    c = tmp_path / "c"
    sh.git("clone", "-q", str(origin), str(c), cwd=tmp_path)
    r = sh.dvc("pull", "-q", cwd=c, check=False)
    assert r.returncode != 0
    assert not (c / "model.safetensors").exists()


def _remote_consistent(root: Path) -> None:
    """Every recipe on the remote names only chunks in published packs (delta bases too)."""
    from gitmodel.dedup.packs import _parse_idx

    rows = {}
    for idx in (root / "gitmodel" / "packs").glob("*.idx"):
        pack = idx.with_suffix(".pack")
        assert pack.is_file(), f"index without its pack: {idx.name}"
        for r in _parse_idx(idx.read_bytes(), idx.stem) or []:
            rows[r.id] = r
    for recipe in (root / "gitmodel" / "recipes").glob("*"):
        if recipe.name.endswith(".tmp") or "." in recipe.name:
            continue
        for _, _, cid in json.loads(recipe.read_bytes())["chunks"]:
            while cid is not None:
                assert cid in rows, f"recipe {recipe.name} names a chunk not on the remote"
                cid = rows[cid].base


def test_killed_push_leaves_nothing_that_lies(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    """Each trial commits a version and kills its push at a random moment; the remote
    never holds a recipe without its chunks, nor the server a pointer without its recipe."""
    a = dedup_project(sh, tmp_path, origin, local_storage)
    files = versions(tmp_path / "ckpt", 7, tensors=16, elements=200_000)
    done = commit_versions(sh, a, files[:1])
    root = remote_root(sh, a)
    assert root is not None
    rnd = random.Random(19)
    gm = str(Path(sh.env["PATH"].split(":")[0]) / "git-model")
    kills = 0
    for trial, f in enumerate(files[1:]):
        done += commit_versions(sh, a, [f])
        # The first kill comes before the push can finish on any machine (the interpreter
        # alone starts slower), so at least one trial is a kill however fast the rest run.
        delay = 0.05 if trial == 0 else rnd.uniform(0.05, 3.0)
        if trial % 2:
            # `git push`: its pre-push hook uploads; the whole process group dies mid-way
            proc = spawn(["git", "push", "-q", "origin", "main"], a, sh.env)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
        else:
            kills += kill_after(spawn([gm, "push"], a, sh.env), delay)
        if root.exists():
            _remote_consistent(root)
        published = sh.git("ls-remote", str(origin), "refs/heads/main", cwd=a).stdout.split()
        shas = [sha for sha, _ in done]
        if published and published[0] in shas:
            # every pointer on the server has its recipe (and so its chunks) there already
            for sha, want in done[: shas.index(published[0]) + 1]:
                assert (root / "gitmodel" / "recipes" / want).is_file(), f"trial {trial}: {sha}"
    assert kills >= 1
    time.sleep(0.5)  # orphans of a killed hook finish or die
    sh.gm("push", cwd=a)
    sh.git("push", "-q", "origin", "main", cwd=a)
    _remote_consistent(root)
    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("pull", cwd=b)
    check_every_version(sh, b, done)


def test_hostile_remote_pack_and_recipe_are_refused(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = dedup_project(sh, tmp_path, origin, local_storage)
    done = commit_versions(sh, a, versions(tmp_path / "ckpt", 1))
    sh.git("push", "-q", "origin", "main", cwd=a)
    root = remote_root(sh, a)
    assert root is not None
    pack = next((root / "gitmodel" / "packs").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 1
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    b = clone_project(sh, origin, tmp_path / "b")
    r = sh.gm("pull", cwd=b, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not (b / "model.safetensors").exists()
    assert not list((chunk_root(b) / "recipes").rglob("*")) if chunk_root(b).exists() else True
    # a recipe that does not add up is refused too
    recipe = root / "gitmodel" / "recipes" / done[0][1]
    recipe.chmod(0o644)
    bad = json.loads(recipe.read_bytes())
    bad["size"] += 1
    recipe.write_bytes(json.dumps(bad).encode())
    r = sh.gm("pull", cwd=b, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert not (b / "model.safetensors").exists()


def test_get_rebuilds_a_deduplicated_output_without_a_clone(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = dedup_project(sh, tmp_path, origin, local_storage)
    done = commit_versions(sh, a, versions(tmp_path / "ckpt", 2))
    sh.git("push", "-q", "origin", "main", cwd=a)
    out = tmp_path / "deployed.safetensors"
    sh.gm(
        "get", str(origin), "model.safetensors", "--rev", done[0][0], "-o", str(out), cwd=tmp_path
    )
    assert md5(out) == done[0][1]
    # from the enclosing repository, out of its own chunk store once gc dropped the object
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=a)
    here = tmp_path / "here.safetensors"
    sh.gm("get", ".", "model.safetensors", "-o", str(here), cwd=a)
    assert md5(here) == done[1][1]
