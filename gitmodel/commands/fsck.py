from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fsck",
        help="verify cache objects, manifests, pointers and notes",
        description="Re-hash every cache object (--fast: only those not verified since they "
        "were written), check .dir manifests, pointers whose objects are missing, notes that "
        "do not parse and a note left pending by an interrupted commit. Exit 1 naming each "
        "problem. --repair re-fetches damaged or missing objects from the default DVC remote, "
        "removes corrupt objects it cannot re-fetch and completes a pending note.",
    )
    p.add_argument(
        "--fast", action="store_true", help="skip objects verified since they were written"
    )
    p.add_argument("--repair", action="store_true", help="fix what can be fixed")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.fsck import check
    from gitmodel.render import info, plural, print_json
    from gitmodel.repo import Repo

    report = check(Repo(), fast=args.fast, repair=args.repair)
    code = 1 if report.unresolved else 0
    if args.json:
        print_json(report.to_json())
        return code
    for p in report.problems:
        suffix = f" [repaired: {p.repaired}]" if p.repaired else ""
        print(f"{p.kind}: {p.message}{suffix}")
    for action in report.actions:
        info(action)
    for warning in report.warnings:
        info(f"warning: {warning}")
    trusted = f", {report.objects_trusted} trusted (--fast)" if args.fast else ""
    info(
        f"checked {plural(report.objects_checked, 'object')}{trusted}, "
        f"{plural(report.pointers, 'pointer')}, {plural(report.notes, 'note')}: "
        + (plural(len(report.unresolved), "problem") if report.unresolved else "ok")
    )
    return code
