"""DVC remotes: which ones a repository has (read with DVC's own config), adding and
changing them, and the small per-remote record of objects known to be there.

The remote is whatever DVC's config names (`dvc remote add`, or `git model remote add`),
at every level DVC reads (system, global, repo, local). Moving objects to and from a
remote is gitmodel.transfer; push/fetch/pull of weights and notes is gitmodel.sync.

The record (`.dvc/tmp/gitmodel/remotes/<key>.present`) lets a push skip asking the remote
about each object it pushed before; it is trusted only while the remote's generation (which
a remote gc changes) is the one it was made under.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError
from gitmodel.git import run_git

if TYPE_CHECKING:
    from gitmodel.workspace_view import SyncWorkspace

RECORD_DIR = "gitmodel/remotes"


class RemoteError(GitModelError):
    """A DVC remote cannot be used: unreachable, misconfigured, or missing objects."""


# -- DVC remote config ----------------------------------------------------------------------


@dataclass
class RemoteInfo:
    name: str
    url: str
    default: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "default": self.default}


def _cheap_config(repo: SyncWorkspace) -> dict[str, dict[str, str]]:
    """DVC's merged config, every level, read by the one reader (gitmodel.config) that the
    cache settings use too: no dvc import, so hook paths stay fast."""
    from gitmodel.config import read_dvc_config

    return read_dvc_config(repo.dvc_dir).sections


def default_remote_name(repo: SyncWorkspace) -> str | None:
    """The default DVC remote's name, read cheaply; None when none is configured."""
    return _cheap_config(repo).get("core", {}).get("remote") or None


def _cheap_remote_url(repo: SyncWorkspace, name: str) -> str | None:
    return _cheap_config(repo).get(f'remote "{name}"', {}).get("url")


def dvc_config(repo: SyncWorkspace) -> Any:
    from dvc.config import Config, ConfigError

    try:
        return Config(dvc_dir=str(repo.dvc_dir))
    except ConfigError as exc:
        raise RemoteError(f"DVC config: {str(exc).splitlines()[0]}") from None


def list_remotes(repo: SyncWorkspace) -> list[RemoteInfo]:
    conf = dvc_config(repo)
    default = conf["core"].get("remote")
    return [
        RemoteInfo(name, str(section.get("url", "")), name == default)
        for name, section in sorted(conf["remote"].items())
    ]


def add_remote(
    repo: SyncWorkspace, name: str, url: str, default: bool = False, cwd: Path | None = None
) -> RemoteInfo:
    """Add a DVC remote to `.dvc/config` (what `dvc remote add [-d]` does)."""
    import re

    from dvc.config import ConfigError

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise GitModelError(f"bad remote name {name!r} (letters, digits, . _ -)")
    if not url:
        raise GitModelError("empty remote URL")
    if "://" not in url and not re.match(r"^[A-Za-z0-9.-]+:", url) or url.startswith("file://"):
        # A local directory: absolute, so every clone and subdirectory resolves it alike.
        local = url.removeprefix("file://")
        url = os.path.abspath(os.path.join(cwd or Path.cwd(), os.path.expanduser(local)))
    if not repo.dvc_dir.is_dir():
        repo.init()
    conf = dvc_config(repo)
    try:
        with conf.edit("repo") as c:
            if name in c["remote"]:
                raise GitModelError(f"DVC remote {name!r} already exists")
            c["remote"][name] = {"url": url}
            # The first remote becomes the default: the pre-push upload needs one.
            default = default or not c["core"].get("remote")
            if default:
                c["core"]["remote"] = name
    except ConfigError as exc:
        raise GitModelError(f"cannot add remote: {str(exc).splitlines()[0]}") from None
    from gitmodel.notes_sync import configure_fetch

    configure_fetch(repo.root)
    # Staged, so the next commit shares the remote with every clone (`dvc pull` included).
    run_git(["add", "--", ".dvc/config"], cwd=repo.root, check=False, retry_lock=True)
    return RemoteInfo(name, url, default)


def modify_remote(
    repo: SyncWorkspace, name: str, option: str, value: str | None, local: bool = False
) -> None:
    """Set (or with value None, unset) one option of a DVC remote, validated by DVC's schema.

    `local` writes `.dvc/config.local` (git-ignored), the place for credentials.
    """
    from dvc.config import ConfigError

    conf = dvc_config(repo)
    if name not in conf["remote"]:
        raise GitModelError(f"no DVC remote named {name!r} (see `git model remote list`)")
    try:
        with conf.edit("local" if local else "repo") as c:
            section = c["remote"].setdefault(name, {})
            if value is None:
                section.pop(option, None)
            else:
                section[option] = value
    except ConfigError as exc:
        raise GitModelError(f"cannot set {option}: {str(exc).splitlines()[0]}") from None
    forget_record(repo, name)  # the remote may be another place now


# -- the record of objects known to be on a remote ------------------------------------------


def record_path(repo: SyncWorkspace, name: str) -> Path | None:
    url = _cheap_remote_url(repo, name)
    if url is None:
        return None
    key = hashlib.sha1(f"{name}\0{url}".encode()).hexdigest()[:16]
    return repo.dvc_dir / "tmp" / RECORD_DIR / f"{key}.present"


# A remote gc (gitmodel.dedup.remote_gc) writes a new token to GENERATION on the remote
# before it removes anything. The record starts with the token it was made under; a record
# whose token is not the remote's is stale (something it names may be gone) and is not
# trusted, so no door publishes a pointer on the strength of what the remote once held.
GENERATION = "gitmodel/generation"
_HEADER = "generation "


def read_record(path: Path | None) -> tuple[str, set[str]]:
    """(the remote generation it was made under, "" if none; the oids it names)."""
    if path is None:
        return "", set()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return "", set()
    generation = ""
    if text.startswith(_HEADER):
        first, _, text = text.partition("\n")
        generation = first[len(_HEADER) :].strip()
    return generation, set(text.split())


def append_record(path: Path | None, oids: Iterable[str], generation: str | None = None) -> None:
    """Add oids to the record; with `generation` (the remote's, read before the oids were
    checked there) a record made under another one is replaced rather than extended."""
    lines = "".join(f"{o}\n" for o in sorted(oids))
    if path is None:
        return
    if generation is not None and read_record(path)[0] != generation:
        from gitmodel.lockfile import write_file

        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"{_HEADER}{generation}\n" if generation else ""
        write_file(path, (header + lines).encode())
        return
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # One O_APPEND write per call: concurrent pushes interleave whole lines, never bytes.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def forget_record(repo: SyncWorkspace, name: str) -> None:
    path = record_path(repo, name)
    if path is not None:
        path.unlink(missing_ok=True)
