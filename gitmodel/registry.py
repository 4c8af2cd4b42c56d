"""The model registry: release lines, and which version holds each stage now.

Stages are GTO's: an annotated tag `NAME#STAGE#N` assigns STAGE to the version at the
tag's commit, `NAME#STAGE!#N` unassigns it (N counts every counted tag of NAME, as
`gto` numbers them). The main line (`v1.2.3` releases) is named `main` in stage tags
(`main#prod#3`): GTO needs an artifact name, and `main` is one it accepts.

Who holds a stage now follows `gto show` (its default, timestamp order): a version is in
a stage when its latest event for that stage is an assignment; of the versions in a stage,
the one assigned most recently holds it (tag dates, then N). A version is the release of
the line at the stage tag's commit (the greatest, if several), else the bare commit, as GTO
finds versions by commit. Deregistered versions (`NAME@v1.2.3!`) hold no stage.

Stage tags are never releases nor baselines; gitmodel.promotion gates a promotion
against the version holding the stage, with the same pure judge as releases, and makes
the stage tags of `git model promote` and `demote`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError
from gitmodel.git import run_git
from gitmodel.versions import TAG_RE, TagName, is_release, parse_tag

if TYPE_CHECKING:
    from gitmodel.config import Config
    from gitmodel.notes import PlumbingNotes

MAIN_LINE = "main"  # the main line's name in stage tags (GTO needs a name)

# A stage name as GTO accepts it (gto/constants.py `name`): letters, digits, "-", "_", "/",
# with a letter or digit at both ends.
NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_/-]*[a-zA-Z0-9])?$")


class RegistryError(GitModelError):
    pass


@dataclass(frozen=True)
class GtoTag:
    """A tag name GTO reads as an event."""

    artifact: str
    action: str  # register, deregister, deprecate, assign, unassign
    stage: str | None
    version: str | None
    counter: int | None


def parse_gto_tag(name: str) -> GtoTag | None:
    """The GTO event a tag name is, by the one grammar (gitmodel.versions); None if none."""
    tag = parse_tag(name)
    match = TAG_RE.match(name)
    if tag.model is None or match is None:
        return None  # the main line's bare versions are no GTO events
    counter = int(match["counter"]) if match["counter"] else None
    if tag.kind == "stage":
        action = "unassign" if match["unassign"] else "assign"
        return GtoTag(tag.model, action, tag.part, None, counter)
    if tag.kind == "deprecation":
        return GtoTag(tag.model, "deregister", None, tag.part, counter)
    if tag.kind == "lifecycle":
        action = "deprecate" if tag.part == "deprecated" else "create"
        return GtoTag(tag.model, action, None, None, counter)
    if tag.kind == "release":
        return GtoTag(tag.model, "register", None, tag.part, counter)
    return None


def is_stage_tag(name: str) -> bool:
    parsed = parse_gto_tag(name)
    return parsed is not None and parsed.stage is not None


def line_of_artifact(artifact: str) -> str:
    """The release line (gate's naming: "" is the main line) a GTO artifact name means."""
    return "" if artifact == MAIN_LINE else artifact


def artifact_of_line(line: str) -> str:
    return line or MAIN_LINE


def line_label(line: str) -> str:
    return line or f"{MAIN_LINE} (v*)"


# -- reading tags ----------------------------------------------------------------------

_FORMAT = "%00".join(
    (
        "%(refname)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objecttype)",
        "%(*objectname)",
        "%(creatordate:unix)",
        "%(taggeremail)",
        "%(contents:subject)",
    )
)


@dataclass(frozen=True)
class TagInfo:
    name: str
    commit: str | None
    date: int
    annotated: bool
    by: str
    subject: str


def list_tags(cwd: Path, patterns: Sequence[str] = ("refs/tags/",)) -> list[TagInfo]:
    """Every tag (or those under patterns) with its commit and date, in one git call."""
    proc = run_git(["for-each-ref", f"--format={_FORMAT}", *patterns], cwd=cwd)
    out = []
    for line in proc.stdout.splitlines():
        fields = line.split("\0")
        if len(fields) != 8 or not fields[0].startswith("refs/tags/"):
            continue
        ref, otype, oid, ptype, poid, date, email, subject = fields
        commit = oid if otype == "commit" else poid if ptype == "commit" else None
        out.append(
            TagInfo(
                ref[len("refs/tags/") :],
                commit,
                int(date) if date.isdigit() else 0,
                otype == "tag",
                email.strip("<>"),
                _clean(subject),
            )
        )
    return out


def _clean(text: str, limit: int = 200) -> str:
    s = "".join(ch if ch.isprintable() else " " for ch in text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


# -- the state -------------------------------------------------------------------------


@dataclass
class StageEvent:
    tag: str
    line: str
    stage: str
    assign: bool
    counter: int
    commit: str
    date: int
    by: str
    message: str
    version: str = ""  # the release the event is about, else the commit

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "stage": self.stage,
            "action": "assign" if self.assign else "unassign",
            "version": self.version,
            "commit": self.commit,
            "date": self.date,
            "by": self.by,
            "message": self.message,
        }


@dataclass
class Release:
    tag: TagName
    commit: str | None
    date: int
    by: str = ""
    deregistered: bool = False
    stages: list[str] = field(default_factory=list)  # stages it holds now

    @property
    def name(self) -> str:
        return self.tag.name


@dataclass
class Holder:
    """The version holding a stage now, and the event that put it there."""

    line: str
    stage: str
    version: str  # release tag name, or the commit when it is no release
    commit: str
    event: StageEvent

    @property
    def release(self) -> str | None:
        return None if self.version == self.commit else self.version


@dataclass
class Line:
    name: str  # "" for the main line
    releases: list[Release] = field(default_factory=list)  # newest first
    events: list[StageEvent] = field(default_factory=list)  # oldest first
    holders: dict[str, Holder] = field(default_factory=dict)
    deprecated: bool = False


class Registry:
    """Release lines and stages of one repository, from its tags (one git call)."""

    def __init__(self, tags: Sequence[TagInfo], release_glob: str = "v*") -> None:
        self.tags = list(tags)
        self.glob = release_glob
        self.lines: dict[str, Line] = {}
        self.max_counter: dict[str, int] = {}
        self._build()

    @classmethod
    def read(cls, cwd: Path, release_glob: str = "v*") -> Registry:
        return cls(list_tags(cwd), release_glob)

    def line(self, name: str) -> Line:
        if name not in self.lines:
            self.lines[name] = Line(name)
        return self.lines[name]

    def _build(self) -> None:
        deregistered: dict[tuple[str, str], int] = {}
        registered: dict[tuple[str, str], int] = {}
        deprecations: dict[str, int] = {}
        events: list[StageEvent] = []
        for t in self.tags:
            gto = parse_gto_tag(t.name)
            if gto is not None and gto.counter is not None:
                self.max_counter[gto.artifact] = max(
                    self.max_counter.get(gto.artifact, 0), gto.counter
                )
            if gto is not None and gto.stage is not None:
                if t.commit is None or not t.annotated:
                    continue  # GTO reads annotated tags only
                events.append(
                    StageEvent(
                        t.name,
                        line_of_artifact(gto.artifact),
                        gto.stage,
                        gto.action == "assign",
                        gto.counter or 0,
                        t.commit,
                        t.date,
                        t.by,
                        t.subject,
                    )
                )
                continue
            if gto is not None and gto.action == "deregister" and t.annotated:
                key = (gto.artifact, gto.version or "")
                deregistered[key] = max(deregistered.get(key, 0), t.date)
                continue
            if gto is not None and gto.action == "deprecate" and t.annotated:
                deprecations[gto.artifact] = max(deprecations.get(gto.artifact, 0), t.date)
                continue
            if gto is not None and gto.action == "register":
                key = (gto.artifact, gto.version or "")
                registered[key] = max(registered.get(key, 0), t.date)
            if is_release(t.name, self.glob) and t.commit is not None:
                tag = parse_tag(t.name)
                self.line(tag.line).releases.append(Release(tag, t.commit, t.date, t.by))
        for line in self.lines.values():
            for r in line.releases:
                key = (line.name, r.tag.part)
                if key in deregistered and deregistered[key] >= registered.get(key, 0):
                    r.deregistered = True
            line.releases.sort(key=_release_order, reverse=True)
        for artifact in deprecations:
            self.line(line_of_artifact(artifact)).deprecated = True
        events.sort(key=lambda e: (e.date, e.counter, e.tag))
        for e in events:
            line = self.line(e.line)
            e.version = self._version_at(line, e.commit)
            line.events.append(e)
        for line in self.lines.values():
            self._holders(line)

    @staticmethod
    def _version_at(line: Line, commit: str) -> str:
        at = [r for r in line.releases if r.commit == commit and not r.deregistered]
        return at[0].name if at else commit  # releases are sorted newest first

    def _holders(self, line: Line) -> None:
        last: dict[tuple[str, str], StageEvent] = {}
        for e in line.events:
            last[(e.version, e.stage)] = e
        dead = {r.name for r in line.releases if r.deregistered}
        for (version, stage), e in last.items():
            if not e.assign or version in dead:
                continue
            # Of the versions in the stage, the one assigned last holds it (as `gto show`).
            current = line.holders.get(stage)
            if current is None or _event_order(e) > _event_order(current.event):
                line.holders[stage] = Holder(line.name, stage, version, e.commit, e)
        by_name = {r.name: r for r in line.releases}
        for stage, holder in sorted(line.holders.items()):
            if holder.version in by_name:
                by_name[holder.version].stages.append(stage)

    def holder(self, line: str, stage: str) -> Holder | None:
        found = self.lines.get(line)
        return found.holders.get(stage) if found else None

    def stages(self) -> list[str]:
        return sorted({e.stage for line in self.lines.values() for e in line.events})

    def next_counter(self, artifact: str) -> int:
        return self.max_counter.get(artifact, 0) + 1

    def release(self, name: str) -> Release | None:
        tag = parse_tag(name)
        line = self.lines.get(tag.line)
        for r in line.releases if line else []:
            if r.name == name:
                return r
        return None


def _release_order(r: Release) -> tuple[int, Any, int]:
    # versioned releases by version, then unversioned ones by date (as the gate orders them)
    if r.tag.version is not None:
        return (1, r.tag.version, r.date)
    return (0, r.date, r.date)


def _event_order(e: StageEvent) -> tuple[int, int, str]:
    return (e.date, e.counter, e.tag)


def parse_stage_rev(rev: str) -> tuple[str, str] | None:
    """(line, stage) for a stage reference `NAME#STAGE` (or `#STAGE` for the main line)."""
    if rev.startswith("#"):
        rev = MAIN_LINE + rev
    tag = parse_tag(rev)
    match = TAG_RE.match(rev)
    if tag.kind != "stage" or tag.model is None or match is None:
        return None
    if match["unassign"] or match["counter"] or not NAME_RE.match(tag.part):
        return None
    return line_of_artifact(tag.model), tag.part


# -- the listing -----------------------------------------------------------------------

_VERDICT_PREFIXES = ("PASS:", "FAIL:", "OVERRIDDEN:")


def _tag_messages(root: Path, names: Sequence[str]) -> dict[str, str]:
    """The messages of tags, in one git call (records framed by a token drawn per run)."""
    import os

    if not names:
        return {}
    token = os.urandom(8).hex()
    proc = run_git(
        [
            "for-each-ref",
            f"--format=%(refname){token}%(contents){token}END",
            *(f"refs/tags/{n}" for n in names),
        ],
        cwd=root,
        check=False,
    )
    out: dict[str, str] = {}
    for record in proc.stdout.split(f"{token}END"):
        ref, sep, body = record.strip("\n").partition(token)
        if sep and ref.startswith("refs/tags/"):
            out[ref[len("refs/tags/") :]] = body
    return out


def recorded_verdict(message: str) -> dict[str, Any] | None:
    """The verdict a release tag's message recorded at release time (`git model release`)."""
    lines = message.splitlines()
    if not any(ln.startswith("Release gate") for ln in lines):
        return None
    for ln in reversed(lines):
        s = ln.strip()
        if s.startswith(_VERDICT_PREFIXES):
            result = s.split(":", 1)[0].lower()
            return {
                "result": {"overridden": "overridden"}.get(result, result),
                "summary": _clean(s, 300),
            }
    return None


def release_lines(
    root: Path, config: Config, notes: PlumbingNotes | None = None
) -> list[dict[str, Any]]:
    """Every release line (main first): versions newest first with commit, date, gated
    metrics, the verdict recorded at release time and the stages each holds now."""
    from gitmodel.gate import model_metrics, override_for
    from gitmodel.notes import PlumbingNotes

    registry = Registry.read(root, config.release_tags)
    source = notes or PlumbingNotes.from_ref(root)
    names = [r.name for line in registry.lines.values() for r in line.releases]
    messages = _tag_messages(root, names)
    # Every release's note, in one git process (one each took seconds at 1,000 releases).
    notes_of = source.read_many(
        r.commit for line in registry.lines.values() for r in line.releases if r.commit
    )
    gated = list(config.gates)
    out = []
    for key in sorted(registry.lines, key=lambda n: (n != "", n)):
        line = registry.lines[key]
        if not line.releases and not line.events:
            continue
        versions = []
        for r in line.releases:
            metrics: dict[str, Any] = {}
            note = None
            problem = None
            try:
                found = notes_of.get(r.commit) if r.commit else None
                if isinstance(found, GitModelError):
                    raise found
                note = found
                if note is not None:
                    metrics = dict(model_metrics(note, key or None, r.commit or ""))
            except GitModelError as exc:
                problem = exc.message
            shown = {k: metrics[k] for k in gated if k in metrics} if gated else metrics
            verdict = recorded_verdict(messages.get(r.name, ""))
            override = override_for(note, r.name)
            versions.append(
                {
                    "tag": r.name,
                    "version": r.tag.part,
                    "commit": r.commit,
                    "date": r.date,
                    "by": r.by,
                    "metrics": shown,
                    "all_metrics": metrics,
                    "verdict": verdict,
                    "override": override,
                    "note_problem": problem,
                    "deprecated": r.deregistered,
                    "stages": list(r.stages),
                }
            )
        holders = {
            stage: {
                "version": h.version,
                "commit": h.commit,
                "tag": h.event.tag,
                "since": h.event.date,
                "release": h.release,
            }
            for stage, h in sorted(line.holders.items())
        }
        out.append(
            {
                "line": key,
                "name": artifact_of_line(key),
                "label": line_label(key),
                "deprecated": line.deprecated,
                "gated": gated,
                "stages": holders,
                "releases": versions,
                "history": [e.to_json() for e in reversed(line.events)],
            }
        )
    return out
