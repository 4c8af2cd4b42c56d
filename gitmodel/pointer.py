"""`.dvc` pointer files: read, write and validate them in DVC 3's format.

A pointer `PATH.dvc` sits beside the weights it names; its `path` is relative to the
pointer's directory and must stay inside the repository (a pushed repository is untrusted).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.lockfile import update_file
from gitmodel.paths import UnsafePath, check_relpath, read_bytes
from gitmodel.record import FrozenRecord, Record
from gitmodel.store import is_oid

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

POINTER_SUFFIX = ".dvc"
MAX_SIZE = 1 << 60  # an "absurd size" bound: no real file is an exabyte
MAX_POINTER_BYTES = 1 << 20  # DVC writes a few hundred bytes; a megabyte is hostile


class PointerError(GitModelError):
    pass


class Out(FrozenRecord):
    """One output of a pointer: the weights at `path` (a file, or a directory if `.dir`)."""

    __slots__ = ("path", "md5", "size", "nfiles")

    def __init__(
        self, path: str, md5: str, size: int | None = None, nfiles: int | None = None
    ) -> None:
        # path: relative to the pointer's directory, "/"-separated
        self._set(path=path, md5=md5, size=size, nfiles=nfiles)

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        path: str
        md5: str
        size: int | None
        nfiles: int | None

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


class Pointer(Record):
    __slots__ = ("file", "outs", "raw")

    def __init__(self, file: Path, outs: list[Out], raw: dict[str, Any] | None = None) -> None:
        self.file = file  # absolute path of the .dvc file
        self.outs = outs
        self.raw: dict[str, Any] = raw if raw is not None else {}


# Pointers that are not in the plain shape below are read and written with ruamel.yaml,
# configured as DVC configures it (dvc/utils/serialize/_yaml.py): YAML 1.2, so a file
# named `yes` or `on` is the string DVC wrote (PyYAML, YAML 1.1, reads True), and the
# bytes match `dvc add`'s for any name (non-ASCII in plain UTF-8, DVC's quoting).
def _load_yaml(text: bytes | str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)


def _dump_yaml(data: Any) -> bytes:
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue().encode("utf-8")


def _yaml_errors() -> tuple[type[Exception], ...]:
    from ruamel.yaml import YAMLError

    return (YAMLError, ValueError, RecursionError)


# Pointers in the exact shape DVC 3 and render_pointer write are read and written without
# PyYAML: importing it costs more than the rest of `git model status`. Only lines whose
# YAML meaning is unambiguous take this path (plain scalars that YAML 1.1 resolves to the
# same str or int); anything else, however valid, goes to the real parser.
_PLAIN_KEYS = frozenset({"md5", "size", "nfiles", "hash", "path"})
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}(?:\.dir)?")
_PLAIN_INT = re.compile(r"0|[1-9][0-9]{0,17}")
# Starts with a letter or _, so no YAML int, float, timestamp or indicator; the words YAML
# 1.1 reads as booleans or null are excluded below.
_PLAIN_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.@-]*)*")
_YAML_WORDS = frozenset(
    "yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF"
    " null Null NULL".split()
)


def _plain_value(key: str, text: str) -> str | int | None:
    """text's value if YAML would read it exactly so, else None (then YAML decides)."""
    if key == "md5":
        # A hex string of only digits and "b" could be a YAML int; let YAML judge those.
        if _PLAIN_MD5.fullmatch(text) and any(c in "acdef" for c in text[:32]):
            return text
    elif key in ("size", "nfiles"):
        if _PLAIN_INT.fullmatch(text):
            return int(text)
    elif key == "hash":
        if text == "md5":
            return text
    elif _PLAIN_PATH.fullmatch(text) and text not in _YAML_WORDS:
        return text
    return None


def _load_plain(text: bytes | str) -> dict[str, Any] | None:
    """The pointer as YAML would load it, if it has the canonical shape; else None."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    lines = text.split("\n")
    if len(lines) < 3 or lines[0] != "outs:" or lines.pop() != "":
        return None
    outs: list[dict[str, Any]] = []
    for line in lines[1:]:
        if line.startswith("- "):
            outs.append({})
        elif not line.startswith("  ") or not outs:
            return None
        key, sep, raw = line[2:].partition(": ")
        value = _plain_value(key, raw) if sep and key in _PLAIN_KEYS else None
        if value is None or key in outs[-1]:
            return None
        outs[-1][key] = value
    return {"outs": outs}


def _dump_plain(data: dict[str, Any]) -> str | None:
    """data as DVC's YAML dump writes it, if it has the canonical shape."""
    if list(data) != ["outs"] or not isinstance(data["outs"], list):
        return None
    lines = ["outs:"]
    for entry in data["outs"]:
        if not isinstance(entry, dict) or not entry:
            return None
        lead = "- "
        for key, value in entry.items():
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return None
            text = str(value)
            if key not in _PLAIN_KEYS or _plain_value(key, text) != value:
                return None
            lines.append(f"{lead}{key}: {text}")
            lead = "  "
    return "\n".join(lines) + "\n"


