# A rebase (or `git am`) moves HEAD once per pick, also for the picks git fast-forwards,
# which make no commit and run no other hook (an `edit` stop on an unchanged commit, a
# `--continue` over unchanged ones, `--abort`): the work tree's weights follow when a
# pointer changed. Other moves of HEAD are post-checkout's and post-commit's.
if [ "$1" = committed ]; then
    moved=
    head_moved() {
        while read -r old new ref; do
            case "$ref" in
                HEAD) moved="$old $new" ;;
                # `--abort` puts the branch back (no old value given) and HEAD on it
                refs/heads/?*) case "$old" in *[!0]*) ;; *) moved="$old $new" ;; esac ;;
            esac
        done
    }
    if [ -n "$kept" ]; then
        read_input "$@"
        head_moved <<GITMODEL_EOF
$input
GITMODEL_EOF
    else
        head_moved
    fi
    [ -n "$moved" ] || exit 0
    git_dir || exit 0
    [ -d "$gm_dir/rebase-merge" ] || [ -d "$gm_dir/rebase-apply" ] || exit 0
    set -- $moved
    case "$1$2" in *[!0-9a-f]*) exit 0 ;; esac
    case "$1" in
        *[!0]*)
            git diff-tree --quiet -r "$1" "$2" -- '*.dvc' 2>/dev/null
            [ $? = 1 ] || exit 0
            ;;
    esac
    gitmodel committed </dev/null
fi

# Only the "prepared" state can refuse, and only tags can be releases.
if [ -n "$kept" ]; then
    read_input "$@"
    [ "$1" = prepared ] || exit 0
    scan_tags <<GITMODEL_EOF
$input
GITMODEL_EOF
else
    [ "$1" = prepared ] || exit 0
    scan_tags
fi
[ -n "$tags" ] || exit 0

# Only release tags: the policy's release globs, from the cache Python keeps (a stale or
# missing cache leaves the decision to Python). A cache without globs means no policy.
if policy_cache; then
    [ -n "$gm_globs" ] || exit 0
    release=
    set -f  # the globs are patterns for case, never file names
    while read -r new ref; do
        name=${ref#refs/tags/}
        old_ifs=$IFS
        IFS='
'
        for glob in $gm_globs; do
            # $glob unquoted: matched as a pattern, never run.
            case "$name" in $glob|?*@$glob) release=1 ;; esac
        done
        IFS=$old_ifs
        # GTO stage tags (NAME#STAGE#N) face the promotion gate.
        case "$name" in ?*#?*) release=1 ;; esac
    done <<GITMODEL_EOF
$tags
GITMODEL_EOF
    set +f
    [ -n "$release" ] || exit 0
fi

# Judge only tags that `git tag` makes. Fetch and clone bring tags that exist upstream
# and must never be refused; they share this hook, so ask which command runs it.
parent_verb() {
    if [ -r "/proc/$PPID/cmdline" ]; then
        tr '\0' '\n' <"/proc/$PPID/cmdline"
    else
        ps -o args= -p "$PPID" 2>/dev/null | tr ' ' '\n'
    fi | {
        read -r argv0
        case "${argv0##*/}" in git-?*) echo "${argv0##*/git-}"; exit 0 ;; esac
        skip=
        while read -r arg; do
            if [ -n "$skip" ]; then skip=; continue; fi
            case "$arg" in
                -C|-c|--git-dir|--work-tree|--namespace|--exec-path|--super-prefix|--config-env) skip=1 ;;
                -*) ;;
                *) echo "$arg"; exit 0 ;;
            esac
        done
    }
}
verb=$(parent_verb)
case "$verb" in
    tag) ;;
    ""|fetch|clone|pull|remote|push|receive-pack|fetch-pack|submodule|update-ref|fast-import) exit 0 ;;
    *)
        alias=$(git config --get "alias.$verb" 2>/dev/null) || exit 0
        case "$alias" in tag|"tag "*) ;; *) exit 0 ;; esac
        ;;
esac
gitmodel "$@" <<GITMODEL_EOF
$tags
GITMODEL_EOF
