from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="chart metrics across commits (releases marked) or a commit's training history",
        description="Chart metrics across the commits of REV-RANGE (default HEAD), oldest "
        "first, with releases marked; or, with --history, the training history attached to "
        "commit REV (e.g. loss per epoch, from gitmodel.log_metrics). Without -o the chart "
        "is drawn on the terminal; with -o FILE.png|.svg|.pdf it is drawn with matplotlib.",
    )
    p.add_argument("rev_range", nargs="?", default="HEAD", metavar="REV-RANGE")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="NAME",
        help="metric to chart (repeatable; default: gated metrics, else all)",
    )
    p.add_argument(
        "--history", action="store_true", help="chart the training history of commit REV"
    )
    p.add_argument("-n", "--max-count", type=int, default=None, metavar="N", help="last N commits")
    p.add_argument("-o", "--output", metavar="FILE", help="write an image (.png, .svg, .pdf)")
    p.add_argument("--json", action="store_true", help="print the chart's data as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from gitmodel.attachments import read_object
    from gitmodel.errors import GitModelError
    from gitmodel.plot import (
        describe,
        history_chart,
        metric_chart,
        release_tags,
        render_image,
        render_terminal,
    )
    from gitmodel.render import info, print_json
    from gitmodel.repo import Repo

    if args.max_count is not None and args.max_count <= 0:
        raise GitModelError("-n must be positive")
    repo = Repo()
    if args.history:
        if ".." in args.rev_range:
            raise GitModelError("--history takes one commit, not a range")
        rev = args.rev_range
        note = repo.metrics_note(rev)

        def read(entry: object) -> bytes:
            return read_object(repo, entry, "history", f"note on {rev}")

        def described() -> str:
            tags = release_tags(repo.root, repo.config.release_tags)
            return describe(repo.root, repo.rev_parse(rev), tags)

        chart = history_chart(note, read, described, rev, args.metric)
    else:
        log = repo.log(args.rev_range, args.max_count)
        tags = release_tags(repo.root, repo.config.release_tags)
        chart = metric_chart(log, tags, list(repo.config.gates), args.rev_range, args.metric)
    if args.output:
        output = Path(os.path.abspath(args.output))
        render_image(chart, output)
        info(f"wrote {args.output}")
    if args.json:
        print_json(chart.to_json())
    elif not args.output:
        print(render_terminal(chart))
    return 0
