from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "remote",
        help="add or list DVC remotes for weights",
        description="A thin layer over DVC's remote config (.dvc/config): `dvc remote add -d` "
        "works just as well. Adding a remote also makes every git remote fetch metrics notes.",
    )
    verbs = p.add_subparsers(dest="remote_command", metavar="{add,modify,list}")
    add = verbs.add_parser(
        "add",
        help="add a DVC remote",
        description="Add a DVC remote (a local directory, ssh://, s3://, gs://, azure://...).",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("url", metavar="URL")
    add.add_argument("-d", "--default", action="store_true", help="make it the default remote")
    add.set_defaults(func=run_add)
    mod = verbs.add_parser(
        "modify",
        help="set an option of a DVC remote",
        description="Set one option of a DVC remote (what `dvc remote modify` "
        "does): endpointurl, keyfile, user, region...",
    )
    mod.add_argument("name", metavar="NAME")
    mod.add_argument("option", metavar="OPTION")
    mod.add_argument("value", nargs="?", metavar="VALUE")
    mod.add_argument("--unset", action="store_true", help="remove the option")
    mod.add_argument(
        "--local",
        action="store_true",
        help="write .dvc/config.local (not committed): for credentials",
    )
    mod.set_defaults(func=run_modify)
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


def run_modify(args: argparse.Namespace) -> int:
    from gitmodel.errors import GitModelError
    from gitmodel.remote import modify_remote
    from gitmodel.repo import Repo

    if (args.value is None) != args.unset:
        raise GitModelError("give either VALUE or --unset")
    modify_remote(Repo(), args.name, args.option, None if args.unset else args.value, args.local)
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
