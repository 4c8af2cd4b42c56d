"""The default run (`scripts/test.sh`, pyproject's addopts) leaves out the benchmark.

scripts/bench.py end to end takes minutes of dvc runs on 2 cores; CI's default run has a
15-minute budget. Every test of tests/test_bench.py is marked `bench`, and the default
selection deselects that marker (and `slow`); `-m bench` runs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _collect(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: nothing selected
    return proc.stdout


def test_the_default_run_deselects_every_benchmark_test() -> None:
    default = _collect("tests/test_bench.py")
    assert "tests/test_bench.py::" not in default
    assert "deselected" in default
    marked = _collect("-m", "bench", "tests/test_bench.py")
    assert marked.count("tests/test_bench.py::") >= 2


def test_the_default_selection_is_pyprojects() -> None:
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "not bench" in options["ini_options"]["addopts"]
    assert "not slow" in options["ini_options"]["addopts"]
