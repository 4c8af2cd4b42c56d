from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "install",
        help="(re)install the git hooks; --server in a bare repository",
        description="Install the hooks (reference-transaction, pre-push, post-commit, "
        "post-checkout, post-merge) where git looks for them (core.hooksPath is respected). "
        "A hook that is not ours (git-lfs's, husky's, your own) is kept as "
        "HOOK.kept-by-gitmodel.N and still runs first; under pre-commit, whose script runs "
        "HOOK.legacy, ours is that HOOK.legacy. With --server, in a bare repository, install "
        "pre-receive: the gate that `git push --no-verify` cannot skip. Exit 1 when a hook is "
        "left alone (--force chains it).",
    )
    p.add_argument(
        "--server", action="store_true", help="install the server hook (bare repository)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="also chain a HOOK.legacy that the hook on top does not run",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.hooks.installer import HookPlace, install
    from gitmodel.render import info
    from gitmodel.repo import Repo

    place = HookPlace.of(Repo())
    report = install(place, server=True if args.server else None, force=args.force)
    for line in report.lines:
        info(line)
    return 1 if report.declined else 0
