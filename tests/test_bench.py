"""scripts/bench.py runs end to end and prints its tables; the fast pointer path agrees with YAML.

Behaviour only: timings on a shared machine say nothing about correctness, so no test here
asserts a speed.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from gitmodel import pointer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.bench  # minutes of dvc runs: `scripts/test.sh -m bench`
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
