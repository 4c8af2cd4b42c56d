from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="metrics and weights between two revisions",
        description="Compare metrics and weights of A and B (default: the previous release, "
        "or HEAD~1, against HEAD).",
    )
    p.add_argument("a", nargs="?", metavar="A")
    p.add_argument("b", nargs="?", metavar="B")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import fmt_delta, fmt_number, fmt_size, print_json, table
    from gitmodel.repo import Repo

    repo = Repo()
    result = repo.diff(args.a, args.b)
    if args.json:
        print_json(result.to_json())
        return 0
    a, b = result.a, result.b
    table(
        f"{a.rev} ({a.commit[:10]}) -> {b.rev} ({b.commit[:10]})",
        ["metric", "old", "new", "delta"],
        [
            [k, fmt_number(v.old), fmt_number(v.new), fmt_delta(v.delta)]
            for k, v in result.metrics.items()
        ],
    )
    if result.weights:
        table(
            None,
            ["weights", "change", "old size", "new size"],
            [
                [
                    path,
                    w.status,
                    fmt_size((w.old or {}).get("size")),
                    fmt_size((w.new or {}).get("size")),
                ]
                for path, w in result.weights.items()
            ],
        )
    return 0
