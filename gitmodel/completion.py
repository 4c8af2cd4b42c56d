"""Shell completion for `git model`: scripts for bash and zsh, generated from the parser.

Git's bash completion calls `_git_<command>` for `git <command> <TAB>` when such a function
is defined, and zsh's own `_git` calls `_git-<command>`; both scripts define that function
(and complete the `git-model` executable too). Verbs and flags are written into the
script from argparse, so they cannot drift from the CLI; tracked weights and release
tags are asked of git at TAB time (one `git ls-files` or `git for-each-ref`, no Python).
"""

from __future__ import annotations

import argparse

# Internal verbs that a user never types.
HIDDEN = {"hook"}

# What a verb's positional arguments are: tracked weights paths (and other files), revisions
# (release tags first), or both; the sub-verbs of `remote`.
PATH_VERBS = {"add", "commit", "status"}
REV_VERBS = {"check", "diff", "metrics", "log", "plot", "report", "promote"}
REV_OR_PATH_VERBS = {"checkout"}
REV_FLAGS = {"--rev", "--against", "--tag", "--history"}


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {k: v for k, v in action.choices.items() if k not in HIDDEN}
    return {}


def _flags(parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """(every flag, the flags that take a value) of one verb."""
    flags: list[str] = []
    valued: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flags += action.option_strings
        if action.nargs != 0:
            valued += action.option_strings
    return flags, valued


def bash_script(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    flag_cases = []
    valued_cases = []
    for name, sub in verbs.items():
        flags, valued = _flags(sub)
        flag_cases.append(f"    {name}) echo '{' '.join(flags)}' ;;")
        if valued:
            valued_cases.append(f"    {name}) echo '{' '.join(valued)}' ;;")
        for subname, subsub in _verbs(sub).items():
            flags, valued = _flags(subsub)
            flag_cases.append(f"    {name}/{subname}) echo '{' '.join(flags)}' ;;")
            if valued:
                valued_cases.append(f"    {name}/{subname}) echo '{' '.join(valued)}' ;;")
    subverbs = {name: list(_verbs(sub)) for name, sub in verbs.items() if _verbs(sub)}
    subverb_cases = [f"    {name}) echo '{' '.join(s)}' ;;" for name, s in subverbs.items()]
    return _BASH.format(
        verbs=" ".join(verbs),
        flag_cases="\n".join(flag_cases),
        valued_cases="\n".join(valued_cases),
        subverb_cases="\n".join(subverb_cases),
        path_verbs="|".join(sorted(PATH_VERBS)),
        rev_verbs="|".join(sorted(REV_VERBS & set(verbs))),
        rev_or_path_verbs="|".join(sorted(REV_OR_PATH_VERBS)),
        rev_flags="|".join(sorted(REV_FLAGS)),
    )


def zsh_script(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    described = []
    flag_cases = []
    for name, sub in verbs.items():
        text = (sub.description or "").split(". ")[0].replace("'", "").replace(":", " -")
        described.append(f"    '{name}:{text[:70]}'")
        flags, _ = _flags(sub)
        flag_cases.append(f"    {name}) flags=({' '.join(flags)}) ;;")
    subverbs = {name: list(_verbs(sub)) for name, sub in verbs.items() if _verbs(sub)}
    subverb_cases = [f"    {name}) subverbs=({' '.join(s)}) ;;" for name, s in subverbs.items()]
    return _ZSH.format(
        described="\n".join(described),
        flag_cases="\n".join(flag_cases),
        subverb_cases="\n".join(subverb_cases),
        path_verbs="|".join(sorted(PATH_VERBS)),
        rev_verbs="|".join(sorted(REV_VERBS & set(verbs))),
        rev_or_path_verbs="|".join(sorted(REV_OR_PATH_VERBS)),
        rev_flags="|".join(sorted(REV_FLAGS)),
    )


_BASH = r"""# bash completion for `git model` (and `git-model`), from `git model completion bash`.
# Load it after git's own completion, e.g. in ~/.bashrc:
#   eval "$(git model completion bash)"

__git_model_flags () {{
    case "$1" in
{flag_cases}
    esac
}}

__git_model_valued () {{
    case "$1" in
{valued_cases}
    esac
}}

__git_model_subverbs () {{
    case "$1" in
{subverb_cases}
    esac
}}

# Tracked weights: the paths of the work tree's *.dvc pointers.
__git_model_tracked () {{
    git ls-files -co --exclude-standard -- '*.dvc' ':!:.dvc/*' 2>/dev/null | sed 's/\.dvc$//'
}}

# Revisions: release tags first (newest version first), then branches.
__git_model_revs () {{
    git for-each-ref --sort=-version:refname --format='%(refname:short)' refs/tags 2>/dev/null
    git for-each-ref --format='%(refname:short)' refs/heads 2>/dev/null
}}

__git_model_reply () {{
    # $1: the words to offer, one a line; $2: the word being completed.
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$1" -- "$2"))
}}

_git_model () {{
    local ws cw
    if [ -n "${{words+set}}" ] && [ -n "${{cword:-}}" ]; then
        ws=("${{words[@]}}"); cw=$cword       # inside git's completion
    else
        ws=("${{COMP_WORDS[@]}}"); cw=$COMP_CWORD
    fi
    local cur="${{ws[cw]}}" prev="${{ws[cw-1]}}"
    # Where the verb is: after `model` (git model VERB) or after `git-model`.
    local i=0 start=1 verb="" sub="" key
    while [ $i -lt $cw ]; do
        case "${{ws[i]}}" in
        model|git-model|*/git-model) start=$((i + 1)); break ;;
        esac
        i=$((i + 1))
    done
    i=$start
    while [ $i -lt $cw ]; do
        case "${{ws[i]}}" in
        -*) ;;
        *) if [ -z "$verb" ]; then verb="${{ws[i]}}"
           elif [ -z "$sub" ] && [ -n "$(__git_model_subverbs "$verb")" ]; then sub="${{ws[i]}}"
           fi ;;
        esac
        i=$((i + 1))
    done
    if [ -z "$verb" ]; then
        __git_model_reply "$(printf '%s\n' {verbs} --help --version)" "$cur"
        return
    fi
    key=$verb
    [ -n "$sub" ] && key="$verb/$sub"
    case "$prev" in
    {rev_flags})
        __git_model_reply "$(__git_model_revs)" "$cur"; return ;;
    esac
    case " $(__git_model_valued "$key") " in
    *" $prev "*) COMPREPLY=(); return ;;   # the value of a flag: nothing to guess
    esac
    case "$cur" in
    -*)
        __git_model_reply "$(printf '%s\n' $(__git_model_flags "$key"))" "$cur"
        return ;;
    esac
    if [ -z "$sub" ] && [ -n "$(__git_model_subverbs "$verb")" ]; then
        __git_model_reply "$(printf '%s\n' $(__git_model_subverbs "$verb"))" "$cur"
        return
    fi
    case "$verb" in
    {rev_or_path_verbs})
        __git_model_reply "$(__git_model_revs; __git_model_tracked)" "$cur" ;;
    {rev_verbs})
        __git_model_reply "$(__git_model_revs)" "$cur" ;;
    {path_verbs})
        __git_model_reply "$(__git_model_tracked)" "$cur"
        local IFS=$'\n'
        COMPREPLY+=($(compgen -f -- "$cur")) ;;
    *)
        COMPREPLY=() ;;
    esac
}}

# The executable itself: `git-model VERB <TAB>`.
complete -o bashdefault -o default -F _git_model git-model 2>/dev/null || true
"""

_ZSH = r"""#compdef git-model
# zsh completion for `git model` (and `git-model`), from `git model completion zsh`.
# zsh's own git completion calls _git-model for `git model <TAB>`. Load it after
# compinit, e.g. in ~/.zshrc:
#   eval "$(git model completion zsh)"

_git-model () {{
    local -a verbs flags subverbs
    verbs=(
{described}
    )
    local verb sub i
    # words: (model VERB ...) under `git`, (git-model VERB ...) on its own
    for (( i = 2; i < CURRENT; i++ )); do
        [[ $words[i] == -* ]] && continue
        if [[ -z $verb ]]; then verb=$words[i]
        elif [[ -z $sub ]]; then sub=$words[i]
        fi
    done
    if [[ -z $verb ]]; then
        _describe -t commands 'git model command' verbs
        return
    fi
    case $verb in
{flag_cases}
    esac
    case $verb in
{subverb_cases}
    esac
    case $words[CURRENT-1] in
    {rev_flags})
        compadd -- ${{(f)"$(git for-each-ref --sort=-version:refname --format='%(refname:short)' refs/tags refs/heads 2>/dev/null)"}}
        return ;;
    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $flags
        return
    fi
    if (( $#subverbs )) && [[ -z $sub ]]; then
        compadd -- $subverbs
        return
    fi
    local -a revs tracked
    revs=(${{(f)"$(git for-each-ref --sort=-version:refname --format='%(refname:short)' refs/tags refs/heads 2>/dev/null)"}})
    tracked=(${{(f)"$(git ls-files -co --exclude-standard -- '*.dvc' ':!:.dvc/*' 2>/dev/null | sed 's/\.dvc$//')"}})
    case $verb in
    {rev_or_path_verbs}) compadd -- $revs $tracked ;;
    {rev_verbs}) compadd -- $revs ;;
    {path_verbs}) compadd -- $tracked; _files ;;
    esac
}}

compdef _git-model git-model 2>/dev/null
"""
