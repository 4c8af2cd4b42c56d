"""Release-tag grammar and ordering (pure functions, no git)."""

from __future__ import annotations

import pytest

from gitmodel.versions import (
    ReleaseTag,
    bump,
    is_release,
    latest_version,
    parse_tag,
    releases_before,
    same_version,
)


def tags(*spec: tuple[str, int]) -> list[ReleaseTag]:
    return [ReleaseTag(parse_tag(name), f"{i:040x}", date) for i, (name, date) in enumerate(spec)]


@pytest.mark.parametrize(
    ("name", "model", "version"),
    [
        ("v1.2.3", None, "1.2.3"),
        ("1.2.3", None, "1.2.3"),
        ("V2", None, "2"),
        ("v1.2.3-rc.1", None, "1.2.3rc1"),  # semver pre-release, read by PEP 440
        ("v1.0.0+build.5", None, "1.0.0+build.5"),
        ("churn@v1.0.0", "churn", "1.0.0"),
        ("team/churn@v3.1", "team/churn", "3.1"),
        ("v-2024-05", None, None),
        ("release-7", None, None),
        ("v1.2.3-alpha.beta", None, None),  # semver that PEP 440 cannot read: date order
    ],
)
def test_grammar(name: str, model: str | None, version: str | None) -> None:
    parsed = parse_tag(name)
    assert parsed.model == model
    assert (str(parsed.version) if parsed.version else None) == version


def test_is_release_uses_the_glob_on_the_version_part() -> None:
    assert is_release("v1.0.0", "v*")
    assert is_release("churn@v1.0.0", "v*")
    assert not is_release("wip", "v*")
    assert not is_release("churn@1.0.0", "v*")
    assert is_release("release-7", "release-*")
    assert not is_release("v1.0.0", "release-*")


def test_hotfix_compares_with_the_release_below_it() -> None:
    pool = tags(("v1.0.0", 1), ("v1.0.1", 2), ("v1.2.0", 3), ("v1.10.0", 4))
    before = releases_before(parse_tag("v1.0.2"), "", 10, pool)
    assert [t.name for t in before] == ["v1.0.1", "v1.0.0"]
    # Version order, not string order and not date order.
    before = releases_before(parse_tag("v1.11.0"), "", 10, pool)
    assert [t.name for t in before][:2] == ["v1.10.0", "v1.2.0"]


def test_untagged_candidate_comes_after_every_release() -> None:
    pool = tags(("v1.0.0", 5), ("v2.0.0", 1), ("v1.5.0", 9))
    assert [t.name for t in releases_before(None, "", 10, pool)] == ["v2.0.0", "v1.5.0", "v1.0.0"]


def test_unversioned_tags_fall_back_to_date_order() -> None:
    pool = tags(("release-a", 30), ("release-b", 10), ("release-c", 20))
    before = releases_before(parse_tag("release-new"), "", 100, pool)
    assert [t.name for t in before] == ["release-a", "release-c", "release-b"]
    # An existing unversioned release looks only at older ones.
    before = releases_before(parse_tag("release-c"), "", 20, pool)
    assert [t.name for t in before] == ["release-b"]


def test_versioned_candidate_after_unversioned_history() -> None:
    pool = tags(("v-old", 5), ("v1.0.0", 8))
    before = releases_before(parse_tag("v1.1.0"), "", 10, pool)
    assert [t.name for t in before] == ["v1.0.0", "v-old"]


def test_model_lines_are_separate() -> None:
    pool = tags(("v1.0.0", 1), ("churn@v1.0.0", 2), ("fraud@v2.0.0", 3), ("churn@v1.1.0", 4))
    before = releases_before(parse_tag("churn@v1.2.0"), "churn", 10, pool)
    assert [t.name for t in before] == ["churn@v1.1.0", "churn@v1.0.0"]
    assert [t.name for t in releases_before(parse_tag("v2.0.0"), "", 10, pool)] == ["v1.0.0"]
    latest = latest_version(pool, "churn")
    assert latest is not None and latest.name == "churn@v1.1.0"


@pytest.mark.parametrize(
    ("previous", "part", "expected"),
    [
        ("v1.2.3", "patch", "v1.2.4"),
        ("v1.2.3", "minor", "v1.3.0"),
        ("v1.2.3", "major", "v2.0.0"),
        ("1.2", "patch", "1.2.1"),
        (None, "minor", "v0.1.0"),
        (None, "major", "v1.0.0"),
    ],
)
def test_bump(previous: str | None, part: str, expected: str) -> None:
    assert bump(parse_tag(previous) if previous else None, part, "v*") == expected


def test_bump_keeps_the_model_line() -> None:
    assert bump(parse_tag("churn@v1.0.0"), "minor", "v*", "churn") == "churn@v1.1.0"


# -- GTO's grammar, read exactly ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "model", "part"),
    [
        ("clf@v1.2.3", "release", "clf", "v1.2.3"),  # gto register
        ("clf@v1.2.3#4", "release", "clf", "v1.2.3"),  # a registration with a counter
        ("models=clf@v1.0.0", "release", "models=clf", "v1.0.0"),  # GTO's dir:name
        ("clf@v0.1.0!", "deprecation", "clf", "v0.1.0"),  # gto deprecate clf v0.1.0
        ("clf@v0.1.0!#3", "deprecation", "clf", "v0.1.0"),
        ("clf#prod#1", "stage", "clf", "prod"),  # gto assign
        ("clf#prod!#2", "stage", "clf", "prod"),  # gto unassign
        ("clf#prod", "stage", "clf", "prod"),  # GTO before counters
        ("vision#prod#1", "stage", "vision", "prod"),  # starts with v, still a stage
        ("v2#staging#5", "stage", "v2", "staging"),
        ("clf@deprecated#5", "lifecycle", "clf", "deprecated"),  # gto deprecate clf
        ("clf@created#1", "lifecycle", "clf", "created"),
        ("v1.2.3!", "other", None, "v1.2.3!"),  # GTO punctuation without an artifact
        ("v1#x#y#z", "other", None, "v1#x#y#z"),
        ("v1.2.3", "release", None, "v1.2.3"),
    ],
)
def test_gto_tag_kinds(name: str, kind: str, model: str | None, part: str) -> None:
    parsed = parse_tag(name)
    assert (parsed.kind, parsed.model, parsed.part) == (kind, model, part)
    assert is_release(name, "v*") is (kind == "release")
    assert is_release(name, "*") is (kind == "release")


