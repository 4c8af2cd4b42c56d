#!/bin/sh
# gitmodel hook shim (gitmodel-hook-id: 5b1f0c7e) for @HOOK@
# Written by `git model install`; `git model uninstall` removes it. Hooks that were here
# before are kept as @HOOK@.kept-by-gitmodel.N and still run first, in order, with the same
# arguments and input. (Under pre-commit this shim is the @HOOK@.legacy its script runs.)
# Git runs this on its own operations: it filters cheaply in shell and starts Python
# only when there is work to do.
hook=@HOOK@
python=@PYTHON@

# Run by a hook we ourselves run as legacy (two installers wrapping each other): stop.
[ "${GITMODEL_IN_LEGACY:-}" = "$hook" ] && exit 0
# Set by pre-commit while it runs us as its legacy hook; a git command we start must not
# pass it on (pre-commit's script would then take itself for a legacy hook and fail).
unset PRE_COMMIT_RUNNING_LEGACY

hookdir=${0%/*}
kept=
n=1
while [ -e "$hookdir/$hook.kept-by-gitmodel.$n" ] || [ -L "$hookdir/$hook.kept-by-gitmodel.$n" ]; do
    [ -x "$hookdir/$hook.kept-by-gitmodel.$n" ] && kept="$kept $n"
    n=$((n + 1))
done

run_kept() {
    # Every kept hook, in order; returns the first failure (a kept hook's refusal is ours).
    # A shell script is sourced with $0 set to this hook's path: scripts such as husky's
    # find their siblings, and which hook they are, from $0.
    status=0
    for n in $kept; do
        f="$hookdir/$hook.kept-by-gitmodel.$n"
        first=
        IFS= read -r first <"$f" 2>/dev/null
        case "$first" in
            "#!/bin/sh" | "#!/usr/bin/env sh") run="sh" ;;
            "#!/bin/bash" | "#!/usr/bin/env bash") run="bash" ;;
            *) run= ;;
        esac
        if [ -n "${input_read:-}" ]; then
            printf '%s' "$input" | run_one "$f" "$@"
        else
            run_one "$f" "$@"
        fi
        code=$?
        [ "$status" = 0 ] && status=$code
    done
    return "$status"
}

run_one() {
    f=$1
    shift
    if [ -n "$run" ]; then
        GITMODEL_IN_LEGACY=$hook GITMODEL_KEPT_HOOK=$f "$run" -c '. "$GITMODEL_KEPT_HOOK"' "$hookdir/$hook" "$@"
    else
        GITMODEL_IN_LEGACY=$hook "$f" "$@"
    fi
}

gitmodel() {
    # The interpreter that installed the hook, else git-model on PATH. sys.path[0] is the
    # work tree (-c puts the current directory first): drop it, so a checked-out
    # directory named like a module can never be imported in its place.
    if [ -x "$python" ]; then
        exec "$python" -c 'import sys
del sys.path[0]
try:
    from gitmodel.hooks import main
except ImportError:
    sys.stderr.write("gitmodel: %s hook skipped: gitmodel is not installed for %s\n" % (sys.argv[1], sys.executable))
    sys.exit(0)
sys.exit(main(sys.argv[1:]))' "$hook" "$@"
    fi
    if command -v git-model >/dev/null 2>&1; then
        exec git-model hook "$hook" "$@"
    fi
    echo "gitmodel: $hook hook skipped: git-model is not installed (git model uninstall removes the hooks)" >&2
    exit 0
}

read_input() {
    # Keep stdin whole (trailing newline included) and feed a copy to each kept hook,
    # whose refusal is ours.
    input=$(cat; echo .)
    input=${input%.}
    input_read=1
    run_kept "$@" || exit $?
}

scan_tags() {
    # "<old> <new> <ref>" lines on stdin -> $tags: the tags given a (new) value.
    tags=
    while read -r old new ref; do
        case "$ref" in refs/tags/?*) ;; *) continue ;; esac
        case "$new" in *[!0]*) tags="$tags$new $ref
" ;; esac
    done
}

git_dir() {
    # $gm_dir: this work tree's git directory, without starting git (a linked worktree's
    # .git is a file naming it).
    gm_dir=${GIT_DIR:-.git}
    if [ -f "$gm_dir" ]; then
        IFS= read -r gm_dir <"$gm_dir" || return 1
        gm_dir=${gm_dir#gitdir: }
    fi
}

policy_cache() {
    # gm_globs / gm_files from the cache Python writes (gitmodel/hooks/fastpath.py), only
    # while the policy file is the one it was written for, with the same mtime; else
    # return 1 and the caller asks Python. No repository file is parsed here.
    git_dir || return 1
    gm_cache=$gm_dir/gitmodel/hook-cache
    [ -f "$gm_cache" ] || return 1
    gm_source=x gm_globs= gm_files=
    . "$gm_cache" || return 1
    case "$gm_source" in
        .gitmodel.toml) [ -f .gitmodel.toml ] || return 1 ;;
        pyproject.toml) [ ! -e .gitmodel.toml ] && [ -f pyproject.toml ] || return 1 ;;
        "") [ ! -e .gitmodel.toml ] && [ ! -e pyproject.toml ] && return 0; return 1 ;;
        *) return 1 ;;
    esac
    [ "$gm_source" -nt "$gm_cache" ] && return 1
    [ "$gm_source" -ot "$gm_cache" ] && return 1
    return 0
}
