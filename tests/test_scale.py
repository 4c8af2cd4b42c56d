"""A data set of many small files survives the whole round trip, byte for byte.

add, push to a DVC remote, clone, pull, re-add and status after one change, checkout after
`rm -rf`, and the real `dvc pull` / `dvc status` on what gitmodel wrote; the `.dir`
manifest is the one `dvc add` writes for the same tree. 2,000 files by default, 20,000
under `-m slow`. Behaviour only: no timing is asserted.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import time
from pathlib import Path

import pytest
from conftest import Shell


def _tree(root: Path, n: int, seed: int = 17) -> dict[str, str]:
    """n files of 0 to 12 KiB in nested directories; names DVC sorts in a non-obvious order."""
    rnd = random.Random(seed)
    files: dict[str, str] = {}
    for i in range(n):
        top = f"d{i % 40:02d}"
        sub = "" if i % 3 else f"/s{i % 7}"
        name = ["img", "img.", "img-", "Img", "img_ü", "a b"][i % 6] + f"{i:06d}.jpg"
        rel = f"{top}{sub}/{name}"
        data = rnd.randbytes(0 if i % 97 == 0 else rnd.randrange(1, 12 * 1024))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        files[rel] = hashlib.md5(data).hexdigest()
    # a directory and a file whose names sort either side of the directory as a string
    for rel in ("d00.txt", "d00-x/y.bin", "d00/zz/deep/er/file.bin"):
        data = rel.encode() * 3
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = hashlib.md5(data).hexdigest()
    return files


def _contents(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = hashlib.md5(path.read_bytes()).hexdigest()
    return out


def _init(sh: Shell, path: Path) -> Path:
    path.mkdir()
    sh.git("init", "-q", cwd=path)
    (path / "README.md").write_text("data\n")
    sh.git("add", "README.md", cwd=path)
    sh.git("commit", "-q", "-m", "initial", cwd=path)
    return path


def _round_trip(sh: Shell, tmp_path: Path, n: int) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    storage = tmp_path / "storage"
    repo = _init(sh, tmp_path / "repo")
    sh.gm("init", cwd=repo)
    sh.gm("remote", "add", "local", str(storage), "--default", cwd=repo)
    files = _tree(repo / "data", n)
    added = sh.gm("add", "data", "--json", cwd=repo).json()[0]
    assert added["nfiles"] == len(files)
    sh.git("commit", "-q", "-m", "data", cwd=repo)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)  # pre-push uploads
    assert sh.dvc("status", "--json", cwd=repo).stdout.strip() == "{}"

    # The manifest is byte for byte the one `dvc add` writes for the same tree.
    plain = _init(sh, tmp_path / "plain")
    sh.dvc("init", "-q", cwd=plain)
    shutil.copytree(repo / "data", plain / "data")
    sh.dvc("add", "-q", "data", cwd=plain)
    assert f"md5: {added['md5']}" in (plain / "data.dvc").read_text()

    # A clone pulls it back; nothing changed means nothing to hash or write.
    clone = tmp_path / "clone"
    sh.git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    sh.gm("pull", cwd=clone)
    assert _contents(clone / "data") == files
    assert sh.gm("status", "--json", cwd=clone).json()["modified"] == []
    assert sh.dvc("status", "--json", cwd=clone).stdout.strip() == "{}"

    # One file changed: status and re-add see it, and only it.
    one = sorted(files)[n // 2]
    (clone / "data" / one).chmod(0o644)
    (clone / "data" / one).write_bytes(b"changed")
    files[one] = hashlib.md5(b"changed").hexdigest()
    assert sh.gm("status", "--json", cwd=clone).json()["modified"] == ["data"]
    readd = sh.gm("add", "data", "--json", cwd=clone).json()[0]
    assert readd["md5"] != added["md5"] and readd["nfiles"] == len(files)
    assert sh.gm("status", "--json", cwd=clone).json()["modified"] == []
    assert sh.dvc("status", "--json", cwd=clone).stdout.strip() == "{}"

    # rm -rf, checkout: every byte back, one summary line instead of one per file.
    shutil.rmtree(clone / "data")
    out = sh.gm("checkout", cwd=clone).stderr
    assert out == f"restored data/ ({len(files):,} of {len(files):,} files written)\n"
    assert _contents(clone / "data") == files
    assert sh.gm("checkout", cwd=clone).stderr == "weights up to date\n"
    sh.git("commit", "-q", "-am", "one file changed", cwd=clone)
    sh.gm("push", cwd=clone)  # a clone has no hooks: upload the changed file's object
    sh.git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=clone)

    # The real `dvc pull` reads what gitmodel pushed.
    other = tmp_path / "other"
    sh.git("clone", "-q", str(origin), str(other), cwd=tmp_path)
    sh.dvc("pull", "-q", cwd=other)
    assert _contents(other / "data") == files


def test_many_files_round_trip(sh: Shell, tmp_path: Path) -> None:
    _round_trip(sh, tmp_path, 2_000)


@pytest.mark.slow
def test_twenty_thousand_files_round_trip(sh: Shell, tmp_path: Path) -> None:
    _round_trip(sh, tmp_path, 20_000)


def test_listing_order_and_manifest_bytes_are_dvc_s(tmp_path: Path) -> None:
    """The walk yields DVC's order and the manifest is `json.dumps` of it, for odd names."""
    import json

    from gitmodel.store import DirEntry, dir_manifest_bytes
    from gitmodel.tree import manifest_bytes, scan

    names = ["a.txt", "a-b/c", "a/b", "a/b.c/d", "a/bb/c", "a/b-c", "A", 'q"uote', "tab\there"]
    names += ["ü/ß", "emoji-\U0001f600", "back\\slash", "a b/c", "z", "0", "_"]
    for i, rel in enumerate(names):
        path = tmp_path / "d" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]))
    (tmp_path / "d" / "link").symlink_to("a")  # neither followed nor listed
    (tmp_path / "d" / "a" / "file-link").symlink_to("b")
    listing = scan(tmp_path / "d")
    assert listing.rels == sorted(names)
    md5s = [hashlib.md5(bytes([names.index(r)])).hexdigest() for r in listing.rels]
    expected = json.dumps(
        [{"md5": m, "relpath": r} for r, m in zip(listing.rels, md5s, strict=True)],
        sort_keys=True,
    ).encode()
    assert manifest_bytes(listing.rels, md5s) == expected
    shuffled = [DirEntry(r, m, 1) for r, m in reversed(list(zip(listing.rels, md5s, strict=True)))]
    assert dir_manifest_bytes(shuffled) == expected


