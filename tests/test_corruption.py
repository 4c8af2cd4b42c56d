"""Corruption is found and never spread: fsck names it; checkout refuses to materialise it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Shell, write_bytes
from integrity import md5_of, objects


def _object(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def _flip_byte(path: Path, offset: int = 100, keep_mtime: bool = False) -> None:
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))
    os.chmod(path, st.st_mode)
    if keep_mtime:  # silent rot: the file's metadata says nothing changed
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _add(sh: Shell, repo: Path, rel: str, size: int = 50_000, seed: int = 0) -> str:
    write_bytes(repo / rel, size, seed=seed)
    sh.gm("add", rel, cwd=repo)
    return md5_of(repo / rel)


def _one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def test_checkout_refuses_a_flipped_byte_and_fsck_names_it(repo: Path, sh: Shell) -> None:
    oid = _add(sh, repo, "model.bin")
    other = _add(sh, repo, "other.bin", seed=1)
    _flip_byte(_object(repo, oid))
    (repo / "model.bin").unlink()
    (repo / "other.bin").unlink()

    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode == 1, r.stderr
    assert oid in r.stderr
    _one_line_error(r.stderr)
    assert not (repo / "model.bin").exists(), "a corrupt object was materialised"

    for args in (["fsck"], ["fsck", "--fast"]):
        r = sh.gm(*args, cwd=repo, check=False)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert f"corrupt-object: corrupt cache object {oid}" in r.stdout
        assert other not in r.stdout
    report = sh.gm("fsck", "--json", cwd=repo, check=False).json()
    assert [(p["kind"], p["name"]) for p in report["problems"]] == [("corrupt-object", oid)]

    # The intact object still checks out on its own.
    sh.gm("checkout", "other.bin", cwd=repo)
    assert md5_of(repo / "other.bin") == other


def test_fsck_full_finds_silent_rot_that_fast_trusts(repo: Path, sh: Shell) -> None:
    oid = _add(sh, repo, "model.bin")
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
    _flip_byte(_object(repo, oid), keep_mtime=True)
    # Same inode, size and mtime: --fast trusts what it verified before (documented) ...
    fast = sh.gm("fsck", "--fast", "--json", cwd=repo, check=False).json()
    assert fast["objects_trusted"] == 1 and fast["objects_checked"] == 0
    # ... the full check re-hashes every object and finds it.
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1 and oid in r.stdout
    # Found once, it is no longer trusted by anything.
    (repo / "model.bin").unlink()
    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode == 1 and oid in r.stderr
    assert not (repo / "model.bin").exists()


def test_fast_only_checks_objects_not_verified_since_written(repo: Path, sh: Shell) -> None:
    _add(sh, repo, "a.bin")
    _add(sh, repo, "b.bin", seed=1)
    first = sh.gm("fsck", "--fast", "--json", cwd=repo).json()
    assert first["objects_checked"] == 0 and first["objects_trusted"] == 2  # verified on write
    # An object that arrived by another door (e.g. `dvc add`, a copy) is checked once.
    src = repo / "c.bin"
    write_bytes(src, 1000, seed=3)
    oid = md5_of(src)
    dest = _object(repo, oid)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes())
    second = sh.gm("fsck", "--fast", "--json", cwd=repo).json()
    assert second["objects_checked"] == 1 and second["objects_trusted"] == 2
    third = sh.gm("fsck", "--fast", "--json", cwd=repo).json()
    assert third["objects_checked"] == 0 and third["objects_trusted"] == 3
    full = sh.gm("fsck", "--json", cwd=repo).json()
    assert full["objects_checked"] == 3


def test_corrupt_dir_manifest_is_refused(repo: Path, sh: Shell) -> None:
    for i in range(3):
        write_bytes(repo / "data" / f"{i}.bin", 1000, seed=i)
    sh.gm("add", "data", cwd=repo)
    pointer = (repo / "data.dvc").read_text()
    dir_oid = next(o for o in objects(repo / ".dvc" / "cache") if o.endswith(".dir"))
    assert dir_oid in pointer
    manifest = _object(repo, dir_oid)
    # Still valid JSON, but now names another file: checkout must not believe it.
    entries = json.loads(manifest.read_bytes())
    entries[0]["relpath"] = "renamed.bin"
    os.chmod(manifest, 0o644)
    manifest.write_bytes(json.dumps(entries, sort_keys=True).encode())
    for p in (repo / "data").iterdir():
        p.unlink()

    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode == 1 and dir_oid in r.stderr, r.stderr
    _one_line_error(r.stderr)
    assert list((repo / "data").iterdir()) == []
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1 and dir_oid in r.stdout


def test_fsck_names_missing_objects_and_pointers(repo: Path, sh: Shell) -> None:
    oid = _add(sh, repo, "model.bin")
    for i in range(2):
        write_bytes(repo / "data" / f"{i}.bin", 1000, seed=10 + i)
    sh.gm("add", "data", cwd=repo)
    part = md5_of(repo / "data" / "1.bin")
    _object(repo, oid).unlink()
    _object(repo, part).unlink()
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    assert f"model.bin.dvc: object {oid} of 'model.bin' is not in the cache" in r.stdout
    assert f"{part}: file '1.bin'" in r.stdout
    (repo / "model.bin").unlink()
    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode != 0 and oid in r.stderr
    _one_line_error(r.stderr)


def test_fsck_names_bad_notes_and_pointers(repo: Path, sh: Shell) -> None:
    _add(sh, repo, "model.bin")
    sh.git("commit", "-qm", "weights", cwd=repo)
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-m", "{not json", head, cwd=repo)
    sh.git(
        "notes",
        "--ref=refs/notes/metrics",
        "add",
        "-f",
        "-m",
        '{"metrics": {"acc": "high"}}',
        "HEAD~1",
        cwd=repo,
    )
    (repo / "broken.bin.dvc").write_text("outs: [[[\n")
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    assert f"bad-note: note on {head[:12]} is not valid JSON" in r.stdout
    assert "metric 'acc' is not a number" in r.stdout
    assert "bad-pointer: broken.bin.dvc: not valid YAML" in r.stdout
    assert "Traceback" not in r.stderr


def test_repair_removes_what_it_cannot_refetch_and_re_add_restores(repo: Path, sh: Shell) -> None:
    oid = _add(sh, repo, "model.bin")
    _flip_byte(_object(repo, oid))
    r = sh.gm("fsck", "--repair", cwd=repo, check=False)
    # No remote has it: the corrupt copy is removed and the pointer now names a missing object.
    assert r.returncode == 1
    assert "removed" in r.stdout and "missing-object" in r.stdout
    assert not _object(repo, oid).exists()
    sh.gm("add", "model.bin", cwd=repo)
    assert md5_of(_object(repo, oid)) == oid
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0


def test_repair_clears_stale_temporaries(repo: Path, sh: Shell) -> None:
    _add(sh, repo, "model.bin")
    tmp = repo / ".dvc" / "cache" / "files" / "tmp"
    old, fresh = tmp / "object.aaaa.tmp", tmp / "object.bbbb.tmp"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"being written")
    os.utime(old, (1, 1))
    r = sh.gm("fsck", "--repair", cwd=repo, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not old.exists() and fresh.exists()


def test_stray_file_in_object_tree_is_named(repo: Path, sh: Shell) -> None:
    _add(sh, repo, "model.bin")
    stray = repo / ".dvc" / "cache" / "files" / "md5" / "ab" / "not-an-object"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("x")
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1 and "abnot-an-object" in r.stdout


def test_repair_refetches_damaged_and_missing_objects_from_the_remote(
    repo: Path, sh: Shell, tmp_path: Path
) -> None:
    sh.gm("remote", "add", "store", str(tmp_path / "storage"), "--default", cwd=repo)
    oid = _add(sh, repo, "model.bin")
    other = _add(sh, repo, "other.bin", seed=1)
    sh.gm("commit", "-m", "weights", "--metric", "acc=1", cwd=repo)
    sh.gm("push", cwd=repo)
    _flip_byte(_object(repo, oid))
    _object(repo, other).unlink()

    r = sh.gm("fsck", "--repair", "--json", cwd=repo, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    repaired = {p["name"]: p["repaired"] for p in r.json()["problems"]}
    assert repaired == {oid: "re-fetched from the remote", other: "fetched from the remote"}
    assert md5_of(_object(repo, oid)) == oid and md5_of(_object(repo, other)) == other
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
