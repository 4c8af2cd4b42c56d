from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hook",
        help="run one hook's work (what the installed hook scripts call)",
        description="Run the Python side of a git hook: reference-transaction, pre-push, "
        "pre-receive, post-commit, post-checkout, post-merge (and framework-pre-push, "
        "framework-checkout for the pre-commit framework). Arguments and stdin are git's.",
    )
    p.add_argument("name", metavar="HOOK")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.hooks import main

    return main([args.name, *args.args])
