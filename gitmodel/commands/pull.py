from __future__ import annotations

import argparse

from gitmodel.commands.fetch import add_remote_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pull",
        help="fetch notes and weights, then materialise the work tree's weights",
        description="`git model fetch` for the work tree's pointers, then `git model checkout`. "
        "Git branches are pulled by `git pull`.",
    )
    add_remote_arguments(p)
    p.add_argument("-f", "--force", action="store_true", help="overwrite unstored changes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.commands.fetch import render_sync
    from gitmodel.render import TerminalReporter
    from gitmodel.repo import Repo
    from gitmodel.sync import pull

    result = pull(Repo(), args.git_remote, args.dvc_remote, TerminalReporter(), force=args.force)
    return render_sync(result, args.json, args.verbose)