def test_deprecations_and_stages_are_never_baselines() -> None:
    pool = [
        t
        for t in tags(("clf@v0.1.0", 1), ("clf@v0.1.0!", 2), ("vision#prod#1", 3), ("v1.0.0", 4))
        if is_release(t.name, "v*")
    ]
    assert [t.name for t in pool] == ["clf@v0.1.0", "v1.0.0"]
    assert [t.name for t in releases_before(parse_tag("clf@v0.2.0"), "clf", 9, pool)] == [
        "clf@v0.1.0"
    ]


# -- one version, however spelled ------------------------------------------------------------


def test_equal_versions_are_one_version() -> None:
    assert same_version(parse_tag("v1.1"), parse_tag("v1.1.0.0"))
    assert same_version(parse_tag("V1.1.0"), parse_tag("1.1"))
    assert not same_version(parse_tag("clf@v1.1"), parse_tag("v1.1.0"))
    assert not same_version(parse_tag("v1.1"), parse_tag("v1.1.1"))


def test_a_new_spelling_is_judged_against_the_release_of_its_version() -> None:
    pool = tags(("v1.0.0", 1), ("v1.1.0", 2))
    # v1.0 is not a first release: v1.0.0 is its version.
    assert [t.name for t in releases_before(parse_tag("v1.0"), "", 9, pool)] == ["v1.0.0"]
    assert [t.name for t in releases_before(parse_tag("v1.1"), "", 9, pool)][:1] == ["v1.1.0"]
    assert [t.name for t in releases_before(parse_tag("v1.1.0.0"), "", 9, pool)][:1] == ["v1.1.0"]
    # Once v1.1 exists, the next version is judged against the latest spelling of v1.1.
    pool = tags(("v1.0.0", 1), ("v1.1.0", 2), ("v1.1", 3))
    assert [t.name for t in releases_before(parse_tag("v1.2.0"), "", 9, pool)] == [
        "v1.1",
        "v1.1.0",
        "v1.0.0",
    ]
    # An existing spelling is judged against the spellings tagged before it, not after.
    assert [t.name for t in releases_before(parse_tag("v1.1"), "", 3, pool)] == [
        "v1.1.0",
        "v1.0.0",
    ]
    assert [t.name for t in releases_before(parse_tag("v1.1.0"), "", 2, pool)] == ["v1.0.0"]


# -- agreement with GTO's own regex -----------------------------------------------------------

_GTO_NAMES = ["clf", "models=clf", "a/b", "m-1_x", "v2", "x9"]
_GTO_SUFFIXES = [
    "@v1.2.3",
    "@v0.0.1-rc.1+build.7",
    "@v1.2.3!",
    "@v1.2.3#12",
    "@v1.2.3!#4",
    "#prod",
    "#prod#3",
    "#prod!#3",
    "#stage-2!",
    "@deprecated#2",
    "@created#1",
    "@created",
]


def _gto_kind(name: str) -> tuple[str, str, str] | None:
    """What GTO's tag_re (gto/constants.py) makes of a tag: (kind, artifact, part)."""
    from gto.constants import tag_re

    match = tag_re.search(name)
    if match is None:
        return None
    artifact = match["artifact"]
    if match["deprecated"] or match["created"]:
        return ("lifecycle", artifact, match["deprecated"] or match["created"])
    if match["version"]:
        kind = "deprecation" if match["cancel"] == "!" else "release"
        return (kind, artifact, match["version"])
    return ("stage", artifact, match["stage"])


@pytest.mark.parametrize("suffix", _GTO_SUFFIXES)
def test_every_tag_gto_reads_is_read_the_same(suffix: str) -> None:
    for artifact in _GTO_NAMES:
        name = artifact + suffix
        expected = _gto_kind(name)
        assert expected is not None, name  # the corpus holds GTO tags only
        parsed = parse_tag(name)
        assert (parsed.kind, parsed.model, parsed.part) == expected, name
        # only GTO's registrations can be releases; everything else never is
        assert is_release(name, "v*") == (expected[0] == "release"), name


@pytest.mark.parametrize("name", ["v1.2.3!", "clf@v1!x", "clf#", "@v1.0.0", "clf@@v1", "#prod#1"])
def test_punctuation_gto_does_not_read_is_never_a_release(name: str) -> None:
    assert _gto_kind(name) is None
    assert not is_release(name, "*")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("v1.1", "v1.1.0", True),
        ("v1.1", "v1.1.0.0", True),
        ("V1.1.0", "v1.1", True),
        ("clf@v1.1", "clf@v1.1.0", True),
        ("clf@v1.1", "v1.1.0", False),  # another line
        ("v1.1", "v1.1.1", False),
        ("v-2024", "v-2024", False),  # no version: never the same by version
    ],
)
def test_same_version_is_version_order_not_spelling(a: str, b: str, same: bool) -> None:
    assert same_version(parse_tag(a), parse_tag(b)) is same
