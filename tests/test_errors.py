"""Bad input: one line on stderr, exit code 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Shell, write_bytes


def snapshot(sh: Shell, repo: Path) -> tuple[str, str, str, list[str]]:
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout
    notes = sh.git("for-each-ref", "refs/notes", cwd=repo).stdout
    status = sh.git("status", "--porcelain", "--ignored", cwd=repo).stdout
    cache = sorted(str(p) for p in (repo / ".dvc").rglob("*") if "cache" in p.parts and p.is_file())
    return head, notes, status, cache


def assert_refused(res: object, code: int = 2) -> None:
    assert res.returncode == code, (res.returncode, res.stderr)  # type: ignore[attr-defined]
    err = res.stderr.strip()  # type: ignore[attr-defined]
    assert len(err.splitlines()) == 1, err
    assert err.startswith("git model: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "name,content,fragment",
    [
        ("metrics.json", "{not json", "malformed JSON"),
        ("metrics.json", '{"acc": "high"}', "not a number"),
        ("metrics.json", '{"acc": NaN}', "malformed JSON"),
        ("metrics.json", '{"acc": Infinity}', "malformed JSON"),
        ("metrics.json", '{"acc": true}', "not a number"),
        ("metrics.json", "[1, 2]", "mapping"),
        ("metrics.yaml", "acc: .nan\n", "not finite"),
        ("metrics.yaml", "acc: [unclosed\n", "malformed YAML"),
        ("metrics.toml", "acc = inf\n", "not finite"),
        ("metrics.toml", "acc = \n", "malformed TOML"),
    ],
)
def test_bad_metrics_file(sh: Shell, repo: Path, name: str, content: str, fragment: str) -> None:
    write_bytes(repo / "model.pkl", 1000)
    (repo / name).write_text(content)
    before = snapshot(sh, repo)
    res = sh.gm("commit", "model.pkl", "-m", "x", "--metrics", name, cwd=repo, check=False)
    assert_refused(res)
    assert fragment in res.stderr
    assert snapshot(sh, repo) == before
    assert not (repo / "model.pkl.dvc").exists()


@pytest.mark.parametrize("arg", ["acc=abc", "acc=nan", "acc=inf", "acc", "=1"])
def test_bad_metric_argument(sh: Shell, repo: Path, arg: str) -> None:
    write_bytes(repo / "model.pkl", 1000)
    before = snapshot(sh, repo)
    res = sh.gm("commit", "model.pkl", "-m", "x", "--metric", arg, cwd=repo, check=False)
    assert_refused(res)
    assert snapshot(sh, repo) == before


def test_missing_path_and_outside_path(sh: Shell, repo: Path, tmp_path: Path) -> None:
    before = snapshot(sh, repo)
    for args in (["add", "nope.bin"], ["commit", "nope.bin", "-m", "x", "--metric", "a=1"]):
        res = sh.gm(*args, cwd=repo, check=False)
        assert_refused(res)
        assert "no such file" in res.stderr
    outside = write_bytes(tmp_path / "outside.bin", 100)
    res = sh.gm("add", str(outside), cwd=repo, check=False)
    assert_refused(res)
    assert "outside the repository" in res.stderr
    res = sh.gm("add", "../outside.bin", cwd=repo, check=False)
    assert_refused(res)
    assert snapshot(sh, repo) == before


def test_path_already_tracked_by_git(sh: Shell, repo: Path) -> None:
    res = sh.gm("add", "README.md", cwd=repo, check=False)
    assert_refused(res)
    assert "already tracked by git" in res.stderr


def test_outside_a_git_repository(sh: Shell, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    write_bytes(plain / "m.bin", 10)
    for args in (
        ["init"],
        ["add", "m.bin"],
        ["status"],
        ["log"],
        ["metrics"],
        ["commit", "m.bin", "-m", "x"],
    ):
        res = sh.gm(*args, cwd=plain, check=False, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
        assert_refused(res)
        assert "not a git repository" in res.stderr
    assert sorted(p.name for p in plain.iterdir()) == ["m.bin"]


def test_unknown_revision_and_usage(sh: Shell, repo: Path) -> None:
    assert_refused(sh.gm("metrics", "no-such-rev", cwd=repo, check=False))
    assert_refused(sh.gm("diff", "no-such-rev", cwd=repo, check=False))
    assert_refused(sh.gm("log", "nope..HEAD", cwd=repo, check=False))
    assert_refused(sh.gm("checkout", "no-such-rev", cwd=repo, check=False))
    assert_refused(sh.gm("commit", "-m", "x", "--bogus", cwd=repo, check=False))
    assert_refused(sh.gm("no-such-verb", cwd=repo, check=False))


def test_metrics_on_commit_without_note_exits_1(sh: Shell, repo: Path) -> None:
    res = sh.gm("metrics", cwd=repo, check=False)
    assert_refused(res, code=1)
    assert "no metrics note" in res.stderr


def test_a_pointer_blob_git_lacks_is_one_line(sh: Shell, repo: Path, tmp_path: Path) -> None:
    """A commit whose pointer blob is gone from the object database (a damaged or shallow
    copy): the pointers of that commit are read through the one git runner, and what
    git cannot give is one line with exit 2, not a traceback (exit 3)."""
    write_bytes(repo / "w.bin", 1000)
    sh.gm("commit", "w.bin", "-m", "weights", "--metric", "acc=0.5", cwd=repo)
    blob = sh.git("rev-parse", "HEAD:w.bin.dvc", cwd=repo).stdout.strip()
    loose = repo / ".git" / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.unlink()
    for args in (["diff", "HEAD~1", "HEAD"], ["checkout", "HEAD"]):
        r = sh.gm(*args, cwd=repo, check=False)
        assert_refused(r)
        assert blob in r.stderr, r.stderr

    from gitmodel.git import GitFailed, read_blobs

    with pytest.raises(GitFailed):  # git itself fails: not a repository
        read_blobs([blob], tmp_path)
