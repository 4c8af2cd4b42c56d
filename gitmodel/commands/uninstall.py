from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "uninstall",
        help="remove the git hooks and restore the ones they replaced",
        description="Remove gitmodel's hooks; the hooks they kept (HOOK.kept-by-gitmodel.N) "
        "go back where they were. Commands stop asking for the hooks until `git model "
        "install`.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.hooks.installer import HookPlace, uninstall
    from gitmodel.render import info
    from gitmodel.repo import Repo

    for line in uninstall(HookPlace.of(Repo())):
        info(line)
    return 0
