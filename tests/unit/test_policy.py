"""gitmodel.policy: the committed policy judges; what differs from it is said in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmodel.config import CONFIG_FILE, ConfigError, parse_config_text
from gitmodel.policy import committed_policy, door_policy, policy_change

from .conftest import commit_file, git

STRICT = "[gate.accuracy]\ntolerance = 0.0\n"
LOOSE = "[gate.accuracy]\ntolerance = 0.5\n"


def test_no_policy_committed(git_repo: Path) -> None:
    assert committed_policy(git_repo) is None
    assert door_policy(git_repo) == (None, None, None)


def test_the_committed_policy_at_a_revision(git_repo: Path) -> None:
    first = commit_file(git_repo, CONFIG_FILE, STRICT)
    commit_file(git_repo, CONFIG_FILE, LOOSE)
    head = committed_policy(git_repo)
    old = committed_policy(git_repo, first)
    assert head is not None and old is not None
    assert head.gates["accuracy"].tolerance == 0.5
    assert old.gates["accuracy"].tolerance == 0.0
    assert head.source == f"{CONFIG_FILE} at HEAD"
    assert old.source == f"{CONFIG_FILE} at {first[:12]}"


def test_pyproject_counts_only_when_it_names_gitmodel(git_repo: Path) -> None:
    commit_file(git_repo, "pyproject.toml", '[project]\nname = "x"\n')
    assert committed_policy(git_repo) is None
    commit_file(git_repo, "pyproject.toml", '[tool.gitmodel.release]\ntags = "rel-*"\n')
    cfg = committed_policy(git_repo)
    assert cfg is not None and cfg.release_tags == "rel-*"


def test_a_malformed_committed_policy_is_an_error_not_no_policy(git_repo: Path) -> None:
    commit_file(git_repo, CONFIG_FILE, "[gate.accuracy\n")
    with pytest.raises(ConfigError, match="malformed TOML"):
        committed_policy(git_repo)


def test_a_replace_ref_cannot_swap_the_committed_policy(git_repo: Path) -> None:
    # refs/replace/* can arrive with a push or a fetch; the policy is read as committed.
    commit_file(git_repo, CONFIG_FILE, STRICT)
    real = git(git_repo, "rev-parse", f"HEAD:{CONFIG_FILE}").strip()
    forged = git(git_repo, "hash-object", "-w", "--stdin", input=LOOSE).strip()
    git(git_repo, "replace", real, forged)
    assert git(git_repo, "show", f"HEAD:{CONFIG_FILE}") == LOOSE  # git itself is fooled
    cfg = committed_policy(git_repo)
    assert cfg is not None and cfg.gates["accuracy"].tolerance == 0.0


def test_the_work_tree_policy_judges_until_one_is_committed(git_repo: Path) -> None:
    (git_repo / CONFIG_FILE).write_text(STRICT)
    door = door_policy(git_repo)
    assert door.config is not None and door.config.gates["accuracy"].tolerance == 0.0
    assert door.difference is not None and "is not committed" in door.difference


def test_the_committed_policy_judges_when_the_work_tree_differs(git_repo: Path) -> None:
    commit_file(git_repo, CONFIG_FILE, STRICT)
    (git_repo / CONFIG_FILE).write_text(LOOSE)
    door = door_policy(git_repo)
    assert door.config is not None and door.config.gates["accuracy"].tolerance == 0.0
    assert door.worktree is not None and door.worktree.gates["accuracy"].tolerance == 0.5
    assert door.difference is not None
    assert "accuracy.tolerance 0.0 -> 0.5" in door.difference
    assert "\n" not in door.difference


def test_the_committed_policy_judges_when_the_work_tree_has_none(git_repo: Path) -> None:
    commit_file(git_repo, CONFIG_FILE, STRICT)
    (git_repo / CONFIG_FILE).unlink()
    door = door_policy(git_repo)
    assert door.config is not None and door.worktree is None
    assert door.difference is not None and "has no policy file" in door.difference


def test_a_clean_work_tree_says_nothing(git_repo: Path) -> None:
    commit_file(git_repo, CONFIG_FILE, STRICT)
    door = door_policy(git_repo)
    assert door.difference is None and door.config is not None


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        (STRICT, STRICT, None),
        (STRICT, LOOSE, "accuracy.tolerance 0.0 -> 0.5"),
        (STRICT, "", "gate accuracy removed"),
        ("", STRICT, "gate accuracy added"),
        (STRICT, STRICT + "[release]\ntags = '*'\n", "release.tags 'v*' -> '*'"),
        ("[gate]\ndefaults = true\n", "[gate]\ndefaults = false\n", "gate.defaults True -> False"),
        ("[release]\nrequire-metrics = false\n", "", "require-metrics False -> True"),
        (
            "[gate.loss]\ndirection = 'lower'\n",
            "[gate.loss]\ndirection = 'higher'\nminimum = 0.1\n",
            "loss.direction lower -> higher; loss.minimum None -> 0.1",
        ),
    ],
)
def test_policy_change(old: str, new: str, change: str | None) -> None:
    before = parse_config_text(old, "old")
    after = parse_config_text(new, "new")
    assert policy_change(before, after) == change
