"""gitmodel.git: the one runner of the git binary, and how its failures reach the user."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gitmodel.errors import EXIT_USAGE, GitModelError
from gitmodel.git import TRUTH_ENV, GitFailed, git_env, run_git, stream_git

from .conftest import commit_file, git


def test_run_git_returns_the_completed_process(git_repo: Path) -> None:
    proc = run_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=git_repo)
    assert proc.returncode == 0
    assert proc.stdout == "main\n"


def test_a_failure_is_one_line_with_git_s_last_word(git_repo: Path) -> None:
    with pytest.raises(GitFailed) as caught:
        run_git(["rev-parse", "--verify", "no-such-branch"], cwd=git_repo)
    failure = caught.value
    assert isinstance(failure, GitModelError)  # an expected failure: exit 2, not a traceback
    assert failure.exit_code == EXIT_USAGE
    assert failure.returncode == 128
    assert failure.message.startswith("git rev-parse --verify failed: ")
    assert "\n" not in failure.message
    assert failure.message.endswith(failure.stderr.strip().splitlines()[-1])


def test_a_silent_failure_names_the_exit_code(git_repo: Path) -> None:
    with pytest.raises(GitFailed, match=r"git config --get failed: exit 1$"):
        run_git(["config", "--get", "no.such-key"], cwd=git_repo)


def test_check_false_hands_back_the_failure(git_repo: Path) -> None:
    proc = run_git(["cat-file", "-e", "0" * 40], cwd=git_repo, check=False)
    assert proc.returncode != 0


def test_hook_variables_do_not_steer_our_git(git_repo: Path, tmp_path: Path) -> None:
    # Under a hook git sets GIT_DIR, GIT_INDEX_FILE, ...; they must not point our calls at
    # another repository (here: a foreign one) or index.
    foreign = tmp_path / "foreign"
    git(tmp_path, "init", "-q", str(foreign))
    steering = {
        "GIT_DIR": str(foreign / ".git"),
        "GIT_WORK_TREE": str(foreign),
        "GIT_INDEX_FILE": str(foreign / ".git" / "index"),
        "GIT_COMMON_DIR": str(foreign / ".git"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in steering.items():
            mp.setenv(name, value)
        mp.setenv("GIT_OBJECT_DIRECTORY", str(git_repo / ".git" / "objects"))
        env = git_env()
        top = run_git(["rev-parse", "--show-toplevel"], cwd=git_repo).stdout.strip()
    assert top == str(git_repo)
    assert not set(steering) & set(env)
    # a pre-receive hook must still see the quarantined objects of the push it judges
    assert env["GIT_OBJECT_DIRECTORY"] == str(git_repo / ".git" / "objects")


def test_extra_env_is_added(git_repo: Path) -> None:
    proc = run_git(["var", "GIT_AUTHOR_IDENT"], cwd=git_repo, env={"GIT_AUTHOR_NAME": "Ada"})
    assert proc.stdout.startswith("Ada <")


def test_retry_lock_waits_for_a_held_index_lock(git_repo: Path) -> None:
    (git_repo / "new.txt").write_text("x")
    lock = git_repo / ".git" / "index.lock"
    lock.write_text("")
    with pytest.raises(GitFailed) as caught:
        run_git(["add", "new.txt"], cwd=git_repo)
    assert "index.lock" in caught.value.stderr

    def release() -> None:
        time.sleep(0.2)
        lock.unlink()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        run_git(["add", "new.txt"], cwd=git_repo, retry_lock=True)
    finally:
        releaser.join()
    assert "new.txt" in git(git_repo, "diff", "--cached", "--name-only")


def test_truth_env_reads_objects_as_they_are(git_repo: Path) -> None:
    # A push can bring refs/replace/*: git would then show another blob in its place.
    real = git(git_repo, "rev-parse", "HEAD:README.md").strip()
    fake = git(git_repo, "hash-object", "-w", "--stdin", input="forged\n").strip()
    git(git_repo, "replace", real, fake)
    assert run_git(["cat-file", "blob", real], cwd=git_repo).stdout == "forged\n"
    assert run_git(["cat-file", "blob", real], cwd=git_repo, env=TRUTH_ENV).stdout == "project\n"


def test_stream_git_yields_pieces_as_git_writes_them(git_repo: Path) -> None:
    for i in range(3):
        commit_file(git_repo, f"f{i}.txt", str(i), f"commit {i}")
    pieces = list(stream_git(["log", "--format=%s%x00"], git_repo, b"\0"))
    assert [p.strip(b"\n") for p in pieces if p != b"\n"] == [
        b"commit 2",
        b"commit 1",
        b"commit 0",
        b"initial",
    ]


def test_stream_git_raises_once_its_output_is_read(git_repo: Path) -> None:
    stream = stream_git(["log", "no-such-revision"], git_repo, b"\n")
    with pytest.raises(GitFailed):
        list(stream)


def test_stream_git_stopped_early_kills_git(git_repo: Path) -> None:
    blob = git(git_repo, "hash-object", "-w", "--stdin", input="line\n" * 200_000).strip()
    stream = stream_git(["cat-file", "blob", blob], git_repo, b"\n")
    assert next(stream) == b"line"
    stream.close()  # the generator's finally kills and reaps git; no hang, no zombie
