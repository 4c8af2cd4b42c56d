from __future__ import annotations

import argparse

from gitmodel.commands.fetch import add_remote_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push",
        help="upload weights to the DVC remote, notes to the git remote",
        description="Upload the weights of every commit the git remote does not have yet (and "
        "HEAD's) to the default DVC remote, only the objects it lacks, then merge and push "
        "refs/notes/metrics. Git branches are pushed by `git push`, whose pre-push hook does "
        "the same upload.",
    )
    add_remote_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.commands.fetch import render_sync
    from gitmodel.render import TerminalReporter, warn_missing_hooks
    from gitmodel.repo import Repo
    from gitmodel.sync import push

    repo = Repo()
    warn_missing_hooks(repo)
    result = push(repo, args.git_remote, args.dvc_remote, TerminalReporter())
    return render_sync(result, args.json, args.verbose)
