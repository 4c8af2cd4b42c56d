from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "commit",
        help="add weights, git commit, and record metrics in a note",
        description="Store PATHs (as `add`), run a real `git commit` (your hooks run), then "
        "write the commit's metrics note. Without --metrics or --metric, the metrics-files "
        "of .gitmodel.toml are read. Bad input is refused before anything is written.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="weights to store (files or directories)"
    )
    p.add_argument("-m", "--message", required=True, help="the commit message")
    p.add_argument("--metrics", metavar="FILE", help="metrics file (JSON, YAML or TOML)")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one metric (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the commit and note as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import TerminalReporter, fmt_number, info, print_json, warn_missing_hooks
    from gitmodel.repo import Repo

    repo = Repo()
    repo.require_init()  # refused before a warning about hooks that init would install
    warn_missing_hooks(repo)
    repo.complete_pending_note()
    result = repo.commit(
        args.paths, args.message, args.metrics, args.metric, reporter=TerminalReporter()
    )
    if args.json:
        print_json(
            {
                "commit": result.commit,
                "added": [a.to_json() for a in result.added],
                "note": result.note,
            }
        )
        return 0
    metrics = ", ".join(f"{k}={fmt_number(v)}" for k, v in result.note["metrics"].items())
    info(f"[{result.commit[:12]}] {args.message.splitlines()[0]}")
    for a in result.added:
        info(f"  stored {a.path} (md5 {a.md5})")
    info(f"  metrics: {metrics or '(none)'}")
    return 0
