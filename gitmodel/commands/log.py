from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "log",
        help="metrics across history, newest first",
        description="List commits of REV-RANGE (default HEAD) with their metrics, newest first.",
    )
    p.add_argument("rev_range", nargs="?", default="HEAD", metavar="REV-RANGE")
    p.add_argument("-n", "--max-count", type=int, default=None, metavar="N")
    p.add_argument(
        "--metric", action="append", default=[], metavar="NAME", help="only these metrics"
    )
    p.add_argument("--all", action="store_true", help="include commits without a metrics note")
    p.add_argument("--json", action="store_true", help="print a list of {commit, metrics, ...}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import fmt_number, print_json, table
    from gitmodel.repo import Repo

    repo = Repo()
    if args.max_count is not None and args.max_count < 0:
        from gitmodel.errors import GitModelError

        raise GitModelError("-n must not be negative")
    rows = repo.log(args.rev_range, args.max_count, args.metric)
    if not args.all:
        rows = [r for r in rows if r["has_note"]]
    if args.json:
        print_json(rows)
        return 0
    # A dict keeps first-seen order with a constant-time membership test: a hostile note
    # with 100,000 keys must cost linear time, not a list searched per key.
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r["metrics"]))
    names = list(seen)
    # Bad notes show in the metrics' columns, or in a column of their own when no row has
    # a metric to show.
    bad_column = not names and any("error" in r for r in rows)
    table(
        None,
        ["commit", "date", "subject", *names] + (["metrics"] if bad_column else []),
        [
            [r["commit"][:10], r["date"][:10], r["subject"][:40]]
            + [fmt_number(r["metrics"].get(k)) if "error" not in r else "(bad note)" for k in names]
            + (["(bad note)" if "error" in r else ""] if bad_column else [])
            for r in rows
        ],
    )
    return 0
