"""What a commit's note carries besides metrics: the training history and stored predictions.

Both wait in a pending file until a commit takes them: the history file that
`gitmodel.log_metrics` appends to, and the entry `git model eval --store` leaves in
``.git/gitmodel/pending-predictions.json``. `collect` stores them as objects and returns the
note keys that name them; `consume` removes the pending files once the note is written, so
a failed commit loses nothing.

Only notes name these objects, so `dvc gc` (every mode: it keeps what `.dvc` files name)
would delete them. Each therefore has a second name, a hard link (else a copy) under
``<cache>/gitmodel/attachments/``, where DVC's gc never looks: reading, pushing and fsck put
an object back into the cache from there, and `git model gc` drops both names together.

Note keys (objects live in the DVC cache, named by md5 like weights)::

    "training_history": {"md5": "...", "size": 1234, "records": 20}
    "predictions": {"md5": "...", "size": 5678, "labels_md5": "...", "n": 200,
                    "task": "classification", "prefix": "", "proba": true,
                    "eval_set": {...}}
    "eval_sets": {"": {"md5": "...", "by": "ids", "n": 200, "labels_md5": "..."}}

(`eval_sets`, by metric prefix, is left by every `git model eval` in a repository, with
or without --store: see gitmodel.evaluate.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError
from gitmodel.store import is_oid

if TYPE_CHECKING:
    from gitmodel.pointer import TrackedOut
    from gitmodel.store import Store
    from gitmodel.workspace_view import Workspace

PENDING_PREDICTIONS = "gitmodel/pending-predictions.json"  # under the git dir
PENDING_EVAL_SETS = "gitmodel/pending-eval-sets.json"  # under the git dir
EVAL_SETS_KEY = "eval_sets"
# Not plain "history": notes merging keeps its conflict log under that key.
HISTORY_KEY = "training_history"
PREDICTIONS_KEY = "predictions"


@dataclass
class Attachments:
    note: dict[str, Any] = field(default_factory=dict)
    pending: list[Path] = field(default_factory=list)

    def consume(self) -> None:
        for path in self.pending:
            path.unlink(missing_ok=True)


def collect(repo: Workspace) -> Attachments:
    """Store the pending history and predictions; the note keys naming them."""
    from gitmodel.history import HISTORY_KIND, MAX_HISTORY_BYTES, history_path, parse_history
    from gitmodel.paths import read_bytes

    found = Attachments()
    hist = history_path(repo.root)  # judged by the work-tree policy (gitmodel.paths)
    if os.path.lexists(hist):
        try:
            data = read_bytes(hist, hist.name, limit=MAX_HISTORY_BYTES)
        except OSError as exc:
            raise GitModelError(f"{hist.name}: cannot read ({exc.strerror})") from None
        records = parse_history(data, str(hist.name))
        if records:
            md5 = store_attachment(repo.store, data)
            found.note[HISTORY_KEY] = {
                "md5": md5,
                "size": len(data),
                "records": len(records),
                "kind": HISTORY_KIND,
            }
        # Removed once the note holds it; a file of nothing but a torn line is not one
        # gitmodel can vouch for having written, so it stays.
        if records or not data.strip():
            found.pending.append(hist)
    pending = repo.git_dir / PENDING_PREDICTIONS
    if pending.is_file():
        try:
            entry = json.loads(pending.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError):
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("md5"), str):
            raise GitModelError(
                f"{pending}: malformed pending predictions; run `git model eval --store` again"
            )
        if restore(repo.store, entry["md5"]):
            found.note[PREDICTIONS_KEY] = entry
        found.pending.append(pending)
    sets_file = repo.git_dir / PENDING_EVAL_SETS
    if sets_file.is_file():
        try:
            sets = json.loads(sets_file.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError):
            sets = None
        if isinstance(sets, dict):
            found.note[EVAL_SETS_KEY] = {
                k: v for k, v in sets.items() if isinstance(k, str) and isinstance(v, dict)
            }
        found.pending.append(sets_file)
    return found


def read_object(repo: Workspace, entry: object, what: str, where: str) -> bytes:
    """The bytes of an object a note names (`{"md5": ...}`), verified against the name."""
    import hashlib

    if not isinstance(entry, dict) or not isinstance(entry.get("md5"), str):
        raise GitModelError(f"{where}: no {what} recorded")
    md5 = entry["md5"]
    if not is_oid(md5, dirs=False):
        raise GitModelError(f"{where}: malformed {what} md5")
    path = repo.store.oid_to_path(md5)
    if not restore(repo.store, md5):
        why = _fetch_object(repo, md5, f"{what} of {where}")
        if not path.is_file():
            raise GitModelError(f"{where}: {what} object {md5} is not in the cache ({why})")
        protect(repo.store, md5)
    data = path.read_bytes()
    if hashlib.md5(data).hexdigest() != md5:
        raise GitModelError(f"{where}: {what} object {md5} is corrupt")
    return data


NOTE_OBJECT_KEYS = (HISTORY_KEY, PREDICTIONS_KEY)
KEPT_DIR = ("gitmodel", "attachments")  # under the cache dir, beside DVC's files/md5
KIND_NAMES = {HISTORY_KEY: "training history", PREDICTIONS_KEY: "stored predictions"}


def kept_path(store: Store, md5: str) -> Path:
    """The second name of an attachment object, out of `dvc gc`'s reach."""
    return store.cache_dir.joinpath(*KEPT_DIR, md5[:2], md5[2:])


