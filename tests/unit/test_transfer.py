"""gitmodel.transfer, gitmodel.dvc_remote and the chunk side of a remote: what is asked
of the remote, and how.

In process, on a real repository with a real local DVC remote (dvc's own filesystem): the
sizes of many objects come from listing their directories, a stat each for a few; a
remote's recipes are listed once for many objects; the object directories of a push are
made once. The remote kinds over the network (ssh, S3) are tests/test_remote.py's.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitmodel.repo import Repo

BIN = Path(sys.executable).parent


@pytest.fixture
def remote_repo(git_repo: Path, tmp_path: Path) -> tuple[Repo, Path]:
    storage = tmp_path / "storage"
    for args in (["init"], ["remote", "add", "store", str(storage), "--default"]):
        subprocess.run([str(BIN / "git-model"), *args], cwd=git_repo, check=True)
    return Repo(git_repo), storage


def _put(storage: Path, data: bytes) -> str:
    oid = hashlib.md5(data).hexdigest()
    path = storage / "files" / "md5" / oid[:2] / oid[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return oid


@pytest.mark.parametrize("count", [3, 400])  # a stat each; a listing per directory
def test_sizes_of_objects_on_the_remote(remote_repo: tuple[Repo, Path], count: int) -> None:
    from gitmodel.dvc_remote import LISTING_THRESHOLD, DvcRemote

    assert (count > LISTING_THRESHOLD) == (count == 400)
    repo, storage = remote_repo
    there = {_put(storage, os.urandom(1 + i)): 1 + i for i in range(count)}
    absent = hashlib.md5(b"never uploaded").hexdigest()
    truncated = _put(storage, b"whole object")
    (storage / "files" / "md5" / truncated[:2] / truncated[2:]).write_bytes(b"whole")
    remote = DvcRemote(repo)
    sizes = remote.sizes_of([*there, absent, truncated])
    assert sizes == {**there, absent: None, truncated: 5}
    expected = {**there, truncated: len(b"whole object"), absent: 1}
    assert remote.existing([*there, absent, truncated], expected) == set(there)


def test_object_directories_are_made_once(remote_repo: tuple[Repo, Path]) -> None:
    from gitmodel.dvc_remote import DvcRemote

    repo, storage = remote_repo
    remote = DvcRemote(repo)
    remote.direct = True  # what an ssh remote does, on a filesystem this test can see
    remote.local = False
    oids = [hashlib.md5(bytes([i])).hexdigest() for i in range(40)]
    (storage / "files" / "md5" / oids[0][:2]).mkdir(parents=True)  # one is already there
    remote.prepare_dirs(oids)
    made = {p.name for p in (storage / "files" / "md5").iterdir()}
    assert made == {o[:2] for o in oids}
    remote.prepare_dirs(oids)  # again: every directory exists, nothing fails
    local = Path(repo.root) / "one.bin"
    local.write_bytes(b"\x00")
    remote.upload_one(local, oids[0], _NoProgress())
    assert (storage / "files" / "md5" / oids[0][:2] / oids[0][2:]).read_bytes() == b"\x00"
    assert not [p for p in (storage / "files" / "md5").rglob("*.tmp")]


class _NoProgress:
    def relative_update(self, n: int) -> None:
        pass


def test_a_local_upload_is_whole_or_absent(
    remote_repo: tuple[Repo, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote directory on this machine gets each object by a copy to a temporary name
    and a rename: an object that arrived is whole, one whose copy failed is not there and
    leaves no temporary file."""
    import shutil

    from gitmodel.dvc_remote import DvcRemote

    repo, storage = remote_repo
    remote = DvcRemote(repo)
    assert remote.local
    data = [os.urandom(8192), os.urandom(300_000)]
    oids = [hashlib.md5(d).hexdigest() for d in data]
    sources = []
    for i, d in enumerate(data):
        sources.append(Path(repo.root) / f"w{i}.bin")
        sources[-1].write_bytes(d)
    remote.prepare_dirs(oids[:1])  # the second object's directory is made when needed
    for src, oid in zip(sources, oids, strict=True):
        remote.upload_one(src, oid, _NoProgress())
    for d, oid in zip(data, oids, strict=True):
        assert (storage / "files" / "md5" / oid[:2] / oid[2:]).read_bytes() == d

    def dies_half_way(src: str, dst: str) -> None:
        with open(src, "rb") as s, open(dst, "wb") as t:
            t.write(s.read(100))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", dies_half_way)
    third = Path(repo.root) / "w2.bin"
    third.write_bytes(b"never whole" * 100)
    oid = hashlib.md5(third.read_bytes()).hexdigest()
    remote.prepare_dirs([oid])
    with pytest.raises(OSError):
        remote.upload_one(third, oid, _NoProgress())
    assert not (storage / "files" / "md5" / oid[:2] / oid[2:]).exists()
    assert not [p for p in (storage / "files" / "md5").rglob("*.tmp")]


