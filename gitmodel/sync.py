"""Push, fetch and pull: the weights of the commits a git remote gets or has (through
gitmodel.transfer) and the metrics notes (through gitmodel.notes_sync), for the commands
and the pre-push hook.

Deciding that a push publishes no new pointer costs two git calls and no dvc import (the
pointers the pushed commits introduce come from one `git log --raw`). A push that does
publish pointers always asks the DVC remote: at least for its generation marker, which
says whether this clone's record of what is there (gitmodel.remote) still holds after a
remote gc, and otherwise which of the objects are there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError, Refused
from gitmodel.git import GitFailed, run_git
from gitmodel.remote import RemoteError, default_remote_name
from gitmodel.transfer import TransferReport, download, upload

if TYPE_CHECKING:
    from gitmodel.pointer import TrackedOut
    from gitmodel.store import Reporter
    from gitmodel.workspace_view import SyncWorkspace

ZERO = "0" * 40


# -- which pointers a push publishes --------------------------------------------------------


def new_pointer_outs(
    repo: SyncWorkspace,
    include: Sequence[str],
    exclude: Sequence[str] = (),
    remote: str | None = None,
) -> list[TrackedOut]:
    """Pointer outputs that commits in `include` (not in `exclude` nor on `remote`) introduce.

    One `git log --raw` over the new commits, merges against every parent, lists each
    pointer blob they add or change; pointers unchanged since a published commit were
    published (and uploaded) with it.
    """
    from gitmodel.pointer import RAW_POINTER_LOG, pointer_blobs_in_raw_log

    if not include:
        return []
    args = [*RAW_POINTER_LOG, "--ignore-missing", *include, *(f"^{e}" for e in exclude)]
    if remote:
        args += ["--not", f"--remotes={remote}"]
    try:
        out = run_git(args + ["--"], cwd=repo.root).stdout
    except GitFailed as exc:
        raise GitModelError(f"cannot list the commits being pushed: {exc.message}") from None
    # dict: unique in order (a merge lists a pointer against each parent)
    blobs = list(dict.fromkeys(pointer_blobs_in_raw_log(out)))
    # a blob that is not a weights pointer (or one we cannot read): nothing to upload
    return repo.outs_of_blobs(blobs, skip_unreadable=True)


# -- the pre-push hook ----------------------------------------------------------------------


@dataclass
class PrePushResult:
    pointers: int = 0
    upload: TransferReport | None = None
    notes: str = "skipped"  # or push_notes()'s answer, or "not published (why)"


def prepare_push(
    repo: SyncWorkspace,
    remote_name: str,
    remote_url: str,
    updates: Sequence[Sequence[str]],
    reporter: Reporter | None = None,
) -> PrePushResult:
    """Upload the weights of the commits being pushed, then publish the notes.

    `updates` are git's pre-push stdin lines split into (local ref, local sha, remote ref,
    remote sha). Runs before git moves any ref; raises Refused to stop the push. A push
    that publishes no new pointer costs two git calls and no dvc import.
    """
    from gitmodel import notes_sync

    result = PrePushResult()
    include, exclude = [], []
    for update in updates:
        if len(update) < 4:
            continue
        local_ref, local_sha, remote_ref, remote_sha = update[:4]
        if local_sha == ZERO or remote_ref.startswith("refs/notes/"):
            continue  # a deletion, or notes: no weights ride on them
        include.append(local_sha)
        if remote_sha != ZERO:
            exclude.append(remote_sha)  # unknown here: git log --ignore-missing skips it
    if not include:
        return result
    outs = new_pointer_outs(repo, include, exclude, remote_name)
    result.pointers = len(outs)
    if default_remote_name(repo) is not None:
        from gitmodel.attachments import note_object_outs

        # Training histories and stored predictions the notes name travel with their commits.
        outs += note_object_outs(repo, include, exclude, remote_name)
    if outs:
        if default_remote_name(repo) is None:
            raise Refused(
                f"the commits being pushed track weights ({outs[0].path}) but no default DVC "
                "remote is configured: `git model remote add NAME URL --default` "
                "(or push with --no-verify to publish pointers without their weights)"
            )
        try:
            result.upload = upload(repo, outs, reporter=reporter)
        except RemoteError as exc:
            raise Refused(f"push refused, weights not uploaded: {exc.message}") from None
        except Refused as exc:
            raise Refused(f"push refused: {exc.message}") from None
    try:
        result.notes = notes_sync.push_notes(repo.git_dir, repo.root, remote_name)
    except notes_sync.NotesSyncError as exc:
        # A release tag needs its notes on the server (its gate reads them); a branch push
        # should not be blocked by a server that will not take a notes ref.
        if any(len(u) >= 3 and u[2].startswith("refs/tags/") for u in updates):
            raise Refused(f"push refused: {exc.message}") from None
        result.notes = f"not published ({exc.message})"
    return result


# -- commands' operations ------------------------------------------------------------------


def resolve_git_remote(repo: SyncWorkspace, name: str | None) -> str | None:
    """The git remote a command talks to: the given one, the branch's, origin, or the only one."""
    from gitmodel import notes_sync

    remotes = notes_sync.git_remotes(repo.root)
    if name:
        if name not in remotes and "/" not in name and ":" not in name:
            raise GitModelError(f"no git remote named {name!r}")
        return name
    branch = run_git(
        ["symbolic-ref", "-q", "--short", "HEAD"], cwd=repo.root, check=False
    ).stdout.strip()
    if branch:
        upstream = run_git(
            ["config", "--get", f"branch.{branch}.remote"], cwd=repo.root, check=False
        )
        if upstream.returncode == 0 and upstream.stdout.strip() in remotes:
            return upstream.stdout.strip()
    if "origin" in remotes:
        return "origin"
    return remotes[0] if len(remotes) == 1 else None


