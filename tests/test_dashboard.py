"""`git model report --html DIR`: a static dashboard, rendered by a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Shell

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
POLICY = '[release]\ntags = "v*"\n\n[gate.accuracy]\ndirection = "higher"\n\n[gate.loss]\ndirection = "lower"\n'


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/services.sh installs it)")
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.fixture
def registry_repo(sh: Shell, repo: Path) -> Path:
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "policy", cwd=repo)
    for n, (acc, loss) in enumerate(((0.90, 0.40), (0.93, 0.31), (0.88, 0.45)), start=1):
        (repo / "model.bin").write_bytes(bytes([n]) * (100_000 * n))
        sh.gm(
            "commit",
            "model.bin",
            "-m",
            f"model {n}",
            "--metric",
            f"accuracy={acc}",
            "--metric",
            f"loss={loss}",
            "--metric",
            f"clf.accuracy={acc}",
            "--metric",
            f"clf.loss={loss}",
            cwd=repo,
        )
        extra = ["--allow-regression", "smaller"] if n == 3 else []
        sh.gm("release", f"v1.{n}.0", *extra, cwd=repo)
        sh.gm("release", f"clf@v1.{n}.0", *extra, cwd=repo)
    sh.gm("promote", "v1.2.0", "prod", cwd=repo)
    time.sleep(1.1)  # stage events are ordered by tag time in seconds (GTO's rule)
    sh.gm("promote", "v1.1.0", "prod", "--allow-regression", "rollback", cwd=repo)
    sh.gm(
        "promote",
        "v1.3.0",
        "staging",
        "--allow-regression",
        "try it",
        "-m",
        "<script>alert(1)</script> & <b>bold</b>",
        cwd=repo,
    )
    sh.gm("promote", "clf@v1.2.0", "prod", cwd=repo)
    return repo


def test_dashboard_renders_offline_in_chromium(
    sh: Shell, registry_repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    sh.gm("report", "--html", str(out), cwd=registry_repo)
    page = (out / "index.html").read_text()
    # offline and inert: no script, nothing fetched from another host
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") >= 3  # accuracy and loss on the main line, accuracy on clf

    dom = chromium(tmp_path, "--dump-dom", (out / "index.html").as_uri()).stdout
    text = re.sub(r"<[^>]+>", " ", dom)
    for word in (
        "v1.1.0",
        "v1.2.0",
        "v1.3.0",
        "clf@v1.2.0",
        "prod",
        "staging",
        "main#prod#2",
        "OVERRIDDEN",
        "PASS",
        "Metrics across releases",
    ):
        assert word in text, word
    assert "<script>alert" not in dom  # the hostile message stayed text
    # the stage cards say who holds what now: v1.1.0 prod after the rollback
    assert re.search(r"prod\s*</b>\s*<span>\s*v1\.1\.0", dom)

    shot = tmp_path / "shot.png"
    chromium(
        tmp_path, "--window-size=1200,1400", f"--screenshot={shot}", (out / "index.html").as_uri()
    )
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    colours = {tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[2]).tolist()}
    assert len(colours) > 30  # text, cards, badges and charts: far from one colour
    assert pixels.std() > 0.05
