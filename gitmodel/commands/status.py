from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)

if TYPE_CHECKING:
    from gitmodel.repo import Repo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="which tracked weights are modified or missing",
        description="Compare tracked weights with their pointers. Exit 0 either way; "
        "--json prints {modified, missing, not_in_cache}.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import print_json, warn_missing_hooks
    from gitmodel.repo import Repo

    repo = Repo()
    warn_missing_hooks(repo)
    result = repo.status(repo_relative(repo, args.paths))
    if args.json:
        print_json(result.to_json())
        return 0
    if not result.modified and not result.missing:
        print("weights up to date")
    for path in result.modified:
        print(f"modified:     {path}")
    for path in result.missing:
        print(f"missing:      {path}")
    for path in result.not_in_cache:
        print(f"not in cache: {path}")
    return 0


def repo_relative(repo: Repo, paths: list[str]) -> list[str]:
    """User paths (relative to the cwd) as paths relative to the repository root."""
    import os

    root = os.path.realpath(repo.root)
    out = []
    for p in paths:
        full = os.path.realpath(os.path.abspath(p))
        out.append(os.path.relpath(full, root))
    return out
