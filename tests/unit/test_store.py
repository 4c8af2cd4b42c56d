"""gitmodel.store: objects in DVC 3's layout, links, verification, hashing, the stat cache.

Tested through the names the package exports (gitmodel.store.Store and friends), not its
inner modules, so that the package may be rearranged freely.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gitmodel.errors import GitModelError
from gitmodel.store import (
    CorruptObject,
    DirEntry,
    ObjectMissing,
    StatCache,
    Store,
    StoreError,
    dir_manifest_bytes,
    hash_file,
    is_oid,
)


def _store(root: Path, link_types: tuple[str, ...] = ("copy",)) -> Store:
    return Store(root / ".dvc" / "cache", root / ".dvc" / "tmp" / "state.db", link_types, jobs=2)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return _store(tmp_path)


def test_an_object_lives_where_dvc_puts_it(store: Store, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(300_000)
    md5, size = store.store_file(_write(tmp_path / "model.pt", data))
    assert md5 == hashlib.md5(data).hexdigest() and size == len(data)
    obj = tmp_path / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    assert store.oid_to_path(md5) == obj
    assert obj.read_bytes() == data
    assert stat.S_IMODE(obj.stat().st_mode) & 0o222 == 0  # read-only, as DVC protects it
    assert (tmp_path / "model.pt").read_bytes() == data  # the file is never moved
    assert store.exists(md5) and list(store.iter_oids()) == [md5]


@pytest.mark.parametrize("size", [0, 1, 4095, 1 << 20, (1 << 20) + 7])
def test_hashing_is_md5_at_every_size(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = _write(tmp_path / "f", data)
    assert hash_file(path) == hashlib.md5(data).hexdigest()
    md5, stored = _store(tmp_path).store_file(path)
    assert (md5, stored) == (hashlib.md5(data).hexdigest(), size)


def test_storing_again_is_a_no_op(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "a.bin", b"weights" * 1000)
    md5, _ = store.store_file(path)
    obj = store.oid_to_path(md5)
    before = os.stat(obj)
    same = _write(tmp_path / "b.bin", b"weights" * 1000)
    assert store.store_file(same)[0] == md5
    after = os.stat(obj)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert store.store_bytes(b"weights" * 1000) == md5


def test_nothing_half_written_is_left(store: Store, tmp_path: Path) -> None:
    for i in range(5):
        store.store_file(_write(tmp_path / f"f{i}", os.urandom(50_000)))
    names = [p.name for p in (tmp_path / ".dvc" / "cache").rglob("*") if p.is_file()]
    assert len(names) == 5 and not any(n.endswith(".tmp") for n in names)


@pytest.mark.parametrize(
    ("text", "dirs", "ok"),
    [
        ("6137cde4893c59f76f005a8123d8e8e6", True, True),
        ("6137cde4893c59f76f005a8123d8e8e6.dir", True, True),
        ("6137cde4893c59f76f005a8123d8e8e6.dir", False, False),
        ("6137CDE4893C59F76F005A8123D8E8E6", True, False),
        ("6137cde4893c59f76f005a8123d8e8e", True, False),
        ("../../../../etc/passwd0000000000", True, False),
        ("", True, False),
    ],
)
def test_is_oid(text: str, dirs: bool, ok: bool) -> None:
    assert is_oid(text, dirs=dirs) is ok


def test_a_bad_object_id_never_becomes_a_path(store: Store) -> None:
    for bad in ("../../etc/passwd", "zz" * 16, "a" * 31):
        with pytest.raises(GitModelError, match="not an md5 object id"):
            store.oid_to_path(bad)
        with pytest.raises(GitModelError):
            store.exists(bad)


def test_verify_finds_a_changed_object(store: Store, tmp_path: Path) -> None:
    md5, _ = store.store_file(_write(tmp_path / "m", b"good bytes"))
    store.verify(md5)
    obj = store.oid_to_path(md5)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil bytes")  # same size; a new mtime
    with pytest.raises(CorruptObject) as caught:
        store.verify(md5)
    assert caught.value.oid == md5
    assert caught.value.actual == hashlib.md5(b"evil bytes").hexdigest()
    assert caught.value.exit_code == 1
    # a fresh Store (another process) does not trust it either
    with pytest.raises(CorruptObject):
        _store(tmp_path).verify(md5)


def test_verify_force_rehashes_even_a_trusted_object(store: Store, tmp_path: Path) -> None:
    md5, _ = store.store_file(_write(tmp_path / "m", b"good bytes"))
    obj = store.oid_to_path(md5)
    st = os.stat(obj)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil bytes")
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))  # a change that hides from stat
    store.verify(md5)  # trusted by its stat line
    with pytest.raises(CorruptObject):
        store.verify(md5, force=True)


@pytest.mark.parametrize("kind", ["copy", "hardlink", "symlink"])
def test_materialise_with_each_link_type(tmp_path: Path, kind: str) -> None:
    store = _store(tmp_path, (kind,))
    md5, _ = store.store_file(_write(tmp_path / "src", b"payload" * 100))
    dest = tmp_path / "work" / "out.bin"
    assert store.materialise(md5, dest) == kind
    assert dest.read_bytes() == b"payload" * 100
    obj = store.oid_to_path(md5)
    if kind == "symlink":
        assert dest.is_symlink() and os.readlink(dest) == str(obj)
    elif kind == "hardlink":
        assert os.stat(dest).st_ino == os.stat(obj).st_ino
    else:
        assert os.stat(dest).st_ino != os.stat(obj).st_ino
        assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644  # the copy is the user's to edit


def test_reflink_falls_back_to_copy_where_unsupported(tmp_path: Path) -> None:
    store = _store(tmp_path, ("reflink", "copy"))
    md5, _ = store.store_file(_write(tmp_path / "src", b"x" * 10_000))
    kind = store.materialise(md5, tmp_path / "out")
    assert kind in ("reflink", "copy")
    assert (tmp_path / "out").read_bytes() == b"x" * 10_000


def test_materialise_refuses_a_missing_or_corrupt_object(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ObjectMissing, match="not in the cache: " + "a" * 32):
        store.materialise("a" * 32, tmp_path / "out")
    md5, _ = store.store_file(_write(tmp_path / "src", b"good"))
    obj = store.oid_to_path(md5)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"evil")
    dest = _write(tmp_path / "out", b"the user's file")
    with pytest.raises(CorruptObject):
        store.materialise(md5, dest)
    assert dest.read_bytes() == b"the user's file"  # nothing replaced with bad bytes


def test_materialise_never_replaces_a_directory(store: Store, tmp_path: Path) -> None:
    md5, _ = store.store_file(_write(tmp_path / "src", b"w"))
    (tmp_path / "out" / "inner").mkdir(parents=True)
    with pytest.raises(StoreError, match="a directory is in the way"):
        store.materialise(md5, tmp_path / "out")
    assert (tmp_path / "out" / "inner").is_dir()


def test_unknown_link_types_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GitModelError, match="unknown link type junction"):
        _store(tmp_path, ("copy", "junction"))
    with pytest.raises(GitModelError, match="unknown link type"):
        _store(tmp_path, ())


def test_a_directory_round_trips_through_its_manifest(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = {"d.txt": b"1", "d/z": b"2", "d-x/y": b"3", "deep/a/b/c.bin": os.urandom(9000)}
    for rel, data in files.items():
        _write(root / rel, data)
    oid, size, nfiles = store.store_dir(root)
    assert oid.endswith(".dir") and nfiles == 4 and size == sum(map(len, files.values()))
    entries = store.read_dir(oid)
    assert [e.relpath for e in entries] == ["d-x/y", "d.txt", "d/z", "deep/a/b/c.bin"]
    assert {e.relpath: e.md5 for e in entries} == {
        rel: hashlib.md5(data).hexdigest() for rel, data in files.items()
    }
    assert store.tree_oid(root) == oid
    (root / "d.txt").write_bytes(b"changed")
    assert store.tree_oid(root) != oid


def test_the_manifest_is_byte_for_byte_dvc_s(tmp_path: Path) -> None:
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    entries = [
        DirEntry("d/z", "a" * 32, 1),
        DirEntry("d.txt", "b" * 32, 1),
        DirEntry("d-x/y", "c" * 32, 1),
        DirEntry("mod\u00e8le/\u00fcber.pt", "d" * 32, 1),
    ]
    tree = Tree()
    for e in entries:
        tree.add(tuple(e.relpath.split("/")), Meta(), HashInfo("md5", e.md5))
    tree.digest()
    assert dir_manifest_bytes(entries) == tree.as_bytes()


def _manifest(store: Store, items: object) -> str:
    return store.store_bytes(json.dumps(items).encode(), suffix=".dir")


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ({"relpath": "x"}, "is not a list"),
        (["x"], "malformed entry"),
        ([{"md5": "a" * 32}], "malformed entry"),
        ([{"md5": "a" * 32, "relpath": "../escape"}], ""),
        ([{"md5": "a" * 32, "relpath": "/etc/passwd"}], ""),
        ([{"md5": "a" * 32, "relpath": ".git/hooks/post-checkout"}], ""),
        ([{"md5": "a" * 32, "relpath": "a/./b"}], ""),
        ([{"md5": "nothex", "relpath": "x"}], "bad md5 for x"),
        ([{"md5": "a" * 32 + ".dir", "relpath": "x"}], "bad md5 for x"),
        ([{"md5": "a" * 32, "relpath": "x"}, {"md5": "b" * 32, "relpath": "x"}], ""),
        ([{"md5": "a" * 32, "relpath": "x"}, {"md5": "b" * 32, "relpath": "x/y"}], ""),
    ],
)
def test_a_hostile_manifest_is_refused(store: Store, items: object, fragment: str) -> None:
    oid = _manifest(store, items)
    with pytest.raises(GitModelError) as caught:
        store.read_dir(oid)
    assert oid in caught.value.message and fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_a_manifest_is_verified_before_it_is_trusted(store: Store) -> None:
    oid = _manifest(store, [{"md5": "a" * 32, "relpath": "x"}])
    obj = store.oid_to_path(oid)
    os.chmod(obj, 0o644)
    obj.write_text(json.dumps([{"md5": "a" * 32, "relpath": "../../.bashrc"}]))
    with pytest.raises(CorruptObject):
        _store(obj.parents[5]).read_dir(oid)
    with pytest.raises(ObjectMissing):
        store.read_dir("e" * 32 + ".dir")


def test_a_link_inside_the_cache_is_not_followed(tmp_path: Path) -> None:
    # A clone may commit .dvc/cache/files/md5 -> ~ : objects would be written there.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".dvc" / "cache" / "files").mkdir(parents=True)
    (tmp_path / ".dvc" / "cache" / "files" / "md5").symlink_to(elsewhere)
    store = _store(tmp_path)
    with pytest.raises(StoreError, match="symbolic link; gitmodel does not follow it"):
        store.store_file(_write(tmp_path / "m", b"w"))
    with pytest.raises(StoreError, match="symbolic link"):
        list(store.iter_oids())
    assert list(elsewhere.iterdir()) == []


def _age(path: Path, seconds: float = 10.0) -> None:
    """Set path's mtime into the past: an old file's stat can vouch for it (a new one's
    cannot: see test_a_racily_clean_file_is_hashed_again)."""
    old = time.time_ns() - int(seconds * 1e9) + 123_456  # not a whole second
    os.utime(path, ns=(old, old))


def test_the_stat_cache_answers_for_an_unchanged_file(store: Store, tmp_path: Path) -> None:
    path = _write(tmp_path / "m.bin", b"abc" * 1000)
    _age(path)
    md5, _ = store.store_file(path)
    assert store.state.lookup(os.stat(path)) == md5
    store.state.flush()
    again = StatCache(tmp_path / ".dvc" / "tmp" / "state.db")  # another process
    assert again.lookup(os.stat(path)) == md5
    path.write_bytes(b"abd" * 1000)  # same size, new content and mtime
    assert again.lookup(os.stat(path)) is None
    assert store.file_md5(path) == hashlib.md5(b"abd" * 1000).hexdigest()


def test_a_stale_stat_line_is_not_trusted(store: Store, tmp_path: Path) -> None:
    # Edited in place with the mtime put back: the size differs, so the md5 is recomputed.
    path = _write(tmp_path / "m.bin", b"short")
    st = os.stat(path)
    store.file_md5(path)
    path.write_bytes(b"much longer now")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert store.file_md5(path) == hashlib.md5(b"much longer now").hexdigest()


def test_a_broken_stat_cache_only_makes_it_cold(tmp_path: Path) -> None:
    state = _write(tmp_path / ".dvc" / "tmp" / "state.db", b"this is not sqlite" * 100)
    store = _store(tmp_path)
    path = _write(tmp_path / "m", b"w" * 100)
    assert store.store_file(path)[0] == hashlib.md5(b"w" * 100).hexdigest()
    store.state.flush()
    assert state.exists()


# Racily clean files (gitmodel.tree.RACY_NS): a file changed again within the same
# filesystem timestamp tick as the stat the cache recorded keeps that stat, so a stat taken
# less than a tick after the file's mtime must not vouch for its content. The clock is held
# still so that no test depends on how fast the machine runs.
NOW = 1_800_000_000_500_000_000  # half a second past a whole second


@pytest.fixture
def still_clock(monkeypatch: pytest.MonkeyPatch) -> int:
    import gitmodel.tree

    monkeypatch.setattr(gitmodel.tree, "time", SimpleNamespace(time_ns=lambda: NOW))
    return NOW


def _rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """New content of the same size with the old mtime: what a change within the same
    timestamp tick looks like to stat."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:  # in place: the same inode
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize(
    "mtime",
    [
        NOW - 50_000_000,  # 50 ms before the listing, on a nanosecond filesystem
        NOW - 500_000_000,  # the same whole second, as FAT or HFS+ would stamp it
        NOW + 5_000_000_000,  # in the future: a clock that jumped back, or skew
    ],
    ids=["same-tick", "same-second", "future"],
)
def test_a_racily_clean_file_is_hashed_again(
    store: Store, tmp_path: Path, still_clock: int, mtime: int
) -> None:
    root = tmp_path / "data"
    for i in range(20):
        _write(root / f"f{i:02d}.bin", bytes([i]) * 100)
    old = still_clock - 60_000_000_000
    for i in range(20):
        os.utime(root / f"f{i:02d}.bin", ns=(old, old))
    racy = root / "f07.bin"
    os.utime(racy, ns=(mtime, mtime))
    single = _write(tmp_path / "single.bin", b"s" * 100)
    os.utime(single, ns=(mtime, mtime))
    oid, _, _ = store.store_dir(root)
    md5 = store.file_md5(single)
    store.state.flush()
    assert store.tree_oid(root) == oid  # unchanged: the same answer
    _rewrite_keeping_stat(racy, b"X" * 100)
    _rewrite_keeping_stat(single, b"t" * 100)
    again = _store(tmp_path)  # the next command
    changed = again.tree_oid(root)
    assert changed != oid
    files = {f"f{i:02d}.bin": bytes([i]) * 100 for i in range(20)} | {"f07.bin": b"X" * 100}
    assert changed == hashlib.md5(dir_manifest_bytes(_entries(files))).hexdigest() + ".dir"
    assert again.file_md5(single) == hashlib.md5(b"t" * 100).hexdigest() != md5
    # An old file's stat does vouch for it: the same hidden change is not seen there
    # (what every stat cache, git's index included, trades for not reading every file).
    quiet = root / "f03.bin"
    _rewrite_keeping_stat(quiet, b"Y" * 100)
    assert again.tree_oid(root) == changed


