"""Notes that follow rewrites: amend, rebase, squash and fixup give one valid note.

Git copies notes to a rewritten commit itself (notes.rewriteRef): an amend keeps the old
note even when the metrics file changed, and a squash with notes.rewriteMode
"concatenate" joins two JSON objects into a note nobody can read. The post-rewrite hook
(`rewritten_notes`) recomputes the note of each new commit from what git hands it (old ->
new pairs): when the rewrite changed the metrics files, the new commit's metrics come from
its files; otherwise from the newest note among the commits it replaces. `mend` splits a
note that an earlier version left concatenated (used by `git model fsck --repair`).

Attachments (training history, stored predictions) describe one model: they are kept
from the note whose metrics the new note carries, and dropped when the metrics were
recomputed (they no longer describe the committed model). The notes-merge conflict log
(`history`) of every replaced note is kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

ATTACHMENT_KEYS = ("training_history", "predictions")
_DECODER = json.JSONDecoder()


def split_concatenated(text: str) -> list[dict[str, Any]] | None:
    """The JSON objects of a note that git concatenated (None: it is not such a note)."""
    parts: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            value, i = _DECODER.raw_decode(text, i)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        parts.append(value)
    return parts if len(parts) >= 2 else None


def combine(
    notes: Sequence[dict[str, Any]],
    metrics: dict[str, float | int] | None = None,
    rewritten_from: Sequence[str] = (),
) -> dict[str, Any]:
    """One note from the notes of the replaced commits (oldest first).

    metrics None: the newest note's metrics (and attachments) stand. Otherwise the new
    metrics replace them and the attachments go.
    """
    base: dict[str, Any] = dict(notes[-1]) if notes else {"schema": 1}
    log: list[Any] = []
    for note in notes:
        if isinstance(note.get("history"), list):
            log += [h for h in note["history"] if h not in log]
    if log:
        base["history"] = log
    if metrics is not None and metrics != base.get("metrics"):
        base["metrics"] = dict(sorted(metrics.items()))
        for key in ATTACHMENT_KEYS:
            base.pop(key, None)
        base["source"] = "post-rewrite"
        base["created"] = (
            dt.datetime.now(dt.timezone.utc)
            .replace(microsecond=0)
            .isoformat()
            .replace("+00:00", "Z")
        )
    if rewritten_from:
        base["rewritten_from"] = list(rewritten_from)
    return base


def mend(text: str) -> dict[str, Any] | None:
    """A concatenated note made one (the last part's metrics); None when it cannot be."""
    parts = split_concatenated(text)
    return combine(parts) if parts else None


def rewritten_notes(
    pairs: Sequence[tuple[str, str]],
    read_note: Callable[[str], str | None],
    tree_metrics: Callable[[str], dict[str, float | int]],
) -> dict[str, dict[str, Any]]:
    """new commit -> the note it should have, for git's post-rewrite (old, new) pairs.

    read_note gives a commit's raw note text (None: no note); tree_metrics the metrics that
    the policy's metrics files hold in a revision's tree (empty: none, or no such revision).
    """
    groups: dict[str, list[str]] = {}
    for old, new in pairs:
        groups.setdefault(new, []).append(old)
    result: dict[str, dict[str, Any]] = {}
    for new, olds in groups.items():
        notes: list[dict[str, Any]] = []
        for old in olds:
            raw = read_note(old)
            if raw is None:
                continue
            notes.extend(_objects(raw))
        now = tree_metrics(new)
        # Recompute when the rewrite changed what the files say, and the commit either had
        # a note or itself changes the files (a commit carried along by a rebase does not).
        recompute = (
            bool(now)
            and now != tree_metrics(olds[-1])
            and (bool(notes) or now != tree_metrics(new + "^"))
        )
        if not notes and not recompute:
            continue
        wanted = combine(notes, now if recompute else None, olds if len(olds) > 1 else ())
        current = read_note(new)
        if current is None or _objects(current) != [wanted]:
            result[new] = wanted
    return result


def _objects(raw: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except ValueError:
        return split_concatenated(raw) or []
    return [value] if isinstance(value, dict) else []
