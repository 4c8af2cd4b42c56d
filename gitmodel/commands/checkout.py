from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "checkout",
        help="materialise weights from the cache",
        description="Write the weights named by the work tree's pointers (or those at REV) "
        "from the cache, byte for byte; a tracked directory ends up holding exactly its "
        "version. Refuses to overwrite or remove anything that is not stored.",
    )
    p.add_argument("rev", nargs="?", metavar="REV")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument(
        "-f", "--force", action="store_true", help="overwrite (or remove) unstored changes"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from gitmodel.commands.status import repo_relative
    from gitmodel.errors import GitModelError
    from gitmodel.render import TerminalReporter, info, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    rev, paths = args.rev, list(args.paths)
    # `git model checkout model.pkl`: a path, not a revision.
    if rev is not None and not paths:
        if os.path.exists(rev) or os.path.exists(rev + ".dvc"):
            rev, paths = None, [rev]
        elif not repo.is_revision(rev):
            close = repo.closest_tracked(rev)
            hint = f"; did you mean {close}?" if close else ""
            raise GitModelError(f"{rev}: neither a revision nor tracked weights{hint}")
    result = repo.checkout(
        rev, repo_relative(repo, paths), force=args.force, reporter=TerminalReporter()
    )
    if args.json:
        print_json(result.to_json())
        return 0
    for path in result.written:
        info(f"restored {path}")
    for path in result.removed:
        info(f"removed {path} (not in this version of its directory)")
    if not result.written and not result.removed:
        info("weights up to date")
    return 0
