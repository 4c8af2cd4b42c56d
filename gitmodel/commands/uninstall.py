from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "uninstall",
        help="remove the git hooks and restore the ones they replaced",
        description="Remove gitmodel's hooks; a hook kept as HOOK.legacy goes back in place.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel import hooks
    from gitmodel.render import info
    from gitmodel.repo import Repo

    for line in hooks.uninstall(Repo()):
        info(line)
    return 0
