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
from test_remote import clone_project, configure_remote, has_pre_push

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
    files = versions(tmp_path / "ckpt", 13, tensors=16, elements=200_000)
    done = commit_versions(sh, a, files[:1])
    root = remote_root(sh, a)
    assert root is not None
    rnd = random.Random(19)
    gm = str(Path(sh.env["PATH"].split(":")[0]) / "git-model")
    kills = 0
    for trial, f in enumerate(files[1:]):
        if trial >= 6 and kills >= 2:
            break  # enough kills landed; on a machine too fast for them, more trials run
        done += commit_versions(sh, a, [f])
        # Early trials and every one after a run of misses kill soon after the start,
        # before the push can finish on any machine (the interpreter alone starts slower).
        delay = 0.05 if trial == 0 or trial >= 6 else rnd.uniform(0.05, 3.0)
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
    assert kills >= 2
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


def _remote_files(root: Path, kind: str) -> set[str]:
    d = root / "gitmodel" / kind
    return {p.name for p in d.iterdir() if p.is_file()} if d.is_dir() else set()


def test_remote_gc_removes_only_what_no_commit_needs(
    sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    """`git model gc --remote`: a version whose commit is gone leaves the remote in two
    steps (its pack retired, then deleted); every pushed version still checks out."""
    sh.env.update(storage.env)
    a = dedup_project(sh, tmp_path, origin, storage)
    files = versions(tmp_path / "ckpt", 5)
    done = commit_versions(sh, a, files[:3])
    sh.git("push", "-q", "origin", "main", cwd=a)
    # a pushed branch: its pointer must survive although main never had it
    sh.git("checkout", "-q", "-b", "exp", cwd=a)
    done_exp = commit_versions(sh, a, files[3:4])
    sh.git("push", "-q", "origin", "exp", cwd=a)
    # a version whose weights were pushed but whose commit is then thrown away
    sh.git("checkout", "-q", "-b", "scratch", "main", cwd=a)
    sh.gm("checkout", cwd=a)
    dead = commit_versions(sh, a, files[4:5])[0][1]
    sh.gm("push", cwd=a)  # weights only
    sh.git("checkout", "-q", "main", cwd=a)
    sh.gm("checkout", cwd=a)
    sh.git("branch", "-q", "-D", "scratch", cwd=a)
    sh.git("reflog", "expire", "--expire=now", "--all", cwd=a)
    root = remote_root(sh, a)
    if root is not None:
        assert dead in _remote_files(root, "recipes")
        packs_before = _remote_files(root, "packs")

    dry = sh.gm("gc", "--remote", "--dry-run", "--grace", "0", "--json", cwd=a).json()
    assert dry["recipes_removed"] == [dead] and dry["packs_retired"]
    recent = sh.gm("gc", "--remote", "--json", cwd=a).json()  # two weeks' grace by default
    assert recent["recipes_removed"] == [] and recent["packs_retired"] == []
    first = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=a).json()
    assert first["recipes_removed"] == [dead]
    assert first["packs_retired"] and not first["packs_deleted"]
    if root is not None:
        assert dead not in _remote_files(root, "recipes")
        assert _remote_files(root, "packs") < packs_before  # indexes gone, packs still there
        _remote_consistent(root)
    second = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=a).json()
    assert sorted(second["packs_deleted"]) == sorted(first["packs_retired"])
    assert second["bytes"] > 0 and not second["packs_restored"]
    if root is not None:
        _remote_consistent(root)
        assert not _remote_files(root, "retired")

    # every pushed version, on both branches, from a fresh clone with no chunks of its own
    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("pull", cwd=b)
    check_every_version(sh, b, done + done_exp)
    assert sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=b).json()["packs_retired"] == []


