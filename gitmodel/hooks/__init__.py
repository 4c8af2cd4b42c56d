"""Git hooks: install, chain and uninstall the shims; the Python entry points they exec.

The scripts git runs are shell shims built from `templates/` (a common header plus one
body per hook), installed and chained with other tools' hooks by `gitmodel.hooks.installer`.
Shims exec `main()` below with the interpreter that installed them.

Doors:
  reference-transaction  plain `git tag` of a failing release is refused (fetch/clone never)
  pre-push               pushing a failing release tag is refused; then `gitmodel.sync`
                         (when present) uploads weights and publishes notes
  post-commit            a plain `git commit` that changes a metrics file writes the note
  post-checkout/-merge   weights of the new HEAD are materialised from the cache
  pre-receive (server)   pushed release tags are gated with the notes the server has

Imports here stay light: these functions run inside git operations.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError

# Installation lives in gitmodel.hooks.installer; these names are its public face here.
from gitmodel.hooks.installer import (  # noqa: F401  (re-exported)
    CLIENT_HOOKS,
    LEGACY_SUFFIX,
    MARKER,
    SERVER_HOOKS,
    TEMPLATES,
    hooks_dir,
    install,
    is_ours,
    missing,
    render_shim,
    uninstall,
)

# typing is not imported at run time: commands that check the hooks (status, commit) import
# this package, and typing alone costs more than the check (see gitmodel.record).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any, NamedTuple

# -- shared by the entry points ------------------------------------------------------------


def _say(message: str) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def _nonzero(oid: str) -> bool:
    return _is_oid(oid) and oid.strip("0") != ""


# -- reference-transaction -----------------------------------------------------------------


def reference_transaction(args: Sequence[str], stdin: IO[str]) -> int:
    """Refuse `git tag` of a release that fails the gate (the shim sends only tag lines)."""
    from gitmodel.config import ConfigError
    from gitmodel.versions import is_release

    if args and args[0] == "committed":
        # The shim hands over only a HEAD that a rebase or `git am` moved to other pointers.
        return materialise(args, stdin)
    if not args or args[0] != "prepared":
        return 0
    candidates = []
    for line in stdin.read().splitlines():
        parts = line.split()
        if len(parts) == 2 and _nonzero(parts[0]) and parts[1].startswith("refs/tags/"):
            candidates.append((parts[0], parts[1][len("refs/tags/") :]))
    root = Path.cwd()
    from gitmodel.hooks.doors import TAG_DOOR, door_gate, judge_refs

    try:
        gate = door_gate(root)
    except ConfigError as exc:
        # A broken policy cannot judge; refuse only what looks like a release under the default.
        if any(is_release(name, "v*") for _, name in candidates):
            _say(f"gitmodel: cannot judge the release tag: {exc.message}")
            return 1
        return 0
    if gate is None:
        return 0
    return _refuse(TAG_DOOR, judge_refs(gate, candidates))


def _refuse(door: Any, judgement: Any) -> int:
    """Show a door's verdicts and, when it refuses, why: 1 refused, 0 let through."""
    for line in door.report(judgement):
        _say(line)
    return 1 if judgement.refused else 0


# -- pre-push ------------------------------------------------------------------------------


if TYPE_CHECKING:

    class _PushFields(NamedTuple):
        local_ref: str
        local_sha: str
        remote_ref: str
        remote_sha: str

else:
    from collections import namedtuple

    _PushFields = namedtuple("_PushFields", "local_ref local_sha remote_ref remote_sha")


class PushUpdate(_PushFields):
    """One line of pre-push input."""

    __slots__ = ()

    @property
    def deletes(self) -> bool:
        return not _nonzero(self.local_sha)


def parse_push_updates(text: str) -> list[PushUpdate]:
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4:
            updates.append(PushUpdate(*parts))
    return updates


def gate_push(root: Path, updates: Sequence[PushUpdate]) -> int:
    """Refuse (1) when a release tag being pushed fails the gate; 0 otherwise."""
    tag_updates = [u for u in updates if u.remote_ref.startswith("refs/tags/") and not u.deletes]
    if not tag_updates:
        return 0  # before any import: most pushes carry no tag
    from gitmodel.hooks.doors import PUSH_DOOR, door_gate, judge_refs

    gate = door_gate(root)
    if gate is None:
        return 0
    pushed = [(u.local_sha, u.remote_ref[len("refs/tags/") :]) for u in tag_updates]
    return _refuse(PUSH_DOOR, judge_refs(gate, pushed))


def pre_push(args: Sequence[str], stdin: IO[str]) -> int:
    remote_name = args[0] if args else ""
    remote_url = args[1] if len(args) > 1 else remote_name
    updates = parse_push_updates(stdin.read())
    root = Path.cwd()
    code = gate_push(root, updates)
    if code:
        return code
    # Then the weights go up and the notes out (no dvc import when nothing is to upload).
    return _publish(root, remote_name, remote_url, updates)


def _publish(root: Path, remote_name: str, remote_url: str, updates: Sequence[PushUpdate]) -> int:
    from gitmodel.hooks.doors import publish

    for line in publish(root, remote_name, remote_url, updates):
        _say(line)
    return 0


def framework_pre_push(args: Sequence[str], stdin: IO[str]) -> int:
    """pre-push under the pre-commit framework.

    The framework runs its pre-push hooks only when the push sends new commits, and
    hands them one ref (PRE_COMMIT_* variables) instead of git's stdin. So this door asks
    the remote which tags it lacks and gates every local release tag the push can
    publish: the ref it names, and each tag on a commit the push sends (what `git push
    REMOTE main v1.1.0` and `--follow-tags` publish). Then, as the native hook, the
    weights go up and the notes out. A push of a tag whose commit the remote already has
    runs no framework hook at all: only `git model install`'s hook and the server see it.
    """
    env = os.environ
    local_sha = env.get("PRE_COMMIT_TO_REF", "")
    local_ref = env.get("PRE_COMMIT_LOCAL_BRANCH", "")
    if not _nonzero(local_sha) and local_ref:
        # A push of a whole history (its root commit too) comes without from/to refs.
        from gitmodel.git import run_git

        proc = run_git(["rev-parse", "--verify", "--quiet", local_ref], check=False)
        local_sha = proc.stdout.strip()
    if not _nonzero(local_sha):
        return 0
    remote = env.get("PRE_COMMIT_REMOTE_NAME", "")
    url = env.get("PRE_COMMIT_REMOTE_URL", "") or remote
    zero = "0" * len(local_sha)
    from_sha = env.get("PRE_COMMIT_FROM_REF", "")
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH", "")
    root = Path.cwd()
    updates = [
        PushUpdate(
            local_ref,
            local_sha,
            remote_ref,
            from_sha if _nonzero(from_sha) else zero,
        )
    ]
    for name, sha in _publishable_tags(root, remote or url, local_sha, from_sha):
        if f"refs/tags/{name}" != remote_ref:
            updates.append(PushUpdate(f"refs/tags/{name}", sha, f"refs/tags/{name}", zero))
    code = gate_push(root, updates)
    if code and len(updates) > 1:
        _say(
            "gitmodel: under the pre-commit framework every release tag on a commit this push "
            "sends is judged (the framework does not say which refs git pushes): delete the "
            "tag, or release it with git model release --allow-regression REASON"
        )
    if code or not (remote or url):
        return code
    return _publish(root, remote or url, url, updates)


def _publishable_tags(root: Path, remote: str, to: str, since: str) -> list[tuple[str, str]]:
    """(name, object) of the local tags on the commits `to` brings (not `since`, not the
    remote's) that the remote lacks; when the remote cannot be asked, every such tag."""
    from gitmodel.git import run_git

    exclude = [f"^{since}"] if _nonzero(since) else [f"--remotes={remote}"] if remote else []
    proc = run_git(["rev-list", to, "--not", *exclude], cwd=root, check=False)
    sent = set(proc.stdout.split()) if proc.returncode == 0 else set()
    listing = run_git(
        ["for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)", "refs/tags"],
        cwd=root,
        check=False,
    ).stdout.splitlines()
    found = []
    for line in listing:
        parts = line.split()
        if len(parts) >= 2 and (parts[-1] in sent or parts[1] in sent):
            found.append((parts[0], parts[1]))
    if not found or not remote:
        return found
    asked = run_git(
        ["ls-remote", "--tags", "--refs", remote],
        cwd=root,
        check=False,
        env={"GIT_TERMINAL_PROMPT": "0"},
    )
    if asked.returncode != 0:
        return found
    theirs = {
        ln.split("\t", 1)[1][len("refs/tags/") :] for ln in asked.stdout.splitlines() if "\t" in ln
    }
    return [(name, sha) for name, sha in found if name not in theirs]


# -- pre-receive (server) --------------------------------------------------------------------


def pre_receive(args: Sequence[str], stdin: IO[str]) -> int:
    """The server's door: see gitmodel.hooks.receive."""
    from gitmodel.hooks.receive import pre_receive as receive

    return receive(args, stdin)


# -- post-commit -----------------------------------------------------------------------------


# The reflog subjects of commits that git makes from other commits' changes: their
# pointers change in the index and work tree, their weights do not. (A rebase's picks,
# `git pull --rebase`'s and `git am`'s too, are written when the reference-transaction
# hook sees HEAD move: see reference_transaction.)
_PICKED = ("cherry-pick", "revert", "commit (cherry-pick)", "commit (merge)")


def post_commit(args: Sequence[str], stdin: IO[str]) -> int:
    """The metrics note of a plain commit; the weights of a cherry-pick, revert or merge."""
    code = metrics_note(args, stdin)
    if os.environ.get("GITMODEL_COMMITTING") != "1" and _picked(Path.cwd()):
        materialise(args, stdin)
    return code


def _picked(root: Path) -> bool:
    from gitmodel.git import run_git

    action = run_git(["reflog", "-1", "--format=%gs", "HEAD"], cwd=root, check=False).stdout
    return action.startswith(_PICKED)


