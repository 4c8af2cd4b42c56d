"""`git model plot` (terminal and image) and `git model report` (Markdown and JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Shell, write_bytes

TRAIN = """\
import gitmodel
for epoch in range(8):
    gitmodel.log_metrics(step=epoch, loss=2.0 / (epoch + 1), val_accuracy=0.6 + epoch / 40)
"""


@pytest.fixture
def history_repo(sh: Shell, repo: Path) -> Path:
    """Four model commits with metrics (one with a training history); v1.0.0 and v1.1.0."""
    cfg = repo / ".gitmodel.toml"
    cfg.write_text(
        'metrics-files = ["metrics.json"]\n[release]\ntags = "v*"\n'
        '[gate.accuracy]\ndirection = "higher"\ntolerance = 0.01\n'
    )
    sh.git("add", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "policy", cwd=repo)
    (repo / "train.py").write_text(TRAIN)
    for i, (acc, loss) in enumerate([(0.80, 0.5), (0.85, 0.4), (0.91, 0.3), (0.90, 0.28)]):
        if i == 3:
            sh.run([sys.executable, "train.py"], cwd=repo)
        write_bytes(repo / "model.bin", 1000 + 500 * i, seed=i)
        sh.gm(
            "commit",
            "model.bin",
            "-m",
            f"model {i}",
            "--metric",
            f"accuracy={acc}",
            "--metric",
            f"loss={loss}",
            cwd=repo,
        )
        if i == 1:
            sh.git("tag", "v1.0.0", cwd=repo)
        if i == 2:
            sh.git("tag", "-a", "v1.1.0", "-m", "release 1.1", cwd=repo)
    return repo


def test_terminal_chart_marks_releases(sh: Shell, history_repo: Path) -> None:
    out = sh.gm("plot", cwd=history_repo).stdout
    assert "accuracy" in out  # the gated metric is the default
    assert "loss  (" not in out
    assert "▲ releases: v1.0.0" in out and "v1.1.0" in out
    assert any(ch in out for ch in "▁▂▃▄▅▆▇█")
    out = sh.gm("plot", "--metric", "loss", "--metric", "accuracy", cwd=history_repo).stdout
    assert "loss  (first 0.5, last 0.28)" in out
    data = sh.gm("plot", "--metric", "accuracy", "--json", cwd=history_repo).json()
    assert data["series"]["accuracy"] == [0.8, 0.85, 0.91, 0.9]
    assert sorted(data["marks"].values()) == ["v1.0.0", "v1.1.0"]


def test_image_of_metrics_and_of_training_history(sh: Shell, history_repo: Path) -> None:
    sh.gm("plot", "-o", "out/metrics.png", cwd=history_repo)
    png = history_repo / "out" / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sh.gm("plot", "--history", "--metric", "loss", "-o", "loss.svg", cwd=history_repo)
    svg = (history_repo / "loss.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    out = sh.gm("plot", "--history", cwd=history_repo).stdout
    sha = sh.git("rev-parse", "--short=7", "HEAD", cwd=history_repo).stdout.strip()
    assert f"training history of {sha} (model 3)" in out  # not "HEAD": true after the next commit
    assert "loss  (first 2, last 0.25)" in out and "val_accuracy" in out
    assert "step 0 … 7 (8 records)" in out


def test_plot_errors_are_one_line(sh: Shell, history_repo: Path) -> None:
    cases = [
        (["plot", "--history", "HEAD~1"], "has no training history"),
        (["plot", "--metric", "bleu"], "no commit in HEAD has metric 'bleu'"),
        (["plot", "--history", "--metric", "bleu"], "has no metric 'bleu'"),
        (["plot", "-o", "chart.gif"], "use a .png, .svg or .pdf"),
        (["plot", "nosuchrev"], "unknown revision"),
    ]
    for args, message in cases:
        r = sh.gm(*args, cwd=history_repo, check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_report_markdown_and_json(sh: Shell, history_repo: Path) -> None:
    md = sh.gm("report", "v1.0.0", "v1.1.0", cwd=history_repo).stdout
    assert md.startswith("## Model report: `v1.0.0`")
    assert "| accuracy | 0.85 | 0.91 | +0.06 | gated ↑ ✅ |" in md
    assert "| `model.bin` | modified | 1.5 KiB | 2.0 KiB | +500 B |" in md
    assert "passes the release gate" in md or "Gate verdict omitted" in md
    out = sh.gm("report", "v1.0.0", "v1.1.0", "--format", "json", cwd=history_repo).stdout
    data = json.loads(out)
    (acc,) = [m for m in data["metrics"] if m["metric"] == "accuracy"]
    assert acc["delta"] == pytest.approx(0.06) and acc["gated"] and acc["better"]
    assert data["weights"][0]["size_delta"] == 500


def test_report_default_is_against_the_previous_release_with_verdict(
    sh: Shell, history_repo: Path
) -> None:
    pytest.importorskip("gitmodel.gate")
    sh.gm("report", "-o", "report.md", cwd=history_repo)
    md = (history_repo / "report.md").read_text()
    assert "`v1.1.0`" in md  # HEAD is compared with the release before it
    assert "passes the release gate" in md  # -0.01 is exactly at the tolerance
    assert "| accuracy | 0.91 | 0.9 |" in md
    assert "Training history: 8 records" in md


def test_help_paths_do_not_import_science_libraries(tmp_path: Path) -> None:
    for args in (["--help"], ["eval", "--help"], ["plot", "--help"], ["report", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gitmodel", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 0
        imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
        assert not imported & {"numpy", "sklearn", "matplotlib", "scipy"}, args


# -- CI templates: run their gate scripts for real against a clone ------------------------

CI = Path(__file__).resolve().parent.parent / "ci"


@pytest.fixture
def ci_clone(sh: Shell, history_repo: Path, tmp_path: Path) -> Path:
    """A CI checkout of a project whose origin has a good v1.0.0 and a regressing v2.0.0."""
    repo = history_repo
    write_bytes(repo / "model.bin", 900, seed=9)
    sh.gm("commit", "model.bin", "-m", "worse", "--metric", "accuracy=0.7", cwd=repo)
    # git has no --no-verify for `git tag`: step around our own reference-transaction hook
    sh.git("-c", "core.hooksPath=/dev/null", "tag", "v2.0.0", cwd=repo)
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.git("push", "-q", "--no-verify", "origin", "HEAD:refs/heads/main", "--tags", cwd=repo)
    sh.git("push", "-q", "--no-verify", "origin", "refs/notes/metrics", cwd=repo)
    clone = tmp_path / "ci"
    sh.git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    return clone


def _run_script(sh: Shell, script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    r = sh.run(["bash", "-e", "-c", script], cwd=cwd, env=env, check=False)
    return r.returncode, r.stdout + r.stderr


def test_gitlab_template_gates_release_tags_and_merge_requests(sh: Shell, ci_clone: Path) -> None:
    import yaml

    ci = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    assert ci["stages"] == ["build", "test", "gate", "publish"]
    assert {"build", "test", "gate:merge-request", "gate:release-tag", "pages"} <= set(ci)
    setup = "\n".join(ci[".gate"]["before_script"][1:])  # the notes fetch (pip is ours)
    tag_job = setup + "\n" + "\n".join(ci["gate:release-tag"]["script"])
    code, out = _run_script(sh, tag_job, ci_clone, {"CI_COMMIT_TAG": "v2.0.0"})
    assert code == 1, out
    assert "FAIL: accuracy is worse than v1.1.0" in out
    code, out = _run_script(sh, tag_job, ci_clone, {"CI_COMMIT_TAG": "v1.1.0"})
    assert code == 0, out
    head = sh.git("rev-parse", "HEAD", cwd=ci_clone).stdout.strip()
    mr_job = setup + "\n" + "\n".join(ci["gate:merge-request"]["script"])
    code, out = _run_script(sh, mr_job, ci_clone, {"CI_COMMIT_SHA": head})
    assert code == 1, out
    assert "fails the release gate" in (ci_clone / "model-report.md").read_text()


def test_github_template_refuses_a_regressing_tag_by_deleting_it(
    sh: Shell, ci_clone: Path, tmp_path: Path
) -> None:
    import yaml

    wf = yaml.safe_load((CI / "github-actions.yml").read_text())
    assert list(wf["jobs"]) == ["build", "test", "gate", "dashboard", "pages"]
    assert wf["jobs"]["gate"]["needs"] == "test" and wf["jobs"]["test"]["needs"] == "build"
    steps = {s.get("name"): s for s in wf["jobs"]["gate"]["steps"]}
    fetch = steps["Fetch metrics notes"]["run"]
    tag_step = steps["Gate the release tag"]["run"]
    env = {"TAG": "v2.0.0", "DELETE_REFUSED_TAG": "true"}
    code, out = _run_script(sh, fetch + "\n" + tag_step, ci_clone, env)
    assert code == 1, out
    assert "release v2.0.0 refused" in out
    origin_tags = sh.git("tag", "-l", cwd=tmp_path / "origin.git").stdout.split()
    assert origin_tags == ["v1.0.0", "v1.1.0"]
    pr_step = steps["Gate the pull request"]["run"]
    sh.git("checkout", "-q", "v1.1.0", cwd=ci_clone)
    code, out = _run_script(sh, pr_step, ci_clone, {"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")})
    assert code == 0, out
    assert "passes the release gate" in (tmp_path / "s.md").read_text()


def test_terminal_chart_of_more_points_than_columns() -> None:
    from gitmodel.plot import Chart, render_terminal

    n = 150
    values: list[float | None] = [float(i % 30) if i % 17 else None for i in range(n)]
    chart = Chart(
        "t",
        "commit",
        [float(i) for i in range(n)],
        {"m": values},
        [f"{i:07x}" for i in range(n)],
        {149: "v2.0.0"},
    )
    lines = render_terminal(chart, width=60).splitlines()
    bars = [ln.split("│", 1)[1] for ln in lines if "│" in ln]
    assert all(len(b) == 60 for b in bars)
    assert sum(ch != " " for ch in bars[-1]) > 50  # the bottom row is mostly filled
    assert lines[-3].rstrip().endswith("▲")  # the release is the last column


def test_ci_templates_publish_the_dashboard(sh: Shell, ci_clone: Path) -> None:
    """The dashboard steps, run as written in a CI checkout: a page with every release."""
    import yaml

    wf = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = {s.get("name"): s for s in wf["jobs"]["dashboard"]["steps"]}
    script = (
        steps["Fetch tags and metrics notes"]["run"] + "\n" + steps["Build the dashboard"]["run"]
    )
    code, out = _run_script(sh, script, ci_clone, {})
    assert code == 0, out
    page = (ci_clone / "dashboard" / "index.html").read_text()
    assert "v1.0.0" in page and "v1.1.0" in page and "<svg" in page
    gl = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    setup = "\n".join(gl[".gate"]["before_script"][1:])
    code, out = _run_script(sh, setup + "\n" + "\n".join(gl["pages"]["script"]), ci_clone, {})
    assert code == 0, out
    assert "v1.1.0" in (ci_clone / "public" / "index.html").read_text()
