[ -x "$legacy" ] && GITMODEL_IN_LEGACY=$hook "$legacy" "$@"
# Only when the merge changed a pointer (*.dvc).
git diff-tree --quiet -r ORIG_HEAD HEAD -- '*.dvc' 2>/dev/null && exit 0
gitmodel "$@"
