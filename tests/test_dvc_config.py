"""DVC's config at every level (system, global, repo `.dvc/config`, local `.dvc/config.local`),
read by gitmodel where and in the order DVC reads it, by every command: the cache settings of
add/checkout and the remote settings of push/pull come from the one reader.

The levels are written by the real `dvc config`, so the files are where DVC puts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Shell, write_bytes


@pytest.fixture
def levels(sh: Shell, tmp_path: Path) -> dict[str, Path]:
    """This test's own system and global DVC config directories: DVC's variable for the
    system one, XDG's for the global one (DVC_GLOBAL_CONFIG_DIR unset, as on a user's
    machine, so gitmodel must find the directory platformdirs gives DVC)."""
    system = tmp_path / "etc-dvc"
    xdg = tmp_path / "xdg"
    sh.env["DVC_SYSTEM_CONFIG_DIR"] = str(system)
    sh.env.pop("DVC_GLOBAL_CONFIG_DIR", None)
    sh.env["XDG_CONFIG_HOME"] = str(xdg)
    return {"system": system / "config", "global": xdg / "dvc" / "config"}


def _project(sh: Shell, path: Path) -> Path:
    path.mkdir()
    sh.git("init", "-q", cwd=path)
    (path / "README.md").write_text("project\n")
    sh.git("add", "README.md", cwd=path)
    sh.git("commit", "-q", "-m", "initial", cwd=path)
    sh.gm("init", cwd=path)
    sh.git("commit", "-q", "-m", "gitmodel init", cwd=path)
    return path


def _is_link_into_cache(path: Path) -> bool:
    return path.is_symlink() and "/files/md5/" in os.readlink(path)


def test_a_global_cache_type_is_honoured_by_checkout_push_and_pull(
    sh: Shell, tmp_path: Path, levels: dict[str, Path]
) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    a = _project(sh, tmp_path / "a")
    sh.git("remote", "add", "origin", str(origin), cwd=a)
    # Nothing of DVC's config is in the repository: both settings are the user's own.
    sh.dvc("config", "--global", "cache.type", "symlink", cwd=a)
    sh.dvc("remote", "add", "--global", "-d", "shared", str(tmp_path / "storage"), cwd=a)
    assert levels["global"].is_file()
    assert sh.dvc("config", "cache.type", cwd=a).stdout.strip() == "symlink"

    write_bytes(a / "w.bin", 20_000)
    sh.gm("commit", "w.bin", "-m", "weights", "--metric", "acc=0.5", cwd=a)
    (a / "w.bin").unlink()
    sh.gm("checkout", cwd=a)
    assert _is_link_into_cache(a / "w.bin"), "checkout ignored the global cache.type"

    sh.gm("push", cwd=a)  # to the default remote of the global config
    assert [p for p in (tmp_path / "storage").rglob("*") if p.is_file()], "nothing uploaded"

    sh.git("push", "-q", "origin", "main", cwd=a)
    b = tmp_path / "b"
    sh.git("clone", "-q", str(origin), str(b), cwd=tmp_path)
    sh.gm("init", cwd=b)
    sh.gm("pull", cwd=b)
    assert _is_link_into_cache(b / "w.bin"), "pull's checkout ignored the global cache.type"


def test_levels_override_in_dvcs_order(sh: Shell, tmp_path: Path, levels: dict[str, Path]) -> None:
    """system < global < repo < local, as DVC merges them, key by key."""
    repo = _project(sh, tmp_path / "p")
    write_bytes(repo / "w.bin", 10_000)
    sh.gm("add", "w.bin", cwd=repo)

    def checked_out() -> str:
        (repo / "w.bin").unlink()
        sh.gm("checkout", cwd=repo)
        st = os.lstat(repo / "w.bin")
        return "symlink" if (repo / "w.bin").is_symlink() else f"nlink={st.st_nlink}"

    sh.dvc("config", "--system", "cache.type", "symlink", cwd=repo)
    assert levels["system"].is_file()
    assert checked_out() == "symlink"
    sh.dvc("config", "--global", "cache.type", "hardlink", cwd=repo)
    assert checked_out() == "nlink=2"
    sh.dvc("config", "cache.type", "copy", cwd=repo)  # the repository's .dvc/config
    assert checked_out() == "nlink=1"
    sh.dvc("config", "--local", "cache.type", "symlink", cwd=repo)
    assert checked_out() == "symlink"
    assert sh.dvc("config", "cache.type", cwd=repo).stdout.strip() == "symlink"


def test_a_global_config_that_does_not_parse_is_one_line(
    sh: Shell, tmp_path: Path, levels: dict[str, Path]
) -> None:
    repo = _project(sh, tmp_path / "p")
    levels["global"].parent.mkdir(parents=True)
    levels["global"].write_text("[cache\ntype = symlink\n")
    write_bytes(repo / "w.bin", 1000)
    r = sh.gm("add", "w.bin", cwd=repo, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(levels["global"]) in r.stderr and len(r.stderr.strip().splitlines()) == 1
