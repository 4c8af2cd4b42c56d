run_kept "$@"
# Branch checkouts only ($3 = 1), and only when a pointer (*.dvc) differs.
[ "${3:-}" = 1 ] || exit 0
[ "$1" = "$2" ] && exit 0
old=$1
case "$old" in *[!0]*) ;; *) old=$(git hash-object -t tree /dev/null) ;; esac
git diff-tree --quiet -r "$old" "$2" -- '*.dvc' 2>/dev/null && exit 0
gitmodel "$@"
