from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="would this revision pass the release gate? (exit 1 if not)",
        description="Judge REV (default HEAD) against the previous release under the policy in "
        ".gitmodel.toml: every gated metric with the previous value, the new one, the delta and "
        "the slack. Exit 0 pass, 1 regression, 2 bad input.",
    )
    p.add_argument("rev", nargs="?", default="HEAD", metavar="REV")
    p.add_argument("--against", metavar="TAG", help="compare with this release tag instead")
    p.add_argument(
        "--tag",
        metavar="NAME",
        help="judge REV as the release NAME would be (e.g. a hotfix v1.0.2 before tagging it)",
    )
    p.add_argument("--model", metavar="NAME", help="the release line of one model (NAME@v...)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from gitmodel.errors import EXIT_OK, EXIT_REFUSED, GitModelError
    from gitmodel.evidence import gate_for
    from gitmodel.render import print_json, warn
    from gitmodel.repo import Repo
    from gitmodel.versions import below_latest, parse_tag

    repo = Repo()
    gate = gate_for(repo)
    for message in gate.config.warnings:
        warn(message)  # unknown keys: the policy may not say what its author meant
    commit = repo.rev_parse(args.rev)
    tag = args.tag
    if tag is not None and not gate.is_release(tag):
        raise GitModelError(
            f"--tag {tag}: not a release tag (release.tags = {gate.config.release_tags!r})"
        )
    if tag is None and any(t.name == args.rev for t in gate.tags):
        tag = args.rev  # `check v1.3.0` judges that release against the one before it
    model = args.model
    if tag is not None:
        tag_model = parse_tag(tag).model
        if model is not None and tag_model != model:
            raise GitModelError(f"{tag} is not on the release line of model {model}")
        model = tag_model
        if args.tag is not None:
            low = below_latest(tag, gate.tags)
            if low:
                warn(low)
    verdict = gate.verdict(
        commit, tag=tag, model=model, against=args.against, label=tag or args.rev
    )
    if args.json:
        print_json(verdict.to_json())
    else:
        sys.stdout.write(verdict.text())
    return EXIT_OK if verdict.passed else EXIT_REFUSED
