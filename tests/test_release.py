"""Releasing through the Python API (`Repo.release`, gitmodel.release), with the real git:
the same gate, tag and override record as `git model release`, returned as a record,
refusals raised, nothing printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Shell, write_bytes


def _commit(sh: Shell, repo: Path, seed: int, accuracy: float) -> str:
    write_bytes(repo / "model.bin", 4000, seed=seed)
    sh.gm(
        "commit", "model.bin", "-m", f"model {seed}", "--metric", f"accuracy={accuracy}", cwd=repo
    )
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_release_passes_refuses_and_records_an_override(
    sh: Shell, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gitmodel import Repo
    from gitmodel.release import Released, ReleaseRefused

    first = _commit(sh, repo, 1, 0.90)
    r = Repo(repo)
    done = r.release("v1.0.0", message="first release")
    assert isinstance(done, Released)
    assert (done.tag, done.commit, done.override) == ("v1.0.0", first, None)
    assert done.verdict.passed
    assert sh.git("cat-file", "-t", "v1.0.0", cwd=repo).stdout.strip() == "tag"  # annotated
    body = sh.git("tag", "-l", "--format=%(contents)", "v1.0.0", cwd=repo).stdout
    assert body.startswith("first release") and "accuracy = 0.9" in body
    assert json.loads(json.dumps(done.to_json()))["tag"] == "v1.0.0"

    # Worse than v1.0.0: refused, with the verdict on the exception, and no tag made.
    worse = _commit(sh, repo, 2, 0.80)
    r = Repo(repo)
    with pytest.raises(ReleaseRefused) as refused:
        r.release(bump="minor")
    assert refused.value.exit_code == 1 and "v1.1.0" in refused.value.message
    assert not refused.value.verdict.passed and "accuracy" in refused.value.verdict.text()
    assert sh.git("tag", "-l", "v1.1.0", cwd=repo).stdout == ""

    # The same, with a reason: released, and the reason is in the note every door reads.
    said: list[str] = []
    done = r.release(bump="minor", allow_regression="  new data distribution  ", warn=said.append)
    assert (done.tag, done.commit, done.override) == ("v1.1.0", worse, "new data distribution")
    note = json.loads(sh.git("notes", "--ref=metrics", "show", worse, cwd=repo).stdout)
    assert [(o["tag"], o["reason"]) for o in note["overrides"]] == [
        ("v1.1.0", "new data distribution")
    ]
    assert note["metrics"] == {"accuracy": 0.8}  # the commit's own note, kept
    assert sh.gm("check", "v1.1.0", cwd=repo, check=False).returncode == 0  # the doors agree
    assert capsys.readouterr() == ("", "")  # the library never prints


def test_release_bad_input(sh: Shell, repo: Path) -> None:
    from gitmodel import GitModelError, Repo

    _commit(sh, repo, 1, 0.90)
    r = Repo(repo)
    for kwargs, fragment in (
        ({"version": "v1..0"}, "not a valid tag name"),
        ({"version": "-v1"}, "not a valid tag name"),
        ({"version": "release-1"}, "not a release tag"),
        ({}, "give either VERSION"),
        ({"version": "v1.0.0", "bump": "patch"}, "give either VERSION"),
        ({"version": "v1.0.0", "allow_regression": " "}, "needs a reason"),
        ({"version": "v1.0.0", "rev": "no-such-rev"}, "unknown revision"),
    ):
        with pytest.raises(GitModelError) as bad:
            r.release(**kwargs)  # type: ignore[arg-type]
        assert bad.value.exit_code == 2 and fragment in bad.value.message, (kwargs, bad.value)
    assert sh.git("tag", "-l", cwd=repo).stdout == ""
    r.release("v1.0.0")
    with pytest.raises(GitModelError, match="already exists"):
        r.release("v1.0.0")
