"""gitmodel.remote: the record of objects known to be on a remote, and its generation."""

from __future__ import annotations

from pathlib import Path

from gitmodel.remote import append_record, read_record


def test_a_record_is_kept_only_under_the_generation_it_was_made_under(tmp_path: Path) -> None:
    path = tmp_path / "remotes" / "key.present"
    assert read_record(path) == ("", set())
    append_record(path, ["b" * 32, "a" * 32])  # a remote no gc ever ran on
    append_record(path, ["c" * 32], "")
    assert read_record(path) == ("", {"a" * 32, "b" * 32, "c" * 32})
    # a remote gc ran: what the old record names may be gone, so it is replaced
    append_record(path, ["d" * 32], "g1")
    assert read_record(path) == ("g1", {"d" * 32})
    append_record(path, ["e" * 32], "g1")
    append_record(path, [], "g1")
    assert read_record(path) == ("g1", {"d" * 32, "e" * 32})
    append_record(path, [], "g2")  # nothing confirmed under g2 yet
    assert read_record(path) == ("g2", set())
    append_record(None, ["f" * 32], "g2")  # no remote url: nothing to remember


def test_an_unreadable_record_is_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "key.present"
    path.write_bytes(b"\xff\xfe not text")
    assert read_record(path) == ("", set())