def test_remote_gc_refuses_before_fetching_and_puts_back_a_pack_a_push_counted_on(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = dedup_project(sh, tmp_path, origin, local_storage)
    files = versions(tmp_path / "ckpt", 3)
    done = commit_versions(sh, a, files[:1])
    sh.git("push", "-q", "origin", "main", cwd=a)
    root = remote_root(sh, a)
    assert root is not None
    # a teammate pushes a version this clone has not fetched: nothing may be judged dead
    b = clone_project(sh, origin, tmp_path / "b")
    done_b = commit_versions(sh, b, files[1:2])
    sh.git("push", "-q", "origin", "main", cwd=b)
    before = _remote_files(root, "packs"), _remote_files(root, "recipes")
    r = sh.gm("gc", "--remote", "--grace", "0", cwd=a, check=False)
    assert r.returncode != 0 and "git fetch origin" in r.stderr and "Traceback" not in r.stderr
    assert (_remote_files(root, "packs"), _remote_files(root, "recipes")) == before
    sh.git("pull", "-q", "--ff-only", "origin", "main", cwd=a)
    # a version pushed as weights only, its commit then dropped: its pack is retired...
    sh.git("checkout", "-q", "-b", "scratch", cwd=a)
    sh.gm("pull", cwd=a)
    dead = commit_versions(sh, a, files[2:3])[0][1]
    sh.gm("push", cwd=a)
    recipe = chunk_root(a) / "recipes" / dead[:2] / dead[2:]
    sh.git("checkout", "-q", "main", cwd=a)
    sh.git("branch", "-q", "-D", "scratch", cwd=a)
    sh.git("reflog", "expire", "--expire=now", "--all", cwd=a)
    first = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=a).json()
    assert first["recipes_removed"] == [dead] and first["packs_retired"]
    # ...while a push that listed the pack before it was retired counted on its chunks:
    # the same weights committed again, the push uploading only their recipe (the race the
    # two steps are for; the hook is skipped here because it would upload the chunks anew)
    done_again = commit_versions(sh, a, files[2:3])
    (root / "gitmodel" / "recipes" / dead).write_bytes(recipe.read_bytes())
    sh.git("push", "-q", "--no-verify", "origin", "main", cwd=a)
    second = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=a).json()
    assert second["packs_restored"] == first["packs_retired"]
    assert second["recipes_removed"] == [] and second["packs_deleted"] == []
    _remote_consistent(root)
    c = clone_project(sh, origin, tmp_path / "c")
    sh.gm("pull", cwd=c)
    check_every_version(sh, c, done + done_b + done_again)


