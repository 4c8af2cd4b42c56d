"""Every door of the release gate, with real git, real clones and real bare remotes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Shell, write_bytes

from gitmodel.hooks import CLIENT_HOOKS, HANDLERS, MARKER, render_shim

POLICY = """\
metrics-files = ["metrics.json"]
[release]
tags = "v*"
[gate.accuracy]
direction = "higher"
tolerance = 0.01
"""

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")  # make history the hooks would refuse
ROOT = Path(__file__).resolve().parent.parent


def put_note(sh: Shell, repo: Path, rev: str, metrics: dict[str, Any]) -> None:
    body = json.dumps({"schema": 1, "metrics": metrics})
    sh.git("notes", "--ref=refs/notes/metrics", "add", "-f", "-m", body, rev, cwd=repo)


def commit(sh: Shell, repo: Path, message: str, accuracy: float | None = None) -> str:
    sh.git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    if accuracy is not None:
        put_note(sh, repo, "HEAD", {"accuracy": accuracy})
    return sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def tags(sh: Shell, repo: Path) -> list[str]:
    return sh.git("tag", "-l", cwd=repo).stdout.split()


@pytest.fixture
def gated(repo: Path, sh: Shell) -> Path:
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("commit", "-q", "-am", "policy", cwd=repo)
    return repo


def released(sh: Shell, repo: Path) -> None:
    """v1.0.0 at accuracy 0.9, then HEAD at 0.8 with a failing v1.1.0 made past the hooks."""
    commit(sh, repo, "model 1", 0.9)
    sh.git("tag", "v1.0.0", cwd=repo)
    commit(sh, repo, "model 2", 0.8)
    sh.git(*NO_HOOKS, "tag", "v1.1.0", cwd=repo)


def bare(sh: Shell, path: Path, server: bool = False) -> Path:
    sh.git("init", "-q", "--bare", str(path), cwd=path.parent)
    if server:
        sh.gm("install", "--server", cwd=path)
    return path


# -- install ----------------------------------------------------------------------------


def test_init_installs_shims(repo: Path, sh: Shell) -> None:
    hooks = repo / ".git" / "hooks"
    for name in CLIENT_HOOKS:
        text = (hooks / name).read_text()
        assert MARKER in text and os.access(hooks / name, os.X_OK)
        assert sys.executable in text or os.path.realpath(sys.executable) in text
    before = {n: (hooks / n).read_text() for n in CLIENT_HOOKS}
    out = sh.gm("install", cwd=repo)
    assert "installed hooks in .git/hooks" in out.stderr
    assert before == {n: (hooks / n).read_text() for n in CLIENT_HOOKS}
    assert not list(hooks.glob("*.legacy")) and not list(hooks.glob("*kept-by-gitmodel*"))
    assert sh.gm("install", "--server", cwd=repo, check=False).returncode == 2


def test_hook_verb_and_unknown_hook(repo: Path, sh: Shell) -> None:
    assert sh.gm("hook", "no-such-hook", cwd=repo, check=False).returncode == 2
    out = sh.gm("hook", "reference-transaction", "committed", cwd=repo, input="")
    assert out.returncode == 0


# -- reference-transaction: plain `git tag` -----------------------------------------------


def test_git_tag_refuses_a_failing_release(gated: Path, sh: Shell) -> None:
    commit(sh, gated, "model 1", 0.9)
    first = sh.git("tag", "v1.0.0", cwd=gated)
    assert "PASS" in first.stderr
    commit(sh, gated, "model 2", 0.8)
    for args in (["v1.1.0"], ["-a", "v1.1.0", "-m", "annotated"]):
        refused = sh.git("tag", *args, cwd=gated, check=False)
        assert refused.returncode != 0
        assert (
            "accuracy" in refused.stderr and "FAIL: accuracy is worse than v1.0.0" in refused.stderr
        )
        assert "v1.1.0" not in tags(sh, gated)
    # Not releases, deletions and branch updates are never refused.
    sh.git("tag", "wip-experiment", cwd=gated)
    sh.git("branch", "feature", cwd=gated)
    sh.git("update-ref", "refs/heads/feature", "HEAD~1", cwd=gated)
    sh.git("tag", "-d", "v1.0.0", cwd=gated)
    assert tags(sh, gated) == ["wip-experiment"]
    # With v1.0.0 gone, the failing commit is a first release again.
    sh.git("tag", "v1.1.0", cwd=gated)


def test_git_tag_through_an_alias_and_moving_a_tag(gated: Path, sh: Shell) -> None:
    released(sh, gated)
    sh.git("tag", "-d", "v1.1.0", cwd=gated)
    sh.git("config", "alias.t", "tag", cwd=gated)
    assert sh.git("t", "v1.1.0", cwd=gated, check=False).returncode != 0
    # Moving an existing release onto a failing commit is judged too.
    sh.git("checkout", "-q", "-b", "side", "v1.0.0", cwd=gated)
    commit(sh, gated, "good", 0.95)
    sh.git("tag", "v1.0.1", cwd=gated)
    assert sh.git("tag", "-f", "v1.0.1", "main", cwd=gated, check=False).returncode != 0


def test_fetch_and_clone_never_refuse_upstream_tags(gated: Path, sh: Shell, tmp_path: Path) -> None:
    released(sh, gated)  # upstream has a failing v1.1.0
    down = tmp_path / "down"
    sh.git("clone", "-q", str(gated), str(down), cwd=tmp_path)
    sh.gm("init", cwd=down)
    assert "v1.1.0" in tags(sh, down)
    # More failing tags upstream; fetch and pull bring them into a repo with the hooks.
    commit(sh, gated, "model 3", 0.5)
    sh.git(*NO_HOOKS, "tag", "v1.2.0", cwd=gated)
    sh.git(*NO_HOOKS, "tag", "-a", "v1.3.0", "-m", "annotated", cwd=gated)
    sh.git("fetch", "-q", "origin", cwd=down)
    assert {"v1.2.0", "v1.3.0"} <= set(tags(sh, down))
    sh.git("tag", "-d", "v1.2.0", "v1.3.0", cwd=down)
    sh.git("pull", "-q", "--ff-only", "origin", "main", cwd=down)
    sh.git("fetch", "-q", "--tags", "origin", cwd=down)
    assert {"v1.2.0", "v1.3.0"} <= set(tags(sh, down))
    # A clone whose hooks are ours from the start (core.hooksPath) takes every tag too.
    hooks = gated / ".git" / "hooks"
    clone2 = tmp_path / "clone2"
    sh.git("-c", f"core.hooksPath={hooks}", "clone", "-q", str(gated), str(clone2), cwd=tmp_path)
    assert {"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"} <= set(tags(sh, clone2))


# -- pre-push and the server ------------------------------------------------------------------


def test_pre_push_refuses_a_failing_release_tag(gated: Path, sh: Shell, tmp_path: Path) -> None:
    released(sh, gated)
    remote = bare(sh, tmp_path / "remote.git")
    sh.git("remote", "add", "origin", str(remote), cwd=gated)
    sh.git("push", "-q", "origin", "main", "v1.0.0", cwd=gated)
    refused = sh.git("push", "origin", "v1.1.0", cwd=gated, check=False)
    assert refused.returncode != 0 and "FAIL: accuracy is worse than v1.0.0" in refused.stderr
    assert "v1.1.0" not in tags(sh, remote)
    # Without a server gate, --no-verify gets past the pre-push door.
    sh.git("push", "-q", "--no-verify", "origin", "v1.1.0", cwd=gated)
    assert "v1.1.0" in tags(sh, remote)


def test_releases_from_before_gitmodel_push_to_a_gated_remote(sh: Shell, tmp_path: Path) -> None:
    """A project that adopts gitmodel keeps its old, note-less release tags: they reach a
    new remote through both doors. From adoption on, a release without metrics is refused,
    and deleting the policy file does not make a commit old again."""
    repo = tmp_path / "project"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    commit(sh, repo, "old model 1")
    sh.git("tag", "v0.1.0", cwd=repo)
    commit(sh, repo, "old model 2")
    sh.git("tag", "-a", "-m", "old release", "v0.2.0", cwd=repo)
    sh.gm("init", cwd=repo)
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "adopt gitmodel", cwd=repo)

    server = bare(sh, tmp_path / "server.git", server=True)
    sh.git("remote", "add", "origin", str(server), cwd=repo)
    pushed = sh.git("push", "origin", "main", "--tags", cwd=repo)
    assert {"v0.1.0", "v0.2.0"} <= set(tags(sh, server))
    assert "predates the project's gitmodel policy" in pushed.stderr
    out = sh.gm("check", "v0.2.0", "--json", cwd=repo).json()
    assert out["passed"] and not out["metrics"]

    # After adoption a note-less release is refused, by the client and by the server.
    commit(sh, repo, "new model, no metrics")
    sh.git(*NO_HOOKS, "tag", "v1.0.0", cwd=repo)
    refused = sh.git("push", "--no-verify", "origin", "v1.0.0", cwd=repo, check=False)
    assert refused.returncode != 0 and "has no metrics note" in refused.stderr
    assert "v1.0.0" not in tags(sh, server)
    # Removing the policy does not turn the next commit into an old one.
    sh.git("rm", "-q", ".gitmodel.toml", cwd=repo)
    sh.git("commit", "-q", "-m", "drop the policy", cwd=repo)
    sh.git(*NO_HOOKS, "tag", "v1.1.0", cwd=repo)
    assert sh.gm("check", "v1.1.0", cwd=repo, check=False).returncode == 1


def test_server_gate_cannot_be_skipped(gated: Path, sh: Shell, tmp_path: Path) -> None:
    released(sh, gated)
    server = bare(sh, tmp_path / "server.git", server=True)
    assert (server / "hooks" / "pre-receive").read_text().count(MARKER) == 1
    sh.git("remote", "add", "origin", str(server), cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "main", "refs/notes/metrics", cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "v1.0.0", cwd=gated)
    refused = sh.git("push", "--no-verify", "origin", "v1.1.0", cwd=gated, check=False)
    assert refused.returncode != 0
    assert "remote:" in refused.stderr and "FAIL: accuracy is worse than v1.0.0" in refused.stderr
    assert "v1.1.0" not in tags(sh, server)
    # A push that also rewrites the baseline's note is judged against the note the server had.
    put_note(sh, gated, "v1.0.0", {"accuracy": 0.1})
    forged = sh.git(
        "push",
        "--no-verify",
        "--force",
        "origin",
        "refs/notes/metrics",
        "v1.1.0",
        cwd=gated,
        check=False,
    )
    assert forged.returncode != 0 and "v1.1.0" not in tags(sh, server)
    put_note(sh, gated, "v1.0.0", {"accuracy": 0.9})  # the accepted metrics, back
    # A passing release whose note arrives in the same push is accepted.
    commit(sh, gated, "model 3", 0.95)
    sh.git("tag", "v1.2.0", cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "main", "refs/notes/metrics", "v1.2.0", cwd=gated)
    assert "v1.2.0" in tags(sh, server)
    # A release tag whose commit has no note on the server is refused.
    commit(sh, gated, "no note")
    sh.git(*NO_HOOKS, "tag", "v1.3.0", cwd=gated)
    missing = sh.git("push", "--no-verify", "origin", "main", "v1.3.0", cwd=gated, check=False)
    assert missing.returncode != 0 and "no metrics note" in missing.stderr
    # Deleting a release tag is refused (later releases are judged against it); other
    # tags and branches come and go.
    gone = sh.git("push", "--no-verify", "origin", ":refs/tags/v1.0.0", cwd=gated, check=False)
    assert gone.returncode != 0 and "v1.0.0" in tags(sh, server)
    sh.git("tag", "wip", cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", "wip", "main:side", cwd=gated)
    sh.git("push", "-q", "--no-verify", "origin", ":refs/tags/wip", ":side", cwd=gated)
    assert "wip" not in tags(sh, server)


def test_server_policy_from_the_admin_file(gated: Path, sh: Shell, tmp_path: Path) -> None:
    released(sh, gated)
    server = bare(sh, tmp_path / "server.git", server=True)
    # The server's own policy wins over anything pushed: here it gates nothing.
    (server / ".gitmodel.toml").write_text(
        '[release]\ntags = "v*"\nrequire-metrics = false\n[gate]\ndefaults = false\n'
    )
    sh.git("remote", "add", "origin", str(server), cwd=gated)
    sh.git(
        "push",
        "-q",
        "--no-verify",
        "origin",
        "main",
        "refs/notes/metrics",
        "v1.0.0",
        "v1.1.0",
        cwd=gated,
    )
    assert {"v1.0.0", "v1.1.0"} <= set(tags(sh, server))


def test_hostile_tag_names_run_nothing(gated: Path, sh: Shell, tmp_path: Path) -> None:
    commit(sh, gated, "model", 0.9)
    names = [
        "v1$(touch${IFS}pwned)",
        "v2;touch${IFS}pwned",
        "v3`touch${IFS}pwned`",
        "v4|touch${IFS}pwned",
    ]
    made = []
    for name in names:
        if sh.git("check-ref-format", f"refs/tags/{name}", cwd=gated, check=False).returncode == 0:
            sh.git("tag", name, cwd=gated, check=False)
            made.append(name)
    assert made
    server = bare(sh, tmp_path / "server.git", server=True)
    sh.git("remote", "add", "origin", str(server), cwd=gated)
    sh.git(
        "push",
        "--no-verify",
        "origin",
        "main",
        "refs/notes/metrics",
        "--tags",
        cwd=gated,
        check=False,
    )
    assert not list(tmp_path.rglob("pwned"))


# -- post-commit -----------------------------------------------------------------------------


def note_of(sh: Shell, repo: Path, rev: str = "HEAD") -> dict[str, Any] | None:
    out = sh.git("notes", "--ref=refs/notes/metrics", "show", rev, cwd=repo, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def test_post_commit_writes_the_note_from_a_metrics_file(gated: Path, sh: Shell) -> None:
    (gated / "metrics.json").write_text('{"accuracy": 0.91, "eval": {"loss": 0.2}}')
    sh.git("add", "metrics.json", cwd=gated)
    assert (
        sh.git("commit", "-q", "-m", "train", cwd=gated).stdout == ""
    )  # the hook is quiet on stdout
    note = note_of(sh, gated)
    assert note is not None and note["metrics"] == {"accuracy": 0.91, "eval.loss": 0.2}
    assert note["source"] == "post-commit"
    (gated / "README.md").write_text("other\n")
    assert sh.git("commit", "-q", "-am", "docs only", cwd=gated).stdout == ""
    assert note_of(sh, gated) is None
    # A rebase carries notes (notes.rewriteRef); the hook writes no second one.
    sh.git("rebase", "-q", "--force-rebase", "HEAD~2", cwd=gated)
    assert note_of(sh, gated, "HEAD~1")["metrics"] == {"accuracy": 0.91, "eval.loss": 0.2}  # type: ignore[index]
    # An amend keeps one valid note (git copies the old one; we do not write a second).
    sh.git("commit", "-q", "--amend", "-m", "docs only, amended", cwd=gated)
    sh.git("checkout", "-q", "HEAD~1", cwd=gated)
    (gated / "metrics.json").write_text('{"accuracy": 0.93}')
    sh.git("commit", "-q", "-am", "retrain", cwd=gated)
    sh.git("commit", "-q", "--amend", "-m", "retrain, amended", cwd=gated)
    assert note_of(sh, gated)["metrics"] == {"accuracy": 0.93}  # type: ignore[index]
    # `git model commit` writes its own note; the hook stays out of its way.
    (gated / "metrics.json").write_text('{"accuracy": 0.94}')
    sh.gm("commit", "-m", "via git model", cwd=gated)
    assert note_of(sh, gated)["source"] == "git-model commit"  # type: ignore[index]


def test_post_commit_with_a_broken_metrics_file_never_fails_the_commit(
    gated: Path, sh: Shell
) -> None:
    (gated / "metrics.json").write_text("{not json")
    sh.git("add", "metrics.json", cwd=gated)
    out = sh.git("commit", "-q", "-m", "broken", cwd=gated)
    assert "no metrics note written" in out.stderr
    assert note_of(sh, gated) is None


# -- post-checkout / post-merge ------------------------------------------------------------------


def test_checkout_and_merge_materialise_weights(repo: Path, sh: Shell) -> None:
    model = repo / "model.bin"
    versions = {}
    for seed in (1, 2):
        write_bytes(model, 4096, seed=seed)
        versions[seed] = model.read_bytes()
        sh.gm("add", "model.bin", cwd=repo)
        sh.git("commit", "-q", "-m", f"model {seed}", cwd=repo)
    out = sh.git("checkout", "-q", "HEAD~1", cwd=repo)
    assert model.read_bytes() == versions[1] and "materialised 1" in out.stderr
    sh.git("checkout", "-q", "main", cwd=repo)
    assert model.read_bytes() == versions[2]
    sh.git("checkout", "-q", "-b", "next", cwd=repo)
    write_bytes(model, 4096, seed=3)
    versions[3] = model.read_bytes()
    sh.gm("add", "model.bin", cwd=repo)
    sh.git("commit", "-q", "-m", "model 3", cwd=repo)
    sh.git("checkout", "-q", "main", cwd=repo)
    assert model.read_bytes() == versions[2]
    sh.git("merge", "-q", "--ff-only", "next", cwd=repo)
    assert model.read_bytes() == versions[3]
    # Objects missing from the cache: the checkout still succeeds, and says what is missing.
    for obj in (repo / ".dvc" / "cache").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.unlink()
    model.unlink()
    out = sh.git("checkout", "-q", "HEAD~1", cwd=repo)
    assert "not in the cache" in out.stderr


# -- chaining, uninstall, hooksPath, worktrees --------------------------------------------------


def test_foreign_hooks_still_run_and_come_back(tmp_path: Path, sh: Shell) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    hooks = repo / ".git" / "hooks"
    log = tmp_path / "log"
    originals = {
        "post-commit": f'#!/bin/sh\necho "post-commit $*" >> "{log}"\n',
        "reference-transaction": (
            f'#!/bin/sh\nwhile read -r a b ref; do echo "rt $1 $ref" >> "{log}"; done\n'
            'case "$(git rev-parse --abbrev-ref HEAD)" in *) ;; esac\nexit 0\n'
        ),
        "pre-push": f'#!/bin/sh\necho "pre-push $1" >> "{log}"\ncat >> "{log}"\nexit 0\n',
    }
    for name, text in originals.items():
        (hooks / name).write_text(text)
        (hooks / name).chmod(0o755)
    out = sh.gm("init", cwd=repo)
    assert "kept as post-commit.kept-by-gitmodel.1" in out.stderr
    (repo / ".gitmodel.toml").write_text(POLICY)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "first", cwd=repo)
    put_note(sh, repo, "HEAD", {"accuracy": 0.9})
    sh.git("tag", "v1.0.0", cwd=repo)
    remote = bare(sh, tmp_path / "remote.git")
    sh.git("push", "-q", str(remote), "main", cwd=repo)
    text = log.read_text()
    assert "post-commit" in text and "rt prepared refs/tags/v1.0.0" in text
    assert "rt committed refs/heads/main" in text and "refs/heads/main" in text.split("pre-push")[1]
    # A kept hook's refusal is ours: it refuses a tag our gate would pass.
    (hooks / "reference-transaction.kept-by-gitmodel.1").write_text(
        "#!/bin/sh\n"
        '[ "$1" = prepared ] && grep -q refs/tags/v2 && { echo "legacy says no" >&2; exit 1; }\n'
        "exit 0\n"
    )
    refused = sh.git("tag", "v2.0.0", cwd=repo, check=False)
    assert refused.returncode != 0 and "legacy says no" in refused.stderr
    (hooks / "reference-transaction.kept-by-gitmodel.1").write_text(
        originals["reference-transaction"]
    )
    sh.gm("uninstall", cwd=repo)
    for name, text in originals.items():
        assert (hooks / name).read_text() == text
    assert not list(hooks.glob("*.legacy")) and not list(hooks.glob("*kept-by-gitmodel*"))
    assert not any(MARKER in p.read_text() for p in hooks.iterdir() if p.is_file())


def test_core_hooks_path_is_respected(gated: Path, sh: Shell) -> None:
    sh.git("config", "core.hooksPath", ".githooks", cwd=gated)
    sh.gm("install", cwd=gated)
    assert MARKER in (gated / ".githooks" / "reference-transaction").read_text()
    released(sh, gated)
    sh.git("tag", "-d", "v1.1.0", cwd=gated)
    assert sh.git("tag", "v1.1.0", cwd=gated, check=False).returncode != 0


def test_worktree_checkouts(gated: Path, sh: Shell, tmp_path: Path) -> None:
    commit(sh, gated, "model 1", 0.9)
    sh.git("tag", "v1.0.0", cwd=gated)
    wt = tmp_path / "wt"
    sh.git("worktree", "add", "-q", "-b", "experiment", str(wt), cwd=gated)
    (wt / "metrics.json").write_text('{"accuracy": 0.7}')
    sh.git("add", "metrics.json", cwd=wt)
    sh.git("commit", "-q", "-m", "worse", cwd=wt)
    assert note_of(sh, wt)["metrics"] == {"accuracy": 0.7}  # type: ignore[index]
    refused = sh.git("tag", "v1.1.0", cwd=wt, check=False)
    assert refused.returncode != 0 and "FAIL" in refused.stderr
    assert sh.gm("check", cwd=wt, check=False).returncode == 1


def test_shim_falls_back_to_git_model_on_path(gated: Path, sh: Shell) -> None:
    hook = gated / ".git" / "hooks" / "reference-transaction"
    hook.write_text(render_shim("reference-transaction", python="/nonexistent/python3"))
    released(sh, gated)
    sh.git("tag", "-d", "v1.1.0", cwd=gated)
    refused = sh.git("tag", "v1.1.0", cwd=gated, check=False)
    assert refused.returncode != 0 and "FAIL" in refused.stderr


def test_pre_commit_framework_manifest() -> None:
    manifest = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in manifest} >= {"gitmodel-release-gate", "gitmodel-metrics-note"}
    for hook in manifest:
        words = hook["entry"].split()
        assert words[0] == "git-model"
        if words[1] == "hook":
            assert words[2] in HANDLERS
        assert hook["language"] in ("python", "system")
        assert set(hook["stages"]) <= {
            "pre-push",
            "post-commit",
            "post-checkout",
            "post-merge",
            "manual",
        }


def test_policy_in_pyproject_and_the_framework_entry(repo: Path, sh: Shell) -> None:
    (repo / ".gitmodel.toml").unlink()
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.gitmodel]\nmetrics-files = ["metrics.json"]\n'
        '[tool.gitmodel.gate.accuracy]\ndirection = "higher"\n'
    )
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "policy in pyproject", cwd=repo)
    released(sh, repo)
    sh.git("tag", "-d", "v1.1.0", cwd=repo)
    refused = sh.git("tag", "v1.1.0", cwd=repo, check=False)
    assert refused.returncode != 0 and "FAIL" in refused.stderr
    # The pre-commit framework's pre-push passes one ref in its environment.
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    env = {"PRE_COMMIT_REMOTE_BRANCH": "refs/tags/v1.1.0", "PRE_COMMIT_TO_REF": head}
    out = sh.gm("hook", "framework-pre-push", cwd=repo, env=env, check=False)
    assert out.returncode == 1 and "FAIL" in out.stderr
    env["PRE_COMMIT_REMOTE_BRANCH"] = "refs/heads/main"
    assert sh.gm("hook", "framework-pre-push", cwd=repo, env=env).returncode == 0


def test_another_installer_wrapping_ours(repo: Path, sh: Shell) -> None:
    # What pre-commit's `install` does to a hook it does not know: move it to .legacy.
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-push").rename(hooks / "pre-push.legacy")
    (hooks / "pre-push").write_text('#!/bin/sh\n"$0.legacy" "$@"\n')
    (hooks / "pre-push").chmod(0o755)
    out = sh.gm("install", cwd=repo)
    assert "runs ours as pre-push.legacy" in out.stderr
    assert MARKER in (hooks / "pre-push.legacy").read_text()
    sh.gm("uninstall", cwd=repo)
    assert not (hooks / "pre-push.legacy").exists() and (hooks / "pre-push").exists()


HEAVY = ("dvc", "dvc_data", "dvc_objects", "numpy", "sklearn", "matplotlib", "pygit2")


def test_gate_hooks_import_nothing_heavy(gated: Path, sh: Shell) -> None:
    released(sh, gated)
    sha = sh.git("rev-parse", "v1.1.0", cwd=gated).stdout.strip()
    probe = (
        "import sys, io\n"
        "from gitmodel.hooks import main\n"
        "sys.stdin = io.StringIO(sys.argv[2])\n"
        "code = main(sys.argv[1].split())\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(code, ','.join(heavy))\n"
    )
    cases = {
        "reference-transaction prepared": f"{sha} refs/tags/v1.0.1\n",
        "post-commit": "",
    }
    for hook, stdin in cases.items():
        out = sh.run([sys.executable, "-c", probe, hook, stdin], cwd=gated)
        code, heavy = (out.stdout.split() + [""])[:2]
        assert heavy == "", f"{hook} imported {heavy}"
    assert "1" == sh.run([sys.executable, "-c", probe, "reference-transaction prepared",
                          f"{sha} refs/tags/v1.0.1\n"], cwd=gated).stdout.split()[0]  # fmt: skip
