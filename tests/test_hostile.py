"""A pushed repository is untrusted: hostile pointers, manifests, notes, metrics and config.

Every case: exit 1 or 2 (never 3, never a traceback), a one-line error naming the culprit,
nothing written or read outside the repository (a sentinel directory beside it is
checked byte for byte), no code from the repository run, no pickle ever loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import pytest
from conftest import Shell, write_bytes
from integrity import md5_of, objects

PKG = Path(__file__).resolve().parent.parent / "gitmodel"


class Sentinel:
    """Files beside the repository that nothing may write, plus a marker no code may create."""

    def __init__(self, tmp_path: Path, repo: Path) -> None:
        self.root = tmp_path
        self.repo = repo
        self.outside = tmp_path / "outside"
        self.outside.mkdir(exist_ok=True)
        (self.outside / "keep.txt").write_text("keep me\n")
        self.pwned = tmp_path / "pwned"
        self.allowed: list[Path] = []  # other directories a test may legitimately write
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, str]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if any(here == d or d in here.parents for d in (self.repo, *self.allowed)):
                dirnames[:] = []
                continue
            for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
                p = here / name
                out[str(p.relative_to(self.root))] = (
                    "link" if p.is_symlink() else hashlib.md5(p.read_bytes()).hexdigest()
                )
        return out

    def check(self) -> None:
        assert not self.pwned.exists(), "repository content made gitmodel run a command"
        assert self.snapshot() == self.before, "something was written outside the repository"


@pytest.fixture
def sentinel(tmp_path: Path, repo: Path) -> Sentinel:
    return Sentinel(tmp_path, repo)


def _refused(r: object, *names: str) -> None:
    """Exit 1 or 2 with one line on stderr naming each of names; no traceback."""
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc in (1, 2), f"exit {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("git model:")]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"


def _no_crash(r: object) -> None:
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc in (0, 1, 2), f"exit {rc}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err


def _stored(sh: Shell, repo: Path) -> str:
    """A real object in the cache, so a hostile pointer names something checkout could write."""
    write_bytes(repo / "real.bin", 5000, seed=42)
    sh.gm("add", "real.bin", cwd=repo)
    return md5_of(repo / "real.bin")


def _pointer(md5: str, path: str, size: object = 5000) -> str:
    return f"outs:\n- md5: {md5}\n  size: {json.dumps(size)}\n  hash: md5\n  path: '{path}'\n"


def _commit_all(sh: Shell, repo: Path) -> None:
    sh.git("add", "-A", cwd=repo)
    sh.git("-c", "core.hooksPath=/dev/null", "commit", "-qm", "hostile", cwd=repo, check=False)


# -- pointers -------------------------------------------------------------------------

PATH_CASES = [
    "../outside/evil.bin",
    "../../evil.bin",
    "sub/../../outside/evil.bin",
    "ABS",
    "link/evil.bin",
]


def test_pointer_paths_leaving_the_repo(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    md5 = _stored(sh, repo)
    (repo / "link").symlink_to(sentinel.outside)
    names = []
    for i, bad_path in enumerate(PATH_CASES):
        if bad_path == "ABS":
            bad_path = str(sentinel.outside / "evil.bin")
        names.append(f"evil{i}.dvc")
        (repo / names[-1]).write_text(_pointer(md5, bad_path))
    _commit_all(sh, repo)
    for args in (["checkout"], ["checkout", "--force"], ["status"], ["checkout", "HEAD"]):
        _refused(sh.gm(*args, cwd=repo, check=False), "evil0.dvc")
    _refused(sh.gm("checkout", "evil3.dvc", cwd=repo, check=False), "evil3.dvc")
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    for name in names:  # each reported by name
        assert f"bad-pointer: {name}" in r.stdout, r.stdout
    # A branch switch runs the post-checkout hook: it must not write either.
    sh.git("checkout", "-q", "HEAD~1", cwd=repo)
    sh.git("checkout", "-q", "-", cwd=repo)
    sentinel.check()


def test_pointer_file_that_is_a_symlink_out_is_not_read(
    repo: Path, sh: Shell, sentinel: Sentinel
) -> None:
    md5 = _stored(sh, repo)
    (sentinel.outside / "secret.dvc").write_text(_pointer(md5, "stolen.bin"))
    sentinel.before = sentinel.snapshot()
    (repo / "stolen.bin.dvc").symlink_to(sentinel.outside / "secret.dvc")
    _refused(sh.gm("checkout", cwd=repo, check=False), "stolen.bin.dvc")
    assert not (repo / "stolen.bin").exists()
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1 and "stolen.bin.dvc is a symbolic link" in r.stdout
    sentinel.check()


_OUT = "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: {size}\n  hash: md5\n  path: x\n"
BAD_YAML = {
    "unclosed": "outs: [[[\n",
    "binary": "\x00\xff\xfe garbage \x01",
    "python-tag": "!!python/object/apply:os.system ['touch PWNED']\n",
    "python-tag-in-outs": "outs:\n- !!python/object/apply:os.system ['touch PWNED']\n",
    "deep": "[" * 20000 + "]" * 20000,
    "deep-map": "outs: " + "{a: " * 5000 + "1" + "}" * 5000,
    "bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "outs: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    "scalar": "just a string\n",
    "outs-not-list": "outs: 5\n",
    "outs-empty": "outs: []\n",
    "path-not-string": "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  hash: md5\n  path: [1]\n",
    "md5-climbs": "outs:\n- md5: ../../../../../../../../etc/passwd\n  hash: md5\n  path: x\n",
    "md5-not-hex": "outs:\n- md5: zz23456789abcdef0123456789abcdez\n  hash: md5\n  path: x\n",
    "size-absurd": _OUT.format(size="1000000000000000000000000"),
    "size-negative": _OUT.format(size="-5"),
    "size-string": _OUT.format(size="big"),
    "size-bool": _OUT.format(size="true"),
    "nul-in-path": 'outs:\n- md5: 0123456789abcdef0123456789abcdef\n  hash: md5\n  path: "a\\0b"\n',
}


def test_garbage_pointers(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    real = _stored(sh, repo)
    names = {}
    for case, text in BAD_YAML.items():
        names[case] = f"bad-{case}.dvc"
        (repo / names[case]).write_text(text.replace("PWNED", str(sentinel.pwned)))
    first = sorted(names.values())[0]
    (repo / "real.bin").unlink()
    for args in (["status"], ["checkout"], ["gc", "--grace", "0"]):
        _refused(sh.gm(*args, cwd=repo, check=False), first)
    assert real in objects(repo / ".dvc" / "cache"), "gc dropped an object it could not rule on"
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    for case, name in names.items():  # each reported by name
        assert f"bad-pointer: {name}" in r.stdout, (case, r.stdout)
    # Nothing else is affected: the good pointer's weights were restored all the same.
    assert md5_of(repo / "real.bin") == real
    (repo / "real.bin").unlink()
    sh.gm("checkout", "real.bin", cwd=repo)
    assert md5_of(repo / "real.bin") == real
    sentinel.check()


# -- .dir manifests -------------------------------------------------------------------


def _put_manifest(repo: Path, entries: object) -> str:
    data = entries if isinstance(entries, bytes) else json.dumps(entries).encode()
    oid = hashlib.md5(data).hexdigest() + ".dir"
    path = repo / ".dvc" / "cache" / "files" / "md5" / oid[:2] / oid[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return oid


RELPATHS = ["../../outside/evil.bin", "ABS", "a/../../../outside/evil.bin", "", ".", "a//b"]

MANIFESTS = {
    "not-json": b"{[",
    "not-a-list": b'{"md5": "x"}',
    "deep": b"[" * 100000 + b"]" * 100000,
    "entry-not-object": b"[1, 2]",
    "md5-climbs": json.dumps(
        [{"md5": "../../../../../../../../etc/pass", "relpath": "x"}]
    ).encode(),
    "md5-missing": json.dumps([{"relpath": "x"}]).encode(),
}


def test_hostile_manifests(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    """relpaths leaving the directory and malformed manifests: each named by fsck."""
    md5 = _stored(sh, repo)
    oids = []
    for i, relpath in enumerate(RELPATHS):
        if relpath == "ABS":
            relpath = str(sentinel.outside / "evil.bin")
        oids.append(_put_manifest(repo, [{"md5": md5, "relpath": relpath}]))
        (repo / f"data{i}.dvc").write_text(_pointer(oids[-1], f"data{i}"))
    for case, data in MANIFESTS.items():
        oids.append(_put_manifest(repo, data))
        (repo / f"m-{case}.dvc").write_text(_pointer(oids[-1], f"m-{case}"))
    for args in (["checkout"], ["checkout", "--force"]):
        _refused(sh.gm(*args, cwd=repo, check=False))
    _no_crash(sh.gm("status", cwd=repo, check=False))
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    for oid in oids:
        assert f"bad-manifest: directory manifest {oid}" in r.stdout, (oid, r.stdout)
    _refused(sh.gm("checkout", "m-md5-climbs", cwd=repo, check=False), oids[-2])
    sentinel.check()


def test_manifest_through_a_symlinked_directory(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    md5 = _stored(sh, repo)
    (repo / "data").mkdir()
    (repo / "data" / "sub").symlink_to(sentinel.outside)
    oid = _put_manifest(repo, [{"md5": md5, "relpath": "sub/evil.bin"}])
    (repo / "data.dvc").write_text(_pointer(oid, "data"))
    for args in (["checkout"], ["checkout", "--force"]):
        _refused(sh.gm(*args, cwd=repo, check=False), "goes through the symbolic link")
    sentinel.check()


# -- notes and metrics ----------------------------------------------------------------

NOTES = {
    "not-json": "this is not json",
    "array": "[1, 2, 3]",
    "string-metric": '{"metrics": {"acc": "0.9"}}',
    "nan": '{"metrics": {"acc": NaN}}',
    "infinity": '{"metrics": {"acc": Infinity}}',
    "overflow": '{"metrics": {"acc": 1e999}}',
    "bool": '{"metrics": {"acc": true}}',
    "nested": '{"metrics": {"acc": {"val": 0.9}}}',
    "deep": "[" * 100000 + "]" * 100000,
    "deep-metrics": '{"metrics": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    "metrics-list": '{"metrics": [1, 2]}',
    "shell": '{"metrics": {"$(touch PWNED)": 1}, "weights": "`touch PWNED`"}',
}


def test_hostile_notes(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    write_bytes(repo / "good.bin", 1000)
    sh.gm("commit", "good.bin", "-m", "good", "--metric", "acc=0.5", cwd=repo)
    shas = {}
    for case, text in NOTES.items():
        (repo / "x.txt").write_text(case)
        sh.git("add", "x.txt", cwd=repo)
        sh.git("commit", "-qm", f"note {case}", cwd=repo)
        shas[case] = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
        text = text.replace("PWNED", str(sentinel.pwned))
        sh.git(
            "notes",
            "--ref=refs/notes/metrics",
            "add",
            "-f",
            "-F",
            "-",
            "HEAD",
            cwd=repo,
            input=text,
        )
    for args in (["log"], ["log", "--json"], ["diff"], ["check"], ["diff", "HEAD~3", "HEAD"]):
        _no_crash(sh.gm(*args, cwd=repo, check=False))
    r = sh.gm("fsck", cwd=repo, check=False)
    assert r.returncode == 1
    for case, sha in shas.items():
        if case == "shell":
            continue
        assert f"bad-note: note on {sha[:12]}" in r.stdout, (case, r.stdout)
        _refused(sh.gm("metrics", sha[:12], cwd=repo, check=False), sha[:12])
    _no_crash(sh.gm("metrics", shas["shell"], cwd=repo, check=False))
    # The earlier good note is unaffected.
    good = sh.gm("metrics", f"HEAD~{len(NOTES)}", "--json", cwd=repo).json()
    assert good["metrics"] == {"acc": 0.5}
    sentinel.check()


def test_a_note_cannot_forge_log_rows(repo: Path, sh: Shell, tmp_path: Path) -> None:
    """A note holding git log's separators, NUL bytes, a forged row for another commit and
    bytes that are not UTF-8 is one bad note on one row, never a crash or an extra row."""
    write_bytes(repo / "good.bin", 1000)
    sh.gm("commit", "good.bin", "-m", "good", "--metric", "acc=0.5", cwd=repo)
    good = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    sh.git("commit", "-q", "--allow-empty", "-m", "hostile", cwd=repo)
    hostile = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    forged = (
        f'{{"schema": 1, "metrics": {{"acc": 0.9}}}}\n\x1e{good}\x002001-01-01T00:00:00Z'
        '\x00forged\x00{"schema": 1, "metrics": {"acc": 1.0}}\x1e'
    ).encode() + b"\xff\xfe\x00\n"
    (tmp_path / "note").write_bytes(forged)
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-F", str(tmp_path / "note"), cwd=repo)
    rows = sh.gm("log", "--include-unnoted", "--json", cwd=repo).json()
    assert [r["commit"] for r in rows][:2] == [hostile, good]
    assert len([r for r in rows if r["commit"] == good]) == 1
    assert rows[0]["error"] == f"note on {hostile[:12]} is not valid JSON"
    assert rows[1]["metrics"] == {"acc": 0.5} and "error" not in rows[1]
    table = sh.gm("log", cwd=repo).stdout
    assert "forged" not in table and "(bad note)" in table
    # With no good note in the range, the bad one still shows.
    alone = sh.gm("log", "-n", "1", cwd=repo).stdout.splitlines()
    assert alone[0].split() == ["commit", "date", "subject", "metrics"]
    assert alone[1].endswith("(bad note)")


METRICS_FILES = {
    "string": '{"acc": "0.9"}',
    "nan": '{"acc": NaN}',
    "infinity": '{"acc": -Infinity}',
    "overflow": '{"acc": 1e999}',
    "bool": '{"acc": false}',
    "null": '{"acc": null}',
    "list": "[0.9]",
    "deep": '{"a": ' * 10000 + "1" + "}" * 10000,
    "not-json": "acc = 0.9",
}


def test_hostile_metrics_files(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    before = sh.git("rev-parse", "HEAD", cwd=repo).stdout
    for case, text in METRICS_FILES.items():
        (repo / f"{case}.json").write_text(text)
        r = sh.gm("commit", "-m", "x", "--metrics", f"{case}.json", cwd=repo, check=False)
        _refused(r, f"{case}.json")
    assert sh.git("rev-parse", "HEAD", cwd=repo).stdout == before, "a commit was made anyway"
    # Committed by plain git: the post-commit hook reports, never fails the commit.
    for case in ("nan", "deep", "not-json"):
        (repo / "metrics.json").write_text(METRICS_FILES[case])
        sh.git("add", "metrics.json", cwd=repo)
        r = sh.git("commit", "-qm", f"plain {case}", cwd=repo)
        assert "Traceback" not in r.stderr
        assert sh.gm("metrics", cwd=repo, check=False).returncode == 1
    for value in ("nan", "inf", "-inf", "true", "abc", "1e999"):
        r = sh.gm("commit", "-m", "x", "--metric", f"acc={value}", cwd=repo, check=False)
        _refused(r, "acc")
    sentinel.check()


# -- config ---------------------------------------------------------------------------

CONFIGS = {
    "garbage": "this is [not toml",
    "metrics-files-int": "metrics-files = 3\n",
    "metrics-files-outside": 'metrics-files = ["../outside/keep.txt"]\n',
    "metrics-files-absolute": 'metrics-files = ["ABS"]\n',
    "release-not-table": "release = 5\n",
    "tags-int": "[release]\ntags = 5\n",
    "require-string": '[release]\nrequire-metrics = "yes"\n',
    "gate-int": "gate = 3\n",
    "gate-rule-string": '[gate]\nacc = "higher"\n',
    "direction": '[gate.acc]\ndirection = "sideways"\n',
    "tolerance-string": '[gate.acc]\ntolerance = "0.1"\n',
    "tolerance-nan": "[gate.acc]\ntolerance = nan\n",
    "tolerance-inf": "[gate.acc]\ntolerance = inf\n",
    "tolerance-negative": "[gate.acc]\ntolerance = -1\n",
    "tolerance-bool": "[gate.acc]\ntolerance = true\n",
    "significance": "[gate.acc]\nsignificance = 2\n",
    "binary": "\x00\x01\x02",
}


def test_hostile_config(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    write_bytes(repo / "good.bin", 1000)
    sh.gm("commit", "good.bin", "-m", "good", "--metric", "acc=0.5", cwd=repo)
    for case, text in CONFIGS.items():
        text = text.replace("ABS", str(sentinel.outside / "keep.txt"))
        (repo / ".gitmodel.toml").write_text(text)
        r = sh.gm("commit", "-m", "reads the config", cwd=repo, check=False)
        _refused(r, ".gitmodel.toml")
        if case in ("garbage", "gate-int", "direction", "tolerance-nan"):
            _no_crash(sh.gm("check", cwd=repo, check=False))
        # Plain git runs the hooks, which read the config: they report, never crash.
        (repo / "x.txt").write_text(case)
        sh.git("add", "x.txt", cwd=repo)
        r = sh.git("commit", "-qm", f"plain {case}", cwd=repo, check=False)
        assert "Traceback" not in r.stderr, (case, r.stderr)
    for args in (["release", "v1.0.0", "-m", "r"], ["log"], ["status"]):
        _no_crash(sh.gm(*args, cwd=repo, check=False))
    r = sh.git("tag", "v2.0.0", cwd=repo, check=False)
    assert "Traceback" not in r.stderr
    sentinel.check()


def test_hostile_dvc_config(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    (repo / ".dvc" / "config").write_text("[cache\ntype = teleport\n")
    write_bytes(repo / "m.bin", 1000)
    _refused(sh.gm("add", "m.bin", cwd=repo, check=False), ".dvc/config")
    (repo / ".dvc" / "config").write_text("[cache]\ntype = teleport\n")
    _refused(sh.gm("add", "m.bin", cwd=repo, check=False), "teleport")
    assert not (repo / "m.bin.dvc").exists()
    sentinel.check()


# -- no code from the repository runs ---------------------------------------------------


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_never_loaded(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    (repo / "model.pkl").write_bytes(pickle.dumps(_Exploit(str(sentinel.pwned))))
    sh.gm("commit", "model.pkl", "-m", "model", "--metric", "acc=0.9", cwd=repo)
    (repo / "model.pkl").unlink()
    for args in (["checkout"], ["status"], ["fsck"], ["log"], ["diff"], ["metrics"], ["check"]):
        _no_crash(sh.gm(*args, cwd=repo, check=False))
    sh.git("checkout", "-q", "HEAD~1", cwd=repo)
    sh.git("checkout", "-q", "-", cwd=repo)
    sentinel.check()


def test_the_package_never_unpickles_or_shells_out() -> None:
    """Static: no pickle/joblib/torch loading, no shell, no eval, only safe YAML loaders."""
    forbidden = re.compile(
        r"pickle\.loads?\(|joblib\.load|torch\.load|dill\.|cloudpickle|shell=True|os\.system|"
        r"os\.popen|\beval\(|\bexec\(|yaml\.unsafe_load|yaml\.full_load|Loader=yaml\.Loader|"
        r"allow_pickle=True|marshal\.loads"
    )
    hits = []
    for path in PKG.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if forbidden.search(line):
                hits.append(f"{path.relative_to(PKG.parent)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_a_module_in_the_work_tree_is_not_imported_by_hooks(
    repo: Path, sh: Shell, sentinel: Sentinel
) -> None:
    """A committed `gitmodel/` or `yaml.py` must not shadow the real ones in a hook."""
    payload = f"import os\nos.system('touch {sentinel.pwned}')\n"
    (repo / "gitmodel").mkdir()
    (repo / "gitmodel" / "__init__.py").write_text(payload)
    (repo / "gitmodel" / "hooks.py").write_text(payload)
    (repo / "yaml.py").write_text(payload)
    (repo / "metrics.json").write_text('{"acc": 0.7}')
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-qm", "shadowing modules", cwd=repo)  # post-commit hook runs
    sh.git("tag", "v9.9.9", cwd=repo, check=False)  # reference-transaction hook runs
    sh.git("checkout", "-q", "HEAD~1", cwd=repo)  # post-checkout hook runs
    sh.git("checkout", "-q", "-", cwd=repo)
    sh.gm("status", cwd=repo)
    sentinel.check()


SHELL_NAMES = ["$(touch PWNED)", "`touch PWNED`", "a;touch PWNED", "x|touch PWNED"]


def test_shell_metacharacters_in_names(repo: Path, sh: Shell, sentinel: Sentinel) -> None:
    """File, tag and metric names reach the hook shims as data, never as shell code."""
    marker = "pwned_here"
    for i, name in enumerate(SHELL_NAMES):
        name = name.replace("PWNED", marker)
        write_bytes(repo / f"{name}.bin", 1000, seed=i)
        sh.gm("commit", f"{name}.bin", "-m", name, "--metric", f"{name}=1", cwd=repo)
        # Refnames cannot hold spaces; ${IFS} stands in for one.
        tag = f"v1.0.{i}-" + name.replace(" ", "${IFS}")
        r = sh.git("tag", tag, cwd=repo, check=False)
        assert "Traceback" not in r.stderr
    sh.git("checkout", "-q", "HEAD~2", cwd=repo)
    sh.git("checkout", "-q", "-", cwd=repo)
    assert not list(repo.rglob(marker)) and not list(Path.cwd().glob(marker))
    sentinel.check()


def test_server_pre_receive_treats_the_push_as_hostile(
    repo: Path, sh: Shell, sentinel: Sentinel, tmp_path: Path
) -> None:
    """Hostile config, notes and pointers pushed with a release tag: the server judges by
    its own policy, reports in one line, runs nothing and writes nothing outside."""
    server = tmp_path / "server.git"
    sentinel.allowed.append(server)
    sh.git("init", "-q", "--bare", str(server), cwd=tmp_path)
    sh.gm("install", "--server", cwd=server)
    sh.git("remote", "add", "origin", str(server), cwd=repo)
    write_bytes(repo / "good.bin", 1000)
    sh.gm("commit", "good.bin", "-m", "good", "--metric", "acc=0.9", cwd=repo)
    sh.git("push", "-q", "--no-verify", "origin", "HEAD:main", cwd=repo)
    (repo / ".gitmodel.toml").write_text(
        "metrics-files = ['../outside/keep.txt']\n[gate.acc]\n"
        f"tolerance = '$(touch {sentinel.pwned})'\n"
    )
    (repo / "evil.dvc").write_text(_pointer("0" * 32, "../outside/evil.bin"))
    sh.git("add", "-A", cwd=repo)
    sh.git("-c", "core.hooksPath=/dev/null", "commit", "-qm", "hostile", cwd=repo)
    note = '{"metrics": {"acc": NaN}, "x": "$(touch ' + str(sentinel.pwned) + ')"}'
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-m", note, "HEAD", cwd=repo)
    sh.git("-c", "core.hooksPath=/dev/null", "tag", "-a", "v1.0.0", "-m", "release", cwd=repo)
    r = sh.git(
        "push",
        "--no-verify",
        "origin",
        "HEAD:main",
        "v1.0.0",
        "refs/notes/metrics",
        cwd=repo,
        check=False,
    )
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    if r.returncode != 0:
        assert "v1.0.0" in r.stderr, r.stderr  # refused, naming the release
    sentinel.check()
