"""Metrics notes in `refs/notes/metrics`: one JSON object per commit.

Reads go through pygit2, which reads the notes tree in bulk (one object walk for 5,000
commits instead of 5,000 `git notes show` processes). Writes go through `git notes`, so
git itself takes the ref lock and keeps the notes tree's fan-out right.

Note schema (version 1)::

    {
      "schema": 1,
      "metrics": {"accuracy": 0.97, "loss.val": 0.08},     # flat name -> finite number
      "weights": {"model.pkl": {"md5": "...", "size": 123}},  # tracked weights at this commit
      "models": {"NAME": {"metrics": {...}}},               # optional per-model metrics
      "params": {...},                                      # optional, free-form
      "created": "2026-11-29T22:30:00Z",
      "source": "git-model commit" | "post-commit" | "manual",
      "tool": "gitmodel 0.1.0"
    }
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.git import run_git, stream_git

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

NOTES_REF = "refs/notes/metrics"
SCHEMA_VERSION = 1
MAX_NOTE_BYTES = 16 * 1024 * 1024


class NoteError(GitModelError):
    pass


def parse_note(text: str | bytes, commit: str) -> dict[str, Any]:
    """Parse a note (untrusted input); a one-line NoteError when it is not a JSON object."""
    if len(text) > MAX_NOTE_BYTES:
        raise NoteError(f"note on {commit[:12]} is too large")
    try:
        # One decoder for every note: `git model log` parses thousands of them.
        if isinstance(text, str):
            data = _DECODER.decode(text)
        else:
            data = json.loads(text, parse_constant=_reject)
    except (ValueError, RecursionError):
        raise NoteError(f"note on {commit[:12]} is not valid JSON") from None
    if not isinstance(data, dict):
        raise NoteError(f"note on {commit[:12]} is not a JSON object")
    return data


def _reject(token: str) -> None:
    raise ValueError(token)


_DECODER = json.JSONDecoder(parse_constant=_reject)


def log_with_notes(
    cwd: str | os.PathLike[str],
    fields: Sequence[str],
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> Iterator[list[bytes]]:
    """For each commit `git log ARGS` lists: its `fields` (format placeholders such as %H,
    which must not print NUL) and, last, its raw metrics note, streamed as git writes them.

    A note is untrusted and may hold any byte, so each record starts with a token drawn
    for this run: no note can forge a record of its own. Raises GitFailed when git fails.
    """
    token = f"\x1egitmodel-{os.urandom(8).hex()}\x1f"
    form = token + "".join(f"{f}%x00" for f in fields) + "%N"
    command = ["log", f"--notes={NOTES_REF}", f"--format={form}", *args, "--"]
    for record in stream_git(command, cwd, token.encode(), env):
        parts = record.split(b"\0", len(fields))
        if len(parts) == len(fields) + 1:  # not what precedes the first token
            yield parts


def render_note(note: dict[str, Any]) -> str:
    return json.dumps(note, indent=2, sort_keys=True) + "\n"


class Notes:
    """The metrics notes of one repository."""

    def __init__(self, git_dir: Path, cwd: Path, ref: str = NOTES_REF) -> None:
        self.git_dir = git_dir
        self.cwd = cwd
        self.ref = ref
        self._repo: Any = None

    @property
    def repo(self) -> Any:
        if self._repo is None:
            import pygit2

            self._repo = pygit2.Repository(str(self.git_dir))
        return self._repo

    def read_raw(self, commit: str) -> bytes | None:
        import pygit2

        try:
            note = self.repo.lookup_note(commit, self.ref)
        except (KeyError, pygit2.GitError):
            return None
        blob = self.repo[note.id]
        return bytes(blob.data)

    def read(self, commit: str) -> dict[str, Any] | None:
        raw = self.read_raw(commit)
        return None if raw is None else parse_note(raw, commit)

    def note_map(self) -> dict[str, Any]:
        """annotated commit sha -> note blob id, for every note (one pass over the tree)."""
        import pygit2

        try:
            self.repo.references[self.ref]
        except (KeyError, pygit2.InvalidSpecError):
            return {}
        return {str(n.annotated_id): n.id for n in self.repo.notes(self.ref)}

    def read_many(self, commits: Iterable[str]) -> dict[str, dict[str, Any] | NoteError]:
        """Notes for many commits at once; a bad note maps to its NoteError."""
        index = self.note_map()
        out: dict[str, dict[str, Any] | NoteError] = {}
        for commit in commits:
            blob_id = index.get(commit)
            if blob_id is None:
                continue
            try:
                out[commit] = parse_note(bytes(self.repo[blob_id].data), commit)
            except NoteError as exc:
                out[commit] = exc
        return out

    def write(self, commit: str, note: dict[str, Any]) -> None:
        """Attach note to commit, replacing any earlier note on it."""
        run_git(
            ["notes", f"--ref={self.ref}", "add", "-f", "-F", "-", commit],
            cwd=self.cwd,
            input=render_note(note),
            env={"GIT_NOTES_REF": self.ref, "GITMODEL_HOOK_SKIP": "1"},
            retry_lock=True,
        )
        self._repo = None  # pygit2 caches refs; reopen to see the new note