def load_pointer_yaml(text: bytes | str) -> Any:
    """Parse pointer text; the canonical shape by hand, anything else as DVC reads it."""
    plain = _load_plain(text)
    if plain is not None:
        return plain
    return _load_yaml(text)


def check_inside(path: Path, root: Path, what: str) -> None:
    """Refuse a path that, after resolving `..` and symlinks, is not under root."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root + os.sep):
        # A user's own path is named once; a pointer names the path it points at.
        same = os.path.abspath(what) == os.path.abspath(path)
        raise PointerError(
            f"{what}: outside the repository"
            if same
            else f"{what}: {path} is outside the repository"
        )


def parse_pointer(file: Path, text: bytes | str, root: Path) -> Pointer:
    """Parse and validate pointer text; errors name the pointer and are one line."""
    name = os.path.relpath(file, root)
    data = _load_plain(text)
    if data is None:
        try:
            data = _load_yaml(text)
        except _yaml_errors() as exc:
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
        if not isinstance(md5, str) or not is_oid(md5):
            raise PointerError(f"{name}: output {path!r} has no valid md5")
        if item.get("hash", "md5") != "md5" or "hash" not in item:
            raise PointerError(
                f"{name}: output {path!r} uses a DVC 2 hash; run `dvc cache migrate` first"
            )
        parts = path.replace("\\", "/").split("/")
        if os.path.isabs(path) or path.startswith("/") or ".." in parts or "\0" in path:
            raise PointerError(f"{name}: output path {path!r} leaves the repository")
        base = os.path.dirname(name.replace(os.sep, "/"))
        try:
            # The text alone decides here (a commit's tree has no disk); WorkTree.path
            # checks the disk (symbolic links) where the weights are written or read.
            check_relpath(path, f"{name}: output")
            check_relpath(f"{base}/{path}" if base else path, f"{name}: output")
        except UnsafePath as exc:
            raise PointerError(exc.message) from None
        if parts[-1].endswith(POINTER_SUFFIX):
            raise PointerError(f"{name}: output path {path!r} is a pointer file")
        size = item.get("size")
        if size is not None and (
            not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE
        ):
            raise PointerError(f"{name}: output {path!r} has an absurd size {size!r}")
        nfiles = item.get("nfiles")
        outs.append(Out(path, md5, size, nfiles if isinstance(nfiles, int) else None))
    return Pointer(file, outs, data)


def read_pointer(file: Path, root: Path) -> Pointer:
    """Read and parse a pointer file; a pointer that is a symbolic link is never followed
    (committed as one, it could make gitmodel read and commit any file of the user's)."""
    name = os.path.relpath(file, root)
    try:
        text = read_bytes(file, name, limit=MAX_POINTER_BYTES)
    except UnsafePath as exc:
        raise PointerError(exc.message) from None
    except FileNotFoundError:
        raise PointerError(f"{name}: no such pointer") from None
    except OSError as exc:
        raise PointerError(f"{name}: {exc.strerror}") from None
    return parse_pointer(file, text, root)


def pointer_file_for(path: Path) -> Path:
    return path.with_name(path.name + POINTER_SUFFIX)


def render_pointer(out: Out, previous: dict[str, Any] | None = None) -> bytes:
    """DVC 3 pointer YAML for one output, keeping other keys of a previous pointer."""
    entry: dict[str, Any] = {"md5": out.md5, "size": out.size}
    if out.nfiles is not None:
        entry["nfiles"] = out.nfiles
    entry["hash"] = "md5"
    entry["path"] = out.path
    data: dict[str, Any] = {}
    if previous:
        data.update(previous)
        old = [o for o in previous.get("outs", []) if isinstance(o, dict)]
        kept = {
            k: v
            for o in old
            if o.get("path") == out.path
            for k, v in o.items()
            if k not in ("md5", "size", "nfiles", "hash", "path")
        }
        entry.update(kept)
    data["outs"] = [entry]
    plain = _dump_plain(data)
    if plain is not None:
        return plain.encode()
    return _dump_yaml(data)


def write_pointer(file: Path, out: Out) -> None:
    """Write (or update) the pointer file atomically under the lock-file rule."""

    def change(old: bytes | None) -> bytes:
        previous = None
        if old:
            try:
                loaded = load_pointer_yaml(old)
                previous = loaded if isinstance(loaded, dict) else None
            except Exception:  # a broken old pointer is simply replaced
                previous = None
        return render_pointer(out, previous)

    update_file(file, change)


class TrackedOut(Record):
    """One pointer output with its path relative to the repo root."""

    __slots__ = ("path", "pointer", "out")

    def __init__(self, path: str, pointer: str, out: Out) -> None:
        self.path = path
        self.pointer = pointer
        self.out = out


def outs_of_pointer(pointer: Pointer, pointer_rel: str) -> list[TrackedOut]:
    """The outputs of the pointer at repo-relative pointer_rel, with repo-relative paths."""
    base = os.path.dirname(pointer_rel)
    return [
        TrackedOut(os.path.normpath(os.path.join(base, o.path)), pointer_rel, o)
        for o in pointer.outs
    ]


def filter_outs(outs: list[TrackedOut], paths: Iterable[str]) -> list[TrackedOut]:
    """The outputs a user's paths name: the output itself, its pointer, a directory
    above it, or a file inside a tracked directory. No paths: all of them."""
    wanted = [os.path.normpath(p).rstrip("/") for p in paths]
    if not wanted:
        return outs
    keep = []
    for t in outs:
        for w in wanted:
            if (
                w == "."  # the repository root: everything
                or t.path == w
                or t.pointer == w
                or t.path.startswith(w + "/")
                or w.startswith(t.path + "/")
            ):
                keep.append(t)
                break
    return keep


def weight_entry(out: Out) -> dict[str, Any]:
    """An output as a note's `weights` entry and `diff` show it."""
    d: dict[str, Any] = {"md5": out.md5, "size": out.size}
    if out.nfiles is not None:
        d["nfiles"] = out.nfiles
    return d


def pointer_blobs_in_tree(listing: str) -> list[tuple[str, str]]:
    """(path, blob id) of every pointer in `git ls-tree -r -z` output."""
    blobs: list[tuple[str, str]] = []
    for entry in filter(None, listing.split("\0")):
        meta, _, rel = entry.partition("\t")
        parts = meta.split()
        if rel.endswith(POINTER_SUFFIX) and len(parts) == 3 and parts[1] == "blob":
            blobs.append((rel, parts[2]))
    return blobs


# The `git log` (revisions follow) whose output pointer_blobs_in_raw_log reads: each
# commit's changed blobs with full ids, merges against every parent, no rename pairing.
RAW_POINTER_LOG = (
    "log",
    "--raw",
    "-z",
    "--no-renames",
    "--no-abbrev",
    "-m",
    "--format=",
    "--full-history",
)


def pointer_blobs_in_raw_log(text: str) -> list[tuple[str, str]]:
    """(path, blob id) of every pointer a RAW_POINTER_LOG adds or changes."""
    blobs: list[tuple[str, str]] = []
    tokens = text.split("\0")
    i = 0
    while i < len(tokens):
        head = tokens[i].lstrip("\n")
        if head.startswith(":") and i + 1 < len(tokens):
            parts = head[1:].split()
            path = tokens[i + 1]
            i += 2
            # parts: old mode, new mode, old blob, new blob, status; a deletion's new blob is 0s
            if len(parts) >= 5 and set(parts[3]) != {"0"} and path.endswith(POINTER_SUFFIX):
                blobs.append((path, parts[3]))
            continue
        i += 1
    return blobs


def outs_of_blobs(
    root: Path, blobs: Sequence[tuple[str, str]], skip_unreadable: bool = False
) -> list[TrackedOut]:
    """Outputs of pointer blobs given as (repo-relative path, blob id), read in one batch
    (`git cat-file --batch`). skip_unreadable passes over a blob that is not a valid
    pointer instead of raising."""
    from gitmodel.git import read_blobs

    outs: list[TrackedOut] = []
    texts = read_blobs([blob for _, blob in blobs], root)
    for (rel, _blob), text in zip(blobs, texts, strict=True):
        try:
            pointer = parse_pointer(root / rel, text, root)
        except PointerError:
            if skip_unreadable:
                continue
            raise
        outs += outs_of_pointer(pointer, rel)
    return outs


def outs_in_commit(root: Path, sha: str, paths: Sequence[str] = ()) -> list[TrackedOut]:
    """Pointer outputs in the tree of commit sha (read from git objects, not the disk)."""
    from gitmodel.git import run_git

    listing = run_git(["ls-tree", "-r", "-z", sha], cwd=root).stdout
    return filter_outs(outs_of_blobs(root, pointer_blobs_in_tree(listing)), paths)
