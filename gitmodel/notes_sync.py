"""Carry `refs/notes/metrics` between clones without losing a note.

The rule for fetching: every git remote gets the fetch refspec
``+refs/notes/metrics*:refs/notes/remotes/<remote>/metrics*`` (added by `git model init`,
`git model remote add` and `git model fetch`), so a plain `git fetch` / `git pull` brings
the remote's notes into a tracking ref without touching the local notes. `merge_fetched`
(run by `git model fetch`/`pull`/`push`, by the pre-push hook, and by the post-merge
hook when installed) then merges every tracking ref into `refs/notes/metrics` with a real
two-parent merge commit, so both histories of notes stay reachable.

Merging two notes for the same commit (`merge_note`), three-way against the notes' merge
base: a key changed on one side only takes that side's value; keys present on one side
only are kept; nested objects (``metrics``, ``models``, ``params``...) merge key by key.
When both sides set one key to different values, the note with the later ``created``
timestamp wins (the newer measurement); equal timestamps fall back to the greater
canonical JSON text, so every clone resolves the same conflict the same way whichever
side it merges from. The losing value is never dropped: it is appended to the note's
``history`` list as ``{"path": [...], "value": ..., "created": ..., "source": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.notes import NOTES_REF, NoteError, parse_note, render_note

ZERO = "0" * 40
# Keys that describe the note itself: the winner's values are taken without a history entry.
_BOOKKEEPING = frozenset({"created", "tool", "source", "schema"})
_HISTORY = "history"
_MISSING: Any = object()
_MERGE_MESSAGE = "Notes merged by 'git model'"
# Never ask for a password in the middle of a sync: fail, and say why. (Our own hooks need
# no guard here: the reference-transaction shim passes only tag updates to Python, and the
# notes push runs with --no-verify.)
_QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0"}


class NotesSyncError(GitModelError):
    pass


@dataclass
class MergeOutcome:
    """What merging another notes commit into the local notes did."""

    action: str  # "up-to-date", "fast-forward", "merged", "created"
    commit: str | None = None
    conflicts: list[str] = field(default_factory=list)  # annotated commits with a conflict


# -- merging one note ---------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _winner_is_ours(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    key_ours = (str(ours.get("created", "")), _canonical(ours))
    key_theirs = (str(theirs.get("created", "")), _canonical(theirs))
    return key_ours >= key_theirs


def merge_note(
    base: dict[str, Any] | None, ours: dict[str, Any], theirs: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """(merged note, whether a real conflict was resolved) for two notes on one commit."""
    ours_wins = _winner_is_ours(ours, theirs)
    loser = theirs if ours_wins else ours
    history: list[Any] = []
    for side in (ours, theirs):
        if isinstance(side.get(_HISTORY), list):
            history += side[_HISTORY]
    lost: list[dict[str, Any]] = []

    def merge(path: list[str], b: Any, o: Any, t: Any) -> Any:
        if o is _MISSING and t is _MISSING:
            return o
        if o is not _MISSING and t is not _MISSING and _canonical(o) == _canonical(t):
            return o
        if b is not _MISSING:
            if o is not _MISSING and _canonical(o) == _canonical(b):
                return t
            if t is not _MISSING and _canonical(t) == _canonical(b):
                return o
        if o is _MISSING:  # added on one side, or deleted on one side and changed on the other
            return t
        if t is _MISSING:
            return o
        if isinstance(o, dict) and isinstance(t, dict):
            bd = b if isinstance(b, dict) else {}
            out: dict[str, Any] = {}
            for key in sorted(set(o) | set(t)):
                value = merge(
                    path + [key], bd.get(key, _MISSING), o.get(key, _MISSING), t.get(key, _MISSING)
                )
                if value is not _MISSING:
                    out[key] = value
            return out
        win, lose = (o, t) if ours_wins else (t, o)
        if not (len(path) == 1 and path[0] in _BOOKKEEPING):
            lost.append(
                {
                    "path": path,
                    "value": lose,
                    "created": loser.get("created"),
                    "source": loser.get("source"),
                }
            )
        return win

    keys = (set(ours) | set(theirs)) - {_HISTORY}
    bd = {k: v for k, v in (base or {}).items() if k != _HISTORY}
    merged: dict[str, Any] = {}
    for key in sorted(keys):
        value = merge(
            [key], bd.get(key, _MISSING), ours.get(key, _MISSING), theirs.get(key, _MISSING)
        )
        if value is not _MISSING:
            merged[key] = value
    unique: dict[str, Any] = {}
    for item in history + lost:
        unique.setdefault(_canonical(item), item)
    if unique:
        merged[_HISTORY] = sorted(
            unique.values(),
            key=lambda h: (str(h.get("created", "")) if isinstance(h, dict) else "", _canonical(h)),
        )
    return merged, bool(lost)


def _merge_note_bytes(
    base: bytes | None, ours: bytes, theirs: bytes, commit: str
) -> tuple[bytes, bool]:
    if ours == theirs:
        return ours, False
    if base is not None and ours == base:
        return theirs, False
    if base is not None and theirs == base:
        return ours, False
    try:
        o = parse_note(ours, commit)
    except NoteError:
        return theirs, False  # a broken note loses to a readable one
    try:
        t = parse_note(theirs, commit)
    except NoteError:
        return ours, False
    b: dict[str, Any] | None = None
    if base is not None:
        try:
            b = parse_note(base, commit)
        except NoteError:
            b = None
    merged, conflict = merge_note(b, o, t)
    return render_note(merged).encode(), conflict


# -- merging notes commits (pygit2) -------------------------------------------------------


def _open(git_dir: Any) -> Any:
    import pygit2

    return pygit2.Repository(str(git_dir))


def _note_entries(repo: Any, commit_id: Any) -> dict[str, Any]:
    """annotated commit sha -> blob id of a notes commit's tree, whatever its fan-out."""
    import pygit2

    entries: dict[str, Any] = {}

    def walk(tree: Any, prefix: str) -> None:
        for entry in tree:
            name = prefix + entry.name
            if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                if len(name) < 40 and re.fullmatch(r"[0-9a-f]+", entry.name):
                    walk(repo[entry.id], name)
            elif re.fullmatch(r"[0-9a-f]{40}", name):
                entries[name] = entry.id

    walk(repo[commit_id].peel(pygit2.Commit).tree, "")
    return entries


