from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "remote",
        help="add or list DVC remotes for weights",
        description="A thin layer over DVC's remote config (.dvc/config): `dvc remote add -d` "
        "works just as well. Adding a remote also makes every git remote fetch metrics notes.",
    )
    verbs = p.add_subparsers(dest="remote_command", metavar="{add,list}")
    add = verbs.add_parser("add", help="add a DVC remote", description="Add a DVC remote "
                           "(a local directory, ssh://, s3://, gs://, azure://...).")
    add.add_argument("name", metavar="NAME")
    add.add_argument("url", metavar="URL")
    add.add_argument("-d", "--default", action="store_true", help="make it the default remote")
    add.set_defaults(func=run_add)
    lst = verbs.add_parser("list", help="list DVC remotes")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=run_list)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=run_list)


def run_add(args: argparse.Namespace) -> int:
    from gitmodel.remote import add_remote
    from gitmodel.render import info
    from gitmodel.repo import Repo

    remote = add_remote(Repo(), args.name, args.url, default=args.default)
    info(f"added DVC remote {remote.name} -> {remote.url}" + (" (default)" if args.default else ""))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from gitmodel.remote import list_remotes
    from gitmodel.render import print_json
    from gitmodel.repo import Repo

    remotes = list_remotes(Repo())
    if getattr(args, "json", False):
        print_json([r.to_json() for r in remotes])
        return 0
    for r in remotes:
        print(f"{r.name}\t{r.url}" + ("\t(default)" if r.default else ""))
    return 0
