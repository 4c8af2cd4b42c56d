# Every push goes to Python: release tags are gated, and weights and notes travel with
# the refs that need them.
if [ -n "$kept" ]; then
    read_input "$@"
    gitmodel "$@" <<GITMODEL_EOF
$input
GITMODEL_EOF
else
    gitmodel "$@"
fi
