"""`.dvc` pointer files: read, write and validate them in DVC 3's format.

A pointer `PATH.dvc` sits beside the weights it names; its `path` is relative to the
pointer's directory and must stay inside the repository (a pushed repository is untrusted).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitmodel.errors import GitModelError
from gitmodel.lockfile import update_file

POINTER_SUFFIX = ".dvc"
MAX_SIZE = 1 << 60  # an "absurd size" bound: no real file is an exabyte


class PointerError(GitModelError):
    pass


@dataclass(frozen=True)
class Out:
    """One output of a pointer: the weights at `path` (a file, or a directory if `.dir`)."""

    path: str  # relative to the pointer's directory, "/"-separated
    md5: str
    size: int | None = None
    nfiles: int | None = None

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass
class Pointer:
    file: Path  # absolute path of the .dvc file
    outs: list[Out]
    raw: dict[str, Any] = field(default_factory=dict)

    def out_paths(self) -> list[Path]:
        return [self.file.parent / o.path for o in self.outs]


def _yaml() -> Any:
    import yaml

    return yaml


def _safe_loader() -> Any:
    yaml = _yaml()
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_inside(path: Path, root: Path, what: str) -> None:
    """Refuse a path that, after resolving `..` and symlinks, is not under root."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise PointerError(f"{what}: {path} is outside the repository")


def parse_pointer(file: Path, text: bytes | str, root: Path) -> Pointer:
    """Parse and validate pointer text; errors name the pointer and are one line."""
    yaml = _yaml()
    name = os.path.relpath(file, root)
    try:
        data = yaml.load(text, Loader=_safe_loader())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise PointerError(f"{name}: not valid YAML ({first})") from None
    if not isinstance(data, dict) or not isinstance(data.get("outs"), list) or not data["outs"]:
        raise PointerError(f"{name}: not a DVC pointer (no 'outs' list)")
    outs = []
    for item in data["outs"]:
        if not isinstance(item, dict):
            raise PointerError(f"{name}: malformed 'outs' entry")
        path, md5 = item.get("path"), item.get("md5")
        if not isinstance(path, str) or not path:
            raise PointerError(f"{name}: an output has no path")
        if not isinstance(md5, str) or len(md5.removesuffix(".dir")) != 32 or not all(
            c in "0123456789abcdef" for c in md5.removesuffix(".dir")
        ):
            raise PointerError(f"{name}: output {path!r} has no valid md5")
        if item.get("hash", "md5") != "md5" or "hash" not in item:
            raise PointerError(
                f"{name}: output {path!r} uses a DVC 2 hash; run `dvc cache migrate` first"
            )
        parts = path.replace("\\", "/").split("/")
        if os.path.isabs(path) or path.startswith("/") or ".." in parts:
            raise PointerError(f"{name}: output path {path!r} leaves the repository")
        check_inside(file.parent / path, root, name)
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE):
            raise PointerError(f"{name}: output {path!r} has an absurd size {size!r}")
        nfiles = item.get("nfiles")
        outs.append(Out(path, md5, size, nfiles if isinstance(nfiles, int) else None))
    return Pointer(file, outs, data)


def read_pointer(file: Path, root: Path) -> Pointer:
    try:
        text = file.read_bytes()
    except FileNotFoundError:
        raise PointerError(f"{os.path.relpath(file, root)}: no such pointer") from None
    except OSError as exc:
        raise PointerError(f"{os.path.relpath(file, root)}: {exc.strerror}") from None
    return parse_pointer(file, text, root)


def pointer_file_for(path: Path) -> Path:
    return path.with_name(path.name + POINTER_SUFFIX)


def render_pointer(out: Out, previous: dict[str, Any] | None = None) -> bytes:
    """DVC 3 pointer YAML for one output, keeping other keys of a previous pointer."""
    yaml = _yaml()
    entry: dict[str, Any] = {"md5": out.md5, "size": out.size}
    if out.nfiles is not None:
        entry["nfiles"] = out.nfiles
    entry["hash"] = "md5"
    entry["path"] = out.path
    data: dict[str, Any] = {}
    if previous:
        data.update(previous)
        old = [o for o in previous.get("outs", []) if isinstance(o, dict)]
        kept = {k: v for o in old if o.get("path") == out.path for k, v in o.items()
                if k not in ("md5", "size", "nfiles", "hash", "path")}
        entry.update(kept)
    data["outs"] = [entry]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).encode()


def write_pointer(file: Path, out: Out) -> None:
    """Write (or update) the pointer file atomically under the lock-file rule."""

    def change(old: bytes | None) -> bytes:
        previous = None
        if old:
            try:
                loaded = _yaml().load(old, Loader=_safe_loader())
                previous = loaded if isinstance(loaded, dict) else None
            except Exception:  # a broken old pointer is simply replaced
                previous = None
        return render_pointer(out, previous)

    update_file(file, change)
