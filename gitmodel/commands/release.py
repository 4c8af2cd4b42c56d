from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitmodel.repo import Repo
    from gitmodel.verdict import Verdict


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

    from gitmodel.errors import GitModelError, Refused
    from gitmodel.evidence import gate_for
    from gitmodel.git import run_git
    from gitmodel.render import info, print_json, warn, warn_missing_hooks
    from gitmodel.repo import Repo
    from gitmodel.versions import below_latest, bump, latest_version, parse_tag, same_version

    repo = Repo()
    warn_missing_hooks(repo)
    gate = gate_for(repo)
    for message in gate.config.warnings:
        warn(message)  # unknown keys: the policy may not say what its author meant
    if (args.version is None) == (args.bump is None):
        raise GitModelError("give either VERSION or --bump major|minor|patch")
    if args.version is not None:
        name = args.version
        if args.model is not None and parse_tag(name).model != args.model:
            raise GitModelError(f"{name} is not on the release line of model {args.model}")
    else:
        latest = latest_version(gate.tags, args.model or "")
        name = bump(latest.tag if latest else None, args.bump, gate.config.release_tags, args.model)
    _check_name(repo, name, gate.config.release_tags)
    same = [t.name for t in gate.tags if same_version(t.tag, parse_tag(name))]
    if same:
        raise GitModelError(f"{name} is the same version as the release {same[0]}")
    low = below_latest(name, gate.tags)
    if low:
        warn(low)
    if args.allow_regression is not None and not args.allow_regression.strip():
        raise GitModelError("--allow-regression needs a reason")
    commit = repo.rev_parse(args.rev)
    verdict = gate.verdict(commit, tag=name)
    override = None
    if not verdict.passed:
        if args.allow_regression is None:
            sys.stdout.write(verdict.text())
            raise Refused(
                f"not releasing {name}: the release gate failed "
                "(--allow-regression REASON releases anyway and records why)"
            )
        override = args.allow_regression.strip()
        _record_override(repo, commit, name, override)
        verdict = gate_for(repo).verdict(commit, tag=name)  # now says OVERRIDDEN
    elif args.allow_regression is not None:
        info("the gate passed: --allow-regression was not needed and is not recorded")
    message = _tag_message(
        args.message, name, commit, verdict, override, _metrics(repo, commit, name)
    )
    proc = run_git(
        ["tag", "-a", "--cleanup=whitespace", "-F", "-", name, commit],
        cwd=repo.root,
        input=message,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise Refused(f"git tag {name} failed")
    if args.json:
        print_json(
            {"tag": name, "commit": commit, "override": override, "verdict": verdict.to_json()}
        )
    else:
        sys.stdout.write(verdict.text())
        info(
            f"released {name} ({commit[:12]})"
            + (" despite the gate (override recorded)" if override else "")
        )
    return 0


def _check_name(repo: Repo, name: str, glob: str) -> None:
    from gitmodel.errors import GitModelError
    from gitmodel.git import run_git
    from gitmodel.versions import is_release

    if not name or name.startswith("-"):
        raise GitModelError(f"{name!r} is not a valid tag name")
    if run_git(["check-ref-format", f"refs/tags/{name}"], cwd=repo.root, check=False).returncode:
        raise GitModelError(f"{name!r} is not a valid tag name")
    if not is_release(name, glob):
        raise GitModelError(f"{name} is not a release tag (release.tags = {glob!r})")
    exists = run_git(
        ["rev-parse", "--verify", "--quiet", f"refs/tags/{name}"], cwd=repo.root, check=False
    )
    if exists.returncode == 0:
        raise GitModelError(f"tag {name} already exists")


def _record_override(repo: Repo, commit: str, tag: str, reason: str) -> None:
    """Put the override in the commit's note, where every door (and the server) reads it."""
    import datetime as dt

    from gitmodel import __version__
    from gitmodel.git import run_git
    from gitmodel.notes import SCHEMA_VERSION

    note: dict[str, Any] = repo.notes.read(commit) or {
        "schema": SCHEMA_VERSION,
        "metrics": {},
        "source": "git-model release",
        "tool": f"gitmodel {__version__}",
    }
    who = run_git(["config", "user.email"], cwd=repo.root, check=False).stdout.strip()
    previous = note.get("overrides")
    entries: list[Any] = list(previous) if isinstance(previous, list) else []
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("tag") == tag)]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    entries.append({"tag": tag, "reason": reason, "at": now, "by": who})
    note["overrides"] = entries
    repo.notes.write(commit, note)


def _metrics(repo: Repo, commit: str, name: str) -> dict[str, float | int]:
    from gitmodel.errors import GitModelError
    from gitmodel.gate import model_metrics
    from gitmodel.versions import parse_tag

    try:
        note = repo.notes.read(commit)
        return model_metrics(note, parse_tag(name).model, commit) if note else {}
    except GitModelError:
        return {}


def _tag_message(
    user: str | None,
    name: str,
    commit: str,
    verdict: Verdict,
    override: str | None,
    metrics: dict[str, float | int],
) -> str:
    from gitmodel.verdict import clean_text

    lines = [user.strip() if user and user.strip() else f"Release {name}", ""]
    if override:
        lines += [f"Released despite the release gate. Reason: {clean_text(override)}", ""]
    lines += [f"Metrics of {commit}:"]
    lines += [f"  {clean_text(k, 100)} = {v}" for k, v in metrics.items()] or ["  (none)"]
    lines += ["", "Release gate (git model release):"]
    lines += verdict.lines()
    return "\n".join(lines) + "\n"
