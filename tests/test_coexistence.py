"""gitmodel beside the tools its users already run, driven for real: pre-commit (both
installation orders), git-lfs (including `install --force` over ours), husky-style
core.hooksPath, DVC's own gc, git worktrees, cherry-pick / revert / merge / switch and
git filter-repo. Nothing is lost, and a hook of ours that git will not run is never silent.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import BIN, Shell, write_bytes

from gitmodel.hooks import CLIENT_HOOKS, MARKER

LFS = shutil.which("git-lfs")
needs_lfs = pytest.mark.skipif(LFS is None, reason="git-lfs is not installed")


def hook_files(hooks: Path) -> dict[str, tuple[bytes, bool]]:
    """Every hook file (samples aside): name -> (bytes, executable)."""
    return {
        p.name: (p.read_bytes(), os.access(p, os.X_OK))
        for p in sorted(hooks.iterdir())
        if p.is_file() and not p.name.endswith(".sample")
    }


def ours_run(sh: Shell, repo: Path) -> None:
    """Git runs our shims: status and fsck say nothing about hooks."""
    status = sh.gm("status", cwd=repo)
    assert "hooks" not in status.stderr, status.stderr
    fsck = sh.gm("fsck", cwd=repo, check=False)
    assert "missing-hook" not in fsck.stdout, fsck.stdout


def project(sh: Shell, tmp_path: Path, name: str = "repo") -> tuple[Path, Path, Path]:
    """(repo, bare git remote, DVC remote dir) with a policy reading metrics.json."""
    repo = tmp_path / name
    repo.mkdir()
    sh.git("init", "-q", cwd=repo)
    (repo / "README.md").write_text("project\n")
    sh.git("add", "README.md", cwd=repo)
    sh.git("commit", "-q", "-m", "initial", cwd=repo)
    origin = tmp_path / f"{name}-origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    store = tmp_path / f"{name}-dvc-store"
    return repo, origin, store


def set_up_gitmodel(sh: Shell, repo: Path, store: Path) -> None:
    sh.gm("init", cwd=repo)
    (repo / ".gitmodel.toml").write_text('metrics-files = ["metrics.json"]\n')
    sh.gm("remote", "add", "store", str(store), "--default", cwd=repo)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "gitmodel", cwd=repo)


def on_dvc_remote(store: Path, md5: str) -> bool:
    return (store / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def train(sh: Shell, repo: Path, seed: int, accuracy: float) -> str:
    """A new model version through plain git (the hooks do the rest); its md5."""
    write_bytes(repo / "model.bin", 20_000, seed=seed)
    sh.gm("add", "model.bin", cwd=repo)
    (repo / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    sh.git("add", "metrics.json", cwd=repo)
    sh.git("commit", "-q", "-m", f"model {seed}", cwd=repo)
    pointer = (repo / "model.bin.dvc").read_text()
    return pointer.split("md5: ")[1].split()[0]


def note(sh: Shell, repo: Path, rev: str = "HEAD") -> dict | None:
    out = sh.git("notes", "--ref=refs/notes/metrics", "show", rev, cwd=repo, check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


# -- pre-commit ----------------------------------------------------------------------------

PRE_COMMIT_STAGES = ("pre-commit", "pre-push", "post-commit", "post-checkout", "post-merge")


def pre_commit_config(repo: Path, log: Path) -> None:
    """A local hook that logs each stage it runs in, plus gitmodel's framework gate."""
    (repo / "log-stage.sh").write_text(f'#!/bin/sh\necho "$1" >> "{log}"\n')
    (repo / "log-stage.sh").chmod(0o755)
    hooks = []
    for stage in PRE_COMMIT_STAGES:
        hooks.append(
            f"  - id: log-{stage}\n    name: log {stage}\n    entry: ./log-stage.sh {stage}\n"
            "    language: script\n    pass_filenames: false\n    always_run: true\n"
            f"    stages: [{stage}]\n"
        )
    hooks.append(
        "  - id: gitmodel-release-gate\n    name: gitmodel release gate\n"
        "    entry: git-model hook framework-pre-push\n    language: system\n"
        "    pass_filenames: false\n    always_run: true\n    stages: [pre-push]\n"
    )
    (repo / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n" + "".join(hooks)
    )


