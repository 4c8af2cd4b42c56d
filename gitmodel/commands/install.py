from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install",
        help="(re)install the git hooks; --server in a bare repository",
        description="Install the hooks (reference-transaction, pre-push, post-commit, "
        "post-checkout, post-merge) where git looks for them (core.hooksPath is respected). "
        "A hook that is not ours is kept as HOOK.legacy and still runs first. With --server, "
        "in a bare repository, install pre-receive: the gate that `git push --no-verify` "
        "cannot skip.",
    )
    p.add_argument(
        "--server", action="store_true", help="install the server hook (bare repository)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel import hooks
    from gitmodel.render import info
    from gitmodel.repo import Repo

    repo = Repo()
    for line in hooks.install(repo, server=True if args.server else None):
        info(line)
    return 0
