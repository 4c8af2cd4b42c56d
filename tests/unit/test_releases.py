"""gitmodel.releases: the release tags that exist, and the commits they point at."""

from __future__ import annotations

from pathlib import Path

from gitmodel.releases import list_release_tags, peel_commit

from .conftest import commit_file, git


def _by_name(repo: Path, glob: str = "v*") -> dict[str, tuple[str | None, int]]:
    return {t.name: (t.commit, t.date) for t in list_release_tags(repo, glob)}


def test_lightweight_annotated_and_nested_tags(git_repo: Path) -> None:
    first = git(git_repo, "rev-parse", "HEAD").strip()
    second = commit_file(git_repo, "m.txt", "2")
    git(git_repo, "tag", "v1.0.0", first)
    git(git_repo, "tag", "-a", "-m", "release", "v1.1.0", second)
    git(git_repo, "tag", "-a", "-m", "tag of a tag", "v1.2.0", "v1.1.0")
    tags = _by_name(git_repo)
    assert {name: commit for name, (commit, _) in tags.items()} == {
        "v1.0.0": first,
        "v1.1.0": second,
        "v1.2.0": second,
    }
    assert all(date > 0 for _, date in tags.values())


def test_only_releases_under_the_glob(git_repo: Path) -> None:
    for name in ("v1.0.0", "clf@v1.0.0", "clf@v1.0.0!", "clf#prod#1", "nightly", "rel-3"):
        git(git_repo, "tag", name)
    assert set(_by_name(git_repo)) == {"v1.0.0", "clf@v1.0.0"}
    assert set(_by_name(git_repo, "rel-*")) == {"rel-3"}


def test_a_tag_of_a_tree_or_blob_points_at_no_commit(git_repo: Path) -> None:
    tree = git(git_repo, "rev-parse", "HEAD^{tree}").strip()
    blob = git(git_repo, "rev-parse", "HEAD:README.md").strip()
    git(git_repo, "tag", "v1.0.0", tree)
    git(git_repo, "tag", "-a", "-m", "a blob", "v2.0.0", blob)
    assert _by_name(git_repo)["v1.0.0"][0] is None
    assert _by_name(git_repo)["v2.0.0"][0] is None
    assert peel_commit(git_repo, blob) is None
    assert peel_commit(git_repo, "--output=/tmp/x") is None  # an option is not an object


def test_a_replace_ref_does_not_move_a_release(git_repo: Path) -> None:
    released = git(git_repo, "rev-parse", "HEAD").strip()
    git(git_repo, "tag", "-a", "-m", "release", "v1.0.0")
    other = commit_file(git_repo, "m.txt", "other")
    tag = git(git_repo, "rev-parse", "v1.0.0").strip()
    forged = git(
        git_repo,
        "mktag",
        input=f"object {other}\ntype commit\ntag v1.0.0\ntagger T <t@e> 0 +0000\n\nforged\n",
    ).strip()
    git(git_repo, "replace", "-f", tag, forged)
    assert git(git_repo, "rev-parse", "v1.0.0^{commit}").strip() == other  # git is fooled
    assert _by_name(git_repo)["v1.0.0"][0] == released
    assert peel_commit(git_repo, tag) == released
