# ruff: noqa: F811  (pytest fixtures imported from remote_servers are parameters here)
"""`git model get`, `gitmodel.open` and `gitmodel.read`: tracked weights of any revision of
a bare repository, from a local and an S3 (moto) DVC remote, without a clone or a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from conftest import Shell, write_bytes
from remote_servers import Storage, local_storage, s3_server  # noqa: F401

PY = sys.executable


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> Storage:
    fixture = {"local": "local_storage", "s3": "s3_server"}[request.param]
    result: Storage = request.getfixturevalue(fixture)
    return result


class Project:
    def __init__(self, work: Path, origin: Path, url: str, v1: dict[str, str], v2: dict[str, str]):
        self.work, self.origin, self.url, self.v1, self.v2 = work, origin, url, v1, v2


def make_project(sh: Shell, tmp_path: Path, st: Storage) -> Project:
    """Two versions of a model file and a shard directory, released v1.0.0 and v1.1.0 (and
    clf@v1.0.0 on the same commits), pushed to a bare origin; prod holds v1.0.0."""
    sh.env.update(st.env)
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    sh.git("init", "-q", cwd=work)
    (work / "train.py").write_text("print('train')\n")
    sh.git("add", "train.py", cwd=work)
    sh.git("commit", "-q", "-m", "code", cwd=work)
    sh.git("remote", "add", "origin", str(origin), cwd=work)
    sh.gm("init", cwd=work)
    url = st.fresh_url()
    sh.gm("remote", "add", "store", url, "--default", cwd=work)
    for key, value in st.options.items():
        sh.gm("remote", "modify", "store", key, value, cwd=work)
    sh.git("add", ".dvc/config", ".gitmodel.toml", cwd=work)
    sh.git("commit", "-q", "-m", "gitmodel, DVC remote", cwd=work)
    versions = []
    for seed, acc in ((1, "0.90"), (2, "0.93")):
        write_bytes(work / "model.bin", 300_000, seed=seed)
        write_bytes(work / "shards" / "a.bin", 20_000, seed=seed + 10)
        write_bytes(work / "shards" / "sub" / "b.bin", 10_000, seed=seed + 20)
        sh.gm(
            "commit",
            "model.bin",
            "shards",
            "-m",
            f"model {seed}",
            "--metric",
            f"accuracy={acc}",
            cwd=work,
        )
        versions.append(
            {
                "model.bin": md5(work / "model.bin"),
                "a.bin": md5(work / "shards" / "a.bin"),
                "b.bin": md5(work / "shards" / "sub" / "b.bin"),
                "commit": sh.git("rev-parse", "HEAD", cwd=work).stdout.strip(),
            }
        )
    v1, v2 = versions
    sh.gm("release", "v1.0.0", "--rev", v1["commit"], cwd=work)
    sh.gm("release", "v1.1.0", "--rev", v2["commit"], cwd=work)
    sh.git("tag", "-a", "-m", "prod", "main#prod#1", v1["commit"], cwd=work)
    sh.git("push", "-q", "origin", "main", "--tags", cwd=work)
    return Project(work, origin, url, v1, v2)


@pytest.fixture
def project(sh: Shell, tmp_path: Path, store: Storage) -> Project:
    return make_project(sh, tmp_path, store)


def test_get_any_revision_from_a_bare_repository(
    sh: Shell, tmp_path: Path, project: Project
) -> None:
    out = tmp_path / "deploy"
    out.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp)}
    origin = str(project.origin)
    # HEAD, a release, the stage that holds v1.0.0, a full and a short commit
    for rev, want in (
        (None, project.v2),
        ("v1.1.0", project.v2),
        ("v1.0.0", project.v1),
        ("#prod", project.v1),
        ("main#prod", project.v1),
        (project.v1["commit"], project.v1),
        (project.v2["commit"][:9], project.v2),
        ("main", project.v2),
    ):
        name = f"m-{rev or 'head'}".replace("#", "_")
        args = ["get", origin, "model.bin", "-o", name, "--json"]
        if rev is not None:
            args += ["--rev", rev]
        result = sh.gm(*args, cwd=out, env=env).json()
        assert md5(out / name) == want["model.bin"], rev
        assert result["rev"]["commit"] == want["commit"]
        assert os.listdir(tmp) == []  # the temporary repository is gone
    # a directory, and a file inside it
    sh.gm("get", origin, "shards", "--rev", "v1.0.0", "-o", "shards", cwd=out)
    assert md5(out / "shards" / "a.bin") == project.v1["a.bin"]
    assert md5(out / "shards" / "sub" / "b.bin") == project.v1["b.bin"]
    sh.gm("get", origin, "shards/sub/b.bin", "--rev", "v1.1.0", cwd=out)
    assert md5(out / "b.bin") == project.v2["b.bin"]
    # an existing output is kept unless --force; an existing directory receives it
    again = sh.gm("get", origin, "model.bin", "-o", "m-head", cwd=out, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    sh.gm("get", origin, "model.bin", "-o", "m-head", "--force", "--rev", "v1.0.0", cwd=out)
    assert md5(out / "m-head") == project.v1["model.bin"]
    (out / "into").mkdir()
    sh.gm("get", origin, "model.bin", "-o", "into", cwd=out)
    assert md5(out / "into" / "model.bin") == project.v2["model.bin"]
    # no cache, no stray files: only what was asked for
    assert not any(p.name == "cache" for p in out.rglob("*"))
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_open_and_read_verify_and_leave_nothing(
    sh: Shell, tmp_path: Path, project: Project
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = (
        "import gitmodel, hashlib, json, sys\n"
        "url = sys.argv[1]\n"
        "with gitmodel.open('model.bin', repo=url, rev='main#prod') as f:\n"
        "    a = hashlib.md5(f.read()).hexdigest()\n"
        "b = hashlib.md5(gitmodel.read('shards/sub/b.bin', repo=url, rev='v1.1.0')).hexdigest()\n"
        "c = gitmodel.read('train.py', repo=url, mode='r')\n"
        "print(json.dumps([a, b, c]))\n"
    )
    out = sh.run([PY, "-c", code, str(project.origin)], tmp_path, env={"TMPDIR": str(tmp)})
    a, b, c = json.loads(out.stdout)
    assert a == project.v1["model.bin"]
    assert b == project.v2["b.bin"]
    assert c == "print('train')\n"
    assert os.listdir(tmp) == []


def test_corrupt_download_is_an_error_and_writes_nothing(
    sh: Shell, tmp_path: Path, project: Project, store: Storage
) -> None:
    oid = project.v2["model.bin"]
    rel = f"files/md5/{oid[:2]}/{oid[2:]}"
    if store.kind == "s3":
        import boto3
        from remote_servers import _boto_creds

        client = boto3.client(
            "s3", endpoint_url=store.options["endpointurl"], **_boto_creds(store.env)
        )
        key = project.url.removeprefix("s3://weights/") + "/" + rel
        client.put_object(Bucket="weights", Key=key, Body=b"not the weights")
    else:
        path = Path(project.url) / rel
        os.chmod(path, 0o644)
        path.write_bytes(b"not the weights")
    out = tmp_path / "deploy"
    out.mkdir()
    r = sh.gm("get", str(project.origin), "model.bin", cwd=out, check=False)
    assert r.returncode == 1, r.stderr
    assert "corrupt download" in r.stderr and "Traceback" not in r.stderr
    assert list(out.iterdir()) == []
    code = "import gitmodel, sys\ngitmodel.read('model.bin', repo=sys.argv[1])\n"
    r = sh.run([PY, "-c", code, str(project.origin)], tmp_path, check=False)
    assert r.returncode != 0 and "CorruptDownload" in r.stderr


def test_bad_input_is_one_line(sh: Shell, tmp_path: Path, local_storage: Storage) -> None:
    project = make_project(sh, tmp_path, local_storage)
    origin = str(project.origin)
    for args, words in (
        (["nothere.bin"], "not tracked"),
        (["model.bin", "--rev", "nope"], "no such branch"),
        (["model.bin", "--rev", "clf#prod"], "no version holds"),
        (["../etc/passwd"], "inside the repository"),
        (["/etc/passwd"], "inside the repository"),
    ):
        r = sh.gm("get", origin, *args, cwd=tmp_path, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = sh.gm("get", str(tmp_path / "missing.git"), "model.bin", cwd=tmp_path, check=False)
    assert r.returncode == 2 and "no git repository" in r.stderr


def test_get_from_the_enclosing_repository_uses_its_cache(
    sh: Shell, tmp_path: Path, local_storage: Storage
) -> None:
    project = make_project(sh, tmp_path, local_storage)
    out = tmp_path / "x.bin"
    r = sh.gm(
        "get", ".", "model.bin", "--rev", "v1.0.0", "-o", str(out), "--json", cwd=project.work
    ).json()
    assert r["from_cache"] == 1 and md5(out) == project.v1["model.bin"]


def test_hostile_manifest_cannot_write_outside(sh: Shell, tmp_path: Path) -> None:
    """A `.dir` manifest (on a remote the repository names) that climbs out with `..`."""
    work = tmp_path / "evil"
    work.mkdir()
    sh.git("init", "-q", cwd=work)
    remote = tmp_path / "remote"
    manifest = json.dumps([{"md5": "0" * 32, "relpath": "../../escaped"}]).encode()
    oid = hashlib.md5(manifest).hexdigest() + ".dir"
    obj = remote / "files" / "md5" / oid[:2] / oid[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(manifest)
    (work / ".dvc").mkdir()
    (work / ".dvc" / "config").write_text(
        f"[core]\n    remote = r\n['remote \"r\"']\n    url = {remote}\n"
    )
    (work / "w.dvc").write_text(f"outs:\n- md5: {oid}\n  hash: md5\n  path: w\n")
    sh.git("add", ".", cwd=work)
    sh.git("commit", "-q", "-m", "evil", cwd=work)
    out = tmp_path / "out"
    out.mkdir()
    r = sh.gm("get", str(work), "w", cwd=out, check=False)
    assert r.returncode == 2 and "leaves the" in r.stderr
    assert not (tmp_path / "escaped").exists() and list(out.iterdir()) == []


def test_release_from_before_the_remote_uses_heads_remote(
    sh: Shell, tmp_path: Path, local_storage: Storage
) -> None:
    """A project that added its DVC remote after releasing: HEAD's config names it."""
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    sh.git("init", "-q", cwd=work)
    sh.gm("init", cwd=work)
    sh.git("commit", "-q", "-m", "gitmodel", cwd=work)
    write_bytes(work / "model.bin", 50_000, seed=5)
    sh.gm("commit", "model.bin", "-m", "model", "--metric", "accuracy=0.9", cwd=work)
    sh.gm("release", "v1.0.0", cwd=work)
    sh.gm("remote", "add", "store", local_storage.fresh_url(), "--default", cwd=work)
    sh.git("commit", "-q", "-m", "DVC remote", cwd=work)
    sh.git("remote", "add", "origin", str(origin), cwd=work)
    sh.git("push", "-q", "origin", "main", "--tags", cwd=work)
    r = sh.gm("get", str(origin), "model.bin", "--rev", "v1.0.0", "--json", cwd=tmp_path).json()
    assert r["remote"] == "store" and r["remote_config"].startswith("HEAD")
    assert md5(tmp_path / "model.bin") == md5(work / "model.bin")


