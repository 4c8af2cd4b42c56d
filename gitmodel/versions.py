"""Release tags: one grammar, one regex, one order.

A release tag is ``v1.2.3`` on the project's main line, or ``NAME@v1.2.3`` on the release
line of one model (GTO's grammar). The part after ``NAME@`` must match the ``[release]
tags`` glob (default ``v*``). Versions are ordered by PEP 440 (which also reads semver's
``1.2.3-rc.1``); a leading ``v`` is ignored. Release tags whose version part is not a
version (``v-2024-05``, or any name under a glob like ``release-*``) are ordered by tag
date instead.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.version import Version

# The one grammar: an optional model name and "@", then the version part. The version
# group is what PEP 440 parses (after an optional leading v); anything else in the version
# part makes a release tag that is ordered by date.
TAG_RE = re.compile(
    r"^(?:(?P<model>[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9])?)@)?"
    r"(?P<part>[vV]?(?P<version>[0-9]+(?:\.[0-9]+)*(?:[-_.+]?[A-Za-z0-9][A-Za-z0-9._+-]*)?)|.+)$"
)

BUMP_PARTS = ("major", "minor", "patch")


@dataclass(frozen=True)
class TagName:
    """A tag name split by the grammar."""

    name: str
    model: str | None  # None: the main release line
    part: str  # the version part, e.g. "v1.2.3"
    version: Version | None  # None: not a version, ordered by date

    @property
    def line(self) -> str:
        return self.model or ""


def parse_tag(name: str) -> TagName:
    """Split a tag name into model and version (version None when it is not one)."""
    match = TAG_RE.match(name)
    if match is None:  # only the empty string
        return TagName(name, None, name, None)
    version = None
    if match.group("version") is not None:
        from packaging.version import InvalidVersion, Version

        try:
            version = Version(match.group("version"))
        except InvalidVersion:
            version = None
    return TagName(name, match.group("model"), match.group("part"), version)


def is_release(name: str, glob: str) -> bool:
    """Whether tag `name` is a release under the `[release] tags` glob."""
    parsed = parse_tag(name)
    return fnmatch.fnmatchcase(parsed.part, glob)


@dataclass(frozen=True)
class ReleaseTag:
    """A release tag that exists (or is being created), with what it points at."""

    tag: TagName
    commit: str | None  # None: it does not point at a commit
    date: int  # tag date (creator date), seconds since the epoch

    @property
    def name(self) -> str:
        return self.tag.name


def releases_before(
    candidate: TagName | None, line: str, date: int, tags: list[ReleaseTag]
) -> list[ReleaseTag]:
    """Release tags of a line that come before the candidate, nearest first.

    candidate None is an untagged revision: it comes after every release. A versioned
    candidate looks at lower versions first, then (for projects that switched to
    versions) at unversioned tags by date. An unversioned candidate looks at every
    release of its line dated no later than it.
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
    lower = [
        t for t in same_line if t.tag.version is not None and (cv is None or t.tag.version < cv)
    ]
    lower.sort(key=_version_key, reverse=True)
    return lower + undated


def _version_key(t: ReleaseTag) -> tuple[Version, int]:
    assert t.tag.version is not None
    return (t.tag.version, t.date)


def latest_version(tags: list[ReleaseTag], line: str) -> ReleaseTag | None:
    versioned = [t for t in tags if t.tag.line == line and t.tag.version is not None]
    return max(versioned, key=_version_key, default=None)


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
