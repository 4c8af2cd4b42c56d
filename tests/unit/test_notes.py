"""gitmodel.notes: one JSON object per commit in refs/notes/metrics; a note is hostile."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitmodel.notes import (
    MAX_NOTE_BYTES,
    NOTES_REF,
    NoteError,
    Notes,
    PlumbingNotes,
    first_note,
    log_with_notes,
    parse_note,
    render_note,
)

from .conftest import commit_file, git


def _notes(repo: Path) -> Notes:
    return Notes(repo / ".git", repo)


def _plumbing(repo: Path) -> PlumbingNotes:
    return PlumbingNotes.from_ref(repo)


# Both backends of the one reading interface must read every note alike: the bulk one
# (pygit2) on a workstation, the plumbing one in hooks and on a server.
BACKENDS = {"bulk": _notes, "plumbing": _plumbing}


@pytest.fixture(params=sorted(BACKENDS))
def reader(request: pytest.FixtureRequest) -> Callable[[Path], Any]:
    return BACKENDS[request.param]


def _raw_note(repo: Path, commit: str, text: str) -> None:
    """A note as anyone can write it (another tool, a hostile push), not through Notes."""
    git(repo, "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit, input=text)


def test_write_then_read(git_repo: Path) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    note = {"schema": 1, "metrics": {"accuracy": 0.97, "loss.val": 0.08}}
    notes = _notes(git_repo)
    notes.write(head, note)
    assert notes.read(head) == note
    shown = git(git_repo, "notes", f"--ref={NOTES_REF}", "show", head)
    assert json.loads(shown) == note  # what git itself shows
    assert shown == render_note(note)


def test_write_replaces_and_the_same_object_sees_it(git_repo: Path) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    notes = _notes(git_repo)
    notes.write(head, {"metrics": {"a": 1}})
    assert notes.read(head) == {"metrics": {"a": 1}}
    notes.write(head, {"metrics": {"a": 2}})
    assert notes.read(head) == {"metrics": {"a": 2}}


def test_a_commit_without_a_note(git_repo: Path, reader: Callable[[Path], Any]) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    notes = reader(git_repo)
    assert notes.read(head) is None  # no notes ref at all
    assert not notes.has(head)
    assert notes.read_many([head]) == {}
    assert _notes(git_repo).note_map() == {}
    other = commit_file(git_repo, "x.txt", "x")
    _notes(git_repo).write(other, {"metrics": {}})
    assert reader(git_repo).read(head) is None
    assert reader(git_repo).read("f" * 40) is None  # not even a commit
    assert reader(git_repo).has(other)


def test_only_the_metrics_ref_is_read(git_repo: Path, reader: Callable[[Path], Any]) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "notes", "add", "-m", '{"metrics": {"a": 1}}', head)  # refs/notes/commits
    assert reader(git_repo).read(head) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "is not valid JSON"),
        ('{"metrics": {"a": NaN}}', "is not valid JSON"),
        ('{"a": 1}{"b": 2}', "is not valid JSON"),  # two notes concatenated by a rewrite
        ("[1, 2]", "is not a JSON object"),
        ('"text"', "is not a JSON object"),
        ("[" * 100_000, "is not valid JSON"),  # no RecursionError traceback
    ],
)
def test_a_malformed_note_is_one_line(
    git_repo: Path, reader: Callable[[Path], Any], text: str, fragment: str
) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    _raw_note(git_repo, head, text)
    with pytest.raises(NoteError) as caught:
        reader(git_repo).read(head)
    assert caught.value.message == f"note on {head[:12]} {fragment}"
    assert reader(git_repo).read_text(head) == text + ("" if text.endswith("\n") else "\n")


def test_a_note_too_large_is_refused_before_parsing() -> None:
    with pytest.raises(NoteError, match="too large"):
        parse_note(b" " * (MAX_NOTE_BYTES + 1), "a" * 40)
    assert parse_note(b'{"a": 1}', "a" * 40) == {"a": 1}  # bytes and text alike
    assert parse_note('{"a": 1}', "a" * 40) == {"a": 1}


def test_a_bulk_read_keeps_going_past_a_bad_note(
    git_repo: Path, reader: Callable[[Path], Any]
) -> None:
    commits = [commit_file(git_repo, f"f{i}.txt", str(i), f"c{i}") for i in range(5)]
    notes = _notes(git_repo)
    for i, commit in enumerate(commits):
        if i != 2:
            notes.write(commit, {"metrics": {"step": i}})
    _raw_note(git_repo, commits[2], "{broken")
    unnoted = git(git_repo, "rev-parse", "HEAD~5").strip()
    found = reader(git_repo).read_many([*commits, unnoted])
    assert set(found) == set(commits)  # the commit without a note is simply absent
    assert isinstance(found[commits[2]], NoteError)
    for i, commit in enumerate(commits):
        if i != 2:
            assert found[commit] == {"metrics": {"step": i}}
    assert set(_notes(git_repo).note_map()) == set(commits)


def test_many_notes_under_git_s_fan_out(git_repo: Path, reader: Callable[[Path], Any]) -> None:
    # git splits a big notes tree into fan-out directories (ab/cdef...); reads see through it
    count = 300
    commits = "".join(
        f"commit refs/heads/many\nmark :{i + 1}\ncommitter T <t@e> {i} +0000\ndata {len(str(i))}\n{i}\n"
        + (f"from :{i}\n" if i else "")
        + "\n"
        for i in range(count)
    )
    notes = "".join(
        f'N inline :{i + 1}\ndata 21\n{{"metrics": {{"x": 1}}}}\n' for i in range(count)
    )
    git(
        git_repo,
        "fast-import",
        "--quiet",
        input=f"{commits}commit {NOTES_REF}\ncommitter T <t@e> 0 +0000\ndata 0\n{notes}\n",
    )
    ids = git(git_repo, "rev-list", "refs/heads/many").split()
    assert len(ids) == count
    assert "tree" in git(git_repo, "ls-tree", NOTES_REF)  # fanned out
    found = reader(git_repo).read_many(ids)
    assert len(found) == count
    assert all(v == {"metrics": {"x": 1}} for v in found.values())


def test_log_with_notes_streams_each_commit_and_its_raw_note(git_repo: Path) -> None:
    plain = git(git_repo, "rev-parse", "HEAD").strip()
    noted = commit_file(git_repo, "a.txt", "a")
    hostile = commit_file(git_repo, "b.txt", "b")
    _notes(git_repo).write(noted, {"metrics": {"a": 1}})
    # A note that tries to forge records: separators, NULs and a fake commit id.
    forged = f"\x1egitmodel-0000000000000000\x1f{plain}\x00\x00{{}}\n\x00\x1e\x1f"
    _raw_note(git_repo, hostile, forged)
    records = list(log_with_notes(git_repo, ["%H"], []))
    assert [r[0].decode() for r in records] == [hostile, noted, plain]
    assert json.loads(records[1][1]) == {"metrics": {"a": 1}}
    assert records[2][1].strip() == b""
    assert b"gitmodel-0000000000000000" in records[0][1]  # the forgery stays inside its note


def test_a_replace_ref_cannot_swap_a_note(git_repo: Path, reader: Callable[[Path], Any]) -> None:
    # refs/replace/* arrives with a fetch or a push: a forged note blob must not be read
    head = git(git_repo, "rev-parse", "HEAD").strip()
    _notes(git_repo).write(head, {"metrics": {"accuracy": 0.5}})
    blob = git(git_repo, "rev-parse", f"{NOTES_REF}:{head}").strip()
    forged = git(
        git_repo, "hash-object", "-w", "--stdin", input='{"metrics": {"accuracy": 0.99}}\n'
    ).strip()
    git(git_repo, "replace", blob, forged)
    assert reader(git_repo).read(head) == {"metrics": {"accuracy": 0.5}}


def test_plumbing_reads_a_notes_commit_no_ref_names(git_repo: Path) -> None:
    # pre-receive: the pushed notes commit is only in the quarantine, named by no ref yet
    head = git(git_repo, "rev-parse", "HEAD").strip()
    _notes(git_repo).write(head, {"metrics": {"a": 1}})
    pushed = git(git_repo, "rev-parse", NOTES_REF).strip()
    git(git_repo, "update-ref", "-d", NOTES_REF)
    assert _plumbing(git_repo).read(head) is None  # the ref is gone
    assert PlumbingNotes(git_repo, pushed).read(head) == {"metrics": {"a": 1}}
    assert PlumbingNotes(git_repo, None).read_many([head]) == {}


def test_first_note_asks_readers_in_order(git_repo: Path) -> None:
    head = git(git_repo, "rev-parse", "HEAD").strip()
    _notes(git_repo).write(head, {"metrics": {"a": 1}})
    accepted = PlumbingNotes(git_repo, git(git_repo, "rev-parse", NOTES_REF).strip())
    _notes(git_repo).write(head, {"metrics": {"a": 2}})
    pushed = _plumbing(git_repo)
    empty = PlumbingNotes(git_repo, None)
    assert first_note([empty, accepted, pushed], head) == {"metrics": {"a": 1}}
    assert first_note([pushed, accepted], head) == {"metrics": {"a": 2}}
    assert first_note([empty], head) is None
