"""Metrics and weights across commits: `log` (history, newest first) and `diff` (two revisions).

(Training history, the per-epoch metrics a training script logs, is gitmodel.history.)
Takes the work tree's root, the notes and callables for resolving a revision and reading
a commit's pointers, never the Repo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.git import GitFailed
from gitmodel.metrics import MetricsError, tidy, validate_note_metrics
from gitmodel.notes import NoteError, Notes, log_with_notes, parse_note
from gitmodel.pointer import TrackedOut, weight_entry
from gitmodel.record import Record

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any


class LogEntry(Record):
    """One commit of `log`: its metrics (filtered to the names asked), the weights its
    note names, or why its note could not be read (error)."""

    __slots__ = ("commit", "date", "subject", "metrics", "has_note", "weights", "error")

    def __init__(self, commit: str, date: str, subject: str, has_note: bool) -> None:
        self.commit = commit
        self.date = date  # ISO 8601 in UTC, as git formats it
        self.subject = subject
        self.metrics: dict[str, float | int] = {}
        self.has_note = has_note
        self.weights: dict[str, Any] | None = None  # None: no readable note
        self.error: str | None = None  # the note is there but bad

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "commit": self.commit,
            "date": self.date,
            "subject": self.subject,
            "metrics": self.metrics,
            "has_note": self.has_note,
        }
        if self.weights is not None:
            d["weights"] = self.weights
        if self.error is not None:
            d["error"] = self.error
        return d


class Revision(Record):
    """One side of a diff: the revision as given and the commit it names."""

    __slots__ = ("rev", "commit")

    def __init__(self, rev: str, commit: str) -> None:
        self.rev = rev
        self.commit = commit

    def to_json(self) -> dict[str, Any]:
        return {"rev": self.rev, "commit": self.commit}


class MetricChange(Record):
    """A metric on both sides of a diff; None where a side lacks it."""

    __slots__ = ("old", "new", "delta")

    def __init__(
        self, old: float | int | None, new: float | int | None, delta: float | int | None
    ) -> None:
        self.old = old
        self.new = new
        self.delta = delta

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "delta": self.delta}


class WeightChange(Record):
    """A tracked output added, deleted or modified between the sides of a diff."""

    __slots__ = ("status", "old", "new")

    def __init__(self, status: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.status = status  # "added", "deleted" or "modified"
        self.old = old  # {"md5", "size"[, "nfiles"]} (gitmodel.pointer.weight_entry)
        self.new = new

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "old": self.old, "new": self.new}


class Diff(Record):
    """Metrics (every name on either side, sorted) and changed weights between a and b."""

    __slots__ = ("a", "b", "metrics", "weights")

    def __init__(
        self,
        a: Revision,
        b: Revision,
        metrics: dict[str, MetricChange],
        weights: dict[str, WeightChange],
    ) -> None:
        self.a = a
        self.b = b
        self.metrics = metrics
        self.weights = weights

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "metrics": {k: v.to_json() for k, v in self.metrics.items()},
            "weights": {k: v.to_json() for k, v in self.weights.items()},
        }


def log(
    root: Path,
    head: Callable[[], str | None],
    rev_range: str = "HEAD",
    n: int | None = None,
    metric_names: Sequence[str] = (),
    noted_only: bool = False,
    all_refs: bool = False,
) -> list[LogEntry]:
    """Commits newest first with their metrics; one `git log` reads every note in bulk.

    n counts the rows returned: with noted_only, the first n commits that carry a note
    (git's -n would count the commits walked). all_refs walks every branch, tag and
    remote-tracking ref, as `git log --all`, instead of rev_range.
    """
    if rev_range.startswith("-"):
        raise GitModelError(f"unknown revision {rev_range!r}")
    # git formats the date (in C, in UTC); a subject cannot hold the NUL between fields.
    args = ["--date=format-local:%Y-%m-%dT%H:%M:%SZ"]
    if n is not None and not noted_only:
        args.append(f"-n{n}")
    # The notes refs are commits too, but of notes, not of the project.
    revs = ["--exclude=refs/notes/*", "--all"] if all_refs else [rev_range]
    wanted = set(metric_names)
    rows: list[LogEntry] = []
    if n == 0:
        return rows
    records = log_with_notes(root, ["%H", "%cd", "%s"], [*args, *revs], {"TZ": "UTC"})
    try:
        for sha_b, date_b, subject_b, note_b in records:
            if noted_only and not note_b.strip():
                continue
            sha = sha_b.decode("ascii", errors="replace")
            note_b = note_b.strip()
            row = LogEntry(
                sha,
                date_b.decode("ascii", errors="replace"),
                subject_b.decode(errors="replace"),
                bool(note_b),
            )
            if note_b:
                try:
                    # bytes that are not ASCII go to json.loads, which checks their UTF-8
                    note = parse_note(note_b.decode() if note_b.isascii() else note_b, sha)
                    row.metrics = validate_note_metrics(
                        note.get("metrics", {}), f"note on {sha[:12]}"
                    )
                    weights = note.get("weights")
                    row.weights = weights if isinstance(weights, dict) else {}
                except (NoteError, MetricsError) as exc:
                    row.error = exc.message
            if wanted:
                row.metrics = {k: v for k, v in row.metrics.items() if k in wanted}
            rows.append(row)
            if n is not None and len(rows) >= n:
                break  # the generator, dropped on return, stops git: no more history is read
    except GitFailed:
        # Asked only on failure: one git process less on every successful log.
        if head() is None:
            return []
        raise GitModelError(f"unknown revision or range {rev_range!r}") from None
    return rows


def diff(
    notes: Notes,
    rev_parse: Callable[[str], str],
    pointers_at: Callable[[str], list[TrackedOut]],
    a: str,
    b: str,
) -> Diff:
    """Metrics and weights between revisions a and b."""
    sha_a, sha_b = rev_parse(a), rev_parse(b)
    ma = _metrics_of(notes, sha_a)
    mb = _metrics_of(notes, sha_b)
    metrics: dict[str, MetricChange] = {}
    for name in sorted(set(ma) | set(mb)):
        old, new = ma.get(name), mb.get(name)
        delta = tidy(new - old) if old is not None and new is not None else None
        metrics[name] = MetricChange(old, new, delta)
    wa = {t.path: t.out for t in pointers_at(sha_a)}
    wb = {t.path: t.out for t in pointers_at(sha_b)}
    weights: dict[str, WeightChange] = {}
    for path in sorted(set(wa) | set(wb)):
        oa, ob = wa.get(path), wb.get(path)
        if oa is not None and ob is not None and oa.md5 == ob.md5:
            continue
        status = "added" if oa is None else "deleted" if ob is None else "modified"
        weights[path] = WeightChange(
            status, weight_entry(oa) if oa else None, weight_entry(ob) if ob else None
        )
    return Diff(Revision(a, sha_a), Revision(b, sha_b), metrics, weights)


def _metrics_of(notes: Notes, sha: str) -> dict[str, float | int]:
    note = notes.read(sha)
    if not note:
        return {}
    return validate_note_metrics(note.get("metrics", {}), f"note on {sha[:12]}")
