"""Release tags: one grammar, one regex, one order.

A release tag is ``v1.2.3`` on the project's main line, or ``NAME@v1.2.3`` on the release
line of one model: GTO's registration. The part after ``NAME@`` must match the ``[release]
tags`` glob (default ``v*``). GTO's other tags are read exactly and are never releases nor
baselines: ``NAME@v1.2.3!`` (and ``NAME@v1.2.3!#N``: a deprecated/deregistered version),
``NAME#stage#N`` and ``NAME#stage!#N`` (stage assignment and unassignment, also without
the counter), ``NAME@deprecated#N`` and ``NAME@created#N`` (the artifact's lifecycle).
A tag with ``#`` or ``!`` that fits none of these is not a release either.

Versions are ordered by PEP 440 (which also reads semver's ``1.2.3-rc.1``); a leading
``v`` is ignored, and trailing zeros are too: ``v1.1``, ``v1.1.0`` and ``v1.1.0.0`` are one
version, so a tag equal in version order to an existing release is judged against it.
Release tags whose version part is not a version (``v-2024-05``, or any name under a glob
like ``release-*``) are ordered by tag date instead.
"""

from __future__ import annotations

import fnmatch
import re

from gitmodel.record import FrozenRecord

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from packaging.version import Version

# GTO's artifact names (lowercase there; any case here), with `=` for a directory
# separator (GTO's `dir:name` is `dir=name` in a tag).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._/=-]*[A-Za-z0-9])?"
# The version group is what PEP 440 parses (after an optional leading v); anything else
# in the version part makes a release tag that is ordered by date.
_VERSION = r"[vV]?(?P<{}>[0-9]+(?:\.[0-9]+)*(?:[-_.+]?[A-Za-z0-9][A-Za-z0-9._+-]*)?)"

# The one grammar. A model line: NAME, then "@PART" (GTO registration; "!" deprecation)
# or "#STAGE" (GTO assignment; "!" unassignment), then GTO's optional "#COUNTER". Or the
# main line: a bare version part, which has none of GTO's "@", "#", "!".
TAG_RE = re.compile(
    rf"^(?:(?P<model>{_NAME})"
    rf"(?:@(?P<part>{_VERSION.format('version')}|[^#!@]+)(?P<cancel>!)?"
    rf"|#(?P<stage>{_NAME})(?P<unassign>!)?)"
    r"(?:#(?P<counter>[0-9]+))?"
    rf"|(?P<main>{_VERSION.format('main_version')}|[^#!@]+))$"
)

BUMP_PARTS = ("major", "minor", "patch")
# What a tag is under the grammar; only "release" tags can be releases.
KINDS = ("release", "deprecation", "stage", "lifecycle", "other")
_LIFECYCLE = ("created", "deprecated")  # GTO's NAME@created / NAME@deprecated


class TagName(FrozenRecord):
    """A tag name split by the grammar."""

    __slots__ = ("name", "model", "part", "version", "kind")

    def __init__(
        self,
        name: str,
        model: str | None,  # None: the main release line
        part: str,  # the version part, e.g. "v1.2.3" (the stage, for a stage tag)
        version: Version | None,  # None: not a version, ordered by date
        kind: str = "release",  # one of KINDS
    ) -> None:
        self._set(name=name, model=model, part=part, version=version, kind=kind)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        name: str
        model: str | None
        part: str
        version: Version | None
        kind: str

    @property
    def line(self) -> str:
        return self.model or ""


def parse_tag(name: str) -> TagName:
    """Split a tag name into model and version (version None when it is not one)."""
    match = TAG_RE.match(name)
    if match is None:  # GTO-like punctuation that fits no GTO form, or the empty string
        return TagName(name, None, name, None, "other")
    if match.group("main") is not None:
        return TagName(name, None, match.group("main"), _version(match.group("main_version")))
    model = match.group("model")
    if match.group("stage") is not None:
        return TagName(name, model, match.group("stage"), None, "stage")
    part = match.group("part")
    if match.group("cancel"):
        kind = "deprecation"
    elif part in _LIFECYCLE:
        kind = "lifecycle"
    else:
        kind = "release"
    return TagName(name, model, part, _version(match.group("version")), kind)


def _version(text: str | None) -> Version | None:
    if text is None:
        return None
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def is_release(name: str, glob: str) -> bool:
    """Whether tag `name` is a release under the `[release] tags` glob."""
    return is_release_name(parse_tag(name), glob)


