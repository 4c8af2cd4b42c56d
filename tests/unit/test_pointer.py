"""gitmodel.pointer: `.dvc` files in DVC 3's format; a pointer from a clone is hostile."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitmodel import pointer
from gitmodel.errors import EXIT_USAGE
from gitmodel.pointer import (
    MAX_POINTER_BYTES,
    RAW_POINTER_LOG,
    Out,
    PointerError,
    TrackedOut,
    filter_outs,
    outs_of_pointer,
    parse_pointer,
    pointer_blobs_in_raw_log,
    pointer_blobs_in_tree,
    pointer_file_for,
    read_pointer,
    render_pointer,
    weight_entry,
    write_pointer,
)

from .conftest import git

MD5 = "6137cde4893c59f76f005a8123d8e8e6"
# What `dvc add model.pt` (DVC 3) writes, byte for byte.
DVC_FILE = f"outs:\n- md5: {MD5}\n  size: 14445097\n  hash: md5\n  path: model.pt\n"
DVC_DIR = (
    "outs:\n- md5: 3c3e5b0e8e4c4b7a9d2f1a6b5c4d3e2f.dir\n  size: 2048\n  nfiles: 3\n"
    "  hash: md5\n  path: data\n"
)


def _parse(text: str | bytes, name: str = "model.pt.dvc", root: Path = Path("/r")) -> list[Out]:
    return parse_pointer(root / name, text, root).outs


def test_a_file_pointer_as_dvc_writes_it() -> None:
    assert _parse(DVC_FILE) == [Out("model.pt", MD5, 14445097)]


def test_a_directory_pointer() -> None:
    (out,) = _parse(DVC_DIR, "data.dvc")
    assert out.is_dir and out.nfiles == 3 and out.size == 2048


def test_render_is_byte_identical_to_dvc() -> None:
    assert render_pointer(Out("model.pt", MD5, 14445097)).decode() == DVC_FILE


@pytest.mark.parametrize(
    "path",
    [
        "model.pt",
        "yes",  # YAML 1.1 reads yes/on/null as a bool or None; DVC (1.2) a string
        "on",
        "null",
        "123",  # an int to YAML
        "1e5",
        "mod\u00e8le.pt",
        "with space.bin",
        "a: b",
        "#hash",
        "- dash",
        "'quoted'",
        "dir/sub/model.pt",
    ],
)
def test_render_then_parse_round_trips(path: str) -> None:
    out = Out(path, MD5, 7)
    assert _parse(render_pointer(out)) == [out]


def test_an_md5_of_digits_stays_a_string() -> None:
    # YAML reads 32 unquoted digits as an int: the render must quote them.
    out = Out("m.pt", "1" * 32, 7)
    text = render_pointer(out)
    assert b"'" + b"1" * 32 + b"'" in text or b'"' + b"1" * 32 + b'"' in text
    assert _parse(text) == [out]


def test_write_pointer_keeps_what_dvc_and_the_user_added(tmp_path: Path) -> None:
    file = tmp_path / "model.pt.dvc"
    file.write_text(
        "# a comment is DVC's business\nmd5: oldstagehash\nfrozen: true\n"
        f"outs:\n- md5: {MD5}\n  size: 1\n  hash: md5\n  path: model.pt\n"
        "  cache: true\n  remote: backup\n  desc: the model\n"
    )
    new = "0" * 31 + "a"
    write_pointer(file, Out("model.pt", new, 2))
    (out,) = read_pointer(file, tmp_path).outs
    assert out == Out("model.pt", new, 2)
    raw = read_pointer(file, tmp_path).raw
    assert raw["frozen"] is True and raw["md5"] == "oldstagehash"
    assert raw["outs"][0]["remote"] == "backup" and raw["outs"][0]["desc"] == "the model"


def test_write_pointer_replaces_a_broken_one(tmp_path: Path) -> None:
    file = tmp_path / "model.pt.dvc"
    file.write_text("outs: [\n")
    write_pointer(file, Out("model.pt", MD5, 14445097))
    assert file.read_text() == DVC_FILE


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("outs: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "no 'outs' list"),
        ("outs: []\n", "no 'outs' list"),
        ("outs: {}\n", "no 'outs' list"),
        ("outs:\n- just-a-string\n", "malformed 'outs' entry"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n", "an output has no path"),
        ("outs:\n- md5: nothex\n  hash: md5\n  path: m.pt\n", "has no valid md5"),
        (f"outs:\n- md5: {MD5}\n  path: m.pt\n", "DVC 2 hash"),
        (f"outs:\n- md5: {MD5}\n  hash: md5-dos2unix\n  path: m.pt\n", "DVC 2 hash"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: /etc/passwd\n", "leaves the repository"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: ../up.pt\n", "leaves the repository"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: a\\..\\..\\up\n", "leaves the repository"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: .git/hooks/pre-commit\n", "git's own"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: .GIT/config\n", "git's own"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: .dvc/config\n", "inside .dvc"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: other.dvc\n", "is a pointer file"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: m.pt\n  size: -1\n", "absurd size"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: m.pt\n  size: true\n", "absurd size"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: m.pt\n  size: '5'\n", "absurd size"),
        (f"outs:\n- md5: {MD5}\n  hash: md5\n  path: m.pt\n  size: {2**61}\n", "absurd size"),
        ("outs:\n- &a [*a]\n", "malformed 'outs' entry"),  # a self-referencing alias
    ],
)
def test_hostile_pointers_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(PointerError) as caught:
        _parse(text)
    message = caught.value.message
    assert message.startswith("model.pt.dvc")  # names the pointer
    assert fragment in message
    assert "\n" not in message
    assert caught.value.exit_code == EXIT_USAGE


def test_a_nested_pointer_cannot_climb_out_through_its_directory() -> None:
    # sub/x.dvc with path "../.git/config" lands in the root's .git
    text = f"outs:\n- md5: {MD5}\n  hash: md5\n  path: ../.git/config\n"
    with pytest.raises(PointerError):
        _parse(text, "sub/x.dvc")


def test_read_pointer_refuses_a_link_a_huge_file_and_a_missing_one(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(DVC_FILE)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "linked.dvc").symlink_to(secret)
    with pytest.raises(PointerError, match="symbolic link"):
        read_pointer(root / "linked.dvc", root)
    (root / "huge.dvc").write_bytes(b"outs:\n" + b"#" * MAX_POINTER_BYTES)
    with pytest.raises(PointerError, match="larger than"):
        read_pointer(root / "huge.dvc", root)
    with pytest.raises(PointerError, match="absent.dvc: no such pointer"):
        read_pointer(root / "absent.dvc", root)
    (root / "dir.dvc").mkdir()
    with pytest.raises(PointerError, match="not a regular file"):
        read_pointer(root / "dir.dvc", root)


def test_tracked_outputs_are_repository_relative() -> None:
    root = Path("/r")
    text = f"outs:\n- md5: {MD5}\n  size: 1\n  hash: md5\n  path: weights.bin\n"
    pointer = parse_pointer(root / "models" / "v1" / "weights.bin.dvc", text, root)
    (tracked,) = outs_of_pointer(pointer, "models/v1/weights.bin.dvc")
    assert tracked == TrackedOut(
        "models/v1/weights.bin", "models/v1/weights.bin.dvc", pointer.outs[0]
    )
    assert weight_entry(tracked.out) == {"md5": MD5, "size": 1}
    assert weight_entry(Out("d", "a" * 32 + ".dir", 9, 3)) == {
        "md5": "a" * 32 + ".dir",
        "size": 9,
        "nfiles": 3,
    }


def _tracked(*paths: str) -> list[TrackedOut]:
    return [TrackedOut(p, p + ".dvc", Out(p.rsplit("/", 1)[-1], MD5, 1)) for p in paths]


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        ([], ["model.pt", "models/a.pt", "models2/b.pt", "data"]),  # no paths: everything
        (["."], ["model.pt", "models/a.pt", "models2/b.pt", "data"]),
        (["model.pt"], ["model.pt"]),
        (["model.pt.dvc"], ["model.pt"]),  # by its pointer
        (["models"], ["models/a.pt"]),  # a directory above it; not models2/
        (["models/"], ["models/a.pt"]),
        (["./models/../models/a.pt"], ["models/a.pt"]),
        (["data/train/x.csv"], ["data"]),  # a file inside a tracked directory
        (["model"], []),  # a prefix of a name is not a path above it
        (["model.pt", "data"], ["model.pt", "data"]),
    ],
)
def test_filter_outs(wanted: list[str], kept: list[str]) -> None:
    outs = _tracked("model.pt", "models/a.pt", "models2/b.pt", "data")
    assert [t.path for t in filter_outs(outs, wanted)] == kept


def test_pointer_file_for() -> None:
    assert pointer_file_for(Path("/r/models/m.pt")) == Path("/r/models/m.pt.dvc")


def _pointer(md5_char: str, path: str) -> str:
    return f"outs:\n- md5: {md5_char * 31}a\n  size: 1\n  hash: md5\n  path: {path}\n"


def test_pointer_blobs_in_a_tree(git_repo: Path) -> None:
    weird = "we ird\nname.pt"
    (git_repo / "m.pt.dvc").write_text(_pointer("1", "m.pt"))
    (git_repo / "sub").mkdir()
    (git_repo / "sub" / f"{weird}.dvc").write_text(_pointer("2", weird))
    (git_repo / "notes.dvc.txt").write_text("not a pointer")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "pointers")
    listing = git(git_repo, "ls-tree", "-r", "-z", "HEAD")
    found = dict(pointer_blobs_in_tree(listing))
    assert set(found) == {"m.pt.dvc", f"sub/{weird}.dvc"}
    assert found["m.pt.dvc"] == git(git_repo, "rev-parse", "HEAD:m.pt.dvc").strip()


def test_pointer_blobs_in_a_raw_log(git_repo: Path) -> None:
    (git_repo / "a.dvc").write_text(_pointer("1", "a"))
    (git_repo / "b.dvc").write_text(_pointer("2", "b"))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "add")
    first = {
        "a.dvc": git(git_repo, "rev-parse", "HEAD:a.dvc").strip(),
        "b.dvc": git(git_repo, "rev-parse", "HEAD:b.dvc").strip(),
    }
    (git_repo / "a.dvc").write_text(_pointer("3", "a"))
    git(git_repo, "rm", "-q", "b.dvc")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "change a, delete b")
    changed = git(git_repo, "rev-parse", "HEAD:a.dvc").strip()
    log = git(git_repo, *RAW_POINTER_LOG, "HEAD")
    found = pointer_blobs_in_raw_log(log)
    # every version a commit added, none for the deletion
    assert sorted(found) == sorted([("a.dvc", changed), *first.items()])


def test_pointer_blobs_on_both_sides_of_a_merge(git_repo: Path) -> None:
    git(git_repo, "checkout", "-q", "-b", "side")
    (git_repo / "side.dvc").write_text(_pointer("4", "side"))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "side")
    git(git_repo, "checkout", "-q", "main")
    (git_repo / "main.dvc").write_text(_pointer("5", "main"))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "main")
    git(git_repo, "merge", "-q", "--no-edit", "side")
    merge_only = git(git_repo, *RAW_POINTER_LOG, "-1", "HEAD")
    # the merge brings side.dvc to main's line and main.dvc to side's: both are listed
    assert {p for p, _ in pointer_blobs_in_raw_log(merge_only)} == {"side.dvc", "main.dvc"}


# -- the hand-written fast path for canonical pointers agrees with YAML ----------------------

CANONICAL = (
    "outs:\n- md5: 6137cde4893c59f76f005a8123d8e8e6\n  size: 14445097\n"
    "  hash: md5\n  path: model.pt\n"
)


def test_canonical_pointer_round_trips_without_yaml() -> None:
    data = pointer._load_plain(CANONICAL)
    assert data == {
        "outs": [
            {
                "md5": "6137cde4893c59f76f005a8123d8e8e6",
                "size": 14445097,
                "hash": "md5",
                "path": "model.pt",
            }
        ]
    }
    assert data is not None
    assert pointer._dump_plain(data) == CANONICAL


@pytest.mark.parametrize(
    "text",
    [
        CANONICAL.replace("model.pt", "yes"),  # YAML 1.1 reads it as a boolean
        CANONICAL.replace("model.pt", "2024.5"),  # a float
        CANONICAL.replace("model.pt", "'model.pt'"),  # quoted
        CANONICAL.replace("model.pt", "model.pt  # comment"),
        CANONICAL.replace("6137cde4893c59f76f005a8123d8e8e6", "12345678901234567890123456789012"),
        CANONICAL + "frozen: true\n",
        CANONICAL.replace("\n", "\r\n"),
        CANONICAL.rstrip("\n"),
        CANONICAL.replace("  size", "  size: 1\n  size"),  # a duplicate key
    ],
)
def test_anything_unusual_is_left_to_yaml(text: str) -> None:
    assert pointer._load_plain(text) is None


def test_fast_path_agrees_with_yaml_on_generated_pointers() -> None:
    yaml = pytest.importorskip("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    values = [
        "model.pt", "a/b.bin", "yes", "No", "ON", "null", "~", "1e3", "1.0e+3", "0x1f",
        "0b101", "123", "0123", ".inf", "-x", "_a", "a@b", "a:b", "x#y", "2024-01-01", "y",
        "a/1x", "6137cde4893c59f76f005a8123d8e8e6", "6137cde4893c59f76f005a8123d8e8e6.dir",
        "0b101010101010101010101010101010", "0", "18446744073709551616", "1_000", "-1",
        "md5", "md5-dos2unix", "",
    ]  # fmt: skip
    keys = ["md5", "size", "nfiles", "hash", "path", "other"]
    rnd = random.Random(6)
    fast = 0
    for _ in range(3000):
        lines = ["outs:"]
        for _out in range(rnd.randint(1, 2)):
            lead = "- "
            for key in rnd.sample(keys, rnd.randint(1, 5)):
                lines.append(f"{lead}{key}: {rnd.choice(values)}")
                lead = "  "
        text = "\n".join(lines) + "\n"
        plain = pointer._load_plain(text)
        try:
            reference = yaml.load(text, Loader=loader)
        except yaml.YAMLError:
            reference = None
        if plain is not None:
            fast += 1
            assert plain == reference, text
            for mine, theirs in zip(plain["outs"], reference["outs"], strict=True):
                assert [type(v) for v in mine.values()] == [type(v) for v in theirs.values()]
        if isinstance(reference, dict):
            dumped = pointer._dump_plain(reference)
            if dumped is not None:
                assert dumped == yaml.safe_dump(
                    reference, sort_keys=False, default_flow_style=False
                )
    assert fast > 0