def pre_commit(sh: Shell, repo: Path, *args: str) -> None:
    types = [a for s in PRE_COMMIT_STAGES for a in ("--hook-type", s)]
    sh.run([str(BIN / "pre-commit"), *args, *types], cwd=repo)


def assert_both_run(sh: Shell, repo: Path, origin: Path, store: Path, log: Path, seed: int) -> None:
    """A commit and a push run pre-commit's hooks and ours, and nobody fails."""
    log.write_text("")
    md5 = train(sh, repo, seed, 0.5 + seed / 100)
    assert note(sh, repo)["metrics"] == {"accuracy": 0.5 + seed / 100}  # type: ignore[index]
    pushed = sh.git("push", "origin", "main", cwd=repo)
    assert "migration mode" not in pushed.stderr, pushed.stderr
    assert on_dvc_remote(store, md5)  # our pre-push uploaded the weights
    assert sh.git("ls-remote", str(origin), "refs/notes/metrics", cwd=repo).stdout.strip()
    sh.git("checkout", "-q", "-b", f"side-{seed}", cwd=repo)
    sh.git("checkout", "-q", "main", cwd=repo)
    stages = log.read_text().split()
    assert {"pre-commit", "post-commit", "pre-push", "post-checkout"} <= set(stages), stages
    ours_run(sh, repo)


@pytest.mark.parametrize("user_hook", [False, True], ids=["plain", "with-own-hook"])
def test_pre_commit_first_then_gitmodel(sh: Shell, tmp_path: Path, user_hook: bool) -> None:
    repo, origin, store = project(sh, tmp_path)
    log = tmp_path / "stages.log"
    hooks = repo / ".git" / "hooks"
    own_log = tmp_path / "own.log"
    if user_hook:  # a hook of the user's own, that pre-commit keeps as pre-push.legacy
        (hooks / "pre-push").write_text(f'#!/bin/sh\necho own "$1" >> "{own_log}"\n')
        (hooks / "pre-push").chmod(0o755)
    pre_commit_config(repo, log)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "pre-commit config", cwd=repo)
    pre_commit(sh, repo, "install")
    before = hook_files(hooks)
    set_up_gitmodel(sh, repo, store)
    # pre-commit's script stays where git runs it; ours is the .legacy it runs.
    assert hook_files(hooks)["pre-push"] == before["pre-push"]
    assert MARKER in (hooks / "pre-push.legacy").read_text()
    assert_both_run(sh, repo, origin, store, log, seed=1)
    if user_hook:
        assert own_log.read_text().split() == ["own", "origin"]
    # Installing again changes nothing; uninstall leaves exactly what pre-commit made.
    sh.gm("install", cwd=repo)
    assert_both_run(sh, repo, origin, store, log, seed=2)
    sh.gm("uninstall", cwd=repo)
    assert hook_files(hooks) == before


def test_gitmodel_first_then_pre_commit(sh: Shell, tmp_path: Path) -> None:
    repo, origin, store = project(sh, tmp_path)
    hooks = repo / ".git" / "hooks"
    log = tmp_path / "stages.log"
    own_log = tmp_path / "own.log"
    own = f'#!/bin/sh\necho own "$1" >> "{own_log}"\n'
    (hooks / "pre-push").write_text(own)
    (hooks / "pre-push").chmod(0o755)
    original = hook_files(hooks)
    set_up_gitmodel(sh, repo, store)
    pre_commit_config(repo, log)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "pre-commit config", cwd=repo)
    # pre-commit moves ours to .legacy; the user's own hook, kept by us, is not overwritten.
    pre_commit(sh, repo, "install")
    assert MARKER in (hooks / "pre-push.legacy").read_text()
    assert_both_run(sh, repo, origin, store, log, seed=1)
    assert own_log.read_text().split() == ["own", "origin"]
    sh.gm("install", cwd=repo)  # a refresh under pre-commit keeps its layout
    assert_both_run(sh, repo, origin, store, log, seed=2)
    # Each uninstalls its own; what was there first comes back byte for byte.
    pre_commit(sh, repo, "uninstall")
    assert MARKER in (hooks / "pre-push").read_text()
    sh.gm("uninstall", cwd=repo)
    assert hook_files(hooks) == original