@dataclass
class SyncResult:
    git_remote: str | None
    transfer: TransferReport | None = None
    notes: str = "skipped"
    notes_conflicts: int = 0
    checkout: Any = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "git_remote": self.git_remote,
            "weights": self.transfer.to_json() if self.transfer else None,
            "notes": self.notes,
            "notes_conflicts": self.notes_conflicts,
        }
        if self.checkout is not None:
            d["checkout"] = self.checkout.to_json()
        return d


def push(
    repo: SyncWorkspace,
    git_remote: str | None = None,
    dvc_remote: str | None = None,
    reporter: Reporter | None = None,
) -> SyncResult:
    """Upload the weights of commits the git remote lacks (and HEAD's), then push notes."""
    from gitmodel import notes_sync

    remote = resolve_git_remote(repo, git_remote)
    result = SyncResult(remote)
    refs = run_git(
        ["for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags"], cwd=repo.root
    ).stdout.split()
    head = repo.head()
    include = sorted(set(refs + ([head] if head else [])))
    outs = new_pointer_outs(repo, include, (), remote if remote and "/" not in remote else None)
    if head:
        outs += repo.pointers_at(head)
    if dvc_remote or default_remote_name(repo):
        from gitmodel.attachments import note_object_outs

        tracking = remote if remote and "/" not in remote else None
        outs += note_object_outs(repo, include, (), tracking)
    if outs:
        # An explicit push asks the remote again instead of trusting the local record.
        result.transfer = upload(repo, outs, dvc_remote, reporter, trust_record=False)
    if remote:
        notes_sync.configure_fetch(repo.root)
        try:
            fetched = notes_sync.fetch_notes(repo.root, remote)
            if fetched:
                outcome = notes_sync.merge_notes_commit(repo.git_dir, repo.root, fetched)
                result.notes_conflicts = len(outcome.conflicts)
            result.notes = notes_sync.push_notes(repo.git_dir, repo.root, remote)
        except notes_sync.NotesSyncError as exc:
            raise RemoteError(exc.message) from None
    return result


def fetch(
    repo: SyncWorkspace,
    git_remote: str | None = None,
    dvc_remote: str | None = None,
    reporter: Reporter | None = None,
    outs: Sequence[TrackedOut] | None = None,
) -> SyncResult:
    """Fetch and merge the notes of a git remote; download HEAD's weights into the cache."""
    from gitmodel import notes_sync

    remote = resolve_git_remote(repo, git_remote)
    result = SyncResult(remote)
    if remote:
        notes_sync.configure_fetch(repo.root)
        try:
            fetched = notes_sync.fetch_notes(repo.root, remote)
        except notes_sync.NotesSyncError as exc:
            raise RemoteError(exc.message) from None
        result.notes = "none"
        if fetched:
            outcome = notes_sync.merge_notes_commit(repo.git_dir, repo.root, fetched)
            result.notes, result.notes_conflicts = outcome.action, len(outcome.conflicts)
    if outs is None:
        head = repo.head()
        outs = repo.pointers_at(head) if head else []
    if outs:
        result.transfer = download(repo, outs, dvc_remote, reporter)
    return result


def pull(
    repo: SyncWorkspace,
    git_remote: str | None = None,
    dvc_remote: str | None = None,
    reporter: Reporter | None = None,
    force: bool = False,
) -> SyncResult:
    """fetch, then materialise the weights of the work tree's pointers."""
    outs = repo.tracked()
    result = fetch(repo, git_remote, dvc_remote, reporter, outs=outs)
    result.checkout = repo.checkout(force=force, reporter=reporter)
    return result
