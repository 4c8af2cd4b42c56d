"""A victim clones a hostile repository and runs the ordinary commands and hooks.

Each repository is built by an attacker with plain git (pointers, manifests, cache
objects, `.dvc/config`, `.gitmodel.toml` and symlinks are all committed content), pushed
to a bare server and cloned by the victim, who runs `git model init` (hooks installed),
`checkout`, `commit`, `fsck --repair`, `gc` and a plain `git pull`. Every case asserts:
nothing written, read or removed outside the tracked outputs (a sentinel directory beside
the clone and the clone's own `.git` are compared file by file), no process started (a
marker no payload may create), exit 2 with one line naming the bad entry, nothing lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Shell, write_bytes
from integrity import md5_of, objects

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file and link under root (path -> md5 or link target), links not followed."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_here = here.relative_to(root).as_posix()
        if any(rel_here == s or rel_here.startswith(s + "/") for s in skip):
            dirnames[:] = []
            continue
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            p = here / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            else:
                out[rel] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


class World:
    """An attacker's repository, a bare server, a victim's clone and what must not change."""

    def __init__(self, tmp_path: Path, sh: Shell) -> None:
        self.sh = sh
        self.tmp = tmp_path
        self.outside = tmp_path / "outside"  # the victim's other files
        self.outside.mkdir()
        (self.outside / "credentials").write_text("https://victim:s3cr3t-token@example.com\n")
        (self.outside / "keep.txt").write_text("keep me\n")
        self.pwned = tmp_path / "pwned"  # no payload may create it
        self.server = tmp_path / "server.git"
        self.attacker = tmp_path / "attacker"
        self.victim = tmp_path / "victim"
        sh.git("init", "-q", "--bare", str(self.server), cwd=tmp_path)
        sh.git("init", "-q", str(self.attacker), cwd=tmp_path)
        (self.attacker / "README.md").write_text("a friendly project\n")
        sh.gm("init", "--no-hooks", cwd=self.attacker)
        self.commit("initial")
        sh.git("remote", "add", "origin", str(self.server), cwd=self.attacker)
        sh.git("push", "-q", "origin", "HEAD:main", cwd=self.attacker)
        self.outside_before = _tree(self.outside)

    # -- the attacker -------------------------------------------------------------------

    def commit(self, message: str) -> None:
        self.sh.git("add", "-A", "-f", cwd=self.attacker)
        self.sh.git(*NO_HOOKS, "commit", "-qm", message, cwd=self.attacker)

    def object(self, data: bytes, suffix: str = "") -> str:
        """Commit data as a cache object (force-added: `.dvc/cache` is git-ignored)."""
        oid = hashlib.md5(data).hexdigest() + suffix
        path = self.attacker / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return oid

    def manifest(self, entries: list[tuple[str, str]]) -> str:
        data = json.dumps([{"md5": m, "relpath": r} for r, m in entries], sort_keys=True)
        return self.object(data.encode(), ".dir")

    def pointer(self, rel: str, oid: str, path: str, size: int = 10) -> None:
        file = self.attacker / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"outs:\n- md5: {oid}\n  size: {size}\n  hash: md5\n  path: '{path}'\n")

    def push(self) -> None:
        self.sh.git("push", "-q", "origin", "HEAD:main", cwd=self.attacker)

    # -- the victim ---------------------------------------------------------------------

    def clone(self) -> Path:
        self.sh.git("clone", "-q", str(self.server), str(self.victim), cwd=self.tmp)
        self.sh.gm("init", cwd=self.victim)  # hooks installed
        self.git_before = self.git_dir_state()
        return self.victim

    def git_dir_state(self) -> dict[str, str]:
        # Everything in .git but what the victim's own git commands change (objects, refs,
        # logs, the index, HEAD) and gitmodel's own journal: hooks, config, info/...
        state = _tree(self.victim / ".git", skip=("logs", "gitmodel", "objects", "refs"))
        own = ("index", "HEAD", "ORIG_HEAD", "FETCH_HEAD", "COMMIT_EDITMSG", "packed-refs")
        return {k: v for k, v in state.items() if k not in own}

    def gm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.sh.gm(*args, cwd=self.victim, check=False)  # type: ignore[return-value]

    def check(self, git_dir: bool = True) -> None:
        assert not self.pwned.exists(), "repository content made a process run"
        assert _tree(self.outside) == self.outside_before, "a file outside was changed"
        if git_dir:
            after = self.git_dir_state()
            changed = {k for k in after.keys() | self.git_before.keys()}
            changed = {k for k in changed if after.get(k) != self.git_before.get(k)}
            assert not changed, f"gitmodel changed .git/{sorted(changed)}"


@pytest.fixture
def world(tmp_path: Path, sh: Shell) -> World:
    return World(tmp_path, sh)


def failed_cleanly(r: object) -> None:
    """Exit 1 or 2 (refused, or bad input), no traceback and no internal error."""
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc in (1, 2), f"exit {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err


def refused(r: object, *names: str) -> str:
    """Exit 2 with one `git model:` line naming each of names; no traceback."""
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc == 2, f"exit {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("git model:")]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


def hook_script() -> bytes:
    return b"#!/bin/sh\ntouch PWNED\n"


# -- 1. a pointer may not write into .git -----------------------------------------------

GIT_SPELLINGS = [".git/hooks/pre-commit", ".GIT/hooks/pre-commit", ".Git/hooks/post-checkout"]


@pytest.mark.parametrize("spelling", GIT_SPELLINGS)
def test_a_pointer_cannot_write_a_hook(world: World, spelling: str) -> None:
    payload = hook_script().replace(b"PWNED", str(world.pwned).encode())
    oid = world.object(payload)
    world.pointer("weights.dvc", oid, spelling, len(payload))
    (world.attacker / ".dvc" / "config").write_text("[cache]\n    type = hardlink,copy\n")
    world.commit("weights")
    world.push()
    victim = world.clone()
    refused(world.gm("checkout"), "weights.dvc", spelling)
    refused(world.gm("checkout", "--force"), "weights.dvc")
    refused(world.gm("status"), "weights.dvc")
    refused(world.gm("checkout", "HEAD"), "weights.dvc")
    assert not (victim / ".git" / "hooks" / "pre-commit").exists()
    # The hooks of a branch switch and the next commit run nothing the clone wrote.
    world.sh.git("checkout", "-q", "-b", "other", cwd=victim)
    (victim / "x.txt").write_text("x")
    world.sh.git("add", "x.txt", cwd=victim)
    world.sh.git("commit", "-qm", "x", cwd=victim)
    world.check()


def test_a_pointer_cannot_rewrite_git_config(world: World) -> None:
    config = f"[core]\n\tfsmonitor = touch {world.pwned}\n".encode()
    oid = world.object(config)
    world.pointer("cfg.dvc", oid, ".git/config", len(config))
    world.pointer("sub/cfg.dvc", oid, "../.git/config", len(config))
    world.commit("config")
    world.push()
    victim = world.clone()
    refused(world.gm("checkout", "cfg.dvc"), "cfg.dvc")
    refused(world.gm("checkout", "sub/cfg.dvc"), "sub/cfg.dvc")
    world.sh.git("status", cwd=victim)
    world.check()


def test_a_plain_pull_with_hooks_installed_writes_no_hook(world: World) -> None:
    """The clone is clean; the hostile commit arrives with a plain `git pull` (post-merge)."""
    victim = world.clone()
    payload = hook_script().replace(b"PWNED", str(world.pwned).encode())
    oid = world.object(payload)
    world.pointer("weights.dvc", oid, ".git/hooks/pre-commit", len(payload))
    # A directory pointer through a committed link to .git, and one at .git itself.
    (world.attacker / "data").symlink_to(".git")
    d = world.manifest([("hooks/pre-commit", oid)])
    world.pointer("data.dvc", d, "data")
    world.pointer("gitdir.dvc", d, ".git")
    world.commit("hostile")
    world.push()
    r = world.sh.git("pull", "-q", "origin", "main", cwd=victim)
    assert "Traceback" not in r.stderr
    assert "weights not updated" in r.stderr, r.stderr
    assert not (victim / ".git" / "hooks" / "pre-commit").exists()
    refused(world.gm("checkout", "data.dvc"), "data.dvc", "symbolic link")
    refused(world.gm("checkout", "gitdir.dvc"), "gitdir.dvc")
    (victim / "y.txt").write_text("y")
    world.sh.git("add", "y.txt", cwd=victim)
    world.sh.git("commit", "-qm", "y", cwd=victim)
    world.check()


# -- 2. the whole repository deleted ------------------------------------------------------


def test_a_directory_pointer_at_the_root_removes_nothing(world: World) -> None:
    blob = b"weights"
    oid = world.object(blob)
    d = world.manifest([("only.bin", oid)])
    world.pointer("all.dvc", d, ".")
    world.pointer("sub/here.dvc", d, ".")
    (world.attacker / "sub" / "code.py").write_text("print('mine')\n")
    world.commit("root pointer")
    world.push()
    victim = world.clone()
    (victim / "untracked.txt").write_text("my work\n")
    before = _tree(victim, skip=(".git/logs",))
    for args in (["checkout"], ["checkout", "--force"], ["checkout", "--force", "HEAD"]):
        refused(world.gm(*args), "all.dvc")
    refused(world.gm("checkout", "--force", "sub"), "sub/here.dvc")
    after = _tree(victim, skip=(".git/logs",))
    assert {k: v for k, v in after.items() if k in before} == before, "files were lost"
    world.check()


# -- 3. [eval] history ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["ABS", "../outside/credentials", ".git/config", "link/creds"])
def test_eval_history_outside_is_neither_read_nor_removed(world: World, where: str) -> None:
    if where == "ABS":
        where = str(world.outside / "credentials")
    (world.attacker / "link").symlink_to(world.outside)
    (world.outside / "creds").write_text('{"run": "x", "time": 1, "token": 1234}\n')
    world.outside_before = _tree(world.outside)
    cfg = world.attacker / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + f'\n[eval]\nhistory = "{where}"\n')
    world.commit("history")
    world.push()
    victim = world.clone()
    config_before = (victim / ".git" / "config").read_bytes()
    write_bytes(victim / "model.bin", 1000)
    refused(world.gm("commit", "model.bin", "-m", "m", "--metric", "acc=1"), "[eval] history")
    assert world.sh.git("log", "-1", "--format=%s", cwd=victim).stdout.strip() == "history"
    # A plain commit of a metrics file runs post-commit: it notes the metrics, takes nothing.
    (victim / "metrics.json").write_text('{"acc": 0.5}')
    world.sh.git("add", "metrics.json", cwd=victim)
    r = world.sh.git("commit", "-qm", "plain", cwd=victim)
    assert "Traceback" not in r.stderr
    note = world.sh.gm("metrics", "--json", cwd=victim).json()
    assert "training_history" not in note
    # A training script's log_metrics refuses too, instead of appending to the file.
    run = subprocess.run(
        [sys.executable, "-c", "import gitmodel; gitmodel.log_metrics(step=1, loss=0.5)"],
        cwd=victim,
        env=world.sh.env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "[eval] history" in run.stderr
    assert (victim / ".git" / "config").read_bytes() == config_before
    world.check()


def test_a_history_gitmodel_did_not_write_is_not_consumed(world: World) -> None:
    cfg = world.attacker / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + '\n[eval]\nhistory = "data/samples.jsonl"\n')
    world.commit("history")
    world.push()
    victim = world.clone()
    (victim / "data").mkdir()
    mine = victim / "data" / "samples.jsonl"
    mine.write_text('{"x": 1, "y": 2}\n{"x": 3, "y": 4}\n')
    before = mine.read_bytes()
    write_bytes(victim / "model.bin", 1000)
    refused(world.gm("commit", "model.bin", "-m", "m"), "samples.jsonl")
    assert mine.read_bytes() == before
    world.check()


# -- 4. fsck --repair and gc never follow a committed link in the cache ----------------


def test_cache_links_are_never_followed(world: World) -> None:
    old = time.time() - 7200
    victims_files = []
    for name in ("old-a", "old-b", "0123456789abcdef0123456789abcd"):
        p = world.outside / name
        p.write_text("precious\n")
        os.utime(p, (old, old))
        victims_files.append(p)
    world.outside_before = _tree(world.outside)
    files = world.attacker / ".dvc" / "cache" / "files"
    files.mkdir(parents=True)
    (files / "tmp").symlink_to(world.outside)
    (files / "md5").mkdir()
    (files / "md5" / "ab").symlink_to(world.outside)
    world.commit("cache links")
    world.push()
    victim = world.clone()
    r = world.gm("fsck", "--repair")
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, r.stderr
    r = world.gm("gc", "--grace", "0")
    assert r.returncode in (0, 2) and "Traceback" not in r.stderr, r.stderr
    write_bytes(victim / "model.bin", 1000)
    refused(world.gm("add", "model.bin"), "symbolic link")
    for p in victims_files:
        assert p.read_text() == "precious\n"
    world.check()


@pytest.mark.parametrize("planted", ["index", "pack"])
def test_chunk_store_links_are_never_followed(world: World, planted: str) -> None:
    """A clone may commit any file of the chunk store (`.dvc/cache/gitmodel/`) as a link:
    a pack index `-> /dev/zero` (read to its end, it is endless: checkout ate all the
    memory there was), a pack `->` a file elsewhere. Neither is followed, and checkout of
    the object the recipe names is one line, not a crash or a hang."""
    data = b"weights!" * 1000
    md5 = hashlib.md5(data).hexdigest()
    cid = hashlib.sha256(data).hexdigest()
    pack = "ab" * 32
    store = world.attacker / ".dvc" / "cache" / "gitmodel"
    recipe = store / "recipes" / md5[:2] / md5[2:]
    recipe.parent.mkdir(parents=True)
    (store / "packs").mkdir()
    body = {"format": "gitmodel-recipe/1", "md5": md5, "size": len(data), "chunking": "x"}
    body["chunks"] = [["k", len(data), cid]]
    recipe.write_text(json.dumps(body))
    if planted == "index":
        (store / "packs" / f"{pack}.idx").symlink_to("/dev/zero")
    else:
        (store / "packs" / f"{pack}.pack").symlink_to(world.outside / "credentials")
        (store / "packs" / f"{pack}.idx").write_bytes(b"damaged: rebuilt from the pack")
    world.pointer("m.bin.dvc", md5, "m.bin", len(data))
    world.commit("planted chunk store")
    world.push()
    world.clone()
    # bounded, so that the old endless read fails here instead of filling the machine
    r = world.sh.run(
        ["prlimit", "--as=3000000000", "git", "model", "checkout"],
        world.victim,
        check=False,
        timeout=120,
    )
    failed_cleanly(r)
    assert len([x for x in r.stderr.splitlines() if x.startswith("git model:")]) == 1, r.stderr
    assert not (world.victim / "m.bin").exists()
    world.check()


@pytest.mark.parametrize("size", [10_000, 3_000_000])  # a small file, a large one
def test_add_does_not_keep_a_planted_object(world: World, size: int) -> None:
    """A clone commits, under the md5 of bytes the victim will add (a public base model,
    say), an object holding other bytes. The add must store the victim's bytes, not
    believe the object that is there: with the planted one, add said `added`, every
    later checkout and push refused the object, and the victim's only copy was the file."""
    public = (b"public base model weights\n" * (size // 26 + 1))[:size]
    md5 = hashlib.md5(public).hexdigest()
    planted = world.attacker / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"attacker" * (size // 8))
    world.commit("a planted object")
    world.push()
    victim = world.clone()
    (victim / "model.bin").write_bytes(public)
    (victim / "data").mkdir()
    (victim / "data" / "public.bin").write_bytes(public)  # stored as a directory's member
    for what in ("model.bin", "data"):
        world.sh.gm("add", what, cwd=victim)
        obj = victim / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
        assert md5_of(obj) == md5, f"add of {what} kept the planted object"
        obj.chmod(0o644)
        obj.write_bytes(b"attacker" * (size // 8))  # planted again for the next add
    world.check()


@pytest.mark.parametrize("what", ["model.bin", "data"])  # a file, a directory's member
def test_add_replaces_a_planted_recipe(world: World, what: str) -> None:
    """A clone commits a recipe under the md5 of bytes its victim will add, naming chunks
    that are there (another file's). The victim's add must leave the recipe of its own
    bytes: with the planted one kept, gc dropped the whole object as rebuildable, and the
    victim's file could never be checked out again."""
    attacker = world.attacker
    (attacker / ".gitmodel.toml").write_text(
        (attacker / ".gitmodel.toml").read_text() + "\n[storage]\ndedup = true\n"
    )
    write_bytes(attacker / "other.bin", 300_000, seed=7)
    world.sh.gm("add", "other.bin", cwd=attacker)
    other = md5_of(attacker / "other.bin")
    recipes = attacker / ".dvc" / "cache" / "gitmodel" / "recipes"
    public = bytes(range(256)) * 1172  # 300,032 bytes the victim will add
    md5 = hashlib.md5(public).hexdigest()
    body = json.loads((recipes / other[:2] / other[2:]).read_bytes())
    body["md5"], body["size"] = md5, 300_000  # the other file's chunks, under this name
    (recipes / md5[:2]).mkdir(exist_ok=True)
    (recipes / md5[:2] / md5[2:]).write_text(json.dumps(body))
    for p in (attacker / ".dvc" / "cache" / "files").rglob("*"):
        if p.is_file():
            p.chmod(0o644)
            p.unlink()  # only the chunk store is committed
    (attacker / "other.bin").unlink()
    (attacker / "other.bin.dvc").unlink()
    world.commit("a planted recipe")
    world.push()
    victim = world.clone()
    added = victim / ("model.bin" if what == "model.bin" else "data/public.bin")
    added.parent.mkdir(exist_ok=True)
    added.write_bytes(public)
    world.sh.gm("commit", what, "-m", "the base model", cwd=victim)
    world.sh.gm("gc", "--grace", "0", "--chunks-only", cwd=victim)
    added.unlink()
    r = world.gm("checkout")
    assert r.returncode == 0, r.stderr
    assert md5_of(added) == md5
    world.check()


def test_a_chunk_of_a_huge_declared_size_is_one_line(world: World) -> None:
    """A committed pack whose entry declares a chunk of 2**62 bytes, and a recipe of that
    size for the pointer's md5: checkout refuses it in one line (the rebuild's file could
    not be made that long: EFBIG was an internal error)."""
    from gitmodel.dedup.chunkstore import open_chunk_store
    from gitmodel.dedup.recipe import Recipe
    from gitmodel.store import Store

    size = 2**62
    cid = hashlib.sha256(b"huge").hexdigest()
    md5 = hashlib.md5(b"huge").hexdigest()
    cache = world.attacker / ".dvc" / "cache"
    cs = open_chunk_store(Store(cache, world.tmp / "attacker-state.db"))
    with cs.packs.writer() as writer:
        writer.add(cid, None, 0, size, b"\x01\x01" + bytes(20))
    cs.packs.forget()
    cs.write_recipe(Recipe(md5, size, "x", [("k", size, cid)]))
    world.pointer("m.bin.dvc", md5, "m.bin", 4)  # the pointer says 4 bytes
    world.commit("a huge chunk")
    world.push()
    world.clone()
    r = world.gm("checkout")
    failed_cleanly(r)
    assert not (world.victim / "m.bin").exists()
    world.check()


def test_the_remote_index_cache_is_never_followed(world: World, tmp_path: Path) -> None:
    """A pull from a remote with chunks keeps the remote's pack indexes in
    `.dvc/cache/gitmodel/remote-index/`; a clone that commits that directory as a link
    must not make the pull write them through it."""
    from gitmodel.dedup.packs import ChunkInfo, _idx_bytes

    data = b"weights!" * 1000
    md5 = hashlib.md5(data).hexdigest()
    cid = hashlib.sha256(data).hexdigest()
    remote = tmp_path / "remote"  # the team's DVC remote: it has the chunks
    (remote / "gitmodel" / "recipes").mkdir(parents=True)
    (remote / "gitmodel" / "packs").mkdir()
    (remote / "files" / "md5").mkdir(parents=True)
    body = {"format": "gitmodel-recipe/1", "md5": md5, "size": len(data), "chunking": "x"}
    body["chunks"] = [["k", len(data), cid]]
    (remote / "gitmodel" / "recipes" / md5).write_text(json.dumps(body))
    row = ChunkInfo(cid, "cd" * 32, 8, len(data), 10, None, 0)
    (remote / "gitmodel" / "packs" / f"{'cd' * 32}.idx").write_bytes(_idx_bytes([row]))
    (world.attacker / ".dvc" / "config").write_text(
        f"[core]\n    remote = up\n['remote \"up\"']\n    url = {remote}\n"
    )
    (world.attacker / ".dvc" / "cache" / "gitmodel").mkdir(parents=True)
    (world.attacker / ".dvc" / "cache" / "gitmodel" / "remote-index").symlink_to(world.outside)
    world.pointer("m.bin.dvc", md5, "m.bin", len(data))
    world.commit("remote index link")
    world.push()
    world.clone()
    r = world.gm("pull")
    failed_cleanly(r)
    world.check()


@pytest.mark.parametrize("link", [".dvc", ".dvc/tmp", ".dvc/config"])
def test_links_in_dvc_are_never_followed(world: World, link: str) -> None:
    """A committed `.dvc -> ~` (or `.dvc/tmp`, `.dvc/config`) would put the cache, the stat
    cache or DVC's config outside the repository."""
    (world.outside / "config").write_text("[core]\n    remote = x\n")
    world.outside_before = _tree(world.outside)
    target = world.attacker / link
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(world.outside / "config" if link == ".dvc/config" else world.outside)
    world.commit("dvc link")
    world.push()
    world.sh.git("clone", "-q", str(world.server), str(world.victim), cwd=world.tmp)
    refused(world.gm("init"), link, "symbolic link")
    world.git_before = world.git_dir_state()
    write_bytes(world.victim / "m.bin", 1000)
    for args in (["add", "m.bin"], ["status"], ["fsck"]):
        r = world.gm(*args)  # refused: the link, or "run `git model init` first"
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
    world.check()


# -- 5. a cache outside the repository ----------------------------------------------------


def test_gc_of_a_shared_cache_needs_the_projects(world: World, sh: Shell) -> None:
    shared = world.tmp / "shared-cache"
    other = world.tmp / "other"
    sh.git("init", "-q", str(other), cwd=world.tmp)
    sh.gm("init", "--no-hooks", cwd=other)
    (other / ".dvc" / "config").write_text(f"[cache]\n    dir = {shared}\n")
    write_bytes(other / "theirs.bin", 3000, seed=7)
    sh.gm("add", "theirs.bin", cwd=other)
    theirs = md5_of(other / "theirs.bin")
    (world.attacker / ".dvc" / "config").write_text(
        f"[cache]\n    dir = {shared}\n[core]\n    remote = up\n"
        f"['remote \"up\"']\n    url = {world.outside}\n"
    )
    world.commit("shared cache")
    world.push()
    world.sh.git("clone", "-q", str(world.server), str(world.victim), cwd=world.tmp)
    r = world.sh.gm("init", cwd=world.victim)
    assert "cache.dir" in r.stderr and "outside the repository" in r.stderr, r.stderr
    assert "remote up" in r.stderr, r.stderr
    world.git_before = world.git_dir_state()
    fsck = world.gm("fsck")
    assert "cache.dir" in fsck.stderr, fsck.stderr
    refused(world.gm("gc", "--grace", "0"), "--projects")
    assert theirs in objects(shared)
    r = world.gm("gc", "--grace", "0", "--projects", str(other))
    assert r.returncode == 0, r.stderr
    assert theirs in objects(shared), "gc removed another project's weights"
    world.check()


# -- 6. reads through committed links -------------------------------------------------------


def test_committed_links_are_not_read_into_a_commit(world: World) -> None:
    secret = world.outside / "credentials"
    (world.attacker / "models").mkdir()
    (world.attacker / "models" / ".gitignore").symlink_to(secret)
    (world.attacker / "model.pkl.dvc").symlink_to(secret)
    (world.attacker / "metrics.json").symlink_to(world.outside / "creds.json")
    (world.attacker / "pyproject.toml").symlink_to(world.outside / "creds.toml")
    (world.outside / "creds.toml").write_text('[tool.gitmodel]\nmetrics-files = ["x"]\n')
    (world.outside / "creds.json").write_text('{"token": 1234}')
    world.outside_before = _tree(world.outside)
    world.commit("links")
    world.push()
    victim = world.clone()
    write_bytes(victim / "models" / "m.bin", 1000)
    refused(world.gm("commit", "models/m.bin", "-m", "m", "--metric", "a=1"), ".gitignore")
    write_bytes(victim / "model.pkl", 1000, seed=1)
    refused(world.gm("commit", "model.pkl", "-m", "m", "--metric", "a=1"), "model.pkl.dvc")
    refused(world.gm("commit", "-m", "metrics from the config"), "metrics.json")
    cfg = victim / ".gitmodel.toml"
    cfg.rename(victim / "policy.toml")
    cfg.symlink_to(world.outside / "creds.toml")
    refused(world.gm("commit", "-m", "linked policy"), ".gitmodel.toml", "symbolic link")
    cfg.unlink()
    refused(world.gm("commit", "-m", "linked pyproject"), "pyproject.toml", "symbolic link")
    (victim / "policy.toml").rename(cfg)
    history = world.sh.git("log", "--all", "-p", "--format=", cwd=victim).stdout
    history += world.sh.git("log", "--all", "--format=%N", "--notes=metrics", cwd=victim).stdout
    assert "s3cr3t" not in history and "1234" not in history
    world.check()


# -- 7. gc and add cannot lose an object to each other --------------------------------------


def test_an_object_add_reuses_is_not_collected(world: World) -> None:
    victim = world.clone()
    write_bytes(victim / "m.bin", 2000, seed=3)
    world.sh.gm("add", "m.bin", cwd=victim)
    oid = md5_of(victim / "m.bin")
    obj = objects(victim / ".dvc" / "cache")[oid]
    world.sh.git("rm", "-q", "--cached", "m.bin.dvc", cwd=victim)
    (victim / "m.bin.dvc").unlink()
    time.sleep(6)
    start = time.time()
    world.sh.gm("add", "m.bin", cwd=victim)  # re-uses the object
    # The race: gc runs after add found the object and before the pointer is written
    # (and staged): take both away again.
    world.sh.git("rm", "-q", "--cached", "m.bin.dvc", cwd=victim)
    (victim / "m.bin.dvc").rename(victim / "m.bin.dvc.aside")
    # A grace period the object's first store is 6 s beyond, and its re-use 4 s within,
    # however long the commands above took on a loaded machine.
    grace = time.time() - start + 4
    world.sh.gm("gc", "--grace", str(grace), cwd=victim)
    assert obj.exists(), "gc removed the object add had just re-used"
    world.check()


# -- 8. hostile notes and manifests ----------------------------------------------------------


def _note(world: World, text: str, rev: str = "HEAD") -> None:
    world.sh.git(
        "notes",
        "--ref=refs/notes/metrics",
        "add",
        "-f",
        "-F",
        "-",
        rev,
        cwd=world.attacker,
        input=text,
    )


def test_a_huge_metric_is_a_one_line_error(world: World) -> None:
    write_bytes(world.attacker / "model.bin", 1000)
    world.sh.gm("commit", "model.bin", "-m", "good", "--metric", "acc=0.5", cwd=world.attacker)
    world.sh.git(*NO_HOOKS, "tag", "-a", "v1.0.0", "-m", "r", cwd=world.attacker)
    world.sh.git(*NO_HOOKS, "commit", "-q", "--allow-empty", "-m", "huge", cwd=world.attacker)
    _note(world, json.dumps({"schema": 1, "metrics": {"acc": 10**400}}))
    world.sh.git(
        "push", "-q", "origin", "HEAD:main", "v1.0.0", "refs/notes/metrics", cwd=world.attacker
    )
    victim = world.clone()
    world.sh.git("fetch", "-q", "origin", "refs/notes/metrics:refs/notes/metrics", cwd=victim)
    for args in (["check"], ["diff", "v1.0.0", "HEAD"], ["metrics"]):
        r = world.gm(*args)
        assert r.returncode in (1, 2), (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    for args in (["report", "-o", str(world.tmp / "r.html")], ["plot", "--json"]):
        r = world.gm(*args)
        assert r.returncode in (0, 1, 2), (args, r.stderr)
        assert "internal error" not in r.stderr, r.stderr
    fsck = world.gm("fsck")
    assert "too large" in fsck.stdout, fsck.stdout
    # A later good commit still releases.
    write_bytes(victim / "model.bin", 1000, seed=9)
    world.sh.gm("commit", "model.bin", "-m", "better", "--metric", "acc=0.6", cwd=victim)
    assert world.gm("check").returncode == 0
    world.check(git_dir=False)


@pytest.mark.slow
def test_a_note_with_a_million_keys_is_refused_in_linear_time(world: World) -> None:
    world.sh.git(*NO_HOOKS, "commit", "-q", "--allow-empty", "-m", "wide", cwd=world.attacker)
    wide = {"schema": 1, "metrics": {f"m{i}": 0.5 for i in range(1_000_000)}}
    _note(world, json.dumps(wide, separators=(",", ":")))
    world.sh.git("push", "-q", "origin", "HEAD:main", "refs/notes/metrics", cwd=world.attacker)
    victim = world.clone()
    world.sh.git("fetch", "-q", "origin", "refs/notes/metrics:refs/notes/metrics", cwd=victim)
    r = world.sh.gm("log", cwd=victim, check=False, timeout=240)
    assert r.returncode == 0 and "(bad note)" in r.stdout, r.stderr
    refused(world.gm("metrics"), "more than")
    world.check(git_dir=False)


@pytest.mark.parametrize(
    "entries, named",
    [
        ([("a", "A"), ("a/b", "B")], "both a file and a directory"),
        ([("x", "A"), ("x", "B")], "listed twice"),
        ([(".git/hooks/pre-commit", "A")], "git's own directory"),
        ([("sub/.GIT/config", "A")], "git's own directory"),
    ],
)
def test_manifests_that_are_not_a_tree(world: World, entries: list, named: str) -> None:
    a, b = world.object(b"first file"), world.object(b"second file")
    oid = world.manifest([(rel, a if m == "A" else b) for rel, m in entries])
    world.pointer("data.dvc", oid, "data")
    world.commit("manifest")
    world.push()
    victim = world.clone()
    line = refused(world.gm("checkout"), oid, named)
    assert "data.dvc" in line or oid in line
    fsck = world.gm("fsck")
    assert fsck.returncode == 1 and f"bad-manifest: directory manifest {oid}" in fsck.stdout
    assert named in fsck.stdout
    assert not (victim / ".git" / "hooks" / "pre-commit").exists()
    world.check()


# -- 9. the repository is what git says ---------------------------------------------------------


def test_git_dir_and_work_tree_are_honoured(sh: Shell, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for p in (a, b):
        sh.git("init", "-q", str(p), cwd=tmp_path)
        sh.gm("init", "--no-hooks", cwd=p)
    write_bytes(a / "model.bin", 1000)
    write_bytes(b / "model.bin", 1000, seed=1)
    sh.run(["git", f"--git-dir={a}/.git", f"--work-tree={a}", "model", "add", "model.bin"], b)
    assert (a / "model.bin.dvc").exists() and not (b / "model.bin.dvc").exists()
    write_bytes(a / "two.bin", 1000, seed=2)
    sh.gm("add", "two.bin", cwd=b, env={"GIT_DIR": str(a / ".git"), "GIT_WORK_TREE": str(a)})
    assert (a / "two.bin.dvc").exists() and not (b / "two.bin.dvc").exists()
    write_bytes(a / "three.bin", 1000, seed=3)
    sh.run(["git", "-C", str(a), "model", "add", "three.bin"], b)
    assert (a / "three.bin.dvc").exists()
    status = sh.run(
        ["git", f"--git-dir={a}/.git", f"--work-tree={a}", "model", "status", "--json"], b
    ).stdout
    assert "model.bin" not in json.loads(status).get("missing", [])


def test_dubious_ownership_is_git_s_own_message(sh: Shell, repo: Path) -> None:
    r = sh.gm("status", cwd=repo, check=False, env={"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1"})
    line = refused(r, "dubious ownership", "safe.directory")
    assert "not a git repository" not in line


# -- 10. sparse files stay sparse ---------------------------------------------------------------


def test_sparse_files_stay_sparse(sh: Shell, repo: Path) -> None:
    big = repo / "ckpt.bin"
    with open(big, "wb") as f:
        f.truncate(256 * 1024 * 1024)
        f.seek(100 * 1024 * 1024)
        f.write(os.urandom(1 << 20))
    if os.stat(big).st_blocks * 512 > 64 * 1024 * 1024:
        pytest.skip("this file system does not keep holes")
    want = md5_of(big)
    sh.gm("add", "ckpt.bin", cwd=repo)
    obj = objects(repo / ".dvc" / "cache")[want]
    assert os.stat(obj).st_blocks * 512 < 8 * 1024 * 1024, "the cache object was filled in"
    big.unlink()
    sh.gm("checkout", "ckpt.bin", cwd=repo)
    assert md5_of(big) == want
    assert os.stat(big).st_blocks * 512 < 8 * 1024 * 1024, "checkout filled the holes in"