def test_install_repairs_pre_commit_moved_aside(sh: Shell, tmp_path: Path) -> None:
    """What an older gitmodel did to pre-commit's scripts (every push then failed)."""
    repo, origin, store = project(sh, tmp_path)
    hooks = repo / ".git" / "hooks"
    log = tmp_path / "stages.log"
    pre_commit_config(repo, log)
    sh.git("add", "-A", cwd=repo)
    sh.git("commit", "-q", "-m", "pre-commit config", cwd=repo)
    pre_commit(sh, repo, "install")
    set_up_gitmodel(sh, repo, store)
    for hook in ("pre-push", "post-commit", "post-checkout", "post-merge"):
        os.replace(hooks / f"{hook}.legacy", tmp_path / "ours")
        os.replace(hooks / hook, hooks / f"{hook}.legacy")
        os.replace(tmp_path / "ours", hooks / hook)
    out = sh.gm("install", cwd=repo)
    assert "back in place" in out.stderr
    assert_both_run(sh, repo, origin, store, log, seed=3)


# -- git-lfs -------------------------------------------------------------------------------


@needs_lfs
def test_git_lfs_force_over_ours_is_loud_and_install_chains_it(sh: Shell, tmp_path: Path) -> None:
    repo, origin, store = project(sh, tmp_path)
    hooks = repo / ".git" / "hooks"
    set_up_gitmodel(sh, repo, store)
    sh.git("lfs", "install", "--local", "--force", cwd=repo)
    # Every command that relies on the hooks says so in one line; fsck fails.
    for args in (["status"], ["commit", "-m", "nothing", "--metric", "accuracy=0.1"]):
        out = sh.gm(*args, cwd=repo, check=False)
        lines = [line for line in out.stderr.splitlines() if "will not run" in line]
        assert len(lines) == 1 and "git-lfs" in lines[0] and "git model install" in lines[0]
    fsck = sh.gm("fsck", cwd=repo, check=False)
    assert fsck.returncode == 1 and "missing-hook" in fsck.stdout
    push = sh.gm("push", cwd=repo, check=False)
    assert "will not run gitmodel's hooks" in push.stderr

    sh.gm("install", cwd=repo)
    ours_run(sh, repo)
    # LFS and gitmodel both work on one push: an LFS file and weights reach their stores.
    sh.git("lfs", "track", "*.psd", cwd=repo)
    (repo / "art.psd").write_bytes(b"layered image" * 100)
    sh.git("add", ".gitattributes", "art.psd", cwd=repo)
    sh.git("commit", "-q", "-m", "art", cwd=repo)
    md5 = train(sh, repo, 4, 0.8)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    assert on_dvc_remote(store, md5)
    assert list((origin / "lfs" / "objects").rglob("*")), "git-lfs's pre-push did not run"

    # lfs --force again (its hook identical to the one kept): install drops the duplicate.
    sh.git("lfs", "install", "--local", "--force", cwd=repo)
    assert sh.gm("fsck", cwd=repo, check=False).returncode == 1
    out = sh.gm("install", cwd=repo)
    assert "already runs before ours" in out.stderr
    assert not (hooks / "pre-push.kept-by-gitmodel.2").exists()
    ours_run(sh, repo)
    # uninstall gives git-lfs its hooks back.
    sh.gm("uninstall", cwd=repo)
    for hook in ("pre-push", "post-commit", "post-checkout", "post-merge"):
        assert f"git lfs {hook}" in (hooks / hook).read_text()
    assert (
        not list(hooks.glob("*kept-by-gitmodel*"))
        and not (hooks / "reference-transaction").exists()
    )


