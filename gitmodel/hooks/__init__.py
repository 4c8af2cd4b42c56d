"""Git hooks: install, chain and uninstall the shims; the Python entry points they exec.

The scripts git runs are shell shims built from `templates/` (a common header plus one
body per hook), installed and chained with other tools' hooks by `gitmodel.hooks.installer`.
Shims exec `main()` below with the interpreter that installed them, which dispatches to
the doors that can refuse (gitmodel.hooks.gating, judged by gitmodel.hooks.doors; the
server's in gitmodel.hooks.receive) and those that record (gitmodel.hooks.recording).

Doors:
  reference-transaction  plain `git tag` of a failing release is refused (fetch/clone never)
  pre-push               pushing a failing release tag is refused; then `gitmodel.sync`
                         (when present) uploads weights and publishes notes
  post-commit            a plain `git commit` that changes a metrics file writes the note
  post-checkout/-merge   weights of the new HEAD are materialised from the cache
  pre-receive (server)   pushed release tags are gated with the notes the server has

This module is the hooks' skin: `main` is the entry point the shims exec, and it alone
chooses how things are shown (it hands the terminal's progress reporter to the doors that
upload, and writes their lines to stderr); the doors and the library below only report.
Imports here stay light: these functions run inside git operations.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from gitmodel.errors import GitModelError
from gitmodel.hooks.gating import framework_pre_push, pre_push, pre_receive, reference_transaction

# Installation lives in gitmodel.hooks.installer; these names are its public face here.
from gitmodel.hooks.installer import (  # noqa: F401  (re-exported)
    CLIENT_HOOKS,
    LEGACY_SUFFIX,
    MARKER,
    SERVER_HOOKS,
    TEMPLATES,
    hooks_dir,
    install,
    is_ours,
    missing,
    render_shim,
    uninstall,
)
from gitmodel.hooks.recording import materialise, post_commit, post_merge, post_rewrite
from gitmodel.hooks.stream import say

# typing is not imported at run time: commands that check the hooks (status, commit) import
# this package, and typing alone costs more than the check (see gitmodel.record).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from gitmodel.store import Reporter


# -- entry point ---------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[Sequence[str], IO[str]], int]] = {
    "reference-transaction": reference_transaction,
    "pre-push": pre_push,
    "pre-receive": pre_receive,
    "post-commit": post_commit,
    "post-rewrite": post_rewrite,
    "post-checkout": materialise,
    "post-merge": post_merge,
    # Entry points for the pre-commit framework (.pre-commit-hooks.yaml).
    "framework-pre-push": framework_pre_push,
    "framework-checkout": materialise,
}

# Doors that upload weights: they get the terminal's progress reporter.
UPLOADERS: dict[str, Callable[[Sequence[str], IO[str], Reporter | None], int]] = {
    "pre-push": pre_push,
    "framework-pre-push": framework_pre_push,
}

# Doors that refuse: an unexpected error there fails closed (exit 3); elsewhere it is
# reported and the git operation goes on.
_GATING = {"reference-transaction", "pre-push", "pre-receive", "framework-pre-push"}


def main(argv: Sequence[str] | None = None) -> int:
    """`<python> -c ... HOOK ARGS` (from a shim) or `git model hook HOOK ARGS`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in HANDLERS:
        say(f"gitmodel: unknown hook {argv[0] if argv else ''!r}; known: {', '.join(HANDLERS)}")
        return 2
    name = argv[0]
    try:
        if name in UPLOADERS:
            # Imported only here: no other hook draws, and rich itself waits for a bar.
            from gitmodel.render import TerminalReporter

            return UPLOADERS[name](argv[1:], sys.stdin, TerminalReporter())
        return HANDLERS[name](argv[1:], sys.stdin)
    except GitModelError as exc:
        say(f"gitmodel: {name}: {exc.message}")
        return exc.exit_code if name in _GATING else 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("GITMODEL_DEBUG"):
            raise
        say(
            f"gitmodel: {name} hook: internal error: {type(exc).__name__}: {exc} "
            "(GITMODEL_DEBUG=1 for a traceback)"
        )
        return 3 if name in _GATING else 0
