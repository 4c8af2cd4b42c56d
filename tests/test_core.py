"""init, add, commit, metrics, log, diff, status, checkout through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from conftest import BIN, Shell, write_bytes


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def object_path(repo: Path, oid: str) -> Path:
    return repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]


def test_help_and_version(sh: Shell, tmp_path: Path) -> None:
    out = sh.run(["git-model", "--help"], cwd=tmp_path).stdout
    for verb in ("init", "add", "commit", "metrics", "log", "diff", "status", "checkout"):
        assert verb in out
        assert sh.gm(verb, "--help", cwd=tmp_path).returncode == 0
    assert sh.gm("--version", cwd=tmp_path).stdout.startswith("git-model ")


# An editable install (pip install -e) leaves the package's data files out, and a slim
# image has no `man`: there git cannot show the page, which is not gitmodel's failure.
MAN_PAGE = BIN.parent / "share" / "man" / "man1" / "git-model.1"


@pytest.mark.skipif(
    not MAN_PAGE.is_file() or shutil.which("man") is None,
    reason="the man page is not installed (editable install) or there is no `man`",
)
def test_help_opens_the_man_page(sh: Shell, tmp_path: Path) -> None:
    # `git model --help` makes git open the man page, installed with the package
    page = sh.gm("--help", cwd=tmp_path, env={"MANPAGER": "cat", "PAGER": "cat"})
    assert "git model commit" in page.stdout.replace("\u2010", "-")


def test_init_is_dvc_init_and_idempotent(sh: Shell, tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    sh.git("init", "-q", cwd=path)
    sh.gm("init", cwd=path)
    assert (path / ".dvc" / ".gitignore").read_text() == "/config.local\n/tmp\n/cache\n"
    assert (path / ".dvc" / "config").read_text() == ""
    assert (path / ".dvcignore").is_file()
    assert "metrics-files" in (path / ".gitmodel.toml").read_text()
    cfg = sh.git("config", "--get-all", "notes.displayRef", cwd=path).stdout.split()
    assert cfg == ["refs/notes/metrics"]
    assert sh.git("config", "notes.rewriteRef", cwd=path).stdout.strip() == "refs/notes/metrics"
    staged = sh.git("diff", "--cached", "--name-only", cwd=path).stdout.split()
    assert {".dvc/.gitignore", ".dvc/config", ".dvcignore", ".gitmodel.toml"} <= set(staged)
    (path / ".gitmodel.toml").write_text("metrics-files = ['m.json']\n")
    sh.gm("init", cwd=path)  # again: nothing overwritten, no duplicate config
    assert (path / ".gitmodel.toml").read_text() == "metrics-files = ['m.json']\n"
    assert sh.git("config", "--get-all", "notes.displayRef", cwd=path).stdout.split() == [
        "refs/notes/metrics"
    ]
    # real dvc agrees it is a DVC repository
    sh.dvc("status", cwd=path)


def test_init_keeps_existing_dvc_repo(sh: Shell, tmp_path: Path) -> None:
    path = tmp_path / "r"
    path.mkdir()
    sh.git("init", "-q", cwd=path)
    sh.dvc("init", "-q", cwd=path)
    sh.dvc("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=path)
    before = (path / ".dvc" / "config").read_text()
    sh.gm("init", cwd=path)
    assert (path / ".dvc" / "config").read_text() == before


def test_add_file_stores_object_pointer_and_gitignore(sh: Shell, repo: Path) -> None:
    model = write_bytes(repo / "models" / "model.pkl", 300_000, seed=1)
    digest = md5(model)
    out = sh.gm("add", "models/model.pkl", "--json", cwd=repo).json()
    assert out == [
        {
            "path": "models/model.pkl",
            "pointer": "models/model.pkl.dvc",
            "md5": digest,
            "size": 300_000,
        }
    ]
    obj = object_path(repo, digest)
    assert obj.read_bytes() == model.read_bytes()
    assert not obj.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert (repo / "models" / "model.pkl.dvc").read_text() == (
        f"outs:\n- md5: {digest}\n  size: 300000\n  hash: md5\n  path: model.pkl\n"
    )
    assert "/model.pkl" in (repo / "models" / ".gitignore").read_text().splitlines()
    staged = sh.git("diff", "--cached", "--name-only", cwd=repo).stdout.split()
    assert staged == ["models/.gitignore", "models/model.pkl.dvc"]
    # the workspace file is untouched (not moved, not replaced)
    assert model.stat().st_mode & stat.S_IWUSR
    assert md5(model) == digest
    # re-adding is a no-op and does not duplicate the ignore line
    sh.gm("add", "models/model.pkl", cwd=repo)
    assert (repo / "models" / ".gitignore").read_text().splitlines().count("/model.pkl") == 1
    assert not list((repo / ".dvc" / "cache" / "files" / "tmp").glob("*"))


def test_add_directory_writes_dvc3_dir_object(sh: Shell, repo: Path) -> None:
    shards = repo / "shards"
    write_bytes(shards / "a.bin", 1000, seed=1)
    write_bytes(shards / "sub" / "b.bin", 2000, seed=2)
    write_bytes(shards / "sub" / "c.bin", 10, seed=3)
    out = sh.gm("add", "shards", "--json", cwd=repo).json()[0]
    assert out["md5"].endswith(".dir") and out["nfiles"] == 3 and out["size"] == 3010
    manifest = json.loads(object_path(repo, out["md5"]).read_bytes())
    assert [e["relpath"] for e in manifest] == ["a.bin", "sub/b.bin", "sub/c.bin"]
    assert manifest[1]["md5"] == md5(shards / "sub" / "b.bin")
    assert (
        hashlib.md5(object_path(repo, out["md5"]).read_bytes()).hexdigest() + ".dir" == out["md5"]
    )
    text = (repo / "shards.dvc").read_text()
    assert "nfiles: 3" in text and "hash: md5" in text and "path: shards" in text


def test_store_paths_name_objects_by_their_exact_content(sh: Shell, repo: Path) -> None:
    """Every way a file reaches the cache: the kernel copy in windows with the hash a
    window behind (a file over two windows, the last one short), the same without the
    second thread (a directory with more files than cores), and read()+write() where the
    kernel will not copy between the two filesystems (the cache on tmpfs)."""
    from gitmodel.store import COPY_WINDOW

    big = write_bytes(repo / "big.bin", 2 * COPY_WINDOW + 12_345, seed=7)
    for i in range(5):
        write_bytes(repo / "shards" / f"s{i}.bin", COPY_WINDOW // 2 + i, seed=10 + i)
    sh.gm("add", "big.bin", "shards", cwd=repo)
    assert object_path(repo, md5(big)).read_bytes() == big.read_bytes()
    for i in range(5):
        shard = repo / "shards" / f"s{i}.bin"
        assert object_path(repo, md5(shard)).read_bytes() == shard.read_bytes()
    assert not list((repo / ".dvc" / "cache" / "files" / "tmp").glob("*"))

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(repo).st_dev:
        return  # no second filesystem to copy across on this machine
    cache = Path(tempfile.mkdtemp(dir=shm))
    try:
        (repo / ".dvc" / "config").write_text(f"[cache]\n    dir = {cache}\n")
        other = write_bytes(repo / "other.bin", COPY_WINDOW + 1, seed=8)
        sh.gm("add", "other.bin", cwd=repo)
        digest = md5(other)
        assert (cache / "files" / "md5" / digest[:2] / digest[2:]).read_bytes() == (
            other.read_bytes()
        )
    finally:
        shutil.rmtree(cache)


@pytest.mark.parametrize("kernel", ["stops-short", "refuses", "cannot-map"])
@pytest.mark.parametrize("overlap", [True, False])
def test_copy_paths_finish_in_user_space_when_the_kernel_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: str, overlap: bool
) -> None:
    """A copy_file_range that copies one window then reports EOF, or refuses outright
    (EXDEV), or a copy that cannot be mapped (ENODEV), never leaves a short object or a
    short checkout behind."""
    import errno
    import mmap

    from gitmodel.store import hashing as store

    real = os.copy_file_range
    calls = [0]

    def fake(src: int, dst: int, count: int, *args: object) -> int:
        calls[0] += 1
        if kernel == "refuses":
            raise OSError(errno.EXDEV, "cross-device")
        return real(src, dst, min(count, store.COPY_WINDOW)) if calls[0] == 1 else 0

    def no_map(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENODEV, "no mmap here")

    if kernel == "cannot-map":
        monkeypatch.setattr(mmap, "mmap", no_map)
    else:
        monkeypatch.setattr(store.os, "copy_file_range", fake)
    src = write_bytes(tmp_path / "src.bin", 2 * store.COPY_WINDOW + 99, seed=5)
    dst = tmp_path / "dst.bin"
    with open(src, "rb") as s, open(dst, "w+b") as d:
        digest = store._copy_and_hash(s.fileno(), d.fileno(), src.stat().st_size, None, overlap)
    assert digest == md5(src) and dst.read_bytes() == src.read_bytes()
    calls[0] = 0
    store._copy(src, tmp_path / "checkout.bin")
    assert (tmp_path / "checkout.bin").read_bytes() == src.read_bytes()


def test_parallel_map_keeps_order_and_raises_the_first_failure() -> None:
    from gitmodel.store import parallel_map

    assert parallel_map(lambda x: x * x, list(range(50)), 4) == [x * x for x in range(50)]
    assert parallel_map(lambda x: x, [], 4) == []

    def boom(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x

    try:
        parallel_map(boom, list(range(20)), 3)
    except ValueError as exc:
        assert str(exc) == "seven"
    else:
        raise AssertionError("no exception")


def test_commit_writes_note_shown_by_git_log(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "model.pkl", 50_000, seed=4)
    (repo / "metrics.json").write_text(json.dumps({"accuracy": 0.91, "loss": {"val": 0.25}}))
    res = sh.gm("commit", "model.pkl", "-m", "train v1", "--json", cwd=repo).json()
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    assert res["commit"] == head
    note = sh.gm("metrics", "--json", cwd=repo).json()
    assert note["metrics"] == {"accuracy": 0.91, "loss.val": 0.25}
    assert note["weights"]["model.pkl"]["md5"] == md5(repo / "model.pkl")
    assert note["schema"] == 1 and note["source"] == "git-model commit"
    # plain git log shows it; the metrics file itself is committed
    assert '"accuracy": 0.91' in sh.git("log", "-1", cwd=repo).stdout
    files = sh.git("show", "--name-only", "--format=", "HEAD", cwd=repo).stdout.split()
    assert {"model.pkl.dvc", ".gitignore", "metrics.json"} <= set(files)
    # the commit is a real git commit: the user's own hooks ran
    assert sh.git("status", "--porcelain", cwd=repo).stdout.strip() == ""


def test_commit_metrics_formats_and_cli_metrics(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "m.bin", 1000)
    (repo / "eval.yaml").write_text("accuracy: 0.8\nper_class:\n  cat: 0.7\n  dog: 0.9\n")
    sh.gm("commit", "m.bin", "-m", "yaml", "--metrics", "eval.yaml", "--metric", "f1=0.5", cwd=repo)
    assert sh.gm("metrics", "--json", cwd=repo).json()["metrics"] == {
        "accuracy": 0.8,
        "f1": 0.5,
        "per_class.cat": 0.7,
        "per_class.dog": 0.9,
    }
    write_bytes(repo / "m.bin", 1000, seed=9)
    (repo / "eval.toml").write_text("[scores]\nr2 = 0.5\nmse = 3\n")
    sh.gm("commit", "m.bin", "-m", "toml", "--metrics", "eval.toml", cwd=repo)
    assert sh.gm("metrics", "--json", cwd=repo).json()["metrics"] == {
        "scores.mse": 3,
        "scores.r2": 0.5,
    }


def test_amend_and_rebase_keep_the_note(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "m.bin", 1000)
    sh.gm("commit", "m.bin", "-m", "one", "--metric", "acc=0.5", cwd=repo)
    sh.git("commit", "--amend", "-q", "-m", "one (amended)", cwd=repo)
    assert sh.gm("metrics", "--json", cwd=repo).json()["metrics"] == {"acc": 0.5}


def _two_versions(sh: Shell, repo: Path) -> tuple[str, str]:
    write_bytes(repo / "model.pkl", 20_000, seed=1)
    sh.gm(
        "commit",
        "model.pkl",
        "-m",
        "v1",
        "--metric",
        "accuracy=0.9",
        "--metric",
        "loss=0.3",
        cwd=repo,
    )
    first = md5(repo / "model.pkl")
    write_bytes(repo / "model.pkl", 30_000, seed=2)
    sh.gm(
        "commit",
        "model.pkl",
        "-m",
        "v2",
        "--metric",
        "accuracy=0.95",
        "--metric",
        "loss=0.2",
        cwd=repo,
    )
    return first, md5(repo / "model.pkl")


def test_log_and_diff(sh: Shell, repo: Path) -> None:
    first, second = _two_versions(sh, repo)
    rows = sh.gm("log", "--json", cwd=repo).json()
    assert [r["metrics"]["accuracy"] for r in rows] == [0.95, 0.9]
    assert rows[0]["commit"] == sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    assert len(sh.gm("log", "-n", "1", "--json", cwd=repo).json()) == 1
    only = sh.gm("log", "--metric", "loss", "--json", cwd=repo).json()
    assert all(set(r["metrics"]) == {"loss"} for r in only)
    ranged = sh.gm("log", "HEAD~1..HEAD", "--json", cwd=repo).json()
    assert [r["subject"] for r in ranged] == ["v2"]
    table = sh.gm("log", cwd=repo).stdout
    assert "accuracy" in table and "0.95" in table
    diff = sh.gm("diff", "--json", cwd=repo).json()
    assert diff["metrics"]["accuracy"]["old"] == 0.9
    assert diff["metrics"]["accuracy"]["new"] == 0.95
    assert abs(diff["metrics"]["accuracy"]["delta"] - 0.05) < 1e-12
    assert diff["weights"]["model.pkl"]["status"] == "modified"
    assert diff["weights"]["model.pkl"]["old"]["md5"] == first
    assert diff["weights"]["model.pkl"]["new"]["md5"] == second
    explicit = sh.gm("diff", "HEAD~1", "HEAD", "--json", cwd=repo).json()
    assert explicit["metrics"] == diff["metrics"]


def test_status_and_checkout(sh: Shell, repo: Path) -> None:
    first, second = _two_versions(sh, repo)
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []
    (repo / "model.pkl").unlink()
    st = sh.gm("status", "--json", cwd=repo).json()
    assert st["missing"] == ["model.pkl"] and st["modified"] == []
    sh.gm("checkout", cwd=repo)
    assert md5(repo / "model.pkl") == second
    # an older revision's weights, byte for byte
    sh.gm("checkout", "HEAD~1", cwd=repo)
    assert md5(repo / "model.pkl") == first
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == ["model.pkl"]
    # git checkout of the old commit, then git model checkout, round trip
    sh.gm("checkout", cwd=repo)
    assert sh.gm("status", "--json", cwd=repo).json() == {
        "modified": [],
        "missing": [],
        "not_in_cache": [],
    }


def test_status_detects_in_place_modification(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "w.bin", 5000)
    sh.gm("add", "w.bin", cwd=repo)
    data = bytearray((repo / "w.bin").read_bytes())
    data[100] ^= 0xFF
    (repo / "w.bin").write_bytes(bytes(data))
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == ["w.bin"]


def test_checkout_refuses_to_overwrite_unstored_changes(sh: Shell, repo: Path) -> None:
    _two_versions(sh, repo)
    (repo / "model.pkl").write_bytes(b"precious unsaved work")
    res = sh.gm("checkout", "HEAD~1", cwd=repo, check=False)
    assert res.returncode == 1 and "not stored" in res.stderr  # refused, not bad input
    assert (repo / "model.pkl").read_bytes() == b"precious unsaved work"
    sh.gm("checkout", "HEAD~1", "--force", cwd=repo)
    assert (repo / "model.pkl").read_bytes() != b"precious unsaved work"


def test_checkout_directory_and_missing_objects(sh: Shell, repo: Path) -> None:
    write_bytes(repo / "d" / "x.bin", 100, seed=1)
    write_bytes(repo / "d" / "y" / "z.bin", 200, seed=2)
    sh.gm("commit", "d", "-m", "dir", "--metric", "a=1", cwd=repo)
    expected = {p: md5(repo / "d" / p) for p in ("x.bin", "y/z.bin")}
    import shutil

    shutil.rmtree(repo / "d")
    sh.gm("checkout", cwd=repo)
    assert {p: md5(repo / "d" / p) for p in expected} == expected
    # remove an object from the cache: checkout names it and writes nothing
    oid = expected["x.bin"]
    obj = object_path(repo, oid)
    os.chmod(obj, 0o644)
    obj.unlink()
    shutil.rmtree(repo / "d")
    res = sh.gm("checkout", cwd=repo, check=False)
    assert res.returncode == 2 and oid in res.stderr and "not in the cache" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (repo / "d").exists()


def test_directory_checkout_holds_exactly_its_version(sh: Shell, repo: Path) -> None:
    """Files a tracked directory's version lacks are removed when their content is stored
    (with the directories they leave empty), refused when it is not, removed with --force."""
    write_bytes(repo / "d" / "a.bin", 100, seed=1)
    sh.gm("commit", "d", "-m", "v1", cwd=repo)
    write_bytes(repo / "d" / "b.bin", 200, seed=2)
    write_bytes(repo / "d" / "sub" / "c.bin", 300, seed=3)
    sh.gm("commit", "d", "-m", "v2", cwd=repo)

    sh.git("checkout", "-q", "HEAD~1", "--", "d.dvc", cwd=repo)
    out = sh.gm("checkout", "--json", cwd=repo).json()
    assert sorted(out["removed"]) == ["d/b.bin", "d/sub/c.bin"]
    assert sorted(p.name for p in (repo / "d").iterdir()) == ["a.bin"]  # sub/ is gone too
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []

    # Back to v2: the removed files come back from the cache.
    sh.git("checkout", "-q", "HEAD", "--", "d.dvc", cwd=repo)
    sh.git("checkout", "-q", "HEAD~1", "--", "d.dvc", cwd=repo)
    sh.gm("checkout", cwd=repo)
    sh.git("checkout", "-q", "HEAD", "--", "d.dvc", cwd=repo)
    # One line for the directory; the file list only with --verbose.
    assert sh.gm("checkout", cwd=repo).stderr == "restored d/ (2 of 3 files written)\n"
    assert (repo / "d" / "sub" / "c.bin").is_file()
    sh.git("checkout", "-q", "HEAD~1", "--", "d.dvc", cwd=repo)
    sh.gm("checkout", cwd=repo)
    sh.git("checkout", "-q", "HEAD", "--", "d.dvc", cwd=repo)
    verbose = sh.gm("checkout", "--verbose", cwd=repo).stderr.splitlines()
    assert sorted(verbose) == ["restored d/b.bin", "restored d/sub/c.bin"]

    # An extra file whose content is stored nowhere is refused, and nothing is touched.
    write_bytes(repo / "d" / "notes.txt", 10, seed=9)
    sh.git("checkout", "-q", "HEAD~1", "--", "d.dvc", cwd=repo)
    refused = sh.gm("checkout", cwd=repo, check=False)
    assert refused.returncode == 1 and "d/notes.txt is not part of d" in refused.stderr
    assert (repo / "d" / "notes.txt").is_file() and (repo / "d" / "b.bin").is_file()
    forced = sh.gm("checkout", "--force", "--json", cwd=repo).json()
    assert sorted(forced["removed"]) == ["d/b.bin", "d/notes.txt", "d/sub/c.bin"]
    assert sorted(p.name for p in (repo / "d").iterdir()) == ["a.bin"]


def test_hardlink_checkout_when_configured(sh: Shell, repo: Path) -> None:
    (repo / ".dvc" / "config").write_text("[cache]\n    type = hardlink,copy\n")
    write_bytes(repo / "big.bin", 100_000)
    digest = md5(repo / "big.bin")
    sh.gm("add", "big.bin", cwd=repo)
    (repo / "big.bin").unlink()
    sh.gm("checkout", cwd=repo)
    assert os.stat(repo / "big.bin").st_ino == os.stat(object_path(repo, digest)).st_ino


def test_library_api(repo: Path) -> None:
    from gitmodel import Repo

    write_bytes(repo / "w.bin", 1000)
    r = Repo(repo)
    result = r.commit(["w.bin"], "via api", metric_args=["acc=0.7"], cwd=repo)
    assert r.metrics_note()["metrics"] == {"acc": 0.7}
    assert result.commit == r.rev_parse("HEAD")
    assert r.status() == {"modified": [], "missing": [], "not_in_cache": []}