@needs_lfs
def test_a_dead_legacy_hook_needs_force_and_uninstall_restores_both(
    sh: Shell, tmp_path: Path
) -> None:
    """git-lfs on top, and a .legacy beside it that nothing runs (an older gitmodel's)."""
    repo, origin, store = project(sh, tmp_path)
    hooks = repo / ".git" / "hooks"
    sh.git("lfs", "install", "--local", cwd=repo)
    (hooks / "pre-push.legacy").write_text("#!/bin/sh\necho old hook >&2\n")
    (hooks / "pre-push.legacy").chmod(0o755)
    before = hook_files(hooks)
    out = sh.gm("install", cwd=repo, check=False)
    assert out.returncode == 1 and "--force" in out.stderr
    assert "--force" in sh.gm("status", cwd=repo).stderr
    sh.gm("install", "--force", cwd=repo)
    ours_run(sh, repo)
    set_up_gitmodel(sh, repo, store)
    pushed = sh.git("push", "origin", "main", cwd=repo)
    assert "old hook" in pushed.stderr
    sh.gm("uninstall", cwd=repo)
    assert hook_files(hooks) == before


# -- husky-style core.hooksPath, hooks rewritten after us -----------------------------------

HUSKY_H = """#!/usr/bin/env sh
n=$(basename "$0")
s=$(dirname "$(dirname "$0")")/$n
[ ! -f "$s" ] && exit 0
sh -e "$s" "$@"
"""


def husky(repo: Path) -> Path:
    """husky 9's layout: core.hooksPath=.husky/_, one-liners that run .husky/<hook>."""
    d = repo / ".husky" / "_"
    d.mkdir(parents=True, exist_ok=True)
    (d / "h").write_text(HUSKY_H)
    for hook in ("pre-push", "post-commit", "post-checkout", "post-merge", "pre-commit"):
        (d / hook).write_text('#!/usr/bin/env sh\n. "$(dirname "$0")/h"\n')
        (d / hook).chmod(0o755)
    (d / ".gitignore").write_text("*\n")
    return d


def test_husky_hooks_path(sh: Shell, tmp_path: Path) -> None:
    repo, origin, store = project(sh, tmp_path)
    log = tmp_path / "husky.log"
    husky(repo)
    (repo / ".husky" / "pre-push").write_text(f'echo "husky pre-push $1" >> "{log}"\n')
    sh.git("config", "core.hooksPath", ".husky/_", cwd=repo)
    set_up_gitmodel(sh, repo, store)
    ours_run(sh, repo)
    md5 = train(sh, repo, 5, 0.7)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    assert on_dvc_remote(store, md5)
    assert log.read_text().split() == ["husky", "pre-push", "origin"]  # husky saw its name
    # `npm install` rewrites husky's hooks: loud, then one install chains them again.
    husky(repo)
    assert "husky" in sh.gm("status", cwd=repo).stderr
    sh.gm("install", cwd=repo)
    ours_run(sh, repo)
    # core.hooksPath set after install: git no longer looks where ours are.
    sh.git("config", "core.hooksPath", ".githooks", cwd=repo)
    warned = sh.gm("status", cwd=repo).stderr
    assert ".githooks" in warned and "missing" in warned


