from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="assign a stage to a release (a GTO stage tag), gated like a release",
        description="Assign STAGE (e.g. staging, prod) to release REF (v1.2.0 or "
        "NAME@v1.2.0) with an annotated GTO tag NAME#STAGE#N (main#STAGE#N for the main "
        "line), which `gto show` reads. Refused (exit 1, verdict shown) when REF is worse "
        "than the version holding STAGE now; --allow-regression REASON promotes anyway and "
        "records REASON (a rollback is the usual one). The same gate runs when the tag is "
        "pushed (pre-push, and the server's pre-receive). Exit 0 promoted (or already "
        "there), 1 refused, 2 bad input.",
    )
    p.add_argument("ref", metavar="REF", help="the release to promote, e.g. v1.2.0 or clf@v1.2.0")
    p.add_argument("stage", metavar="STAGE", help="the stage, e.g. prod")
    p.add_argument("-m", "--message", metavar="MSG", help="first line of the tag message")
    p.add_argument(
        "--allow-regression",
        metavar="REASON",
        help="promote even if the gate fails; REASON is recorded in the tag and the note",
    )
    p.add_argument("--json", action="store_true", help="print the change and verdict as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from gitmodel.errors import Refused
    from gitmodel.hooks.doors import noise_evidence
    from gitmodel.promotion import promote
    from gitmodel.render import info, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    change = promote(
        repo.root,
        repo.config,
        repo.notes,
        args.ref,
        args.stage,
        args.message,
        args.allow_regression,
        noise=noise_evidence(repo.root, repo.config),
    )
    if args.json:
        print_json(change.to_json())
    elif change.verdict is not None:
        sys.stdout.write(change.verdict.text())
    if change.already:
        info(f"{args.ref} already holds {args.stage}: nothing to do")
        return 0
    if change.tag is None:
        raise Refused(
            f"not promoting {args.ref} to {args.stage}: it is worse than "
            f"{change.previous.version if change.previous else 'the holder'} "
            "(--allow-regression REASON promotes anyway and records why)"
        )
    if not args.json:
        was = f" (was {change.previous.version})" if change.previous else ""
        info(
            f"promoted {args.ref} to {args.stage}{was} with tag {change.tag}"
            + (" despite the gate (reason recorded)" if change.override else "")
            + f"; publish it: git push origin '{change.tag}'"
        )
    return 0
