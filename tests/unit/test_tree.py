"""gitmodel.tree: a tracked directory listed in manifest order, on one core or two."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gitmodel.forking as forking
import gitmodel.tree as tree


def _tree(root: Path) -> None:
    """Subdirectories enough to be split, top-level files between them, names whose
    order is a string order's ("d-x" and "d.txt" before "d/"), nesting, an empty one."""
    names = ["d.txt", "d-x/y", "d/z", "a b/ü.bin", 'q"/x', "deep/a/b/c/d.bin", "zz"]
    names += [f"s{i:02d}/f{j}.bin" for i in range(20) for j in range(i % 4 + 1)]
    names += [f"s{i:02d}.txt" for i in range(0, 20, 3)]
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    (root / "empty").mkdir()
    os.symlink("d.txt", root / "link")  # never listed


def _one_core(root: Path, monkeypatch: pytest.MonkeyPatch) -> tree.Listing:
    with monkeypatch.context() as m:
        m.setattr(tree, "SPLIT_DIRS", 1 << 30)
        m.setattr(tree, "PARALLEL_FILES", 1 << 30)
        return tree.scan(root)


def _two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree, "PARALLEL_FILES", 4)
    monkeypatch.setattr(forking, "may_fork", lambda: True)


def test_a_listing_split_by_subdirectory_is_the_one_core_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    alone = _one_core(tmp_path, monkeypatch)
    assert alone.rels == sorted(alone.rels) and "link" not in alone.rels
    assert len(alone) == 7 + 50 + 7
    _two_cores(monkeypatch)
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or real_fork())
    split = tree.scan(tmp_path)
    assert forks, "the listing was not split"
    assert split.rels == alone.rels
    assert split.stats == alone.stats


def test_a_child_that_fails_costs_only_its_half_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    alone = _one_core(tmp_path, monkeypatch)
    _two_cores(monkeypatch)
    monkeypatch.setattr(tree, "_their_blocks", lambda data, n: None)  # as if garbled
    split = tree.scan(tmp_path)
    assert (split.rels, split.stats) == (alone.rels, alone.stats)


def test_a_small_tree_is_not_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.setattr(forking, "may_fork", lambda: True)  # PARALLEL_FILES as it is

    def no_fork() -> int:
        raise AssertionError("forked for a small tree")

    monkeypatch.setattr(os, "fork", no_fork)
    assert len(tree.scan(tmp_path)) == 64
