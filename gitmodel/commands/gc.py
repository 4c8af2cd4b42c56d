from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gc",
        help="remove cache objects no pointer needs",
        description="Remove cache objects referenced by no pointer in any branch, tag, stash, "
        "HEAD, the index or the work tree. Objects of commits not on any git remote "
        "(unpushed, including reflog-only ones) are always kept, and so are objects stored "
        "within the grace period (a concurrent `git model add` may not have written its "
        "pointer yet).",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="list what would be removed")
    p.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep objects stored this recently (default 3600; with --remote, 1209600: "
        "two weeks, for teammates' pushes whose commits are not pushed yet)",
    )
    p.add_argument(
        "-p",
        "--projects",
        nargs="+",
        default=[],
        metavar="PATH",
        help="the other repositories that share this cache (needed when the cache is "
        "outside the repository; their roots count as live too)",
    )
    p.add_argument(
        "--chunks-only",
        action="store_true",
        help="with [storage] dedup: also drop the work tree's whole-file objects that chunks "
        "can rebuild (smallest cache; DVC commands then see them as not cached)",
    )
    p.add_argument(
        "--remote",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="with [storage] dedup: instead, remove the chunk packs and recipes on DVC remote "
        "NAME (default: the default remote) that no commit needs; every git remote's refs "
        "must be fetched first",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gitmodel.gc import collect_garbage
    from gitmodel.render import fmt_size, info, plural, print_json
    from gitmodel.repo import Repo

    if args.remote is not None:
        return _run_remote(args)
    result = collect_garbage(
        Repo(),
        Repo,
        dry_run=args.dry_run,
        grace=3600.0 if args.grace is None else args.grace,
        projects=[Path(p) for p in args.projects],
        chunks_only=args.chunks_only,
    )
    if args.json:
        print_json(result.to_json())
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for oid in result.removed:
        print(f"{verb} {oid}")
    info(
        f"{verb} {plural(len(result.removed), 'object')} ({fmt_size(result.bytes)}); "
        f"kept {result.kept}"
    )
    if result.chunks is not None:
        c = result.chunks
        info(
            f"chunk store: {verb} {plural(len(c.recipes_removed), 'recipe')}, "
            f"{plural(c.packs_removed, 'pack')}, rewrote {c.packs_rewritten} "
            f"({fmt_size(c.bytes)}); dropped {plural(len(c.objects_dropped), 'whole object')} "
            f"that chunks rebuild ({fmt_size(c.objects_bytes)})"
        )
    return 0


def _run_remote(args: argparse.Namespace) -> int:
    from gitmodel.errors import GitModelError
    from gitmodel.gc import REMOTE_GRACE, collect_remote_chunks
    from gitmodel.render import fmt_size, info, plural, print_json
    from gitmodel.repo import Repo

    if args.projects or args.chunks_only:
        raise GitModelError("--remote takes neither --projects nor --chunks-only")
    result = collect_remote_chunks(
        Repo(),
        Repo,
        args.remote or None,
        dry_run=args.dry_run,
        grace=REMOTE_GRACE if args.grace is None else args.grace,
    )
    if args.json:
        print_json(result.to_json())
        return 0
    verb = "would remove" if args.dry_run else "removed"
    info(
        f"DVC remote {result.remote!r}: {verb} {plural(len(result.recipes_removed), 'recipe')} "
        f"and {plural(len(result.packs_deleted), 'pack')} ({fmt_size(result.bytes)}); "
        f"retired {plural(len(result.packs_retired), 'pack')} (rewrote "
        f"{result.packs_rewritten}; deleted by a gc after the grace period), put back "
        f"{len(result.packs_restored)}"
    )
    return 0
