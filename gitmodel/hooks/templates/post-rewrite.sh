# After `git commit --amend` and `git rebase` ($1 = amend | rebase, stdin: old new
# lines): notes git copied are made right by Python (a changed metrics file, a squash's
# concatenated notes). Rewrites are rare and asked for by the user, so no filter here.
read_input "$@"
gitmodel "$@" <<GITMODEL_EOF
$input
GITMODEL_EOF
