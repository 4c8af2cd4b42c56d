run_kept "$@"
# Notes that `git pull` fetched (refs/notes/remotes/*/metrics) and that are not merged yet.
for t in $(git for-each-ref --format='%(objectname)' 'refs/notes/remotes/*/metrics' 2>/dev/null); do
    # gitmodel execs Python, which merges the notes and then materialises the weights.
    git merge-base --is-ancestor "$t" refs/notes/metrics 2>/dev/null || gitmodel "$@"
done
# Otherwise only when the merge changed a pointer (*.dvc).
git diff-tree --quiet -r ORIG_HEAD HEAD -- '*.dvc' 2>/dev/null && exit 0
gitmodel "$@"
