# The server's gate: `git push --no-verify` skips the pusher's pre-push, not this.
read_input "$@"
scan_tags <<GITMODEL_EOF
$input
GITMODEL_EOF
[ -n "$tags" ] || exit 0
gitmodel "$@" <<GITMODEL_EOF
$input
GITMODEL_EOF