def _evil_repo(sh: Shell, tmp_path: Path, remote: Path) -> Path:
    work = tmp_path / "evil"
    work.mkdir()
    sh.git("init", "-q", cwd=work)
    (work / ".dvc").mkdir()
    return work


def test_symlinks_in_the_tree_are_not_followed(sh: Shell, tmp_path: Path) -> None:
    """A pointer or a .dvc/config committed as a symlink is not read through."""
    secret = tmp_path / "secret"
    secret.write_text("outs:\n- md5: " + "a" * 32 + "\n  hash: md5\n  path: w\n")
    work = _evil_repo(sh, tmp_path, tmp_path / "remote")
    os.symlink(secret, work / "w.dvc")
    os.symlink("/etc/passwd", work / "passwd")
    sh.git("add", ".", cwd=work)
    sh.git("commit", "-q", "-m", "links", cwd=work)
    out = tmp_path / "out"
    out.mkdir()
    r = sh.gm("get", str(work), "w", cwd=out, check=False)
    assert r.returncode == 2 and "not tracked" in r.stderr
    r = sh.gm("get", str(work), "passwd", cwd=out, check=False)
    assert r.returncode == 2 and "symlink" in r.stderr
    assert list(out.iterdir()) == []


def test_a_pointers_own_remote_is_used(sh: Shell, tmp_path: Path) -> None:
    """DVC 3's per-output `remote:` picks the remote among those the revision configures."""
    data = b"weights that live on the second remote\n"
    oid = hashlib.md5(data).hexdigest()
    second = tmp_path / "second"
    obj = second / "files" / "md5" / oid[:2] / oid[2:]
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data)
    work = _evil_repo(sh, tmp_path, second)
    (work / ".dvc" / "config").write_text(
        f"[core]\n    remote = first\n['remote \"first\"']\n    url = {tmp_path / 'first'}\n"
        f"['remote \"second\"']\n    url = {second}\n"
    )
    (work / "w.bin.dvc").write_text(
        f"outs:\n- md5: {oid}\n  size: {len(data)}\n  hash: md5\n  path: w.bin\n  remote: second\n"
    )
    sh.git("add", ".", cwd=work)
    sh.git("commit", "-q", "-m", "two remotes", cwd=work)
    r = sh.gm("get", str(work), "w.bin", "--json", cwd=tmp_path).json()
    assert r["remote"] == "second" and (tmp_path / "w.bin").read_bytes() == data
    # a size that does not match the pointer is a corrupt download too
    (work / "w.bin.dvc").write_text(
        f"outs:\n- md5: {oid}\n  size: {len(data) + 1}\n  hash: md5\n  path: w.bin\n  remote: second\n"
    )
    sh.git("commit", "-q", "-am", "wrong size", cwd=work)
    r = sh.gm("get", str(work), "w.bin", "-o", "again.bin", cwd=tmp_path, check=False)
    assert r.returncode == 1 and "corrupt download" in r.stderr
    assert not (tmp_path / "again.bin").exists()
