from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="a change report (metrics, gate verdict, weights) for a pull request",
        description="Compare revision A (default: the previous release, else HEAD~1) with B "
        "(default HEAD): metrics with deltas, the release gate's verdict on B, and the "
        "weights that changed with their sizes. Markdown is ready to post on a pull request.",
    )
    p.add_argument("a", nargs="?", default=None, metavar="A")
    p.add_argument("b", nargs="?", default=None, metavar="B")
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from gitmodel.errors import GitModelError
    from gitmodel.render import info
    from gitmodel.repo import Repo
    from gitmodel.report import build_report, render_markdown

    report = build_report(Repo(), args.a, args.b)
    text = json.dumps(report, indent=2) + "\n" if args.format == "json" else render_markdown(report)
    if args.output:
        path = Path(os.path.abspath(args.output))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GitModelError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
        info(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0
