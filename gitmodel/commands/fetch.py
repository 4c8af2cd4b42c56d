from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fetch",
        help="fetch notes and HEAD's weights",
        description="Fetch the git remote's metrics notes and merge them into "
        "refs/notes/metrics; download the weights HEAD names into the cache (verified).",
    )
    add_remote_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def add_remote_arguments(p: argparse.ArgumentParser) -> None:
    """GIT_REMOTE and --remote, shared by push, fetch and pull."""
    p.add_argument("git_remote", nargs="?", metavar="GIT_REMOTE")
    p.add_argument(
        "-r",
        "--remote",
        dest="dvc_remote",
        metavar="DVC_REMOTE",
        help="DVC remote (default: DVC's core.remote)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="list every file uploaded or downloaded"
    )


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import TerminalReporter
    from gitmodel.repo import Repo
    from gitmodel.sync import fetch

    result = fetch(Repo(), args.git_remote, args.dvc_remote, TerminalReporter())
    return render_sync(result, args.json, args.verbose)


def render_sync(result: Any, as_json: bool, verbose: bool = False) -> int:
    """Shared by push, fetch and pull: one summary line per part that did something (and
    with verbose, a line per file moved)."""
    from gitmodel.render import fmt_size, info, plural, print_json

    if as_json:
        print_json(result.to_json())
        return 0
    t = result.transfer
    if t is not None:
        verb = "uploaded" if t.direction == "upload" else "downloaded"
        where = "to" if t.direction == "upload" else "from"
        if verbose:
            for path in sorted(t.paths.values()):
                info(f"{verb} {path}")
        info(
            f"weights: {verb} {plural(len(t.transferred), 'object')} ({fmt_size(t.bytes)}) {where} "
            f"DVC remote {t.remote}; {t.present} already there"
        )
    if result.git_remote:
        extra = (
            f" ({result.notes_conflicts} conflicting notes merged)"
            if result.notes_conflicts
            else ""
        )
        info(f"notes: {result.notes} ({result.git_remote}){extra}")
    if result.checkout is not None:
        from gitmodel.commands.checkout import render_checkout

        render_checkout(result.checkout, verbose)
    return 0