def is_release_name(tag: TagName, glob: str) -> bool:
    """is_release for a name already parsed."""
    return tag.kind == "release" and fnmatch.fnmatchcase(tag.part, glob)


def same_version(a: TagName, b: TagName) -> bool:
    """Two spellings of one release (v1.1 and v1.1.0.0 of one line)."""
    return a.line == b.line and a.version is not None and a.version == b.version


class ReleaseTag(FrozenRecord):
    """A release tag that exists (or is being created), with what it points at."""

    __slots__ = ("tag", "commit", "date")

    def __init__(
        self,
        tag: TagName,
        commit: str | None,  # None: it does not point at a commit
        date: int,  # tag date (creator date), seconds since the epoch
    ) -> None:
        self._set(tag=tag, commit=commit, date=date)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        tag: TagName
        commit: str | None
        date: int

    @property
    def name(self) -> str:
        return self.tag.name


def releases_before(
    candidate: TagName | None, line: str, date: int, tags: list[ReleaseTag]
) -> list[ReleaseTag]:
    """Release tags of a line that come before the candidate, nearest first.

    candidate None is an untagged revision: it comes after every release. A versioned
    candidate looks at lower versions first, then (for projects that switched to
    versions) at unversioned tags by date. Another spelling of its own version (v1.1
    for v1.1.0) comes before it, nearest of all: a new tag is judged against the release
    of the same version, an existing one against the spellings tagged before it. An
    unversioned candidate looks at every release of its line dated no later than it.
    """
    name = candidate.name if candidate else None
    same_line = [t for t in tags if t.tag.line == line and t.name != name]
    undated = sorted(
        (t for t in same_line if t.tag.version is None and t.date <= date),
        key=lambda t: (t.date, t.name),
        reverse=True,
    )
    if candidate is not None and candidate.version is None:
        return sorted(
            (t for t in same_line if t.date <= date), key=lambda t: (t.date, t.name), reverse=True
        )
    cv = candidate.version if candidate is not None else None
    exists = any(t.name == name for t in tags)

    def before(t: ReleaseTag) -> bool:
        v = t.tag.version
        if v is None:
            return False
        if cv is None or v < cv:
            return True
        return v == cv and (not exists or (t.date, t.name) < (date, name or ""))

    lower = [t for t in same_line if before(t)]
    lower.sort(key=_version_key, reverse=True)
    return lower + undated


def _version_key(t: ReleaseTag) -> tuple[Version, int, str]:
    assert t.tag.version is not None
    return (t.tag.version, t.date, t.name)


def latest_version(tags: list[ReleaseTag], line: str) -> ReleaseTag | None:
    versioned = [t for t in tags if t.tag.line == line and t.tag.version is not None]
    return max(versioned, key=_version_key, default=None)


def below_latest(name: str, tags: list[ReleaseTag]) -> str | None:
    """A one-line warning when release `name` sorts below the latest of its line (a hotfix
    on an old line is legitimate; a typo such as v0.0.1 for v1.0.1 is not, and both are
    gated only against the releases below them)."""
    tag = parse_tag(name)
    latest = latest_version([t for t in tags if t.name != name], tag.line)
    if tag.version is None or latest is None or latest.tag.version is None:
        return None
    if tag.version >= latest.tag.version:
        return None
    return (
        f"{name} is below the latest release {latest.name}: "
        "the gate compares it only with the releases below it"
    )


def bump(previous: TagName | None, part: str, glob: str, model: str | None = None) -> str:
    """The next tag name after previous (major/minor/patch), keeping its spelling's prefix."""
    if part not in BUMP_PARTS:
        raise ValueError(part)
    if previous is None or previous.version is None:
        major, minor, patch = 0, 0, 0
        prefix = "v" if glob.startswith(("v", "*")) else ""
    else:
        release = previous.version.release + (0, 0)
        major, minor, patch = release[0], release[1], release[2]
        prefix = previous.part[0] if previous.part[:1] in ("v", "V") else ""
    if part == "major":
        major, minor, patch = major + 1, 0, 0
    elif part == "minor":
        minor, patch = minor + 1, 0
    else:
        patch += 1
    text = f"{prefix}{major}.{minor}.{patch}"
    return f"{model}@{text}" if model else text