def _write_tree(repo: Any, entries: dict[str, Any]) -> Any:
    """A notes tree; fanned out by two hex digits past 256 notes, as git itself does."""
    import pygit2

    if len(entries) <= 256:
        builder = repo.TreeBuilder()
        for name, blob in sorted(entries.items()):
            builder.insert(name, blob, pygit2.GIT_FILEMODE_BLOB)
        return builder.write()
    groups: dict[str, dict[str, Any]] = {}
    for name, blob in entries.items():
        groups.setdefault(name[:2], {})[name[2:]] = blob
    top = repo.TreeBuilder()
    for prefix, sub in sorted(groups.items()):
        builder = repo.TreeBuilder()
        for name, blob in sorted(sub.items()):
            builder.insert(name, blob, pygit2.GIT_FILEMODE_BLOB)
        top.insert(prefix, builder.write(), pygit2.GIT_FILEMODE_TREE)
    return top.write()


def _signature(repo: Any) -> Any:
    import pygit2

    try:
        return repo.default_signature
    except (KeyError, pygit2.GitError):
        return pygit2.Signature("git model", "git-model@localhost")


def _ref_sha(cwd: Any, ref: str) -> str | None:
    proc = run_git(["rev-parse", "--verify", "--quiet", ref + "^{commit}"], cwd=cwd, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def merge_notes_commit(git_dir: Any, cwd: Any, other: str, ref: str = NOTES_REF) -> MergeOutcome:
    """Merge the notes commit `other` into `ref` (a merge commit with both parents)."""
    for _attempt in range(5):
        local = _ref_sha(cwd, ref)
        if local is None:
            _update_ref(cwd, ref, other, ZERO)
            return MergeOutcome("created", other)
        if local == other:
            return MergeOutcome("up-to-date", local)
        repo = _open(git_dir)
        base = repo.merge_base(local, other)
        base_sha = str(base) if base is not None else None
        if base_sha == other:
            return MergeOutcome("up-to-date", local)
        if base_sha == local:
            if _update_ref(cwd, ref, other, local, check=False):
                return MergeOutcome("fast-forward", other)
            continue
        ours = _note_entries(repo, local)
        theirs = _note_entries(repo, other)
        base_entries = _note_entries(repo, base) if base is not None else {}
        merged: dict[str, Any] = {}
        conflicts: list[str] = []
        for commit in sorted(set(ours) | set(theirs)):
            o, t, b = ours.get(commit), theirs.get(commit), base_entries.get(commit)
            if o is not None and t is not None:
                if o == t:
                    merged[commit] = o
                    continue
                data, conflict = _merge_note_bytes(
                    bytes(repo[b].data) if b is not None else None,
                    bytes(repo[o].data),
                    bytes(repo[t].data),
                    commit,
                )
                merged[commit] = repo.create_blob(data)
                if conflict:
                    conflicts.append(commit)
            elif o is not None:
                # Present here only: removed over there if it was in the base unchanged.
                if not (b is not None and b == o):
                    merged[commit] = o
            elif t is not None and not (b is not None and b == t):
                merged[commit] = t
        tree = _write_tree(repo, merged)
        sig = _signature(repo)
        new = repo.create_commit(
            None, sig, sig, _MERGE_MESSAGE + "\n", tree, [repo[local].id, repo[other].id]
        )
        if _update_ref(cwd, ref, str(new), local, check=False):
            return MergeOutcome("merged", str(new), conflicts)
    raise NotesSyncError(f"{ref} keeps changing under the notes merge; try again")


def _update_ref(cwd: Any, ref: str, new: str, old: str, check: bool = True) -> bool:
    # update-ref with the old value is a compare-and-swap: a concurrent note is never lost.
    proc = run_git(
        ["update-ref", "-m", "git model: notes sync", ref, new, old],
        cwd=cwd,
        env=_QUIET_ENV,
        check=False,
    )
    if proc.returncode != 0 and check:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        raise NotesSyncError(f"cannot update {ref}: {last}")
    return proc.returncode == 0


# -- git remotes ---------------------------------------------------------------------------


def git_remotes(cwd: Any) -> list[str]:
    return [r for r in run_git(["remote"], cwd=cwd).stdout.split() if r]


def tracking_ref(remote: str) -> str:
    """Where a git remote's notes are fetched to; a URL (no configured name) gets a hash."""
    if (
        re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", remote)
        and ".." not in remote
        and not remote.endswith(".lock")
    ):
        name = remote
    else:
        name = "url-" + hashlib.sha1(remote.encode()).hexdigest()[:16]
    return f"refs/notes/remotes/{name}/metrics"


def fetch_refspec(remote: str) -> str:
    """`+refs/notes/metrics*:refs/notes/remotes/<remote>/metrics*`.

    A pattern on purpose: git fails a whole `git fetch` when an exact configured refspec
    names a ref the remote lacks (a remote with no notes yet), but a pattern that matches
    nothing is fine. `*` also matches the empty string, so it maps exactly our ref.
    """
    return f"+{NOTES_REF}*:{tracking_ref(remote)}*"


def configure_fetch(cwd: Any, remotes: list[str] | None = None) -> list[str]:
    """Add the notes fetch refspec to each git remote that lacks it; return those changed."""
    changed = []
    for remote in git_remotes(cwd) if remotes is None else remotes:
        key = f"remote.{remote}.fetch"
        current = run_git(["config", "--get-all", key], cwd=cwd, check=False).stdout.split()
        if (
            not current
            and run_git(
                ["config", "--get", f"remote.{remote}.url"], cwd=cwd, check=False
            ).returncode
        ):
            continue  # not a configured remote
        spec = fetch_refspec(remote)
        exact = spec.replace("*", "")
        if exact in current:  # an exact refspec breaks `git fetch` until the remote has notes
            run_git(["config", "--fixed-value", "--unset-all", key, exact], cwd=cwd, check=False)
        if spec not in current:
            run_git(["config", "--add", key, spec], cwd=cwd)
            changed.append(remote)
    return changed


def fetch_notes(cwd: Any, remote: str) -> str | None:
    """Fetch the remote's notes into its tracking ref; None when the remote has none."""
    dest = tracking_ref(remote)
    proc = run_git(
        ["fetch", "-q", "--no-tags", "--no-write-fetch-head", remote, f"+{NOTES_REF}:{dest}"],
        cwd=cwd,
        env=_QUIET_ENV,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if "couldn't find remote ref" in err:
            return None
        last = err.splitlines()[-1] if err else f"exit {proc.returncode}"
        raise NotesSyncError(f"cannot fetch notes from {remote}: {last}")
    return _ref_sha(cwd, dest)


def merge_fetched(git_dir: Any, cwd: Any, remote: str | None = None) -> list[MergeOutcome]:
    """Merge the fetched notes of one remote (or of every remote) into refs/notes/metrics."""
    if remote is not None:
        refs = [tracking_ref(remote)]
    else:
        listing = run_git(
            ["for-each-ref", "--format=%(refname)", "refs/notes/remotes/"], cwd=cwd
        ).stdout.split()
        refs = [r for r in listing if r.endswith("/metrics")]
    outcomes = []
    for ref in refs:
        sha = _ref_sha(cwd, ref)
        if sha is not None:
            outcomes.append(merge_notes_commit(git_dir, cwd, sha))
    return outcomes


def push_notes(git_dir: Any, cwd: Any, remote: str, attempts: int = 3) -> str:
    """Publish refs/notes/metrics to a git remote, merging the remote's first if it moved on.

    Returns "none" (no local notes), "up-to-date" or "pushed".
    """
    tracking = tracking_ref(remote)
    # One git call for both refs: this runs on every `git push`.
    listing = run_git(
        ["for-each-ref", "--format=%(refname) %(objectname)", NOTES_REF, tracking], cwd=cwd
    ).stdout.split()
    refs = dict(zip(listing[::2], listing[1::2], strict=True))
    local = refs.get(NOTES_REF)
    if local is None:
        return "none"
    if refs.get(tracking) == local:
        return "up-to-date"  # the remote had exactly these notes at our last contact
    for _attempt in range(attempts):
        local = _ref_sha(cwd, NOTES_REF)
        assert local is not None
        # --no-verify: this push carries only notes; the outer push's hooks already ran.
        proc = run_git(
            ["push", "-q", "--no-verify", remote, f"{NOTES_REF}:{NOTES_REF}"],
            cwd=cwd,
            env=_QUIET_ENV,
            check=False,
        )
        if proc.returncode == 0:
            run_git(["update-ref", tracking, local], cwd=cwd, env=_QUIET_ENV, check=False)
            return "pushed"
        err = proc.stderr
        if not any(s in err for s in ("rejected", "non-fast-forward", "fetch first", "stale info")):
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
            raise NotesSyncError(f"cannot push notes to {remote}: {last}")
        fetched = fetch_notes(cwd, remote)
        if fetched is not None:
            merge_notes_commit(git_dir, cwd, fetched)
    raise NotesSyncError(f"cannot push notes to {remote}: its notes keep moving; try again")