def test_deliberately_without_hooks_is_quiet(sh: Shell, tmp_path: Path) -> None:
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    sh.gm("uninstall", cwd=repo)
    assert "will not run" not in sh.gm("status", cwd=repo).stderr
    assert sh.gm("fsck", cwd=repo).returncode == 0
    sh.gm("install", cwd=repo)
    (repo / ".git" / "hooks" / "pre-push").unlink()
    assert "pre-push missing" in sh.gm("status", cwd=repo).stderr
    repaired = sh.gm("fsck", "--repair", cwd=repo)
    assert "hooks reinstalled" in repaired.stdout
    assert all(MARKER in (repo / ".git" / "hooks" / h).read_text() for h in CLIENT_HOOKS)


# -- DVC's gc and what only notes name --------------------------------------------------------

TRAIN = """\
import gitmodel
for epoch in range(4):
    gitmodel.log_metrics(step=epoch, loss=1.0 / (epoch + 1))
"""


def cache_object(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def commit_with_attachments(sh: Shell, repo: Path, seed: int) -> dict:
    """`git model commit` of a model with a training history and stored predictions."""
    (repo / "train.py").write_text(TRAIN)
    sh.run([str(BIN / "python"), "train.py"], cwd=repo)
    (repo / "y.json").write_text(json.dumps([0, 1, 1, 0, 1, 0, 1, 1]))
    (repo / "p.json").write_text(json.dumps([0, 1, 0, 0, 1, 0, 1, 1]))
    sh.gm(
        "eval", "--y-true", "y.json", "--y-pred", "p.json", "--task", "classification",
        "--store", cwd=repo,
    )  # fmt: skip
    write_bytes(repo / "model.bin", 30_000, seed=seed)
    sh.gm("commit", "model.bin", "-m", f"model {seed}", cwd=repo)
    return sh.gm("metrics", "--json", cwd=repo).json()


@pytest.mark.parametrize(
    "mode", [["-w"], ["-a", "-T"], ["-A", "-T", "-a"]], ids=["workspace", "branches-tags", "all"]
)
def test_dvc_gc_keeps_what_notes_name(sh: Shell, tmp_path: Path, mode: list[str]) -> None:
    repo, origin, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    note1 = commit_with_attachments(sh, repo, seed=1)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    note2 = commit_with_attachments(sh, repo, seed=2)  # not pushed yet
    kinds = ("training_history", "predictions")
    attachments = [n[k]["md5"] for n in (note1, note2) for k in kinds]
    sh.dvc("gc", *mode, "-f", cwd=repo)
    # Both histories stay readable, fsck is clean, and the push uploads the attachments of
    # the commit it publishes.
    for rev in ("HEAD", "HEAD~1"):
        assert sh.gm("plot", "--history", rev, "--json", cwd=repo).json()
    assert sh.gm("fsck", cwd=repo).returncode == 0
    sh.git("push", "-q", "origin", "main", cwd=repo)
    for md5 in attachments:
        assert on_dvc_remote(store, md5), md5
    # Our own gc keeps them too (notes name them), and real dvc gc again changes nothing.
    sh.gm("gc", "--grace", "0", cwd=repo)
    sh.dvc("gc", *mode, "-f", cwd=repo)
    assert sh.gm("fsck", cwd=repo).returncode == 0


def test_fsck_names_a_lost_attachment_by_commit_and_kind(sh: Shell, tmp_path: Path) -> None:
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    note = commit_with_attachments(sh, repo, seed=1)
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    md5 = note["training_history"]["md5"]
    for path in (repo / ".dvc" / "cache").rglob(md5[2:]):
        path.chmod(0o644)
        path.unlink()
    out = sh.gm("fsck", cwd=repo, check=False)
    assert out.returncode == 1
    line = next(line for line in out.stdout.splitlines() if md5 in line)
    assert line.startswith("missing-attachment:") and head[:12] in line
    assert "training history" in line


# -- worktrees ------------------------------------------------------------------------------


def test_worktrees_share_one_cache(sh: Shell, tmp_path: Path) -> None:
    repo, origin, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    train(sh, repo, 1, 0.7)
    v1 = (repo / "model.bin").read_bytes()
    wt = tmp_path / "wt"
    sh.git("worktree", "add", "-q", "-b", "experiment", str(wt), cwd=repo)
    assert (wt / "model.bin").read_bytes() == v1  # materialised from the one cache
    md5 = train(sh, wt, 2, 0.8)
    v2 = (wt / "model.bin").read_bytes()
    main_cache = repo / ".dvc" / "cache"
    assert cache_object(main_cache, md5).is_file()
    assert not (wt / ".dvc" / "cache" / "files").exists()
    # The real dvc in the worktree uses the same cache.
    assert Path(sh.dvc("cache", "dir", cwd=wt).stdout.strip()).resolve() == main_cache.resolve()
    (wt / "model.bin").unlink()
    sh.dvc("checkout", "-q", cwd=wt)
    assert (wt / "model.bin").read_bytes() == v2
    # A second worktree with weights only staged there: gc in the main one keeps them.
    wt2 = tmp_path / "wt2"
    sh.git("worktree", "add", "-q", "-b", "staged", str(wt2), cwd=repo)
    write_bytes(wt2 / "model.bin", 25_000, seed=3)
    staged = sh.gm("add", "model.bin", "--json", cwd=wt2).json()
    staged_md5 = staged[0]["md5"] if isinstance(staged, list) else staged["md5"]
    sh.gm("gc", "--grace", "0", cwd=repo)
    assert cache_object(main_cache, staged_md5).is_file()
    assert cache_object(main_cache, md5).is_file()
    # Removing a worktree removes no stored weights.
    sh.git("worktree", "remove", "--force", str(wt), cwd=repo)
    sh.git("checkout", "-q", "experiment", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v2
    assert sh.gm("status", "--json", cwd=repo).json()["modified"] == []


def test_a_worktree_that_had_its_own_cache_moves_it(sh: Shell, tmp_path: Path) -> None:
    """A worktree made before caches were shared: its objects join the shared cache."""
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    train(sh, repo, 1, 0.7)
    wt = tmp_path / "wt"
    sh.git(
        "-c", "core.hooksPath=/dev/null", "worktree", "add", "-q", "-b", "old", str(wt), cwd=repo
    )
    own = wt / ".dvc" / "cache" / "files" / "md5" / "ab" / ("c" * 30)
    own.parent.mkdir(parents=True)
    own.write_bytes(b"weights stored before sharing")
    sh.gm("status", cwd=wt)
    assert (repo / ".dvc" / "cache" / "files" / "md5" / "ab" / ("c" * 30)).is_file()
    assert not own.exists()
    assert "dir = " in (wt / ".dvc" / "config.local").read_text()


# -- commits git makes from other commits -------------------------------------------------------


def test_cherry_pick_revert_merge_switch_write_the_weights(sh: Shell, tmp_path: Path) -> None:
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    train(sh, repo, 1, 0.7)
    v1 = (repo / "model.bin").read_bytes()
    sh.git("checkout", "-q", "-b", "side", cwd=repo)
    train(sh, repo, 2, 0.8)
    v2 = (repo / "model.bin").read_bytes()
    sh.git("checkout", "-q", "main", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v1

    def clean() -> None:
        status = sh.gm("status", "--json", cwd=repo).json()
        assert status["modified"] == [] and status["missing"] == [], status

    sh.git("cherry-pick", "side", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v2
    clean()
    sh.git("revert", "--no-edit", "HEAD", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v1
    clean()
    # A merge that stops on a conflict in the pointer, resolved by taking theirs.
    sh.git("checkout", "-q", "-b", "other", "main~3", cwd=repo)
    train(sh, repo, 3, 0.9)
    v3 = (repo / "model.bin").read_bytes()
    sh.git("switch", "-q", "main", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v1
    clean()
    merged = sh.git("merge", "other", cwd=repo, check=False)
    assert merged.returncode != 0
    sh.git("checkout", "--theirs", "model.bin.dvc", "metrics.json", cwd=repo)
    sh.git("add", "model.bin.dvc", "metrics.json", cwd=repo)
    sh.git("commit", "-q", "--no-edit", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v3
    clean()
    # An object that is not in the cache: the pick succeeds and names what is missing.
    sh.git("checkout", "-q", "-b", "lost", "main", cwd=repo)
    md5 = train(sh, repo, 4, 0.95)
    sh.git("switch", "-q", "main", cwd=repo)
    obj = cache_object(repo / ".dvc" / "cache", md5)
    obj.chmod(0o644)
    obj.unlink()
    picked = sh.git("cherry-pick", "lost", cwd=repo)
    assert "model.bin" in picked.stderr and "not in the cache" in picked.stderr


def _status_clean(sh: Shell, repo: Path) -> None:
    status = sh.gm("status", "--json", cwd=repo).json()
    assert status["modified"] == [] and status["missing"] == [], status


def test_rebase_writes_the_weights_of_each_pick(sh: Shell, tmp_path: Path) -> None:
    """`git rebase` picks commits that change pointers: the work tree's weights follow,
    at the end and at an `edit` stop of `git rebase -i`, and each note stays right."""
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    train(sh, repo, 1, 0.7)
    sh.git("checkout", "-q", "-b", "side", cwd=repo)
    train(sh, repo, 2, 0.8)
    train(sh, repo, 3, 0.85)
    v3 = (repo / "model.bin").read_bytes()
    sh.git("checkout", "-q", "main", cwd=repo)
    (repo / "NOTES.txt").write_text("upstream moved on\n")
    sh.git("add", "NOTES.txt", cwd=repo)
    sh.git("commit", "-q", "-m", "docs", cwd=repo)
    sh.git("checkout", "-q", "side", cwd=repo)

    sh.git("rebase", "main", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v3
    _status_clean(sh, repo)
    assert note(sh, repo)["metrics"] == {"accuracy": 0.85}  # type: ignore[index]

    # An interactive rebase that stops to edit the first commit (model 2), onto a new base.
    v2 = sh.git("show", "HEAD~1:model.bin.dvc", cwd=repo).stdout
    sh.git("checkout", "-q", "main", cwd=repo)
    (repo / "NOTES.txt").write_text("upstream moved again\n")
    sh.git("commit", "-q", "-am", "more docs", cwd=repo)
    sh.git("checkout", "-q", "side", cwd=repo)
    editor = {"GIT_SEQUENCE_EDITOR": "sed -i '1s/^pick/edit/'"}
    stopped = sh.run(["git", "rebase", "-i", "main"], cwd=repo, env=dict(sh.env, **editor))
    assert "Stopped at" in stopped.stdout + stopped.stderr
    assert (repo / "model.bin.dvc").read_text() == v2
    _status_clean(sh, repo)
    sh.git("rebase", "--continue", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v3
    _status_clean(sh, repo)

    # In place (`rebase -i HEAD~2`): git fast-forwards to the commit it stops at, makes no
    # commit and runs no post-commit; the weights follow all the same, and on --abort.
    editor = {"GIT_SEQUENCE_EDITOR": "sed -i '1s/^pick/edit/'"}
    sh.run(["git", "rebase", "-i", "HEAD~2"], cwd=repo, env=dict(sh.env, **editor))
    assert (repo / "model.bin.dvc").read_text() == v2
    _status_clean(sh, repo)
    sh.git("rebase", "--abort", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v3
    _status_clean(sh, repo)
    sh.run(["git", "rebase", "-i", "HEAD~2"], cwd=repo, env=dict(sh.env, **editor))
    sh.git("rebase", "--continue", cwd=repo)
    assert (repo / "model.bin").read_bytes() == v3
    _status_clean(sh, repo)


# -- pointers byte for byte as `dvc add` writes them --------------------------------------------

NAMES = [
    "model.bin",
    "my model ün.bin",
    "日本語 モデル.bin",
    "emoji 🎉.pt",
    "with space.bin",
    "it's.bin",
    'dq"x.bin',
    "'quoted'",
    "yes",
    "no",
    "on",
    "Off",
    "y",
    "n",
    "true",
    "True",
    "null",
    "NULL",
    "~",
    "1e3",
    "0x10",
    "0o17",
    "123",
    "1_000",
    "1.5",
    "+1",
    ".inf",
    "NaN",
    "12:30",
    "2001-01-01",
    "a: b",
    "a #b",
    "#hash",
    "@at",
    "%pct",
    "&amp",
    "!bang",
    "[x]",
    "{x}",
    "a,b",
    "|pipe",
    ">gt",
    "`tick`",
    "tab\tx",
    " leading",
]


def test_pointers_byte_identical_to_dvc_add(sh: Shell, tmp_path: Path) -> None:
    ours, _, _ = project(sh, tmp_path, "ours")
    theirs, _, _ = project(sh, tmp_path, "theirs")
    sh.gm("init", cwd=ours)
    sh.dvc("init", "-q", cwd=theirs)
    for i, name in enumerate(NAMES):
        for repo in (ours, theirs):
            (repo / name).write_bytes(f"weights {i}\n".encode())
    sh.gm("add", *NAMES, cwd=ours)
    sh.dvc("add", "-q", *NAMES, cwd=theirs)
    for name in NAMES:
        mine = (ours / f"{name}.dvc").read_bytes()
        dvc = (theirs / f"{name}.dvc").read_bytes()
        assert mine == dvc, (name, mine, dvc)
    # And each reads the other's: gitmodel sees every DVC pointer's path as DVC wrote it.
    status = sh.gm("status", "--json", cwd=theirs).json()
    assert status == {"modified": [], "missing": [], "not_in_cache": []}, status
    for name in NAMES:
        (theirs / name).unlink()
    sh.gm("checkout", cwd=theirs)
    assert all(
        (theirs / name).read_bytes() == f"weights {i}\n".encode() for i, name in enumerate(NAMES)
    )
    sh.dvc("status", "-q", cwd=ours)


# -- git filter-repo -------------------------------------------------------------------------


def test_filter_repo_notes_follow_with_the_commit_map(sh: Shell, tmp_path: Path) -> None:
    repo, _, store = project(sh, tmp_path)
    set_up_gitmodel(sh, repo, store)
    for seed in (1, 2):
        (repo / "secret.txt").write_text(f"password {seed}\n")
        sh.git("add", "secret.txt", cwd=repo)
        train(sh, repo, seed, 0.6 + seed / 10)
    before = [row["metrics"] for row in sh.gm("log", "--json", cwd=repo).json()]
    assert {"accuracy": 0.8} in before
    sh.run(
        [str(BIN / "git-filter-repo"), "--force", "--invert-paths", "--path", "secret.txt"],
        cwd=repo,
    )
    assert not any(row["metrics"] for row in sh.gm("log", "--json", cwd=repo).json())
    found = sh.gm("fsck", cwd=repo, check=False)
    assert found.returncode == 1
    assert found.stdout.count("orphaned-note:") == 2 and "--repair" in found.stdout
    sh.gm("fsck", "--repair", cwd=repo)
    assert [row["metrics"] for row in sh.gm("log", "--json", cwd=repo).json()] == before
    assert sh.gm("fsck", cwd=repo).returncode == 0
    # A rewrite that left no map (an amend whose old commit is then pruned): named.
    (repo / ".git" / "filter-repo" / "commit-map").unlink()
    sh.git("commit", "-q", "--amend", "-m", "reworded", cwd=repo)
    sh.git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    sh.git("gc", "-q", "--prune=now", cwd=repo)
    named = sh.gm("fsck", cwd=repo, check=False)
    orphans = [line for line in named.stdout.splitlines() if line.startswith("orphaned-note:")]
    assert len(orphans) == 1 and "no longer has" in orphans[0], named.stdout
