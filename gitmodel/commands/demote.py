from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demote",
        help="unassign a stage from the version holding it (GTO's NAME#STAGE!#N)",
        description="Write GTO's unassign tag NAME#STAGE!#N on the version of line NAME "
        "(main for the main line) that holds STAGE now. The stage then falls to the version "
        "assigned to it before, if that one is still in it (as `gto show` reads it).",
    )
    p.add_argument("name", metavar="NAME", help="the model line (main for v* releases)")
    p.add_argument("stage", metavar="STAGE")
    p.add_argument("-m", "--message", metavar="MSG", help="the tag message")
    p.add_argument("--json", action="store_true", help="print the change as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.promotion import demote
    from gitmodel.render import info, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    change = demote(repo.root, repo.config, args.name, args.stage, args.message)
    if args.json:
        print_json(change.to_json())
        return 0
    now = f"; {args.stage} is now held by {change.holder.version}" if change.holder else ""
    info(f"demoted {change.version} from {args.stage} with tag {change.tag}{now}")
    return 0
