from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "release",
        help="gate, then create an annotated release tag",
        description="Judge REV (default HEAD) against the previous release; when it passes, "
        "create the annotated tag VERSION whose message records the metrics and the "
        "comparison. --bump picks the next version. --allow-regression REASON releases a "
        "failing candidate and records REASON in the tag message and in the commit's note. "
        "Exit 0 released, 1 refused, 2 bad input.",
    )
    p.add_argument(
        "version", nargs="?", metavar="VERSION", help="the tag, e.g. v1.3.0 or NAME@v1.3.0"
    )
    p.add_argument(
        "--bump", choices=("major", "minor", "patch"), help="next version after the latest"
    )
    p.add_argument("--model", metavar="NAME", help="with --bump: the release line of model NAME")
    p.add_argument("-m", "--message", metavar="MSG", help="first line(s) of the tag message")
    p.add_argument(
        "--rev", default="HEAD", metavar="REV", help="the commit to release (default HEAD)"
    )
    p.add_argument(
        "--allow-regression",
        metavar="REASON",
        help="release even if the gate fails; REASON is recorded in the tag and the note",
    )
    p.add_argument("--json", action="store_true", help="print the tag and verdict as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from gitmodel.release import ReleaseRefused, TagFailed
    from gitmodel.render import info, print_json, warn, warn_missing_hooks
    from gitmodel.repo import Repo

    repo = Repo()
    warn_missing_hooks(repo)
    try:
        done = repo.release(
            args.version,
            bump=args.bump,
            model=args.model,
            message=args.message,
            rev=args.rev,
            allow_regression=args.allow_regression,
            warn=warn,
            info=info,
        )
    except ReleaseRefused as exc:
        sys.stdout.write(exc.verdict.text())
        raise
    except TagFailed as exc:
        sys.stderr.write(exc.stderr)
        raise
    if args.json:
        print_json(done.to_json())
    else:
        sys.stdout.write(done.verdict.text())
        info(
            f"released {done.tag} ({done.commit[:12]})"
            + (" despite the gate (override recorded)" if done.override else "")
        )
    return 0
