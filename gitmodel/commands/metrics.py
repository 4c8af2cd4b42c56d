from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="show the metrics note of a commit",
        description="Show the metrics note of REV (default HEAD). Exit 1 if it has none.",
    )
    p.add_argument("rev", nargs="?", default="HEAD", metavar="REV")
    p.add_argument("--json", action="store_true", help="print the whole note object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.metrics import validate_note_metrics
    from gitmodel.render import fmt_number, fmt_size, print_json, table
    from gitmodel.repo import Repo

    repo = Repo()
    note = repo.metrics_note(args.rev)
    if args.json:
        print_json(note)
        return 0
    metrics = validate_note_metrics(note.get("metrics", {}), f"note on {args.rev}")
    table(
        f"metrics of {args.rev}",
        ["metric", "value"],
        [[k, fmt_number(v)] for k, v in metrics.items()],
    )
    weights = note.get("weights") or {}
    if isinstance(weights, dict) and weights:
        rows = [
            [path, str(w.get("md5", "")), fmt_size(w.get("size"))]
            for path, w in weights.items()
            if isinstance(w, dict)
        ]
        table(None, ["weights", "md5", "size"], rows)
    return 0
