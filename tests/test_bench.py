"""scripts/bench.py runs end to end and prints its tables (`scripts/test.sh -m bench`).

Every test here is marked `bench` and stays out of the default run (pyproject's addopts);
tests/test_markers.py checks that. Behaviour only: timings on a shared machine say nothing
about correctness, so no test here asserts a speed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench  # minutes of dvc runs


def test_bench_quick_completes_and_prints_its_tables(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--quick",
            "--runs",
            "1",  # behaviour, not numbers: one run of each big-data contender is enough
            "--quiet",
            "--dir",
            str(tmp_path),
        ],
        env=base_env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("# gitmodel benchmark (--quick)")
    assert "| work | contender | median | min | max | runs | CPU (median) | peak RSS |" in out
    assert "| work | target | measured | met |" in out
    for work in (
        "store 16 MiB, fresh",
        "re-add unchanged 16 MiB",
        "status, 16 MiB tracked",
        "checkout 16 MiB (copy)",
        "checkout 16 MiB (hardlink)",
        "shards, fresh",
        "shards (status, empty stat cache)",
        "log -n 200, noted commits",
        "git commit (no weights, no metrics)",
        "branch update (git update-ref)",
        "git push of one commit (no weights), local remote",
        "earlier releases",
        "git model --help",
        "peak memory",
        "add 400 x 8 KiB files, fresh",
        "re-add 400 x 8 KiB files, nothing changed",
        "re-add 400 x 8 KiB files, one changed",
        "status 400 x 8 KiB files, nothing changed",
        "status 400 x 8 KiB files, one changed",
        "checkout 400 x 8 KiB files after rm -rf",
        "push 400 x 8 KiB files to a local DVC remote",
        "pull 400 x 8 KiB files into an empty cache",
        "push 400 x 8 KiB files to an ssh DVC remote",  # or its reason to skip, on that row
        "pull 400 x 8 KiB files into an empty cache from an S3 (moto) DVC remote",
        "| <= 3x git status |",
    ):
        assert work in out, work
    # Every gitmodel contender ran (none failed); rows whose pieces are missing say n/a.
    for line in out.splitlines():
        if line.startswith("|") and ("git model" in line or "gitmodel hooks" in line):
            assert "failed" not in line, line
    # The generated data is cleaned up.
    assert not any(tmp_path.iterdir())


def test_bench_help() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "--quick" in proc.stdout
