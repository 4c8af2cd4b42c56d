# The server's gate: `git push --no-verify` skips the pusher's pre-push, not this. Python
# runs for what can release or lower the bar: tags, replace refs, the notes, and the
# default branch (whose policy judges); other branches go through untouched.
read_input "$@"
head=
[ -f HEAD ] && IFS= read -r head <HEAD
head=${head#ref: }
work=
while read -r old new ref; do
    case "$ref" in
        refs/tags/?*|refs/replace/*|refs/notes/metrics|"$head") work=1 ;;
    esac
done <<GITMODEL_EOF
$input
GITMODEL_EOF
[ -n "$work" ] || exit 0
gitmodel "$@" <<GITMODEL_EOF
$input
GITMODEL_EOF
