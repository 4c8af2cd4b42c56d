"""gitmodel.errors and the one handler (gitmodel.cli.main) that maps failures to exit codes.

0 done, 1 refused, 2 bad input or usage, 3 a bug; one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gitmodel import cli
from gitmodel.errors import (
    EXIT_BUG,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    GitModelError,
    Refused,
)
from gitmodel.notes import NOTES_REF

from .conftest import git


def test_the_codes() -> None:
    assert (EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_BUG) == (0, 1, 2, 3)


def test_an_expected_failure_carries_its_message_and_code() -> None:
    error = GitModelError("model.pt: no such file")
    assert error.message == str(error) == "model.pt: no such file"
    assert error.exit_code == EXIT_USAGE
    assert Refused("worse than v1.0.0").exit_code == EXIT_REFUSED
    assert isinstance(Refused("x"), GitModelError)  # one base: one handler catches both
    assert GitModelError("x", exit_code=EXIT_REFUSED).exit_code == EXIT_REFUSED
    assert GitModelError.exit_code == EXIT_USAGE  # an instance's code leaves the class alone


def _verb(monkeypatch: pytest.MonkeyPatch, effect: BaseException | int) -> None:
    """A verb `metrics` whose function raises effect (or returns it), in the real parser."""

    def build(only: str | None = None) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="git model")
        sub = parser.add_subparsers(dest="command")

        def run(args: argparse.Namespace) -> int:
            if isinstance(effect, BaseException):
                raise effect
            return effect

        sub.add_parser("metrics").set_defaults(func=run)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)


@pytest.mark.parametrize(
    ("effect", "code", "stderr"),
    [
        (0, EXIT_OK, ""),
        (EXIT_REFUSED, EXIT_REFUSED, ""),
        (Refused("accuracy 0.9 < 0.95 of v1.0.0"), EXIT_REFUSED, "accuracy 0.9 < 0.95"),
        (GitModelError("model.pt: no such file"), EXIT_USAGE, "model.pt: no such file"),
        (ValueError("boom"), EXIT_BUG, "internal error: ValueError: boom"),
        (KeyError("k"), EXIT_BUG, "internal error: KeyError"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (BrokenPipeError(), EXIT_OK, ""),
    ],
)
def test_the_handler_maps_each_failure(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    effect: BaseException | int,
    code: int,
    stderr: str,
) -> None:
    monkeypatch.delenv("GITMODEL_DEBUG", raising=False)
    _verb(monkeypatch, effect)
    assert cli.main(["metrics"]) == code
    err = capsys.readouterr().err
    assert stderr in err
    assert err.count("\n") <= 1 and "Traceback" not in err
    if stderr:
        assert err.startswith("git model: ")


def test_a_bug_raises_under_gitmodel_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITMODEL_DEBUG", "1")
    _verb(monkeypatch, ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        cli.main(["metrics"])


def test_usage_errors_exit_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["metrics", "--no-such-flag"])
    assert caught.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("git model: error: ") and err.count("\n") == 1
    assert cli.main([]) == EXIT_USAGE  # no verb: help, and usage's code


def test_real_verbs_in_a_real_repository(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(git_repo)
    head = git(git_repo, "rev-parse", "HEAD").strip()
    assert cli.main(["metrics", "no-such-revision"]) == EXIT_USAGE
    assert cli.main(["metrics", "HEAD"]) == EXIT_REFUSED  # a commit without a note
    git(git_repo, "notes", f"--ref={NOTES_REF}", "add", "-m", "{not json", head)
    assert cli.main(["metrics", "HEAD"]) == EXIT_USAGE  # a hostile note: bad input, no bug
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err.strip().splitlines()) == 3
