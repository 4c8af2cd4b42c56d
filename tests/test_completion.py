"""Shell completion: `git model <TAB>` through git's own bash completion, as a shell does it.

Each case sources git's completion script (the one Debian ships), loads ours with
`eval "$(git model completion bash)"`, sets COMP_WORDS/COMP_CWORD for a command line and
calls the function bash itself calls on TAB for `git` (`__git_wrap__git_main`), or
`_git_model` for the `git-model` executable.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Shell, write_bytes

GIT_COMPLETION = Path("/usr/share/bash-completion/completions/git")

HARNESS = r"""
source "$GIT_COMPLETION"
eval "$(git model completion bash)"
line="$1"
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$line"; COMP_POINT=${#line}
COMPREPLY=()
if [ "${COMP_WORDS[0]}" = git ]; then __git_wrap__git_main; else _git_model; fi
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture
def tagged(sh: Shell, repo: Path) -> Path:
    write_bytes(repo / "model.pkl", 100)
    write_bytes(repo / "weights" / "a.bin", 100)
    sh.gm("commit", "model.pkl", "weights", "-m", "m", "--metric", "accuracy=0.9", cwd=repo)
    sh.gm("release", "v1.0.0", cwd=repo)
    sh.git("branch", "experiment", cwd=repo)
    return repo


def complete(sh: Shell, repo: Path, line: str) -> list[str]:
    if not GIT_COMPLETION.is_file():
        pytest.skip(f"{GIT_COMPLETION} is not installed")
    env = dict(sh.env, GIT_COMPLETION=str(GIT_COMPLETION))
    proc = subprocess.run(
        ["bash", "-c", HARNESS, "harness", line],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted(w.strip() for w in proc.stdout.splitlines() if w.strip())  # bash sorts too


def test_verbs(sh: Shell, tagged: Path) -> None:
    assert complete(sh, tagged, "git model ch") == ["check", "checkout"]
    every = complete(sh, tagged, "git model ")
    assert {"init", "commit", "log", "release", "completion"} <= set(every)
    assert "hook" not in every  # internal
    assert complete(sh, tagged, "git model rel") == ["release", "releases"]


def test_flags_of_the_verb(sh: Shell, tagged: Path) -> None:
    assert complete(sh, tagged, "git model log --a") == ["--all"]
    assert "--include-unnoted" in complete(sh, tagged, "git model log --")
    assert complete(sh, tagged, "git model checkout --f") == ["--force"]
    assert complete(sh, tagged, "git model remote add --d") == ["--default"]
    assert complete(sh, tagged, "git model commit -m ") == []  # a message: nothing to guess


def test_tracked_paths(sh: Shell, tagged: Path) -> None:
    assert "model.pkl" in complete(sh, tagged, "git model status mo")
    assert "weights" in complete(sh, tagged, "git model status w")
    assert complete(sh, tagged, "git model checkout mod") == ["model.pkl"]


def test_release_tags_for_check_diff_checkout(sh: Shell, tagged: Path) -> None:
    for verb in ("check", "diff", "checkout"):
        assert complete(sh, tagged, f"git model {verb} v") == ["v1.0.0"], verb
    assert complete(sh, tagged, "git model diff v1.0.0 ex") == ["experiment"]
    assert complete(sh, tagged, "git model release --rev v") == ["v1.0.0"]
    assert complete(sh, tagged, "git model check --against ") == ["experiment", "main", "v1.0.0"]


def test_sub_verbs_of_remote(sh: Shell, tagged: Path) -> None:
    assert complete(sh, tagged, "git model remote ") == ["add", "list", "modify"]


def test_the_git_model_executable(sh: Shell, tagged: Path) -> None:
    assert complete(sh, tagged, "git-model ch") == ["check", "checkout"]
    assert complete(sh, tagged, "git-model check v") == ["v1.0.0"]


ZSH_HARNESS = r"""
eval "$(git model completion zsh)"
# What zsh's completion system would be handed: stand-ins that print the candidates
# (compadd's own filtering by $PREFIX is zsh's, not ours).
compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }
_describe() { local name=$4; print -l -- ${${(P)name}%%:*}; }
_files() { print -- "(files)"; }
words=(${(z)1})
[[ $1 == *" " ]] && words+=("")
CURRENT=${#words}
PREFIX=$words[CURRENT]
_git-model
"""


def zsh_complete(sh: Shell, repo: Path, line: str) -> list[str]:
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed (scripts/services.sh installs it)")
    proc = subprocess.run(
        [zsh, "-f", "-c", ZSH_HARNESS, "harness", line],
        cwd=repo,
        env=sh.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted(w for w in proc.stdout.splitlines() if w)


def test_zsh_completion(sh: Shell, tagged: Path) -> None:
    script = sh.gm("completion", "zsh", cwd=tagged).stdout
    assert "_git-model ()" in script and "compdef _git-model git-model" in script
    verbs = zsh_complete(sh, tagged, "model ")  # zsh's _git hands over (model ...)
    assert {"check", "checkout", "commit", "log"} <= set(verbs) and "hook" not in verbs
    assert "--include-unnoted" in zsh_complete(sh, tagged, "model log --")
    assert zsh_complete(sh, tagged, "model remote ") == ["add", "list", "modify"]
    revs = zsh_complete(sh, tagged, "model check ")
    assert revs == ["experiment", "main", "v1.0.0"]
    both = zsh_complete(sh, tagged, "model checkout ")
    assert {"v1.0.0", "model.pkl", "weights"} <= set(both)
    assert {"model.pkl", "(files)"} <= set(zsh_complete(sh, tagged, "git-model status "))


def test_completion_of_an_unknown_shell_is_usage(sh: Shell, tagged: Path) -> None:
    res = sh.gm("completion", "fish", cwd=tagged, check=False)
    assert res.returncode == 2
