# ruff: noqa: F811  (pytest fixtures imported from remote_servers are parameters here)
"""Push / clone / pull / unreachable storage, the same scenarios on three real remotes:
a local directory, OpenSSH's sshd (ssh://) and moto's S3 server (s3:// with endpointurl).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BIN, Shell, write_bytes
from remote_servers import Storage, local_storage, s3_server, sshd, storage  # noqa: F401

MB = 1024 * 1024


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def clone_project(sh: Shell, origin: Path, dest: Path) -> Path:
    """A fresh clone of origin with gitmodel set up in it (hooks, notes refspec)."""
    sh.git("clone", "-q", str(origin), str(dest), cwd=dest.parent)
    sh.gm("init", cwd=dest)
    return dest


def has_pre_push(sh: Shell, repo: Path) -> bool:
    hooks = Path(sh.git("rev-parse", "--git-path", "hooks", cwd=repo).stdout.strip())
    return (repo / hooks / "pre-push").exists()


def configure_remote(sh: Shell, repo: Path, st: Storage, url: str, dead: bool = False) -> None:
    sh.gm("remote", "add", "store", url, "--default", cwd=repo)
    for key, value in (st.dead_options if dead else st.options).items():
        sh.gm("remote", "modify", "store", key, value, cwd=repo)
    sh.git("add", ".dvc/config", cwd=repo)
    sh.git("commit", "-q", "-m", "DVC remote", cwd=repo)


@pytest.fixture
def origin(tmp_path: Path, sh: Shell) -> Path:
    path = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(path), cwd=tmp_path)
    return path


def make_project(sh: Shell, tmp_path: Path, origin: Path, st: Storage, dead: bool = False) -> Path:
    repo = tmp_path / "a"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    (repo / "train.py").write_text("print('train')\n")
    sh.git("add", "train.py", cwd=repo)
    sh.git("commit", "-q", "-m", "code", cwd=repo)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.gm("init", cwd=repo)
    sh.git("commit", "-q", "-m", "gitmodel init", cwd=repo)
    configure_remote(sh, repo, st, st.dead_url if dead else st.fresh_url(), dead)
    write_bytes(repo / "model.bin", 3 * MB, seed=1)
    write_bytes(repo / "shards" / "a.bin", 100_000, seed=2)
    write_bytes(repo / "shards" / "sub" / "b.bin", 50_000, seed=3)
    sh.gm("commit", "model.bin", "shards", "-m", "model v1", "--metric", "accuracy=0.91", cwd=repo)
    return repo


@pytest.fixture
def env_sh(sh: Shell, storage: Storage) -> Shell:
    sh.env.update(storage.env)
    return sh


def test_push_clone_pull(env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage) -> None:
    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    sh.git("push", "-q", "origin", "main", cwd=a)  # the pre-push hook uploads and publishes notes
    again = sh.gm("push", "--json", cwd=a).json()  # idempotent: nothing left to upload
    assert again["weights"]["transferred"] == 0 and again["weights"]["already_there"] >= 4
    assert sh.git("ls-remote", str(origin), "refs/notes/metrics", cwd=a).stdout.strip()

    b = clone_project(sh, origin, tmp_path / "b")
    out = sh.gm("pull", "--json", cwd=b).json()
    assert out["weights"]["failed"] == {}
    assert md5(b / "model.bin") == md5(a / "model.bin")
    assert md5(b / "shards" / "sub" / "b.bin") == md5(a / "shards" / "sub" / "b.bin")
    assert sh.gm("metrics", "--json", cwd=b).json()["metrics"] == {"accuracy": 0.91}

    # A real `dvc pull` in another fresh clone restores the same weights.
    c = tmp_path / "c"
    sh.git("clone", "-q", str(origin), str(c), cwd=tmp_path)
    sh.dvc("pull", "-q", cwd=c)
    assert md5(c / "model.bin") == md5(a / "model.bin")
    assert md5(c / "shards" / "a.bin") == md5(a / "shards" / "a.bin")

    # A second version: only its new object travels, and checkout fetches on demand.
    write_bytes(a / "model.bin", 2 * MB, seed=9)
    sh.gm("commit", "model.bin", "-m", "model v2", "--metric", "accuracy=0.93", cwd=a)
    pushed = sh.git("push", "-q", "origin", "main", cwd=a)
    if has_pre_push(sh, a):
        assert "uploaded 1 object " in pushed.stderr, pushed.stderr  # only the new one
    sh.git("pull", "-q", "--ff-only", cwd=b)
    sh.gm("checkout", cwd=b)
    assert md5(b / "model.bin") == md5(a / "model.bin")
    sh.gm("fetch", cwd=b)
    assert sh.gm("metrics", "--json", cwd=b).json()["metrics"] == {"accuracy": 0.93}


def test_unreachable_storage(env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage) -> None:
    """A dead DVC remote: pull fails with one clear line; push is refused, no ref moves."""
    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    sh.dvc("remote", "modify", "store", "url", storage.dead_url, cwd=b)  # real DVC config edits
    for key, value in storage.dead_options.items():
        sh.gm("remote", "modify", "store", key, value, cwd=b)
    r = sh.gm("pull", cwd=b, check=False, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "DVC remote 'store'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (b / "model.bin").exists()

    before = sh.git("ls-remote", str(origin), cwd=b).stdout
    if not has_pre_push(sh, b):
        return  # the hook door is tested where gitmodel.hooks installs it
    write_bytes(b / "model.bin", 1 * MB, seed=5)
    sh.gm("commit", "model.bin", "-m", "model v2", "--metric", "accuracy=0.95", cwd=b)
    r = sh.git("push", "origin", "main", cwd=b, check=False, timeout=120)
    assert r.returncode != 0
    assert "store" in r.stderr and "refused" in r.stderr, r.stderr
    # Git moved no ref: a pointer is never published without its weights.
    assert sh.git("ls-remote", str(origin), cwd=b).stdout == before
    r = sh.gm("push", cwd=b, check=False, timeout=120)
    assert r.returncode in (1, 2) and "store" in r.stderr and "Traceback" not in r.stderr


def _remote_object(st: Storage, url: str, oid: str) -> tuple[str, object]:
    """(path or key, client) of an object on the remote, to damage it from outside."""
    rel = f"files/md5/{oid[:2]}/{oid[2:]}"
    if st.kind == "s3":
        import boto3
        from remote_servers import _boto_creds

        client = boto3.client("s3", endpoint_url=st.options["endpointurl"], **_boto_creds(st.env))
        prefix = url.removeprefix("s3://weights/")
        return f"{prefix}/{rel}", client
    path = url.split("127.0.0.1:", 1)[-1]
    path = path[path.index("/") :] if st.kind == "ssh" else url
    return os.path.join(path, rel), None


def _write_remote(st: Storage, url: str, oid: str, data: bytes) -> None:
    where, client = _remote_object(st, url, oid)
    if client is not None:
        client.put_object(Bucket="weights", Key=where, Body=data)  # type: ignore[attr-defined]
        return
    p = Path(where)
    if p.exists():
        os.chmod(p, 0o644)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def _read_remote(st: Storage, url: str, oid: str) -> bytes:
    where, client = _remote_object(st, url, oid)
    if client is not None:
        body: bytes = client.get_object(Bucket="weights", Key=where)["Body"].read()  # type: ignore[attr-defined]
        return body
    return Path(where).read_bytes()


def test_interrupted_push_leaves_no_corrupt_object(
    env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    """A truncated object (what a non-atomic writer leaves when killed) is uploaded again."""
    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    url = sh.gm("remote", "list", "--json", cwd=a).json()[0]["url"]
    oid = md5(a / "model.bin")
    whole = (a / "model.bin").read_bytes()
    _write_remote(storage, url, oid, whole[: len(whole) // 3])
    sh.git("push", "-q", "origin", "main", cwd=a)
    assert hashlib.md5(_read_remote(storage, url, oid)).hexdigest() == oid


@pytest.mark.parametrize("damaged", ["model.bin", "shards/a.bin"])
def test_download_is_verified_before_it_enters_the_cache(
    env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage, damaged: str
) -> None:
    """A damaged object on the remote, large (fetched by streaming) or small (over ssh,
    fetched in a batch of reads): the pull refuses it in one line, nothing of it enters
    the cache, and every sound object does."""
    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    url = sh.gm("remote", "list", "--json", cwd=a).json()[0]["url"]
    oid = md5(a / damaged)
    whole = bytearray((a / damaged).read_bytes())
    whole[1000] ^= 0xFF  # same size, other content
    _write_remote(storage, url, oid, bytes(whole))
    b = clone_project(sh, origin, tmp_path / "b")
    r = sh.gm("pull", cwd=b, check=False)
    assert r.returncode == 2 and "corrupt" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and damaged in r.stderr, r.stderr
    cache = b / ".dvc" / "cache" / "files" / "md5"
    assert not (cache / oid[:2] / oid[2:]).exists()
    sound = md5(a / "model.bin") if damaged != "model.bin" else md5(a / "shards" / "a.bin")
    assert (cache / sound[:2] / sound[2:]).exists()  # sound objects arrived
    leftovers = (
        list((b / ".dvc" / "cache" / "files" / "tmp").glob("*"))
        if (cache.parent / "tmp").exists()
        else []
    )
    assert leftovers == []
    assert not (b / "model.bin").exists()
    if damaged == "model.bin":  # the directory's objects were fine and did arrive
        assert sh.gm("status", "--json", cwd=b).json()["not_in_cache"] == ["model.bin"]


def test_an_object_missing_on_the_remote_is_named_in_one_line(
    env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    """A directory member gone from the remote: pull says which file and that it is not
    there, in one line (exit 2); the rest of the directory's objects arrived whole."""
    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    url = sh.gm("remote", "list", "--json", cwd=a).json()[0]["url"]
    gone = md5(a / "shards" / "sub" / "b.bin")
    where, client = _remote_object(storage, url, gone)
    if client is not None:
        client.delete_object(Bucket="weights", Key=where)  # type: ignore[attr-defined]
    else:
        os.unlink(where)
    b = clone_project(sh, origin, tmp_path / "b")
    r = sh.gm("pull", cwd=b, check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("git model: cannot fetch shards/sub/b.bin from DVC remote 'store'")
    assert lines[0].endswith(": not on the remote"), lines[0]
    cache = b / ".dvc" / "cache" / "files" / "md5"
    kept = md5(a / "shards" / "a.bin")
    assert (cache / kept[:2] / kept[2:]).read_bytes() == (a / "shards" / "a.bin").read_bytes()
    assert not (cache / gone[:2] / gone[2:]).exists()


def test_nothing_to_upload_does_not_import_dvc(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = make_project(sh, tmp_path, origin, local_storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    (a / "train.py").write_text("print('train v2')\n")
    sh.git("commit", "-qam", "code only", cwd=a)
    head = sh.git("rev-parse", "HEAD", cwd=a).stdout.strip()
    old = sh.git("rev-parse", "origin/main", cwd=a).stdout.strip()
    # Also a branch that re-publishes the already uploaded pointer on another ref.
    code = (
        "import sys, json\n"
        "from gitmodel.repo import Repo\n"
        "from gitmodel.sync import prepare_push\n"
        f"r = prepare_push(Repo('.'), 'origin', {str(origin)!r},"
        f" [('refs/heads/main', {head!r}, 'refs/heads/main', {old!r}),"
        f" ('refs/heads/copy', {old!r}, 'refs/heads/copy', '0'*40)])\n"
        "print(json.dumps({'dvc': 'dvc' in sys.modules, 'pointers': r.pointers}))\n"
    )
    out = json.loads(sh.run([sys.executable, "-c", code], cwd=a).stdout)
    assert out["dvc"] is False


def test_push_without_default_remote_is_refused(sh: Shell, tmp_path: Path, origin: Path) -> None:
    repo = tmp_path / "a"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.gm("init", cwd=repo)
    write_bytes(repo / "model.bin", 1000)
    sh.gm("commit", "model.bin", "-m", "model", cwd=repo)
    if not has_pre_push(sh, repo):
        pytest.skip("the pre-push hook is not installed by this build")
    r = sh.git("push", "origin", "main", cwd=repo, check=False)
    assert r.returncode != 0 and "no default DVC remote" in r.stderr, r.stderr
    assert sh.git("ls-remote", str(origin), cwd=repo).stdout.strip() == ""


def test_remote_list_and_fetch_refspec(sh: Shell, repo: Path, tmp_path: Path) -> None:
    sh.git("remote", "add", "origin", str(tmp_path / "nowhere.git"), cwd=repo)
    sh.gm("remote", "add", "one", str(tmp_path / "s1"), cwd=repo)
    sh.gm("remote", "add", "two", "s3://bucket/path", "--default", cwd=repo)
    listed = sh.gm("remote", "list", "--json", cwd=repo).json()
    assert [(r["name"], r["default"]) for r in listed] == [("one", False), ("two", True)]
    assert listed[0]["url"] == str(tmp_path / "s1")
    # DVC itself reads the same config.
    assert "two" in sh.dvc("remote", "default", cwd=repo).stdout
    specs = sh.git("config", "--get-all", "remote.origin.fetch", cwd=repo).stdout.split()
    assert "+refs/notes/metrics*:refs/notes/remotes/origin/metrics*" in specs
    # The remote has no notes at all yet: plain git fetch must still work.
    sh.git("init", "-q", "--bare", str(tmp_path / "nowhere.git"), cwd=tmp_path)
    sh.git("fetch", "-q", "origin", cwd=repo)
    r = sh.gm("remote", "add", "one", "/elsewhere", cwd=repo, check=False)
    assert r.returncode == 2 and "already exists" in r.stderr


def test_checkout_fetches_missing_objects(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = make_project(sh, tmp_path, origin, local_storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    sh.gm("checkout", cwd=b)
    assert md5(b / "model.bin") == md5(a / "model.bin")
    assert (b / "shards" / "sub" / "b.bin").read_bytes() == (
        a / "shards" / "sub" / "b.bin"
    ).read_bytes()


def test_plain_git_fetch_brings_notes(
    sh: Shell, tmp_path: Path, origin: Path, local_storage: Storage
) -> None:
    a = make_project(sh, tmp_path, origin, local_storage)
    sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    sh.git("fetch", "-q", cwd=b)
    assert sh.git("rev-parse", "refs/notes/remotes/origin/metrics", cwd=b).stdout.strip()
    sh.gm("fetch", cwd=b)
    log = sh.git("log", "-1", cwd=b).stdout
    assert "accuracy" in log  # notes.displayRef shows the merged note in plain git log


def test_killed_push_then_rerun_completes(
    sh: Shell, tmp_path: Path, origin: Path, sshd: Storage
) -> None:
    """SIGKILL in the middle of an ssh upload, then push again: every object is whole."""
    import signal
    import time

    a = make_project(sh, tmp_path, origin, sshd)
    url = sh.gm("remote", "list", "--json", cwd=a).json()[0]["url"]
    root = Path("/" + url.split("127.0.0.1:", 1)[1].split("/", 1)[1])
    # A fast machine may finish an upload before the kill lands: new weights, new try.
    for attempt in range(4):
        write_bytes(a / "big.bin", 64 * MB, seed=7 + attempt)
        sh.gm("commit", "big.bin", "-m", f"big {attempt}", cwd=a)
        proc = subprocess.Popen(
            [str(BIN / "git-model"), "push"],  # the console script: the kill lands on it
            cwd=a,
            env=sh.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.endswith(".tmp") for p in root.rglob("*")):
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        if proc.wait() == -signal.SIGKILL:
            break
    assert proc.returncode == -signal.SIGKILL, "every push finished before it could be killed"
    for p in (root / "files" / "md5").rglob("*"):
        if p.is_file() and not p.name.endswith(".tmp"):
            oid = p.parent.name + p.name
            if not oid.endswith(".dir"):
                assert md5(p) == oid, f"corrupt object {oid} on the remote after a kill"
    sh.gm("push", cwd=a)
    big = md5(a / "big.bin")
    assert md5(root / "files" / "md5" / big[:2] / big[2:]) == big


def _objects_on(storage: Storage, url: str) -> dict[str, object]:
    """oid -> a stamp that changes when the object is written again (inode; S3's ETag and
    LastModified), for whole objects only (no temporary names)."""
    found: dict[str, object] = {}
    if storage.kind == "s3":
        import boto3

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=storage.options["endpointurl"],
            aws_access_key_id=storage.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=storage.env["AWS_SECRET_ACCESS_KEY"],
            region_name=storage.env["AWS_DEFAULT_REGION"],
        )
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/files/md5/"
        )
        for page in pages:
            for o in page.get("Contents", []):
                *_, d, name = o["Key"].split("/")
                found[d + name] = (o["ETag"], o["LastModified"])
        return found
    root = Path(url.split("127.0.0.1:", 1)[1].split("/", 1)[1]) if storage.kind == "ssh" else None
    objects = (Path("/") / root if root else Path(url)) / "files" / "md5"
    for p in objects.rglob("*") if objects.is_dir() else ():
        if p.is_file() and not p.name.endswith(".tmp"):
            found[p.parent.name + p.name] = p.stat().st_ino
    return found


def test_interrupted_push_resumes_on_every_remote(
    env_sh: Shell, tmp_path: Path, origin: Path, storage: Storage
) -> None:
    """SIGKILL in the middle of a push of many small objects to a local, ssh or S3 remote:
    the next push sends only what had not arrived and leaves what had as it was."""
    import signal
    import time

    sh = env_sh
    a = make_project(sh, tmp_path, origin, storage)
    for i in range(600):
        write_bytes(a / "images" / f"d{i % 10}" / f"{i:04d}.jpg", 2_000 + i, seed=100 + i)
    sh.gm("commit", "images", "-m", "images", cwd=a)
    url = sh.gm("remote", "list", "--json", cwd=a).json()[0]["url"]
    # A fast machine may finish before the kill lands: the test needs a push cut short.
    proc = subprocess.Popen(
        [str(BIN / "git-model"), "push"],  # the console script: the kill lands on it
        cwd=a,
        env=sh.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(_objects_on(storage, url)) >= 50:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _objects_on(storage, url)
    report = sh.gm("push", "--json", cwd=a).json()["weights"]
    after = _objects_on(storage, url)
    total = report["transferred"] + report["already_there"]
    assert len(after) == total == 605  # 600 images and their manifest; model.bin; shards
    if proc.returncode == -signal.SIGKILL:
        assert report["transferred"] == total - len(before)
    assert {oid: after[oid] for oid in before} == before  # nothing that arrived was rewritten


def test_push_and_pull_of_many_files_say_one_line_each(
    sh: Shell, tmp_path: Path, origin: Path
) -> None:
    """A directory of many files: one summary line per part (weights, then each restored
    output), never a line per file unless --verbose asks for the list; no bar off a terminal."""
    a = make_project(sh, tmp_path, origin, local_storage_at(tmp_path))
    for i in range(300):
        write_bytes(a / "images" / f"d{i % 10}" / f"{i:04d}.jpg", 1_000 + i, seed=i)
    sh.gm("commit", "images", "-m", "images", cwd=a)
    lines = _said(sh.gm("push", cwd=a).stderr)
    assert len(lines) == 1 and lines[0].startswith("weights: uploaded 305 objects"), lines
    sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    lines = _said(sh.gm("pull", cwd=b).stderr)
    assert lines[0].startswith("weights: downloaded 305 objects"), lines
    assert sorted(lines[1:]) == [
        "restored images/ (300 of 300 files written)",
        "restored model.bin",
        "restored shards/ (2 of 2 files written)",
    ]
    shutil.rmtree(b / "images")
    shutil.rmtree(b / ".dvc" / "cache")
    lines = _said(sh.gm("pull", "--verbose", cwd=b).stderr)
    downloaded = [x for x in lines if x.startswith("downloaded images/")]
    restored = [x for x in lines if x.startswith("restored images/")]
    assert len(downloaded) == 300 and len(restored) == 300, lines[:5]
    lines = _said(sh.gm("push", "--verbose", cwd=b).stderr)
    assert lines == ["weights: uploaded 0 objects (0 B) to DVC remote store; 305 already there"]


def _said(stderr: str) -> list[str]:
    """What a command said about weights (the notes line is the git remote's part)."""
    return [line for line in stderr.splitlines() if not line.startswith("notes: ")]


def local_storage_at(tmp_path: Path) -> Storage:
    return Storage(kind="local", base_url=str(tmp_path / "storage"), local_root=tmp_path)


def test_a_progress_bar_is_drawn_on_a_terminal_only(
    sh: Shell, tmp_path: Path, origin: Path
) -> None:
    """pull of 40 MiB: rich draws its bar on a terminal (a pty here); piped, not a byte of it."""
    import pty
    import select

    a = make_project(sh, tmp_path, origin, local_storage_at(tmp_path))
    write_bytes(a / "big.bin", 40 * MB, seed=9)
    sh.gm("commit", "big.bin", "-m", "big", cwd=a)
    sh.gm("push", cwd=a)
    sh.git("push", "-q", "origin", "main", cwd=a)
    b = clone_project(sh, origin, tmp_path / "b")
    piped = sh.gm("pull", cwd=b).stderr
    assert "fetching from" not in piped and "\x1b[" not in piped, piped
    shutil.rmtree(b / ".dvc" / "cache")
    (b / "big.bin").unlink()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "git-model"), "pull"],
        cwd=b,
        env={**sh.env, "TERM": "xterm", "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the pty closes when the command exits
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, shown
    assert b"fetching from store" in shown, shown
    assert md5(b / "big.bin") == md5(a / "big.bin")
