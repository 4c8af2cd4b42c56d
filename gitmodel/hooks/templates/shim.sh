#!/bin/sh
# gitmodel hook shim (gitmodel-hook-id: 5b1f0c7e) for @HOOK@
# Written by `git model install`; `git model uninstall` removes it. A hook that was here
# before is kept as @HOOK@.legacy and still runs first, with the same arguments and input.
# Git runs this on its own operations: it filters cheaply in shell and starts Python
# only when there is work to do.
hook=@HOOK@
python=@PYTHON@
legacy="$0.legacy"

# Run by a hook we ourselves run as legacy (two installers wrapping each other): stop.
[ "${GITMODEL_IN_LEGACY:-}" = "$hook" ] && exit 0

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
    # Keep stdin whole (trailing newline included) and feed a copy to the legacy hook,
    # whose refusal is ours.
    input=$(cat; echo .)
    input=${input%.}
    if [ -x "$legacy" ]; then
        printf '%s' "$input" | GITMODEL_IN_LEGACY=$hook "$legacy" "$@" || exit $?
    fi
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

