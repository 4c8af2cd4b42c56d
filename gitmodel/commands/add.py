from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add",
        help="store weights by content and write their .dvc pointers",
        description="Hash each file or directory while copying it into the DVC cache, write "
        "PATH.dvc, add PATH to .gitignore, and stage both.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import TerminalReporter, fmt_size, info, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    repo.complete_pending_note()
    results = repo.add(args.paths, TerminalReporter())
    if args.json:
        print_json([r.to_json() for r in results])
    else:
        for r in results:
            info(f"added {r.path} ({fmt_size(r.size)}, md5 {r.md5}) -> {r.pointer}")
    return 0
