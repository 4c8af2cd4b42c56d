from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from gitmodel.verdict import Verdict


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
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    p.add_argument(
        "--html",
        metavar="DIR",
        help="write the registry dashboard instead: DIR/index.html, a static offline page "
        "(each line's releases and stages, a chart per gated metric, verdicts, weights' sizes)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from gitmodel.errors import GitModelError
    from gitmodel.evidence import gate_for
    from gitmodel.render import info
    from gitmodel.repo import Repo
    from gitmodel.report import build_report, check_revisions, render_markdown

    if args.html:
        return _dashboard(args.html)
    check_revisions(args.a, args.b)
    repo = Repo()
    diff = repo.diff(args.a, args.b)

    def judge(commit: str) -> Verdict:
        return gate_for(repo).verdict(commit)

    report = build_report(diff, repo.config.gates, judge, repo.notes)
    as_json = args.json or args.format == "json"
    text = json.dumps(report, indent=2) + "\n" if as_json else render_markdown(report)
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


def _dashboard(directory: str) -> int:
    import os
    from pathlib import Path

    from gitmodel.dashboard import build_dashboard, render_html
    from gitmodel.errors import GitModelError
    from gitmodel.registry import release_lines
    from gitmodel.render import info
    from gitmodel.repo import Repo

    repo = Repo()

    def weights_of(commit: str) -> list[tuple[str, int | None]]:
        try:
            return [(t.path, t.out.size) for t in repo.pointers_at(commit)]
        except GitModelError:
            return []  # a broken pointer at that release: no sizes to show

    data = build_dashboard(
        release_lines(repo.root, repo.config),
        list(repo.config.gates),
        weights_of,
        repo.root.name,
        repo.head(),
    )
    path = Path(os.path.abspath(directory)) / "index.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".index.html.{os.getpid()}.tmp")
        tmp.write_text(render_html(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise GitModelError(f"{directory}: cannot write ({exc.strerror or exc})") from None
    info(f"wrote {path}")
    return 0
