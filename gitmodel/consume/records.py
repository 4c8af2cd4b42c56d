"""What `git model get` and `gitmodel.open` report, and how they fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError, Refused

if TYPE_CHECKING:
    pass

MAX_META_BYTES = 1 << 20  # a pointer, manifest or DVC config larger than this is not one
NO_HOOKS = ["-c", "core.hooksPath=/dev/null"]


class GetError(GitModelError):
    """A revision, path or remote that cannot be read (exit 2)."""


class CorruptDownload(Refused):
    """Bytes that do not hash to what the pointer names (exit 1): never returned."""


@dataclass
class Resolved:
    """What REV turned out to mean."""

    rev: str
    commit: str
    kind: str  # "stage", "tag", "branch", "commit", "HEAD"
    version: str | None = None  # the release at the commit, when there is one
    detail: str = ""  # e.g. "clf#prod#3 assigned it"

    def to_json(self) -> dict[str, Any]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "kind": self.kind,
            "version": self.version,
            "detail": self.detail,
        }


@dataclass
class GetResult:
    path: str
    output: str
    source: str  # the repository URL, or "." for the enclosing one
    resolved: Resolved
    kind: str  # "file", "directory", "git" (a plain file git tracks)
    files: int = 0
    bytes: int = 0
    md5: str | None = None
    remote: str | None = None
    remote_config: str = "revision"  # whose .dvc/config named the remote (or "HEAD (...)")
    from_cache: int = 0  # files taken from the local cache (verified) instead of the remote

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "output": self.output,
            "repo": self.source,
            "rev": self.resolved.to_json(),
            "kind": self.kind,
            "files": self.files,
            "bytes": self.bytes,
            "md5": self.md5,
            "remote": self.remote,
            "remote_config": self.remote_config,
            "from_cache": self.from_cache,
        }
