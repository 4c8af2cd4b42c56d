#!/usr/bin/env python3
"""Start-up and hook costs of two gitmodel installs, side by side in one run.

    python3 scripts/compare_costs.py BEFORE_VENV AFTER_VENV [--runs N] [--releases N]

Each venv is a regular install (`pip install .` of a commit). Every command runs in turn
under each install (alternating which goes first, so a load change hits both alike), and
the table gives the median wall time and the median CPU time (user + system of the
command and its children), which a loaded machine disturbs less than wall time. The
gated `git tag` row builds, per install, the repository scripts/bench.py builds (its
`--releases` earlier releases, hooks installed by that install) and times `git tag`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (the bench's own repository builders)


def _sh(argv: Sequence[str], cwd: Path, env: dict[str, str], input: bytes | None = None) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, input=input, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"setup failed: {' '.join(argv)}: {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


class _Builder(bench.Bench):
    """bench.Bench's repository builders, without its measuring machinery."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.dir = directory
        self.env = env

    def sh(self, argv: Sequence[str], cwd: Path, input: bytes | None = None) -> str:
        return _sh(argv, cwd, self.env, input)


def gate_repo(directory: Path, env: dict[str, str], releases: int) -> Path:
    """scripts/bench.py's gated-tag repository: `releases` releases, each with a note."""
    b = _Builder(directory, env)
    gate = b.new_repo("gate")
    with open(gate / ".gitmodel.toml", "a") as f:
        f.write('\n[gate.accuracy]\ndirection = "higher"\ntolerance = 0.002\n')
    b.sh(["git", "commit", "-q", "-am", "gate on accuracy"], gate)
    b.fast_import_history(gate, releases + 1, releases, lambda i: 0.5 + i / (4 * 5000))
    return gate


def measure(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) in ms of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall * 1000, cpu * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the venv of the earlier install")
    parser.add_argument("after", type=Path, help="the venv of the later install")
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--releases", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitmodel-costs-"))
    try:
        sides = {}
        for label, venv in (("before", args.before.resolve()), ("after", args.after.resolve())):
            env = dict(os.environ, PATH=f"{venv}/bin:{os.environ['PATH']}")
            env.update(GIT_AUTHOR_NAME="c", GIT_AUTHOR_EMAIL="c@example.com")
            env.update(GIT_COMMITTER_NAME="c", GIT_COMMITTER_EMAIL="c@example.com")
            (work / label).mkdir()
            sides[label] = (venv, env, gate_repo(work / label, env, args.releases))
        rows = {
            "git model --help": lambda v, g: [f"{v}/bin/git-model", "--help"],
            "git model --version": lambda v, g: [f"{v}/bin/git-model", "--version"],
            "python -c 'import gitmodel.repo'": lambda v, g: [
                f"{v}/bin/python",
                "-c",
                "import gitmodel.repo",
            ],
            "git model status": lambda v, g: [f"{v}/bin/git-model", "status"],
            "git model log": lambda v, g: [f"{v}/bin/git-model", "log", "-n", "20"],
            f"git tag (gated, {args.releases} releases)": lambda v, g: ["git", "tag", "v2.0.0"],
        }
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for i in range(args.runs):
            order = list(sides.items()) if i % 2 else list(sides.items())[::-1]
            for row, argv in rows.items():
                for label, (venv, env, gate) in order:
                    times.setdefault((row, label), []).append(measure(argv(venv, gate), gate, env))
                    (gate / ".git" / "refs" / "tags" / "v2.0.0").unlink(missing_ok=True)
        print(f"{args.runs} runs each, alternating; load average {os.getloadavg()[0]:.1f}")
        print(f"{'command':42} {'before wall/cpu ms':>20} {'after wall/cpu ms':>20}")
        for row in rows:
            cells = []
            for label in sides:
                wall = statistics.median(w for w, _ in times[(row, label)])
                cpu = statistics.median(c for _, c in times[(row, label)])
                cells.append(f"{wall:8.1f} / {cpu:6.1f}")
            print(f"{row:42} {cells[0]:>20} {cells[1]:>20}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
