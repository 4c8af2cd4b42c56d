"""The release tags of a repository, with the commits they point at, read with git.

Read with git plumbing and the environment git gave a hook (gitmodel.git.TRUTH_ENV:
replace objects off), so that a server's pre-receive sees what it accepted.
"""

from __future__ import annotations

from pathlib import Path

from gitmodel.git import TRUTH_ENV, run_git
from gitmodel.versions import ReleaseTag, is_release_name, parse_tag

_TAG_FORMAT = "%00".join(
    (
        "%(refname)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objecttype)",
        "%(*objectname)",
        "%(creatordate:unix)",
    )
)


def list_release_tags(cwd: Path, glob: str) -> list[ReleaseTag]:
    """Every release tag of the repository, with the commit it points at, in one git call."""
    proc = run_git(
        ["for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags/"], cwd=cwd, env=TRUTH_ENV
    )
    tags: list[ReleaseTag] = []
    for line in proc.stdout.splitlines():
        fields = line.split("\0")
        if len(fields) != 6:
            continue
        ref, otype, oid, ptype, poid, date = fields
        tag = parse_tag(ref[len("refs/tags/") :])  # once: a thousand tags cost their regex
        if not is_release_name(tag, glob):
            continue
        commit: str | None = None
        if otype == "commit":
            commit = oid
        elif otype == "tag" and ptype == "commit":
            commit = poid
        elif otype == "tag":  # a tag of a tag: let git peel it
            commit = peel_commit(cwd, oid)
        tags.append(ReleaseTag(tag, commit, int(date) if date.isdigit() else 0))
    return tags


def peel_commit(cwd: Path, oid: str) -> str | None:
    """The commit an object (commit or tag) points at; None for trees, blobs, unknowns."""
    proc = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{oid}^{{commit}}"],
        cwd=cwd,
        check=False,
        env=TRUTH_ENV,
    )
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