def test_fsck_repair_fetches_damaged_and_missing_chunks_from_the_remote(
    sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    sh.env.update(storage.env)
    a = dedup_project(sh, tmp_path, origin, storage)
    files = versions(tmp_path / "ckpt", 3)
    done = []
    for f in files:  # a push per version: a pack per version on both sides
        done += commit_versions(sh, a, [f])
        sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("pull", cwd=b)
    check_every_version(sh, b, done)
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=b)  # no whole object to mend from
    packs = sorted((chunk_root(b) / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    assert len(packs) >= 2
    packs[-1].chmod(0o644)
    data = bytearray(packs[-1].read_bytes())
    data[len(data) // 2] ^= 0x40
    packs[-1].write_bytes(bytes(data))  # a damaged chunk...
    packs[0].unlink()
    packs[0].with_suffix(".idx").unlink()  # ...and a lost pack
    found = sh.gm("fsck", "--json", cwd=b, check=False)
    assert found.returncode == 1
    kinds = {p["kind"] for p in found.json()["problems"]}
    assert {"corrupt-chunk", "missing-chunk"} <= kinds, kinds
    r = sh.gm("checkout", "HEAD~2", cwd=b, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    fixed = sh.gm("fsck", "--repair", "--json", cwd=b, check=False)
    assert fixed.returncode == 0, fixed.stdout
    assert sh.gm("fsck", cwd=b, check=False).returncode == 0
    check_every_version(sh, b, done)


def test_mixed_whole_and_deduplicated_outputs_through_a_remote(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    from conftest import write_bytes

    a = tmp_path / "a"
    a.mkdir()
    sh.git("init", "-q", cwd=a)
    sh.git("remote", "add", "origin", str(origin), cwd=a)
    sh.gm("init", cwd=a)
    configure_remote(sh, a, local_storage, local_storage.fresh_url())
    write_bytes(a / "old.bin", 300_000, seed=3)
    sh.gm("commit", "old.bin", "-m", "stored whole", cwd=a)
    sh.git("push", "-q", "origin", "main", cwd=a)
    cfg = a / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + DEDUP)
    sh.git("commit", "-q", "-am", "dedup on", cwd=a)
    done = commit_versions(sh, a, versions(tmp_path / "ckpt", 2))
    sh.git("push", "-q", "origin", "main", cwd=a)
    old = md5(a / "old.bin")
    root = remote_root(sh, a)
    assert root is not None
    assert (root / "files" / "md5" / old[:2] / old[2:]).is_file()  # whole, as before
    assert (root / "gitmodel" / "recipes" / done[-1][1]).is_file()  # chunks
    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("pull", cwd=b)
    assert md5(b / "old.bin") == old and md5(b / "model.safetensors") == done[-1][1]
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=b)
    for name in ("old.bin", "model.safetensors"):
        (b / name).chmod(0o644)
        (b / name).unlink()
    sh.gm("checkout", cwd=b)
    assert md5(b / "old.bin") == old and md5(b / "model.safetensors") == done[-1][1]
    check_every_version(sh, b, done)


@pytest.mark.parametrize("door", ["git push", "framework", "git model push"])
def test_every_push_door_checks_the_remote_again_after_a_remote_gc_elsewhere(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage, door: str
) -> None:
    """A clone remembers which weights it pushed. A teammate's `gc --remote` removed the
    chunks of a commit this clone kept unpushed (as after the grace period): pushing that
    commit, by any door, must upload the chunks again, never publish a pointer whose
    weights the remote no longer holds."""
    a = dedup_project(sh, tmp_path, origin, local_storage)
    files = versions(tmp_path / "ckpt", 2)
    done = commit_versions(sh, a, files[:1])
    sh.git("push", "-q", "origin", "main", cwd=a)
    sh.git("checkout", "-q", "-b", "side", cwd=a)
    late = commit_versions(sh, a, files[1:2])
    sh.gm("push", cwd=a)  # the weights only: the commit stays unpushed
    root = remote_root(sh, a)
    assert root is not None and late[0][1] in _remote_files(root, "recipes")
    b = clone_project(sh, origin, tmp_path / "b")
    first = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=b).json()
    assert first["recipes_removed"] == [late[0][1]] and first["packs_retired"]
    second = sh.gm("gc", "--remote", "--grace", "0", "--json", cwd=b).json()
    assert second["packs_deleted"]
    assert late[0][1] not in _remote_files(root, "recipes")

    head = sh.git("rev-parse", "HEAD", cwd=a).stdout.strip()
    if door == "git push":
        assert has_pre_push(sh, a)
        sh.git("push", "-q", "origin", "side", cwd=a)
    elif door == "framework":
        env = {
            "PRE_COMMIT_REMOTE_NAME": "origin",
            "PRE_COMMIT_REMOTE_URL": str(origin),
            "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/side",
            "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/side",
            "PRE_COMMIT_TO_REF": head,
        }
        sh.gm("hook", "framework-pre-push", cwd=a, env=env)
        sh.git("push", "-q", "--no-verify", "origin", "side", cwd=a)
    else:
        sh.gm("push", cwd=a)
        sh.git("push", "-q", "--no-verify", "origin", "side", cwd=a)
    assert late[0][1] in _remote_files(root, "recipes")
    _remote_consistent(root)
    c = clone_project(sh, origin, tmp_path / "c")
    sh.git("checkout", "-q", "side", cwd=c)
    sh.gm("pull", cwd=c)
    assert md5(c / "model.safetensors") == late[0][1]
    check_every_version(sh, c, done + late)