def test_interrupted_push_resumes_without_re_uploading(sh: Shell, tmp_path: Path) -> None:
    """SIGKILL in the middle of a push of many objects; the next push sends only the rest,
    and what had arrived is left as it was (same inode: not written again)."""
    import signal
    import subprocess
    import time

    from conftest import BIN

    storage = tmp_path / "storage"
    repo = _init(sh, tmp_path / "repo")
    sh.gm("init", cwd=repo)
    sh.gm("remote", "add", "local", str(storage), "--default", cwd=repo)
    files = _tree(repo / "data", 1_500)
    sh.gm("add", "data", cwd=repo)
    sh.git("commit", "-q", "-m", "data", cwd=repo)
    objects = storage / "files" / "md5"

    def arrived() -> dict[str, int]:
        found = {}
        for p in objects.rglob("*") if objects.is_dir() else ():
            if p.is_file() and not p.name.endswith(".tmp"):
                found[p.parent.name + p.name] = p.stat().st_ino
        return found

    # The console script itself, so that the kill lands on the process that uploads.
    proc = subprocess.Popen(
        [str(BIN / "git-model"), "push"],
        cwd=repo,
        env=sh.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(arrived()) < 100:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = arrived()  # whole objects only: a kill leaves at most a temporary name
    report = sh.gm("push", "--json", cwd=repo).json()["weights"]
    after = arrived()
    total = len(set(files.values())) + 1  # the files' distinct objects and the manifest
    assert report["transferred"] + report["already_there"] == total
    assert report["transferred"] == total - len(before)
    assert {oid: after[oid] for oid in before} == before  # nothing that arrived was rewritten
    assert len(after) == total


def test_gc_keeps_the_files_a_directory_re_add_reuses(sh: Shell, tmp_path: Path) -> None:
    """A re-add of a directory refreshes its manifest, not each of its objects: gc keeps
    every object a manifest within the grace period names, so a gc that runs between the
    re-add and its pointer's write loses nothing; once the grace period is over and nothing
    names them, they go."""
    import time

    repo = _init(sh, tmp_path / "repo")
    sh.gm("init", cwd=repo)
    files = _tree(repo / "data", 60)
    sh.gm("add", "data", cwd=repo)
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    members = [cache / m[:2] / m[2:] for m in set(files.values())]
    assert all(p.exists() for p in members)

    def forget_pointer() -> None:
        sh.git("rm", "-q", "--cached", "--ignore-unmatch", "data.dvc", cwd=repo)
        (repo / "data.dvc").unlink()

    forget_pointer()
    time.sleep(6)
    start = time.time()
    sh.gm("add", "data", cwd=repo)  # every object re-used, none of them touched
    forget_pointer()  # the race: gc after add found the objects, before the pointer is kept
    # A grace period the objects' first store is 6 s beyond and the re-add 4 s within,
    # however long the commands above took on a loaded machine.
    grace = time.time() - start + 4
    sh.gm("gc", "--grace", str(grace), cwd=repo)
    assert all(p.exists() for p in members), "gc removed objects a re-add had just re-used"
    sh.gm("gc", "--grace", "0", cwd=repo)
    assert not any(p.exists() for p in members)


def test_status_never_trusts_a_racily_clean_file(sh: Shell, tmp_path: Path) -> None:
    """A file changed again within the timestamp tick of the stat the index recorded keeps
    its stat (same inode, size and mtime): status must hash it rather than trust the
    index. Here its mtime lies ahead of every listing (as after a clock step back), which
    makes it racy at every status however slow the machine; in a file tracked alone and in
    a 300-file directory, through the CLI."""
    repo = _init(sh, tmp_path / "repo")
    sh.gm("init", cwd=repo)
    _tree(repo / "data", 300)
    (repo / "model.bin").write_bytes(b"m" * 5000)
    ahead = (int(time.time()) + 3600) * 1_000_000_000 + 123_456_789
    racy = sorted((repo / "data").rglob("*.jpg"))[150]
    for path in (racy, repo / "model.bin"):
        path.write_bytes(os.urandom(4096))
        os.utime(path, ns=(ahead, ahead))
    sh.gm("add", "data", "model.bin", cwd=repo)
    sh.git("commit", "-q", "-m", "data", cwd=repo)
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []
    for path in (racy, repo / "model.bin"):
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:  # the same inode and size, new bytes
            f.write(os.urandom(4096))
        os.utime(path, ns=(ahead, ahead))
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == ["data", "model.bin"]
    sh.gm("add", "data", "model.bin", cwd=repo)
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []
