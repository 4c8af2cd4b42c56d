"""What the services and the remote transfer see of a repository (gitmodel.repo.Repo).

Protocols, so that attachments, evaluate, gate and remote name the few attributes they
use instead of importing the Repo facade that imports them: dependencies point one way,
down the layers (see the design notes on layers). gitmodel.repo.Repo satisfies them all.
Only the type checker reads this module; its own imports point down (config, notes,
pointer, store, errors).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Protocol

    from gitmodel.config import Config
    from gitmodel.errors import GitModelError
    from gitmodel.notes import Notes
    from gitmodel.paths import WorkTree
    from gitmodel.pointer import TrackedOut
    from gitmodel.store import Reporter, Store

    class Workspace(Protocol):
        """A work tree with its git dir, weights cache, metrics notes and policy."""

        @property
        def root(self) -> Path: ...

        @property
        def git_dir(self) -> Path: ...

        @property
        def store(self) -> Store: ...

        @property
        def notes(self) -> Notes: ...

        @property
        def config(self) -> Config: ...

        def rev_parse(self, rev: str) -> str: ...

        def fetch_missing(self, outs: Sequence[TrackedOut]) -> bool:
            """Fetch cache-missing objects from the default DVC remote; False if none."""
            ...

    class SyncWorkspace(Workspace, Protocol):
        """What the remote transfer also needs: DVC's directory and the pointers of trees."""

        @property
        def dvc_dir(self) -> Path: ...

        def head(self) -> str | None: ...

        def init(self) -> list[str]: ...

        def tracked(
            self, paths: Sequence[str] = (), errors: list[GitModelError] | None = None
        ) -> list[TrackedOut]: ...

        def pointers_at(self, rev: str, paths: Sequence[str] = ()) -> list[TrackedOut]: ...

        def outs_of_blobs(
            self, blobs: Sequence[tuple[str, str]], skip_unreadable: bool = False
        ) -> list[TrackedOut]: ...

        def checkout(self, *, force: bool = False, reporter: Reporter | None = None) -> object: ...

    class Journal(Protocol):
        """The pending-note journal (gitmodel.commit.Commits), as fsck reads it."""

        def pending_note_target(self) -> str | None: ...

    class MaintainedRepo(SyncWorkspace, Protocol):
        """What fsck and gc read: they check and collect across every part a repository
        keeps (objects, pointers of every worktree and ref, notes, the commit journal,
        hooks), so they see the whole of it, yet through this view, not the facade."""

        @property
        def bare(self) -> bool: ...

        @property
        def common_dir(self) -> Path: ...

        @property
        def hooks_path(self) -> Path | None: ...

        @property
        def worktree(self) -> WorkTree: ...

        @property
        def commits(self) -> Journal: ...

        def complete_pending_note(self) -> str | None: ...

        def git(self, *args: str, **kw: object) -> str: ...
