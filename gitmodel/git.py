"""The one door to the `git` binary: every subprocess call to git goes through this module
(`run_git`, its bytes twin `run_git_bytes`, `stream_git`), with git_env's environment."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence

from gitmodel.errors import GitModelError

# Variables git sets for hooks that would point our own git calls at the wrong repository
# or index (pre-commit strips the same set). Object-directory variables are kept on purpose:
# a pre-receive hook must see the quarantined objects of the push it is judging.
_STRIPPED = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_PREFIX",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    }
)


# Objects as they are: a replace ref (refs/replace/*, which a push can bring) would let
# anyone substitute the note or policy blob that the release gate reads.
TRUTH_ENV = {"GIT_NO_REPLACE_OBJECTS": "1"}


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a git subprocess: ours, minus repository-steering variables."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED}
    if extra:
        env.update(extra)
    return env


class GitFailed(GitModelError):
    """A git command exited non-zero."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit {returncode}"
        super().__init__(f"git {' '.join(args[:2])} failed: {last}")
        self.returncode = returncode
        self.stderr = stderr


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    input: str | bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    retry_lock: bool = False,
    keep_stderr: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` in CWD and return the completed process (text mode).

    retry_lock retries briefly when another process holds git's index.lock, as two
    concurrent `git model add` runs otherwise fail on each other's lock. keep_stderr=False
    drops stderr, so a large stdout is read in one go instead of a poll loop over two pipes.
    """
    full_env = git_env(env)
    attempts = 40 if retry_lock else 1
    for attempt in range(attempts):
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            text=True,
            env=full_env,
            stdout=subprocess.PIPE if capture else None,
            stderr=(subprocess.PIPE if keep_stderr else subprocess.DEVNULL) if capture else None,
        )
        if proc.returncode == 0 or not check:
            return proc
        if retry_lock and ".lock" in (proc.stderr or "") and attempt + 1 < attempts:
            time.sleep(0.05 + 0.01 * attempt)
            continue
        raise GitFailed(list(args), proc.returncode, proc.stderr or "")
    raise AssertionError("unreachable")


def run_git_bytes(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None = None,
    *,
    input: bytes | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """run_git for bytes (object contents are not text): same environment, same GitFailed."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, env=git_env(env), capture_output=True
    )
    if proc.returncode != 0 and check:
        raise GitFailed(list(args), proc.returncode, proc.stderr.decode(errors="replace"))
    return proc


def read_blobs(oids: Sequence[str], cwd: str | os.PathLike[str] | None) -> list[bytes]:
    """Contents of many git objects through one `git cat-file --batch`, in oids' order.

    A failure of git, or an object git does not have, is a one-line GitModelError,
    never a parse error of git's output.
    """
    if not oids:
        return []
    for oid in oids:
        if oid.split() != [oid]:  # a blank or a newline would shift every later answer
            raise GitModelError(f"not a git object name: {oid!r}")
    proc = run_git_bytes(["cat-file", "--batch"], cwd, input=("\n".join(oids) + "\n").encode())
    data, pos, out = proc.stdout, 0, []
    for oid in oids:
        nl = data.find(b"\n", pos)
        header = data[pos:nl].split() if nl >= 0 else []
        if len(header) != 3 or not header[2].isdigit():  # "<oid> missing", or cut short
            raise GitModelError(f"git object {oid} is not in the repository")
        size = int(header[2])
        out.append(data[nl + 1 : nl + 1 + size])
        pos = nl + 1 + size + 1
    return out


def stream_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str] | None,
    sep: bytes,
    env: Mapping[str, str] | None = None,
) -> Iterator[bytes]:
    """`git ARGS`'s stdout cut at `sep`, each piece yielded as soon as git has written it.

    The caller's parsing runs while git is still walking history, on the other core,
    instead of after it. stderr is dropped; a non-zero exit raises GitFailed once the
    output is consumed. Stopping early kills git.
    """
    proc = subprocess.Popen(
        ["git", *args],
        cwd=cwd,
        env=git_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    out = proc.stdout
    assert isinstance(out, io.BufferedReader)
    try:
        tail = b""
        while chunk := out.read1(1 << 16):
            pieces = (tail + chunk).split(sep)
            tail = pieces.pop()
            yield from pieces
        if tail:
            yield tail
        if proc.wait() != 0:
            raise GitFailed(list(args), proc.returncode, "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