def _entries(files: dict[str, bytes]) -> list[DirEntry]:
    return [
        DirEntry(rel, hashlib.md5(data).hexdigest(), len(data))
        for rel, data in sorted(files.items())
    ]


def _truth(tmp_path: Path, root: Path) -> str:
    """The directory's `.dir` id as a store with an empty stat cache computes it."""
    fresh = Store(tmp_path / ".dvc" / "cache", tmp_path / f"fresh{time.time_ns()}.db", jobs=2)
    return fresh.tree_oid(root)


def _aged_tree(root: Path, n: int = 64) -> dict[str, bytes]:
    files = {f"d{i % 4}/f{i:03d}.bin": bytes([i]) * 300 for i in range(n)}
    for rel, data in files.items():
        _age(_write(root / rel, data))
    return files


def test_status_s_answer_is_the_manifest_s_after_every_kind_of_change(
    store: Store, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    files = _aged_tree(root)
    oid, _, _ = store.store_dir(root)
    f5, f9 = root / "d1/f005.bin", root / "d1/f009.bin"

    def check(expected: bool) -> None:
        for _ in range(2):  # and once more, from whatever the first answer left behind
            assert store.tree_matches(root, oid) is expected
            assert (_truth(tmp_path, root) == oid) is expected

    check(True)
    f5.write_bytes(b"X" * 300)  # new content, same size
    check(False)
    f5.write_bytes(files["d1/f005.bin"])  # back, with a new mtime: a touch
    check(True)
    os.utime(f9)
    check(True)
    f9.write_bytes(b"longer" * 100)
    f5.write_bytes(b"Y" * 300)
    check(False)
    f9.write_bytes(files["d1/f009.bin"])
    f5.write_bytes(files["d1/f005.bin"])
    check(True)
    _write(root / "d2/new.bin", b"n")
    check(False)
    (root / "d2/new.bin").unlink()
    check(True)
    f5.rename(root / "d1/f005.moved")
    check(False)
    (root / "d1/f005.moved").rename(f5)
    check(True)
    for i in range(0, 64, 2):  # many changed files: hashed once, then kept in the index
        (root / f"d{i % 4}/f{i:03d}.bin").write_bytes(b"Z" * 300)
    check(False)
    other = store.tree_oid(root)
    assert store.tree_matches(root, other) and not store.tree_matches(root, oid)


def test_one_changed_file_among_many_is_judged_without_the_manifest(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitmodel.tree

    root = tmp_path / "data"
    files = _aged_tree(root)
    oid, _, _ = store.store_dir(root)
    (root / "d3/f007.bin").write_bytes(b"Q" * 300)  # one file of 64 changed
    _write(root / "d0/f008.bin", files["d0/f008.bin"])  # and one rewritten as it was

    def no_manifest(*args: object, **kwargs: object) -> None:
        raise AssertionError("a manifest was formatted")

    monkeypatch.setattr(gitmodel.tree, "manifest_chunks", no_manifest)
    assert not store.tree_matches(root, oid)
    (root / "d3/f007.bin").write_bytes(files["d3/f007.bin"])
    assert store.tree_matches(root, oid)
    assert store.tree_matches(root, oid)


def test_a_damaged_directory_index_vouches_for_nothing(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = _aged_tree(root)
    store.store_dir(root)
    (index,) = [
        p for p in (tmp_path / ".dvc" / "tmp" / "dirindex").iterdir() if "complete" not in p.name
    ]
    data = bytearray(index.read_bytes())
    data[-20] ^= 0xFF  # one bit of rot in the last file's recorded md5
    index.write_bytes(bytes(data))
    (root / "d0/f000.bin").write_bytes(b"new")  # so that the others' md5s are used
    files["d0/f000.bin"] = b"new"
    expected = hashlib.md5(dir_manifest_bytes(_entries(files))).hexdigest() + ".dir"
    assert _store(tmp_path).tree_oid(root) == expected
    index.write_bytes(bytes(data[: len(data) // 2]))  # torn
    assert _store(tmp_path).tree_oid(root) == expected


def test_the_directory_index_is_never_written_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".dvc" / "tmp").mkdir(parents=True)
    (tmp_path / ".dvc" / "tmp" / "dirindex").symlink_to(elsewhere)
    root = tmp_path / "data"
    _aged_tree(root, 4)
    store = _store(tmp_path)
    oid, _, _ = store.store_dir(root)
    assert list(elsewhere.iterdir()) == []
    assert store.tree_oid(root) == oid


def test_a_re_add_rewrites_the_changed_entries_of_the_manifest_it_had(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitmodel.tree

    root = tmp_path / "data"
    files = _aged_tree(root)
    tricky = ['q"uote.bin', "back\\slash.bin", "ü.bin", 'x", "relpath": "y.bin', "y.bin"]
    for name in tricky:
        files[f"d1/{name}"] = name.encode()
        _age(_write(root / "d1" / name, name.encode()))
    first, _, _ = store.store_dir(root)
    formatting = gitmodel.tree.manifest_chunks
    for changed in (["d1/y.bin", 'd1/q"uote.bin'], ["d1/ü.bin"], ["d0/f000.bin", "d3/f063.bin"]):
        for rel in changed:
            files[rel] = os.urandom(40)
            (root / rel).write_bytes(files[rel])
        expected = dir_manifest_bytes(_entries(files))

        def no_manifest(*args: object, **kwargs: object) -> None:
            raise AssertionError("the manifest was formatted again")

        monkeypatch.setattr(gitmodel.tree, "manifest_chunks", no_manifest)
        oid, _, _ = store.store_dir(root)
        monkeypatch.setattr(gitmodel.tree, "manifest_chunks", formatting)
        assert oid == hashlib.md5(expected).hexdigest() + ".dir" != first
        assert store.oid_to_path(oid).read_bytes() == expected
        assert _truth(tmp_path, root) == oid


def test_a_directory_s_status_needs_no_database(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _aged_tree(root)
    oid, _, _ = _store(tmp_path).store_dir(root)
    again = _store(tmp_path)  # the next command
    assert again.has_tree(oid) and again.tree_matches(root, oid)
    (root / "d2/f002.bin").write_bytes(b"changed")
    assert again.has_tree(oid) and not again.tree_matches(root, oid)
    again.state.flush()
    assert again.state._db is None  # SQLite was never opened


def test_only_the_newest_complete_marks_are_kept(store: Store, tmp_path: Path) -> None:
    from gitmodel.store.statcache import KEEP_COMPLETE

    oids = [hashlib.md5(bytes([i])).hexdigest() + ".dir" for i in range(KEEP_COMPLETE + 6)]
    for i, oid in enumerate(oids):
        store.state.put_complete(oid, i, b"listing %d" % i)
    marks = [p for p in (tmp_path / ".dvc" / "tmp" / "dirindex").iterdir()]
    assert len(marks) == KEEP_COMPLETE
    assert store.state.complete(oids[-1]) == (len(oids) - 1, b"listing %d" % (len(oids) - 1))
    assert _store(tmp_path).state.complete(oids[-1]) is not None


def _objects(cache: Path) -> dict[str, os.stat_result]:
    md5s = cache / "files" / "md5"
    return {d.name + f.name: f.stat() for d in md5s.iterdir() for f in d.iterdir()}


def _fork_from_four_files(
    monkeypatch: pytest.MonkeyPatch, threshold: str, batch_from: str, child: str
) -> list[int]:
    """Make store/dirs.py fork a child from 4 files on (its threshold named), and the list
    that counts the forks; child "dies" sees its parent gone, "sends garbage" has its
    result (read by batch_from) refused."""
    from gitmodel import forking
    from gitmodel.store import dirs

    monkeypatch.setattr(dirs, threshold, 4)
    monkeypatch.setattr(forking, "may_fork", lambda: True)
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    if child == "dies":
        monkeypatch.setattr(os, "getppid", lambda: -1)  # as if its parent were gone
    elif child == "sends garbage":
        monkeypatch.setattr(dirs, batch_from, lambda data, n: None)
    return forks


@pytest.mark.parametrize("child", ["stores its half", "dies", "sends garbage"])
def test_a_directory_stored_by_two_processes_is_stored_as_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child: str
) -> None:
    from gitmodel import forking
    from gitmodel.store import dirs

    rnd = random.Random(17)
    root = tmp_path / "data"
    blobs = [rnd.randbytes(rnd.randrange(0, 20_000)) for _ in range(40)]
    for i in range(300):  # the same contents in both halves: each object written once
        _write(root / f"d{i % 7}" / f"f{i:03d}.bin", blobs[i % len(blobs)] + bytes([i % 3]))
    _write(root / "d3" / "big.bin", rnd.randbytes(dirs.SMALL + 5))  # not a small file
    with monkeypatch.context() as m:
        m.setattr(forking, "may_fork", lambda: False)
        alone = _store(tmp_path / "alone")
        want = alone.store_dir(root)

    forks = _fork_from_four_files(monkeypatch, "FORK_SMALL_FILES", "_batch_from", child)
    two = _store(tmp_path / "two")
    assert two.store_dir(root) == want
    assert forks, "no child stored a half"
    cache = tmp_path / "two" / ".dvc" / "cache"
    objects = _objects(cache)
    assert objects.keys() == _objects(tmp_path / "alone" / ".dvc" / "cache").keys()
    for oid in objects:  # every object whole, under its own name
        assert hashlib.md5(
            (cache / "files" / "md5" / oid[:2] / oid[2:]).read_bytes()
        ).hexdigest() == oid.removesuffix(".dir")
    assert not os.listdir(cache / "files" / "tmp")
    # Each object written by either process is recorded as verified at its stat, so a
    # checkout need not hash it again (after a failed child, those it wrote are not).
    members = [oid for oid in objects if not oid.endswith(".dir")]
    marks = _store(tmp_path / "two").state.verified_rows(members)
    for oid in members:
        st = objects[oid]
        if child == "stores its half" or oid in marks:
            assert marks.get(oid) == (st.st_ino, st.st_mtime_ns, st.st_size), oid


@pytest.mark.parametrize("child", ["writes its half", "dies", "sends garbage"])
def test_files_checked_out_by_two_processes_are_as_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child: str
) -> None:
    from gitmodel import forking
    from gitmodel.store import dirs

    rnd = random.Random(23)
    root = tmp_path / "data"
    for i in range(300):  # each content once: the child's marks are the only ones of its half
        _write(root / f"d{i % 7}" / f"f{i:03d}.bin", rnd.randbytes(rnd.randrange(0, 20_000)))
    _write(root / "d3" / "big.bin", rnd.randbytes(dirs.SMALL + 5))  # not a small file
    want = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with monkeypatch.context() as m:
        m.setattr(forking, "may_fork", lambda: False)
        _store(tmp_path).store_dir(root)
    # One object of the child's half (the second) is corrupt: its file is refused, and
    # the others are written.
    rels = sorted(want)
    bad_rel = rels[-5]
    bad = hashlib.md5(want[bad_rel]).hexdigest()
    obj = tmp_path / ".dvc" / "cache" / "files" / "md5" / bad[:2] / bad[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"rotten" + want[bad_rel][6:])
    forks = _fork_from_four_files(monkeypatch, "FORK_CHECKOUT_FILES", "_checkout_batch_from", child)
    # A new stat cache: no object is marked verified, so both processes hash them.
    store = Store(tmp_path / ".dvc" / "cache", tmp_path / "fresh.db", ("copy",), jobs=2)
    here = []  # the files this process wrote (a child's count stays in the child)
    small = Store._materialise_small
    monkeypatch.setattr(
        Store, "_materialise_small", lambda self, *a: here.append(1) or small(self, *a)
    )
    out = tmp_path / "out"
    for d in {r.rpartition("/")[0] for r in rels}:
        (out / d).mkdir(parents=True, exist_ok=True)
    items = [(hashlib.md5(want[r]).hexdigest(), f"{out}/{r}") for r in rels]
    results = store.materialise_files(items, made_in=str(out))
    assert forks, "no child checked out a half"
    if child == "writes its half":  # this process wrote its half, and the corrupt file
        assert len(here) == len(items) // 2 + 1
    for (oid, dest), r, rel in zip(items, results, rels, strict=True):
        if oid == bad:
            assert isinstance(r, CorruptObject), rel
            assert not os.path.lexists(dest)
            continue
        assert isinstance(r, tuple), (rel, r)
        assert Path(dest).read_bytes() == want[rel]
        st = os.lstat(dest)
        assert r == (st.st_ino, st.st_mtime_ns, st.st_size), rel
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        r for r in rels if hashlib.md5(want[r]).hexdigest() != bad
    )
    # Every object hashed, by either process, is marked verified at its stat; the
    # corrupt one is not.
    good = sorted({oid for oid, _ in items if oid != bad})
    marks = Store(tmp_path / ".dvc" / "cache", tmp_path / "fresh.db").state.verified_rows(
        [*good, bad]
    )
    assert bad not in marks
    for oid in good:
        st = (tmp_path / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]).stat()
        if st.st_size <= dirs.SMALL:  # (the general path marks a big object its own way)
            assert marks.get(oid) == (st.st_ino, st.st_mtime_ns, st.st_size), oid