def store_attachment(store: Store, data: bytes) -> str:
    """Store data as an object that only a note will name, under both its names."""
    md5 = store.store_bytes(data)
    protect(store, md5)
    return md5


def _link_or_copy(src: Path, dest: Path) -> None:
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # same inode: no second copy of the bytes
    except OSError:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o444)
    os.replace(tmp, dest)


def protect(store: Store, md5: str) -> bool:
    """Give a cached attachment its second name (idempotent); False if it is not cached."""
    if not is_oid(md5, dirs=False):
        return False
    kept = kept_path(store, md5)
    if kept.is_file():
        return True
    src = store.oid_to_path(md5)
    if not src.is_file():
        return False
    try:
        _link_or_copy(src, kept)
    except OSError:
        return False
    return True


def restore(store: Store, md5: str) -> bool:
    """True when the attachment is in the cache, putting it back from its second name if
    something (`dvc gc`) removed it there."""
    if not is_oid(md5, dirs=False):
        return False
    if store.exists(md5):
        protect(store, md5)  # an attachment stored before it had a second name
        return True
    kept = kept_path(store, md5)
    if not kept.is_file():
        return False
    try:
        _link_or_copy(kept, store.oid_to_path(md5))
    except OSError:
        return False
    return store.exists(md5)


def iter_kept(store: Store) -> Iterator[tuple[str, Path]]:
    """(md5, path) of every attachment's second name, for gc."""
    base = store.cache_dir.joinpath(*KEPT_DIR)
    try:
        prefixes = sorted(os.listdir(base))
    except OSError:
        return
    for prefix in prefixes:
        if len(prefix) != 2:
            continue
        try:
            names = sorted(os.listdir(base / prefix))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".tmp"):
                yield prefix + name, base / prefix / name


def note_attachments(note: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, md5) of the objects a parsed note names."""
    found = []
    for key in NOTE_OBJECT_KEYS:
        entry = note.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("md5"), str):
            found.append((key, entry["md5"]))
    return found


def note_objects(repo: Workspace) -> set[str]:
    """Every object a metrics note names (history, predictions): gc must keep them."""
    from gitmodel.notes import NoteError

    index = repo.notes.note_map()
    found: set[str] = set()
    for note in repo.notes.read_many(index).values():
        if isinstance(note, NoteError):
            continue
        found.update(md5 for _, md5 in note_attachments(note))
    return found


def _fetch_object(repo: Workspace, md5: str, label: str) -> str:
    """Try the default DVC remote for one object (as checkout does); say why not, if not."""
    from gitmodel.pointer import Out, TrackedOut

    try:
        if not repo.fetch_missing([TrackedOut(label, "", Out(label, md5))]):
            return "no default DVC remote to fetch it from"
    except GitModelError as exc:
        return f"not fetched from the DVC remote: {exc.message}"
    return "the DVC remote does not have it either"


def note_object_outs(
    repo: Workspace, include: Sequence[str], exclude: Sequence[str] = (), remote: str | None = None
) -> list[TrackedOut]:
    """Objects the notes of commits in include (not exclude, not on remote) name, in the cache.

    For the remote transfer: histories and stored predictions travel with their commits.
    One `git log` reads the notes of exactly the commits being pushed.
    """
    from gitmodel.git import GitFailed
    from gitmodel.notes import log_with_notes, parse_note
    from gitmodel.pointer import Out, TrackedOut

    if not include:
        return []
    args = ["--ignore-missing", *include, *(f"^{e}" for e in exclude)]
    if remote:
        args += ["--not", f"--remotes={remote}"]
    notes: list[tuple[str, bytes]] = []
    try:
        for sha_b, text in log_with_notes(repo.root, ["%H"], args):
            if b'"md5"' in text:
                notes.append((sha_b.decode("ascii", errors="replace"), text.strip()))
    except GitFailed:
        pass  # git failing part-way: what it listed still goes up
    outs: list[TrackedOut] = []
    for sha, text in notes:
        try:
            note = parse_note(text, sha)
        except GitModelError:
            continue  # a broken note names nothing we could upload
        for key in NOTE_OBJECT_KEYS:
            entry = note.get(key)
            if not isinstance(entry, dict):
                continue
            md5 = entry.get("md5")
            if isinstance(md5, str) and restore(repo.store, md5):
                label = f"{key} of {sha[:12]}"
                outs.append(TrackedOut(label, "", Out(label, md5, entry.get("size"))))
    return outs
