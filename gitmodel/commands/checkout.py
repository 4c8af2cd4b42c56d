from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from gitmodel.checkout import CheckoutResult


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
    p.add_argument(
        "-v", "--verbose", action="store_true", help="list every file written or removed"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from gitmodel.commands.status import repo_relative
    from gitmodel.errors import GitModelError
    from gitmodel.render import TerminalReporter, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    rev, paths = args.rev, list(args.paths)
    # `git model checkout model.pkl`: a path, not a revision.
    if rev is not None and not paths:
        if os.path.exists(rev) or os.path.exists(rev + ".dvc"):
            rev, paths = None, [rev]
        elif not repo.is_revision(rev):
            close = repo.workspace.closest_tracked(rev)
            hint = f"; did you mean {close}?" if close else ""
            raise GitModelError(f"{rev}: neither a revision nor tracked weights{hint}")
    result = repo.checkout(
        rev, repo_relative(repo, paths), force=args.force, reporter=TerminalReporter()
    )
    if args.json:
        print_json(result.to_json())
        return 0
    render_checkout(result, args.verbose)
    return 0


def render_checkout(result: CheckoutResult, verbose: bool = False) -> None:
    """One line per tracked output that changed (every file with verbose)."""
    from gitmodel.render import info

    if verbose:
        for path in result.written:
            info(f"restored {path}")
        for path in result.removed:
            info(f"removed {path} (not in this version of its directory)")
    else:
        for out in result.outputs:
            if not out.is_dir:
                if out.written:
                    info(f"restored {out.path}")
                continue
            if not out.written and not out.removed:
                continue
            parts = [f"{out.written:,} of {out.files:,} files written"]
            if out.removed:
                parts.append(f"{out.removed:,} removed")
            info(f"restored {out.path}/ ({', '.join(parts)})")
    if not result.written and not result.removed:
        info("weights up to date")
