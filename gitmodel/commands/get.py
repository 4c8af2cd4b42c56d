from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "get",
        help="download tracked weights of any revision of a repository, without cloning it",
        description="Fetch the tracked file or directory PATH of revision REV of the git "
        "repository URL (a URL or a path; '.' is the enclosing repository) from the DVC "
        "remote that revision configures. Only that one revision is fetched (shallow, "
        "blobs on demand), into a temporary directory that is removed; no cache is "
        "written. REV: a branch, tag (v1.2.0, clf@v1.2.0), commit, or stage (clf#prod, "
        "#prod for the main line: the version holding it now). Every file is verified "
        "against the pointer's md5 before it is renamed into place. Exit 0 done, 1 a "
        "corrupt download (nothing written), 2 bad input or unreachable.",
    )
    p.add_argument("url", metavar="URL", help="git repository URL or path ('.': this one)")
    p.add_argument("path", metavar="PATH", help="tracked file or directory in the repository")
    p.add_argument("--rev", metavar="REV", help="branch, tag, commit or stage (default HEAD)")
    p.add_argument(
        "-o", "--out", metavar="OUT", help="output path (an existing directory: put it inside)"
    )
    p.add_argument(
        "--remote", metavar="NAME", help="the DVC remote to use (default: the revision's)"
    )
    p.add_argument("-f", "--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print what was fetched as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.consume import get
    from gitmodel.render import fmt_size, info, print_json

    repo = None if args.url == "." else args.url
    from gitmodel.render import TerminalReporter

    result = get(
        repo,
        args.path,
        args.out,
        rev=args.rev,
        remote=args.remote,
        force=args.force,
        reporter=TerminalReporter(),
    )
    if args.json:
        print_json(result.to_json())
        return 0
    r = result.resolved
    what = r.rev if r.version is None or r.version == r.rev else f"{r.rev} = {r.version}"
    detail = f"; {r.detail}" if r.detail else ""
    files = f"{result.files} files, " if result.kind == "directory" else ""
    info(
        f"fetched {result.path} at {what} ({r.commit[:12]}{detail}) -> {result.output} "
        f"({files}{fmt_size(result.bytes)}, md5 verified)"
    )
    return 0
