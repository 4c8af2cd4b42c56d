"""Metrics notes in `refs/notes/metrics`: one JSON object per commit.

One reading interface (`NoteReader`: has, read, read_text, read_many), two backends:

- `Notes`, the bulk backend: pygit2 reads the notes tree in one object walk (5,000 notes
  in one pass instead of 5,000 `git notes show` processes). It also writes, through `git
  notes`, so git itself takes the ref lock and keeps the notes tree's fan-out right.
- `PlumbingNotes`, the quarantine-safe backend: the notes of one notes commit, read with
  `git ls-tree` and `git cat-file` and the environment git gave the hook, replace objects
  off. A server's pre-receive runs with the pushed objects in git's quarantine directory
  (GIT_QUARANTINE_PATH, GIT_ALTERNATE_OBJECT_DIRECTORIES), which only git itself sees;
  it reads a pushed notes commit that no ref names yet, and costs no pygit2 import in a
  `git tag` hook.

`log_with_notes` streams `git log` with each commit's raw note (`%N`) in one process:
the history views (log, attachments) read fields and notes in log order without an
index of every note. Every backend parses a note with `parse_note` (one size limit, one
JSON decoder, one error).

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
from gitmodel.git import TRUTH_ENV, run_git, stream_git

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any, Protocol

    class NoteReader(Protocol):
        """How every module reads metrics notes (either backend below)."""

        def has(self, commit: str) -> bool: ...

        def read(self, commit: str) -> dict[str, Any] | None:
            """The note of commit, None if it has none; NoteError when it is broken."""
            ...

        def read_text(self, commit: str) -> str | None:
            """The note's raw text (git may have concatenated several), None if none."""
            ...

        def read_many(self, commits: Iterable[str]) -> dict[str, dict[str, Any] | NoteError]:
            """The notes of many commits at once; a broken note maps to its NoteError."""
            ...


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

    def has(self, commit: str) -> bool:
        return self.read_raw(commit) is not None

    def read(self, commit: str) -> dict[str, Any] | None:
        raw = self.read_raw(commit)
        return None if raw is None else parse_note(raw, commit)

    def read_text(self, commit: str) -> str | None:
        raw = self.read_raw(commit)
        return None if raw is None else raw.decode("utf-8", "replace")

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
            env={"GIT_NOTES_REF": self.ref},
            retry_lock=True,
        )
        self._repo = None  # pygit2 caches refs; reopen to see the new note


class PlumbingNotes:
    """The notes of one notes commit, read with git plumbing (quarantine-safe; see above)."""

    def __init__(self, cwd: Path, notes_commit: str | None) -> None:
        self.cwd = cwd
        self.notes_commit = notes_commit
        self._index: dict[str, tuple[str, int]] | None = None

    @classmethod
    def from_ref(cls, cwd: Path, ref: str = NOTES_REF) -> PlumbingNotes:
        proc = run_git(
            ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=cwd,
            check=False,
            env=TRUTH_ENV,
        )
        return cls(cwd, proc.stdout.strip() if proc.returncode == 0 else None)

    def _load(self) -> dict[str, tuple[str, int]]:
        if self._index is None:
            self._index = {}
            if self.notes_commit:
                proc = run_git(
                    ["ls-tree", "-r", "-l", "-z", self.notes_commit],
                    cwd=self.cwd,
                    check=False,
                    env=TRUTH_ENV,
                )
                for entry in proc.stdout.split("\0") if proc.returncode == 0 else []:
                    meta, _, path = entry.partition("\t")
                    parts = meta.split()
                    key = path.replace("/", "")
                    if len(parts) == 4 and parts[1] == "blob" and len(key) in (40, 64):
                        size = int(parts[3]) if parts[3].isdigit() else MAX_NOTE_BYTES + 1
                        self._index[key.lower()] = (parts[2], size)
        return self._index

    def has(self, commit: str) -> bool:
        return commit in self._load()

    def read(self, commit: str) -> dict[str, Any] | None:
        """The note of commit, None if it has none; NoteError when it is not a JSON object."""
        entry = self._load().get(commit)
        if entry is None:
            return None
        oid, size = entry
        if size > MAX_NOTE_BYTES:
            raise NoteError(f"note on {commit[:12]} is too large")
        text = self._blob(oid)
        return None if text is None else parse_note(text, commit)

    def read_text(self, commit: str) -> str | None:
        entry = self._load().get(commit)
        return None if entry is None else self._blob(entry[0])

    def read_many(self, commits: Iterable[str]) -> dict[str, dict[str, Any] | NoteError]:
        """The notes of many commits through one `git cat-file --batch`: the drift guard
        and `releases` read every release's note (1,000 releases: 15 s one process each)."""
        index = self._load()
        out: dict[str, dict[str, Any] | NoteError] = {}
        wanted: list[tuple[str, str]] = []
        for commit in dict.fromkeys(commits):
            entry = index.get(commit)
            if entry is None:
                continue
            if entry[1] > MAX_NOTE_BYTES:
                out[commit] = NoteError(f"note on {commit[:12]} is too large")
            else:
                wanted.append((commit, entry[0]))
        blobs = self._blobs([oid for _, oid in wanted])
        for commit, oid in wanted:
            data = blobs.get(oid)
            if data is None:
                continue
            try:
                out[commit] = parse_note(data, commit)
            except NoteError as exc:
                out[commit] = exc
        return out

    def _blobs(self, oids: Sequence[str]) -> dict[str, bytes]:
        """oid -> content of each blob that exists, in one `git cat-file --batch`."""
        if not oids:
            return {}
        import subprocess

        from gitmodel.git import git_env

        unique = list(dict.fromkeys(oids))
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.cwd,
            input=("\n".join(unique) + "\n").encode(),
            capture_output=True,
            env=git_env(TRUTH_ENV),
            check=False,
        )
        data, pos, out = proc.stdout, 0, {}
        for oid in unique:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            header = data[pos:nl].split()
            pos = nl + 1
            if len(header) != 3 or not header[2].isdigit():
                continue  # "<oid> missing" (or ambiguous): no content follows
            size = int(header[2])
            if header[1] == b"blob":
                out[oid] = data[pos : pos + size]
            pos += size + 1
        return out

    def _blob(self, oid: str) -> str | None:
        proc = run_git(["cat-file", "blob", oid], cwd=self.cwd, check=False, env=TRUTH_ENV)
        return proc.stdout if proc.returncode == 0 else None


def first_note(readers: Sequence[NoteReader], commit: str) -> dict[str, Any] | None:
    """The note of commit from the first reader that has one (a server reads the notes it
    accepted before the pushed ones, or the other way round)."""
    for reader in readers:
        if reader.has(commit):
            return reader.read(commit)
    return None
