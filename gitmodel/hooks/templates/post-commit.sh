run_kept "$@"
# `git model commit` writes the note itself.
[ "${GITMODEL_COMMITTING:-}" = 1 ] && exit 0
# A commit that cherry-pick, revert or a merge stopped for conflicts made: git wrote its
# pointers but not their weights. When it changed a pointer, Python writes them too. (A
# rebase's picks are the reference-transaction hook's: it sees HEAD move.)
case "$(git reflog -1 --format=%gs HEAD 2>/dev/null)" in
    cherry-pick* | revert* | "commit (cherry-pick)"* | "commit (merge)"*)
        git diff-tree --quiet -r HEAD^ HEAD -- '*.dvc' 2>/dev/null || gitmodel "$@"
        ;;
esac
# The policy's metrics files, from the cache Python keeps (a stale or missing cache leaves
# the decision to Python). A cache without files means nothing to record.
if policy_cache; then
    [ -n "$gm_files" ] || exit 0
    set -f  # the names are pathspecs for git, not globs for the shell
    old_ifs=$IFS
    IFS='
'
    set --
    for f in $gm_files; do
        # A metrics file absent from the work tree was not added or changed by this commit.
        [ -n "$f" ] && [ -e "$f" ] && set -- "$@" "$f"
    done
    IFS=$old_ifs
    set +f
    [ $# -gt 0 ] || exit 0
    # Did this commit change one of them? (exit 1 = yes)
    git --literal-pathspecs diff-tree --quiet --no-commit-id --root -r HEAD -- "$@" 2>/dev/null && exit 0
    set --
fi
gitmodel
