from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "log",
        help="metrics across history, newest first",
        description="List the commits of REV-RANGE (default HEAD) that carry a metrics note, "
        "newest first, with their metrics.",
    )
    p.add_argument("rev_range", nargs="?", default=None, metavar="REV-RANGE")
    p.add_argument(
        "-n", "--max-count", type=int, default=None, metavar="N", help="show at most N rows"
    )
    p.add_argument(
        "--metric", action="append", default=[], metavar="NAME", help="only these metrics"
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="the commits of every branch, tag and remote-tracking ref (as git log --all)",
    )
    p.add_argument(
        "--include-unnoted", action="store_true", help="also list commits without a metrics note"
    )
    p.add_argument("--json", action="store_true", help="print a list of {commit, metrics, ...}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.errors import GitModelError
    from gitmodel.render import fmt_number, info, print_json, table
    from gitmodel.repo import Repo

    repo = Repo()
    if args.max_count is not None and args.max_count < 0:
        raise GitModelError("-n must not be negative")
    if args.all and args.rev_range is not None:
        raise GitModelError("--all walks every ref: give it no REV-RANGE")
    rev_range = args.rev_range or "HEAD"
    rows = repo.log(
        rev_range,
        args.max_count,
        args.metric,
        noted_only=not args.include_unnoted,
        all_refs=args.all,
    )
    where = "any branch, tag or remote-tracking ref" if args.all else rev_range
    absent = [m for m in args.metric if not any(m in r.metrics for r in rows)]
    if absent and rows:
        # A typo must not print an empty column; a metric of older rows than -n shows is fine.
        every = repo.log(rev_range, None, (), noted_only=True, all_refs=args.all)
        known = sorted({k for r in every for k in r.metrics})
        unknown = [m for m in absent if m not in known]
        if unknown:
            raise GitModelError(
                f"no commit in {where} has metric {unknown[0]!r}"
                + (f" (metrics: {', '.join(known)})" if known else "")
            )
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    if not rows:
        info(f"no commits with metrics notes in {where}")
        return 0
    # A dict keeps first-seen order with a constant-time membership test: a hostile note
    # with 100,000 keys must cost linear time, not a list searched per key.
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r.metrics))
    names = list(seen)
    # Bad notes show in the metrics' columns, or in a column of their own when no row has
    # a metric to show.
    bad_column = not names and any(r.error is not None for r in rows)
    table(
        None,
        ["commit", "date", "subject", *names] + (["metrics"] if bad_column else []),
        [
            [r.commit[:10], r.date[:10], r.subject[:40]]
            + [fmt_number(r.metrics.get(k)) if r.error is None else "(bad note)" for k in names]
            + (["(bad note)" if r.error is not None else ""] if bad_column else [])
            for r in rows
        ],
    )
    return 0