def metrics_note(args: Sequence[str], stdin: IO[str]) -> int:
    """A plain `git commit` that changed a metrics file: write the commit's note from it."""
    from gitmodel.git import run_git
    from gitmodel.metrics import MetricsError, kind_of, parse_metrics_text

    if os.environ.get("GITMODEL_COMMITTING") == "1":
        return 0
    root = Path.cwd()
    from gitmodel.hooks.doors import door_policy

    policy = door_policy(root)
    wanted_files = [
        f for c in (policy.config, policy.worktree) if c is not None for f in c.metrics_files
    ]
    if not wanted_files:
        return 0
    if _rewriting(root):
        return 0
    changed = run_git(
        ["diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "-z", "HEAD"],
        cwd=root,
        check=False,
    ).stdout.split("\0")
    wanted = list(dict.fromkeys(os.path.normpath(f) for f in wanted_files))
    hits = [f for f in wanted if f in changed]
    if not hits:
        return 0
    metrics: dict[str, float | int] = {}
    for rel in hits:
        proc = run_git(["cat-file", "blob", f"HEAD:{rel}"], cwd=root, check=False)
        if proc.returncode != 0:
            continue  # deleted by this commit
        try:
            metrics.update(parse_metrics_text(proc.stdout, kind_of(Path(rel)), rel))
        except MetricsError as exc:
            _say(f"gitmodel: no metrics note written: {exc.message}")
            return 0
    if not metrics:
        return 0
    from gitmodel.attachments import Attachments
    from gitmodel.attachments import collect as collect_attachments
    from gitmodel.repo import Repo

    repo = Repo(root)
    # The training history and `eval --store` predictions ride along, as with `git model commit`.
    try:
        attachments = collect_attachments(repo)
    except GitModelError as exc:
        _say(f"gitmodel: history/predictions not attached: {exc.message}")
        attachments = Attachments()
    repo.write_note("HEAD", metrics, source="post-commit", **attachments.note)
    attachments.consume()
    _say(f"gitmodel: recorded {len(metrics)} metric(s) from {', '.join(hits)} in the commit's note")
    return 0


def _tree_metrics(root: Path, rev: str, files: Sequence[str]) -> dict[str, float | int]:
    """The metrics that the metrics files hold in rev's tree (empty when none is there)."""
    from gitmodel.git import run_git
    from gitmodel.metrics import MetricsError, kind_of, parse_metrics_text

    metrics: dict[str, float | int] = {}
    for rel in files:
        proc = run_git(["cat-file", "blob", f"{rev}:{rel}"], cwd=root, check=False)
        if proc.returncode != 0:
            continue
        try:
            metrics.update(parse_metrics_text(proc.stdout, kind_of(Path(rel)), rel))
        except MetricsError:
            continue  # a broken file measures nothing; post-commit says so when it is committed
    return metrics


def post_rewrite(args: Sequence[str], stdin: IO[str]) -> int:
    """After an amend or a rebase (git hands us old -> new): each new commit gets one valid
    note, with the metrics of its own metrics files when the rewrite changed them."""
    from gitmodel.notes import NOTES_REF, PlumbingNotes
    from gitmodel.rewrite import rewritten_notes

    pairs = []
    for line in stdin.read().splitlines():
        parts = line.split()
        if len(parts) >= 2 and _is_oid(parts[0]) and _is_oid(parts[1]):
            pairs.append((parts[0], parts[1]))
    if not pairs:
        return 0
    root = Path.cwd()
    if args and args[0] == "rebase":
        # `git pull --rebase` runs no post-merge: the notes it fetched are merged here.
        _merge_fetched_notes(root)
    from gitmodel.hooks.doors import door_policy

    policy = door_policy(root)
    files = list(
        dict.fromkeys(
            os.path.normpath(f)
            for c in (policy.config, policy.worktree)
            if c is not None
            for f in c.metrics_files
        )
    )
    notes = PlumbingNotes.from_ref(root, NOTES_REF)

    cache: dict[str, dict[str, float | int]] = {}

    def tree_metrics(commit: str) -> dict[str, float | int]:
        if commit not in cache:
            cache[commit] = _tree_metrics(root, commit, files) if files else {}
        return cache[commit]

    wanted = rewritten_notes(pairs, notes.read_text, tree_metrics)
    if not wanted:
        return 0
    from gitmodel.repo import Repo

    repo = Repo(root)
    for commit, note in wanted.items():
        repo.notes.write(commit, note)
    recomputed = sum(1 for n in wanted.values() if n.get("source") == "post-rewrite")
    _say(
        f"gitmodel: rewrote the metrics note of {len(wanted)} commit(s)"
        + (f", {recomputed} from their metrics files" if recomputed else "")
    )
    return 0


def _rewriting(root: Path) -> bool:
    """An amend or a rebase: git copies the old note itself (notes.rewriteRef) afterwards,
    and a second note written now would be concatenated with it."""
    from gitmodel.git import run_git

    git_dir = run_git(["rev-parse", "--absolute-git-dir"], cwd=root, check=False).stdout.strip()
    if git_dir and any((Path(git_dir) / d).exists() for d in ("rebase-merge", "rebase-apply")):
        return True
    action = run_git(["reflog", "-1", "--format=%gs", "HEAD"], cwd=root, check=False).stdout
    return action.startswith("commit (amend)")


# -- post-checkout / post-merge --------------------------------------------------------------


def materialise(args: Sequence[str], stdin: IO[str]) -> int:
    """Write the weights of the new HEAD whose objects are cached; never fail the checkout."""
    try:
        from gitmodel.repo import Repo

        repo = Repo(Path.cwd())
        if repo.bare or not repo.dvc_dir.is_dir():
            return 0
        result = repo.checkout(missing_ok=True)
    except GitModelError as exc:
        _say(f"gitmodel: weights not updated: {exc.message}")
        return 0
    except Exception as exc:  # a checkout must never fail because of us
        _say(f"gitmodel: weights not updated ({type(exc).__name__}: {exc})")
        return 0
    if result.written:
        _say(f"gitmodel: materialised {len(result.written)} weight file(s)")
    if result.removed:
        _say(f"gitmodel: removed {len(result.removed)} file(s) their directory's version lacks")
    if result.skipped_missing:
        names = ", ".join(result.skipped_missing[:3])
        more = (
            f" and {len(result.skipped_missing) - 3} more"
            if len(result.skipped_missing) > 3
            else ""
        )
        _say(
            f"gitmodel: {len(result.skipped_missing)} weight file(s) are not in the cache: "
            f"{names}{more} (git model pull fetches them)"
        )
    return 0


def _merge_fetched_notes(root: Path) -> None:
    """Merge the notes a `git pull` fetched (see gitmodel.notes_sync); never fails the pull."""
    try:
        from gitmodel import notes_sync
        from gitmodel.git import run_git

        git_dir = run_git(["rev-parse", "--path-format=absolute", "--git-dir"], cwd=root)
        for outcome in notes_sync.merge_fetched(git_dir.stdout.strip(), root):
            if outcome.conflicts:
                _say(
                    f"gitmodel: merged fetched notes; {len(outcome.conflicts)} conflicting "
                    "value(s) resolved (the other kept in the note's history)"
                )
    except Exception as exc:  # a pull must never fail because of notes
        _say(f"gitmodel: fetched notes not merged ({type(exc).__name__}: {exc})")


def post_merge(args: Sequence[str], stdin: IO[str]) -> int:
    """After `git pull` (or a merge): merge the notes it fetched, then write the weights."""
    _merge_fetched_notes(Path.cwd())
    return materialise(args, stdin)


# -- entry point ---------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[Sequence[str], IO[str]], int]] = {
    "reference-transaction": reference_transaction,
    "pre-push": pre_push,
    "pre-receive": pre_receive,
    "post-commit": post_commit,
    "post-rewrite": post_rewrite,
    "post-checkout": materialise,
    "post-merge": post_merge,
    # Entry points for the pre-commit framework (.pre-commit-hooks.yaml).
    "framework-pre-push": framework_pre_push,
    "framework-checkout": materialise,
}

# Doors that refuse: an unexpected error there fails closed (exit 3); elsewhere it is
# reported and the git operation goes on.
_GATING = {"reference-transaction", "pre-push", "pre-receive", "framework-pre-push"}


def main(argv: Sequence[str] | None = None) -> int:
    """`<python> -c ... HOOK ARGS` (from a shim) or `git model hook HOOK ARGS`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in HANDLERS:
        _say(f"gitmodel: unknown hook {argv[0] if argv else ''!r}; known: {', '.join(HANDLERS)}")
        return 2
    name = argv[0]
    try:
        return HANDLERS[name](argv[1:], sys.stdin)
    except GitModelError as exc:
        _say(f"gitmodel: {name}: {exc.message}")
        return exc.exit_code if name in _GATING else 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("GITMODEL_DEBUG"):
            raise
        _say(
            f"gitmodel: {name} hook: internal error: {type(exc).__name__}: {exc} "
            "(GITMODEL_DEBUG=1 for a traceback)"
        )
        return 3 if name in _GATING else 0