@pytest.mark.parametrize("count", [5, 200])  # asked one by one; one listing
def test_recipes_on_the_remote(remote_repo: tuple[Repo, Path], count: int) -> None:
    from gitmodel.dedup.chunkstore import open_chunk_store
    from gitmodel.dedup.transfer import RECIPE_QUERIES, RemoteChunks
    from gitmodel.dvc_remote import DvcRemote

    assert (count > RECIPE_QUERIES) == (count == 200)
    repo, storage = remote_repo
    remote = DvcRemote(repo)
    chunks = RemoteChunks(remote, open_chunk_store(repo.store))
    md5s = [hashlib.md5(str(i).encode()).hexdigest() for i in range(count)]
    assert chunks.recipes_present(md5s) == set()  # no recipe directory at all
    recipes = storage / "gitmodel" / "recipes"
    recipes.mkdir(parents=True)
    for m in md5s[::2]:
        (recipes / m).write_bytes(b"recipe")
    assert chunks.recipes_present(md5s) == set(md5s[::2])


_COPY_SCRIPT = r"""
import json, os, sys
from pathlib import Path
import gitmodel.dvc_remote as dr
from gitmodel.repo import Repo

root, oids, known, child = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
dr.FORK_OBJECTS = 1
dr.forking.may_fork = lambda: True  # also where the machine has one core
parent, forks, copy_runs = os.getpid(), [], dr._copy_runs
real_fork = os.fork

def fork():
    forks.append(1)
    return real_fork()

def runs(*args):
    if os.getpid() != parent and child == "dies":
        os._exit(3)  # a child that fails in any way: its half is done again by the parent
    return copy_runs(*args)

os.fork, dr._copy_runs = fork, runs
repo = Repo(root)
remote = dr.DvcRemote(repo)
done = remote.copy_local(repo.store.objects, oids, {o: tuple(k) for o, k in known.items()})
print(json.dumps([len(forks), done.bytes, sorted(done.unverified), sorted(done.failed)]))
"""


@pytest.mark.parametrize("child", ["none", "copies", "dies"])
def test_a_local_push_copies_what_was_verified_in_one_batch(
    remote_repo: tuple[Repo, Path], child: str
) -> None:
    """Objects go into a local remote one object directory at a time, half of them in a
    forked child when there are many: each arrives whole under its name, an object whose
    stat is not the one it was verified at is left to the caller (nothing written), one
    that cannot be read is a failure, and a child that fails has its half done again."""
    import json

    from gitmodel.dvc_remote import DvcRemote

    repo, storage = remote_repo
    data = [os.urandom(1 + 37 * i) for i in range(60)] + [b""]
    oids = sorted({hashlib.md5(d).hexdigest(): d for d in data})
    by_oid = {hashlib.md5(d).hexdigest(): d for d in data}
    known = {}
    for oid in oids:
        path = repo.store.objects / oid[:2] / oid[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(by_oid[oid])
        st = path.stat()
        known[oid] = (st.st_ino, st.st_mtime_ns, st.st_size)
    stale, gone = oids[7], oids[40]
    known[stale] = (known[stale][0], known[stale][1] + 1, known[stale][2])  # changed since
    (repo.store.objects / gone[:2] / gone[2:]).unlink()
    remote = DvcRemote(repo)
    remote.prepare_dirs(oids)
    if child == "none":  # fewer objects than FORK_OBJECTS: all in this process
        done = remote.copy_local(repo.store.objects, oids, known)
        forks, got, unverified, failed = 0, done.bytes, done.unverified, sorted(done.failed)
    else:
        out = subprocess.run(
            [sys.executable, "-c", _COPY_SCRIPT, str(repo.root), json.dumps(oids)]
            + [json.dumps(known), child],
            capture_output=True,
            text=True,
            check=True,
        )
        forks, got, unverified, failed = json.loads(out.stdout.splitlines()[-1])
    assert forks == (0 if child == "none" else 1)
    assert unverified == [stale] and failed == [gone]
    copied = [o for o in oids if o not in (stale, gone)]
    assert got == sum(len(by_oid[o]) for o in copied)
    on_remote = storage / "files" / "md5"
    for oid in copied:
        assert (on_remote / oid[:2] / oid[2:]).read_bytes() == by_oid[oid]
    assert not (on_remote / stale[:2] / stale[2:]).exists()
    assert not (on_remote / gone[:2] / gone[2:]).exists()
    assert not [p for p in on_remote.rglob("*.tmp")]
