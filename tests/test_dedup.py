"""Deduplicated storage ([storage] dedup = true): real git, real `git model`, real files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path

import pytest
from checkpoints import base_weights, fine_tune, write_safetensors
from conftest import Shell

DEDUP_TOML = "[storage]\ndedup = true\n"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def enable_dedup(sh: Shell, repo: Path, extra: str = "") -> None:
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + "\n" + DEDUP_TOML + extra)
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "dedup on", cwd=repo)


def chunk_root(repo: Path) -> Path:
    return repo / ".dvc" / "cache" / "gitmodel"


def drop_whole_object(repo: Path, oid: str, missing_ok: bool = False) -> None:
    path = repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]
    path.unlink(missing_ok=missing_ok)


def versions(tmp: Path, n: int, tensors: int = 12, elements: int = 40_000) -> list[Path]:
    """n checkpoints: each changes a quarter of the tensors; one tensor is never touched."""
    weights = base_weights(tensors, elements)
    out = [write_safetensors(tmp / "v0" / "model.safetensors", weights)]
    names = sorted(weights)
    for k in range(1, n):
        changed = [names[(k * 3 + j) % (tensors - 1) + 1] for j in range(tensors // 4)]
        weights = fine_tune(weights, changed, 1e-3, seed=k)
        out.append(write_safetensors(tmp / f"v{k}" / "model.safetensors", weights))
    return out


def commit_versions(sh: Shell, repo: Path, files: list[Path]) -> list[tuple[str, str]]:
    """Commit each file as model.safetensors; (commit, md5) of each."""
    done = []
    for i, f in enumerate(files):
        target = repo / "model.safetensors"
        if target.exists():
            target.chmod(0o644)
        target.write_bytes(f.read_bytes())
        sh.gm("commit", "model.safetensors", "-m", f"v{i}", "--metric", f"acc={i}", cwd=repo)
        sha = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
        done.append((sha, md5(f)))
    return done


def check_every_version(sh: Shell, repo: Path, done: list[tuple[str, str]]) -> None:
    for sha, want in done:
        sh.git("checkout", "-q", sha, cwd=repo)
        sh.gm("checkout", cwd=repo)
        assert md5(repo / "model.safetensors") == want, sha
    sh.git("checkout", "-q", "main", cwd=repo)
    sh.gm("checkout", cwd=repo)


def test_versions_share_chunks_and_rebuild_byte_exact(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    enable_dedup(sh, repo)
    files = versions(tmp_path, 4)
    done = commit_versions(sh, repo, files)
    recipes = chunk_root(repo) / "recipes"
    assert all((recipes / m[:2] / m[2:]).is_file() for _, m in done)
    packs = list((chunk_root(repo) / "packs").glob("*.pack"))
    raw = sum(f.stat().st_size for f in files)
    stored = sum(p.stat().st_size for p in packs)
    # one version whole (compressed) plus small deltas, far below four whole versions
    assert stored < 0.5 * raw, (stored, raw)
    # the whole-file objects are a cache: without them every version is rebuilt exactly
    for _, m in done:
        drop_whole_object(repo, m)
    check_every_version(sh, repo, done)
    status = sh.gm("status", "--json", cwd=repo).json()
    assert status["not_in_cache"] == [] and status["modified"] == []


@pytest.mark.parametrize("cache_type", ["copy", "hardlink", "symlink"])
def test_a_checkout_from_chunks_writes_the_file_and_puts_the_object_back(
    tmp_path: Path, sh: Shell, repo: Path, cache_type: str
) -> None:
    """Rebuilt from chunks (with a copying cache, the work-tree file in the same pass):
    the file and the whole object are both exact, the file is its own copy unless the
    cache links, and no temporary file is left anywhere."""
    enable_dedup(sh, repo)
    sh.dvc("config", "cache.type", cache_type, cwd=repo)
    f = versions(tmp_path, 1)[0]
    target = repo / "model.safetensors"
    target.write_bytes(f.read_bytes())
    sh.gm("commit", "model.safetensors", "-m", "v0", cwd=repo)
    want = md5(f)
    drop_whole_object(repo, want)
    if not target.is_symlink():
        target.chmod(0o644)
    target.unlink()
    sh.gm("checkout", cwd=repo)
    obj = repo / ".dvc" / "cache" / "files" / "md5" / want[:2] / want[2:]
    assert md5(obj) == want and md5(target) == want
    assert obj.stat().st_mode & 0o777 == 0o444
    if cache_type == "copy":
        assert target.stat().st_ino != obj.stat().st_ino
        assert target.stat().st_mode & 0o777 == 0o644
    elif cache_type == "hardlink":
        assert target.stat().st_ino == obj.stat().st_ino
    else:
        assert target.is_symlink() and target.resolve() == obj.resolve()
    assert not list((repo / ".dvc" / "cache" / "files" / "tmp").iterdir())
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith("model.")) == [
        "model.safetensors",
        "model.safetensors.dvc",
    ]
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []


def test_header_edit_shifts_nothing(tmp_path: Path) -> None:
    from gitmodel.dedup.chunking import plan_chunks

    weights = base_weights(6, 10_000)
    a = write_safetensors(tmp_path / "a.safetensors", weights)
    b = write_safetensors(tmp_path / "b.safetensors", weights, {"note": "x" * 500})
    kind_a, specs_a = plan_chunks(a)
    kind_b, specs_b = plan_chunks(b)
    assert kind_a == kind_b == "safetensors"
    da, db = a.read_bytes(), b.read_bytes()
    body_a = {s.key: da[s.offset : s.offset + s.length] for s in specs_a}
    body_b = {s.key: db[s.offset : s.offset + s.length] for s in specs_b}
    assert body_a.keys() == body_b.keys()
    changed = [k for k in body_a if body_a[k] != body_b[k]]
    assert changed == ["__header__"]


def test_large_tensor_pieces_count_from_the_tensor_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitmodel.dedup import chunking

    monkeypatch.setattr(chunking, "PIECE", 64 * 1024)
    weights = base_weights(2, 100_000)  # 200 KB per tensor: 4 pieces each
    specs = chunking.plan_chunks(write_safetensors(tmp_path / "m.safetensors", weights))[1]
    pieces = [s for s in specs if s.key.startswith("layers.0.weight#")]
    assert [s.length for s in pieces] == [65536, 65536, 65536, 200_000 - 3 * 65536]
    assert pieces[0].offset + 65536 == pieces[1].offset
    assert all(s.width == 2 for s in pieces)


def test_content_defined_cuts_survive_an_insertion() -> None:
    from gitmodel.dedup.chunking import CDC_MAX, CDC_MIN, cdc_cuts

    data = os.urandom(3 * 1024 * 1024)
    edited = data[:1000] + b"inserted bytes" + data[1000:]

    def chunks(blob: bytes) -> list[bytes]:
        cuts = list(cdc_cuts(io.BytesIO(blob), len(blob)))
        starts = [0, *cuts[:-1]]
        assert cuts[-1] == len(blob)
        assert all(CDC_MIN <= e - s <= CDC_MAX for s, e in zip(starts[:-1], cuts[:-1], strict=True))
        return [blob[s:e] for s, e in zip(starts, cuts, strict=True)]

    a, b = chunks(data), chunks(edited)
    assert len(set(a) & set(b)) >= len(a) - 2  # only the chunk holding the edit differs


HOSTILE_HEADERS = [
    struct.pack("<Q", 2**63) + b"{}",  # a length beyond the file
    struct.pack("<Q", 7) + b"[1,2,3]" + b"\0" * 100,  # not a JSON object
    struct.pack("<Q", 9) + b'{"a": 1}' + b" " + b"\0" * 64,  # a tensor that is not a table
    struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc" + b"\0" * 64,  # not UTF-8
    # overlapping tensors
    (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 64)(
        json.dumps(
            {
                "a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]},
            }
        ).encode()
    ),
    # offsets out of the file, negative, not integers
    (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 64)(
        json.dumps({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 10**9]}}).encode()
    ),
    (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 64)(
        json.dumps({"a": {"dtype": "F32", "shape": [8], "data_offsets": [-8, 24]}}).encode()
    ),
    (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 64)(
        json.dumps({"a": {"dtype": "F32", "shape": [8], "data_offsets": [0.5, True]}}).encode()
    ),
    struct.pack("<Q", 2000) + b"[" * 2000 + b"\0" * 64,  # nesting deep enough to recurse
    b"\x01",  # shorter than the length field
]


@pytest.mark.parametrize("blob", HOSTILE_HEADERS, ids=range(len(HOSTILE_HEADERS)))
def test_hostile_header_falls_back_to_content_chunks(tmp_path: Path, blob: bytes) -> None:
    from gitmodel.dedup.chunking import plan_chunks

    path = tmp_path / "evil.safetensors"
    path.write_bytes(blob)
    kind, specs = plan_chunks(path)
    assert kind == "cdc"
    assert sum(s.length for s in specs) == len(blob)


def test_hostile_header_round_trips_through_add_and_checkout(sh: Shell, repo: Path) -> None:
    enable_dedup(sh, repo)
    blob = HOSTILE_HEADERS[4] + os.urandom(300_000)
    (repo / "evil.safetensors").write_bytes(blob)
    sh.gm("commit", "evil.safetensors", "-m", "evil", cwd=repo)
    oid = hashlib.md5(blob).hexdigest()
    drop_whole_object(repo, oid)
    (repo / "evil.safetensors").unlink()
    sh.gm("checkout", cwd=repo)
    assert (repo / "evil.safetensors").read_bytes() == blob


def test_corrupt_chunk_makes_checkout_refuse(tmp_path: Path, sh: Shell, repo: Path) -> None:
    enable_dedup(sh, repo)
    f = versions(tmp_path, 1)[0]
    (repo / "model.safetensors").write_bytes(f.read_bytes())
    sh.gm("commit", "model.safetensors", "-m", "v0", cwd=repo)
    drop_whole_object(repo, md5(f))
    (repo / "model.safetensors").unlink()
    clean = sh.gm("fsck", "--json", cwd=repo, check=False)
    assert clean.returncode == 0, clean.stdout  # a dropped whole object is not missing
    assert clean.json()["objects_checked"] > 10  # the chunks were decoded and hashed
    pack = next((chunk_root(repo) / "packs").glob("*.pack"))
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x40
    pack.write_bytes(bytes(data))
    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode == 1, r.stderr
    assert "corrupt" in r.stderr and "Traceback" not in r.stderr
    assert not (repo / "model.safetensors").exists()
    found = sh.gm("fsck", "--json", cwd=repo, check=False)
    assert found.returncode == 1
    assert "corrupt-chunk" in {p["kind"] for p in found.json()["problems"]}
    leftovers = list((repo / ".dvc" / "cache" / "files").rglob("*"))
    assert not [p for p in leftovers if p.is_file()], leftovers  # no object under any name


def test_fine_tune_deltas_are_sparse_and_a_corrupt_one_refuses(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    from gitmodel.dedup.codec import SPARSE
    from gitmodel.dedup.packs import PackStore

    enable_dedup(sh, repo)
    done = commit_versions(sh, repo, versions(tmp_path, 3))
    for _, m in done:
        drop_whole_object(repo, m)
    check_every_version(sh, repo, done)  # rebuilt through the sparse deltas, byte-exact
    store = PackStore(chunk_root(repo) / "packs")
    sparse = [i for i in store.index.values() if i.base and store.payload(i)[0] & SPARSE]
    assert sparse  # the fine-tuned tensors' XOR deltas
    victim = sparse[0]
    pack = store.pack_path(victim.pack)
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[victim.offset + 1] ^= 0x01  # the count of nonzero elements
    pack.write_bytes(bytes(data))
    for _, m in done:
        drop_whole_object(repo, m, missing_ok=True)
    (repo / "model.safetensors").unlink()
    # the last version keeps every tensor the one before changed: it needs every delta
    r = sh.gm("checkout", cwd=repo, check=False)
    assert r.returncode == 1, r.stderr
    assert victim.id[:16] in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_mixed_repository_whole_and_deduplicated_outputs(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    from conftest import write_bytes

    write_bytes(repo / "old.bin", 200_000, seed=1)
    sh.gm("commit", "old.bin", "-m", "before dedup", cwd=repo)
    old = md5(repo / "old.bin")
    enable_dedup(sh, repo)
    f = versions(tmp_path, 1)[0]
    (repo / "model.safetensors").write_bytes(f.read_bytes())
    write_bytes(repo / "other.bin", 300_000, seed=2)
    sh.gm("commit", "model.safetensors", "other.bin", "-m", "after", cwd=repo)
    recipes = chunk_root(repo) / "recipes"
    assert not (recipes / old[:2] / old[2:]).exists()  # never re-chunked behind the user's back
    new = md5(f)
    assert (recipes / new[:2] / new[2:]).is_file()
    drop_whole_object(repo, new)
    for name in ("old.bin", "model.safetensors", "other.bin"):
        (repo / name).chmod(0o644)
        (repo / name).unlink()
    sh.gm("checkout", cwd=repo)
    assert md5(repo / "old.bin") == old and md5(repo / "model.safetensors") == new


def test_chunk_store_behind_a_symlink_is_refused(tmp_path: Path, sh: Shell, repo: Path) -> None:
    enable_dedup(sh, repo)
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / ".dvc" / "cache").mkdir(exist_ok=True)
    (repo / ".dvc" / "cache" / "gitmodel").symlink_to(outside)
    f = versions(tmp_path, 1)[0]
    (repo / "model.safetensors").write_bytes(f.read_bytes())
    r = sh.gm("add", "model.safetensors", cwd=repo, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert not list(outside.iterdir())


def test_storage_config_is_validated(sh: Shell, repo: Path) -> None:
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(cfg.read_text() + '\n[storage]\ndedup = "yes"\n')
    (repo / "w.bin").write_bytes(b"x")
    r = sh.gm("add", "w.bin", cwd=repo, check=False)
    assert r.returncode == 2 and "storage.dedup must be true or false" in r.stderr


def test_directory_of_many_files_is_a_few_packs_and_rebuilds(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    from conftest import write_bytes

    enable_dedup(sh, repo)
    d = repo / "ckpt"
    for i in range(60):
        write_bytes(d / f"shard-{i:02d}.bin", 5_000 + i, seed=i)
    f = versions(tmp_path, 1)[0]
    (d / "model.safetensors").write_bytes(f.read_bytes())
    sh.gm("commit", "ckpt", "-m", "dir", cwd=repo)
    assert len(list((chunk_root(repo) / "packs").glob("*.pack"))) <= 2
    want = {p.name: md5(p) for p in d.iterdir()}
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=repo)
    objects = repo / ".dvc" / "cache" / "files" / "md5"
    assert not [p for p in objects.rglob("*") if p.is_file() and not p.name.endswith(".dir")]
    for p in d.iterdir():
        p.chmod(0o644)
        p.unlink()
    sh.gm("checkout", cwd=repo)
    assert {p.name: md5(p) for p in d.iterdir()} == want


def _flip_middle_byte(pack: Path) -> None:
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x40
    pack.write_bytes(bytes(data))


def test_fsck_repair_mends_a_corrupt_chunk_from_the_cached_object(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    enable_dedup(sh, repo)
    files = versions(tmp_path, 3)
    done = commit_versions(sh, repo, files)
    packs = sorted((chunk_root(repo) / "packs").glob("*.pack"), key=lambda p: p.stat().st_size)
    _flip_middle_byte(packs[-1])  # the first version's: later ones are deltas on it
    found = sh.gm("fsck", "--json", cwd=repo, check=False)
    assert found.returncode == 1
    assert "corrupt-chunk" in {p["kind"] for p in found.json()["problems"]}
    fixed = sh.gm("fsck", "--repair", "--json", cwd=repo, check=False)
    assert fixed.returncode == 0, fixed.stdout
    assert all(p["repaired"] for p in fixed.json()["problems"])
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=repo)  # from now on, chunks only
    objects = repo / ".dvc" / "cache" / "files" / "md5"
    assert not [p for p in objects.rglob("*") if p.is_file()]
    check_every_version(sh, repo, done)


def test_fsck_repair_rechunks_a_recipe_whose_chunks_are_gone(
    tmp_path: Path, sh: Shell, repo: Path
) -> None:
    enable_dedup(sh, repo)
    done = commit_versions(sh, repo, versions(tmp_path, 2))
    for p in (chunk_root(repo) / "packs").glob("*.*"):
        p.unlink()  # every chunk lost; the whole-file objects are still cached
    found = sh.gm("fsck", "--json", cwd=repo, check=False).json()
    assert {p["kind"] for p in found["problems"]} == {"missing-chunk"}
    assert sh.gm("fsck", "--repair", cwd=repo, check=False).returncode == 0
    sh.gm("gc", "--grace", "0", "--chunks-only", cwd=repo)
    check_every_version(sh, repo, done)


def test_killed_add_leaves_nothing_that_lies(tmp_path: Path, sh: Shell, repo: Path) -> None:
    """An add that stores the object and its chunks in one read, killed at random moments
    (retried until kills landed): no object under a name its bytes do not have, no recipe
    whose chunks are missing, no pointer written; the next add stores it byte-exact."""
    import random

    from integrity import kill_when, spawn

    enable_dedup(sh, repo)
    files = versions(tmp_path, 2, tensors=16, elements=400_000)
    commit_versions(sh, repo, files[:1])
    gm = str(Path(sh.env["PATH"].split(":")[0]) / "git-model")
    target = repo / "model.safetensors"
    cache = repo / ".dvc" / "cache" / "files"
    want = md5(files[1])
    rnd = random.Random(11)
    kills = trials = 0
    while kills < 3 and trials < 30:
        trials += 1
        sh.git("checkout", "-q", "HEAD", "--", "model.safetensors.dvc", cwd=repo)
        sh.gm("gc", "--grace", "0", "--chunks-only", cwd=repo)
        target.chmod(0o644)
        target.write_bytes(files[1].read_bytes())

        def writing() -> bool:
            return (cache / "tmp").is_dir() and any((cache / "tmp").iterdir())

        delay = 0.0 if trials % 3 == 1 else rnd.uniform(0.0, 0.3)
        kills += kill_when(spawn([gm, "add", "model.safetensors"], repo, sh.env), writing, delay)
        for obj in (cache / "md5").rglob("*"):
            if obj.is_file():
                assert md5(obj) == obj.parent.name + obj.name, f"trial {trials}: {obj}"
        assert sh.gm("fsck", cwd=repo, check=False).returncode == 0, f"trial {trials}"
    assert kills >= 1, "no kill landed in 30 trials"
    sh.gm("add", "model.safetensors", cwd=repo)
    drop_whole_object(repo, want)
    target.chmod(0o644)
    target.unlink()
    sh.gm("checkout", cwd=repo)
    assert md5(target) == want


def test_killed_rebuild_leaves_nothing_that_lies(tmp_path: Path, sh: Shell, repo: Path) -> None:
    """A checkout rebuilding from chunks, killed at random moments (retried until kills
    landed, however fast the machine): no object under a name its bytes do not have, no
    half-written weights in the work tree; the next checkout is byte-exact."""
    import random

    from integrity import kill_when, spawn

    enable_dedup(sh, repo)
    done = commit_versions(sh, repo, versions(tmp_path, 2, tensors=16, elements=400_000))
    want = done[-1][1]
    gm = str(Path(sh.env["PATH"].split(":")[0]) / "git-model")
    target = repo / "model.safetensors"
    cache = repo / ".dvc" / "cache" / "files"
    rnd = random.Random(7)
    kills = trials = 0
    while kills < 3 and trials < 30:
        trials += 1
        sh.gm("gc", "--grace", "0", "--chunks-only", cwd=repo)
        if target.exists():
            target.chmod(0o644)
            target.unlink()

        proc = spawn([gm, "checkout"], repo, sh.env)

        def writing(pid: int = proc.pid) -> bool:
            # the rebuild's unnamed files (O_TMPFILE: /proc names them "(deleted)"), or
            # its temporary files where the filesystem has no unnamed ones
            tmp = str(cache / "tmp")
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                held = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds]
            except OSError:
                held = []
            if any(h.startswith(tmp) and h.endswith("(deleted)") for h in held):
                return True
            return (cache / "tmp").is_dir() and any((cache / "tmp").iterdir())

        # from the first file written on: a kill lands inside the rebuild
        delay = 0.0 if trials % 3 == 1 else rnd.uniform(0.0, 0.4)
        kills += kill_when(proc, writing, delay)
        for obj in (cache / "md5").rglob("*"):
            if obj.is_file():
                assert md5(obj) == obj.parent.name + obj.name, f"trial {trials}: {obj}"
        assert not target.exists() or md5(target) == want, f"trial {trials}"
    assert kills >= 1, "no kill landed in 30 trials"
    sh.gm("checkout", "--force", cwd=repo)
    assert md5(target) == want
    # a killed copy's temporary file (never under the output's name) is gone too
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith("model.")) == [
        "model.safetensors",
        "model.safetensors.dvc",
    ]
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 0
