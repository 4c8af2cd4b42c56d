"""Shell completion: `git model <TAB>` through git's own bash completion, as a shell does it.

Each bash case sources git's completion script (the one Debian ships), loads ours with
`eval "$(git model completion bash)"`, sets COMP_WORDS/COMP_CWORD for a command line and
calls the function bash itself calls on TAB for `git` (`__git_wrap__git_main`), or
`_git_model` for the `git-model` executable. The zsh case types the line and TAB into a
real interactive zsh with its completion system loaded (compinit).
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


# zsh's completion system runs only inside its line editor, so the test drives a real
# interactive zsh in a pseudo-terminal (zsh/zpty): compinit, our script, then a command line
# and TAB. A compadd wrapper prints each match zsh would offer (after zsh's own filtering by
# what was typed); the two NUL lines compprefuncs/comppostfuncs print frame them.
ZSH_INIT = r"""
PROMPT= RPROMPT=
autoload -Uz compinit && compinit -u -D
eval "$(git model completion zsh)"
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
compadd () {
    # calls that only ask (-O, -A, -D: _describe and friends) pass through untouched
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return $?
    fi
    typeset -a __gm_hits
    builtin compadd -O __gm_hits "$@"
    print -rl -- $__gm_hits
    builtin compadd "$@"
}
gm-null-line () { print -r -- $'\0' }
compprefuncs=( gm-null-line )
comppostfuncs=( gm-null-line exit )
print GITMODEL-READY
"""

ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "source ${(q)GM_ZSH_INIT}"
local line
while zpty -r z line; do [[ $line == *GITMODEL-READY* ]] && break; done
zpty -w -n z "$1"$'\t'
integer nulls=0
while zpty -r z line; do
    [[ $line == *$'\0'* ]] && (( nulls++ ))
    (( nulls == 2 )) && break
    (( nulls == 1 )) && [[ $line != *$'\0'* ]] && print -r -- "${line%$'\r'}"
done
zpty -d z
"""


def zsh_complete(sh: Shell, repo: Path, line: str) -> list[str]:
    """What zsh's own completion system offers for `line` + TAB, in a real zsh."""
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed (scripts/services.sh installs it)")
    init = repo.parent / "gitmodel-zsh-init.zsh"
    init.write_text(ZSH_INIT, encoding="utf-8")
    proc = subprocess.run(
        [zsh, "-f", "-c", ZSH_DRIVER, "driver", line],
        cwd=repo,
        env=dict(sh.env, GM_ZSH_INIT=str(init)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted({w.strip() for w in proc.stdout.splitlines() if w.strip()})


def test_zsh_completion(sh: Shell, tagged: Path) -> None:
    script = sh.gm("completion", "zsh", cwd=tagged).stdout
    assert "_git-model ()" in script and "compdef _git-model git-model" in script
    # `git model <TAB>`: zsh's own _git hands over to _git-model
    verbs = zsh_complete(sh, tagged, "git model ")
    assert {"check", "checkout", "commit", "log"} <= set(verbs) and "hook" not in verbs
    assert zsh_complete(sh, tagged, "git model ch") == ["check", "checkout"]
    assert "--include-unnoted" in zsh_complete(sh, tagged, "git model log --")
    assert zsh_complete(sh, tagged, "git model remote ") == ["add", "list", "modify"]
    assert zsh_complete(sh, tagged, "git model check ") == ["experiment", "main", "v1.0.0"]
    assert zsh_complete(sh, tagged, "git model check v") == ["v1.0.0"]
    both = zsh_complete(sh, tagged, "git model checkout ")
    assert {"v1.0.0", "model.pkl", "weights"} <= set(both)
    # the executable on its own: tracked weights, and files too
    status = zsh_complete(sh, tagged, "git-model status ")
    assert {"model.pkl", "weights", "model.pkl.dvc"} <= set(status), status


def test_completion_of_an_unknown_shell_is_usage(sh: Shell, tagged: Path) -> None:
    res = sh.gm("completion", "fish", cwd=tagged, check=False)
    assert res.returncode == 2
