"""Notes travel with pushes and pulls and merge without loss (real git remotes)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Shell

from gitmodel.notes_sync import merge_note


def test_merge_note_key_by_key() -> None:
    base = {"metrics": {"acc": 0.9}, "created": "2026-01-01T00:00:00Z"}
    ours = {"metrics": {"acc": 0.9, "f1": 0.5}, "created": "2026-01-02T00:00:00Z"}
    theirs = {
        "metrics": {"acc": 0.9, "loss": 0.1},
        "params": {"lr": 1},
        "created": "2026-01-03T00:00:00Z",
    }
    merged, conflict = merge_note(base, ours, theirs)
    assert not conflict
    assert merged["metrics"] == {"acc": 0.9, "f1": 0.5, "loss": 0.1}
    assert merged["params"] == {"lr": 1}
    assert "history" not in merged


def test_merge_note_conflict_rule_keeps_the_loser() -> None:
    older = {"metrics": {"acc": 0.91}, "created": "2026-01-01T00:00:00Z", "source": "ci"}
    newer = {"metrics": {"acc": 0.93}, "created": "2026-01-02T00:00:00Z", "source": "laptop"}
    merged, conflict = merge_note(None, older, newer)
    assert conflict
    assert merged["metrics"]["acc"] == 0.93  # the later measurement wins
    assert merged["history"] == [
        {
            "path": ["metrics", "acc"],
            "value": 0.91,
            "created": "2026-01-01T00:00:00Z",
            "source": "ci",
        }
    ]
    # Same answer from the other side: two clones converge on identical notes.
    assert merge_note(None, newer, older)[0] == merged
    # One side changed a value, the other kept the base: no conflict, the change wins.
    merged, conflict = merge_note(older, older, newer)
    assert not conflict and merged["metrics"]["acc"] == 0.93 and "history" not in merged


def test_merge_note_keeps_both_histories() -> None:
    a = {
        "metrics": {"acc": 1},
        "created": "1",
        "history": [{"path": ["metrics", "acc"], "value": 0, "created": "0"}],
    }
    b = {"metrics": {"acc": 2}, "created": "2"}
    merged, _ = merge_note(None, a, b)
    assert [h["value"] for h in merged["history"]] == [0, 1]


def _clone(sh: Shell, origin: Path, dest: Path) -> Path:
    sh.git("clone", "-q", str(origin), str(dest), cwd=dest.parent)
    sh.gm("init", cwd=dest)
    return dest


def _note(sh: Shell, repo: Path, rev: str = "HEAD") -> dict:
    return json.loads(sh.git("notes", "--ref=metrics", "show", rev, cwd=repo).stdout)


def _put_note(sh: Shell, repo: Path, note: dict) -> None:
    """Replace HEAD's metrics note by hand, as another tool (or clone) would write it."""
    sh.git("notes", "--ref=metrics", "add", "-f", "-m", json.dumps(note), "HEAD", cwd=repo)


def test_two_clones_note_the_same_commit_and_both_pushes_succeed(
    sh: Shell, repo: Path, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    (repo / "train.py").write_text("train\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train", "--metric", "acc=0.9", cwd=repo)
    sh.git("push", "-q", "-u", "origin", "main", cwd=repo)
    sh.gm("push", cwd=repo)
    a = _clone(sh, origin, tmp_path / "a")
    b = _clone(sh, origin, tmp_path / "b")
    sh.gm("fetch", cwd=a)
    sh.gm("fetch", cwd=b)
    # Each clone evaluates the same commit differently, one also on another metric.
    _put_note(
        sh,
        a,
        {
            "schema": 1,
            "metrics": {"acc": 0.91, "f1": 0.7},
            "created": "2030-01-01T00:00:00Z",
            "source": "a",
        },
    )
    _put_note(
        sh,
        b,
        {
            "schema": 1,
            "metrics": {"acc": 0.95, "auc": 0.8},
            "created": "2030-01-02T00:00:00Z",
            "source": "b",
        },
    )
    # And new commits with their own notes, pushed with plain `git push` (the hook publishes notes).
    for clone, name in ((a, "a.txt"), (b, "b.txt")):
        (clone / name).write_text(name)
        sh.git("add", name, cwd=clone)
        sh.gm("commit", "-m", f"add {name}", "--metric", "acc=0.5", cwd=clone)
    sh.gm("push", cwd=a)
    sh.gm("push", cwd=b)  # the remote's notes moved on: fetched, merged, pushed
    sh.gm("fetch", cwd=a)
    first = sh.git("rev-parse", "HEAD~1", cwd=a).stdout.strip()
    for clone in (a, b):
        note = _note(sh, clone, first)
        assert note["metrics"] == {"acc": 0.95, "f1": 0.7, "auc": 0.8}
        assert note["history"][0]["value"] == 0.91 and note["history"][0]["source"] == "a"
    # Both clones' own new commits keep their notes on the remote.
    remote_notes = sh.git("notes", "--ref=metrics", "list", cwd=b).stdout
    assert sh.git("rev-parse", "HEAD", cwd=a).stdout.strip() in remote_notes
    assert sh.git("rev-parse", "HEAD", cwd=b).stdout.strip() in remote_notes
    # A real merge commit: both histories of notes stay reachable.
    parents = sh.git("rev-list", "--parents", "-n1", "refs/notes/metrics", cwd=b).stdout.split()
    assert len(parents) == 3
    assert (
        sh.git("rev-parse", "refs/notes/metrics", cwd=a).stdout
        == sh.git("ls-remote", str(origin), "refs/notes/metrics", cwd=a).stdout.split()[0] + "\n"
    )


def test_pre_push_publishes_notes_before_refs(sh: Shell, repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    hooks = Path(sh.git("rev-parse", "--git-path", "hooks", cwd=repo).stdout.strip())
    if not (repo / hooks / "pre-push").exists():
        import pytest

        pytest.skip("the pre-push hook is not installed by this build")
    (repo / "train.py").write_text("train\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train", "--metric", "acc=0.9", cwd=repo)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    local = sh.git("rev-parse", "refs/notes/metrics", cwd=repo).stdout.split()[0]
    remote = sh.git("ls-remote", str(origin), "refs/notes/metrics", cwd=repo).stdout.split()[0]
    assert local == remote
    # Another clone's notes moved the remote on: the next plain push merges them first.
    b = _clone(sh, origin, tmp_path / "b")
    sh.git("fetch", "-q", cwd=b)
    sh.gm("fetch", cwd=b)
    _put_note(
        sh,
        b,
        {"schema": 1, "metrics": {"acc": 0.9, "f1": 0.3}, "created": "2031-01-01T00:00:00Z"},
    )
    sh.gm("push", cwd=b)
    (repo / "x.txt").write_text("x")
    sh.git("add", "x.txt", cwd=repo)
    sh.gm("commit", "-m", "x", "--metric", "acc=0.92", cwd=repo)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    sh.gm("fetch", cwd=b)
    assert _note(sh, b, "HEAD")["metrics"] == {"acc": 0.9, "f1": 0.3}
    head = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    sh.git("fetch", "-q", cwd=b)
    assert _note(sh, b, head)["metrics"] == {"acc": 0.92}


def test_plain_git_pull_merges_notes(sh: Shell, repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.git("push", "-q", "-u", "origin", "main", cwd=repo)
    b = _clone(sh, origin, tmp_path / "b")
    hooks = Path(sh.git("rev-parse", "--git-path", "hooks", cwd=b).stdout.strip())
    if not (b / hooks / "post-merge").exists():
        import pytest

        pytest.skip("the post-merge hook is not installed by this build")
    (repo / "train.py").write_text("train\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train", "--metric", "acc=0.9", cwd=repo)
    sh.gm("push", cwd=repo)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    sh.git("pull", "-q", cwd=b)  # the fetch refspec brings the notes, post-merge merges them
    assert _note(sh, b)["metrics"] == {"acc": 0.9}
    assert "acc" in sh.git("log", "-1", cwd=b).stdout


def test_git_pull_rebase_merges_notes(sh: Shell, repo: Path, tmp_path: Path) -> None:
    """`git pull --rebase` (pull.rebase = true) runs no post-merge: the notes it fetched
    are merged all the same, and the rebased local commit keeps its own note."""
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    sh.git("push", "-q", "-u", "origin", "main", cwd=repo)
    b = _clone(sh, origin, tmp_path / "b")
    (repo / "train.py").write_text("train\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train", "--metric", "acc=0.9", cwd=repo)
    sh.gm("push", cwd=repo)
    sh.git("push", "-q", "origin", "main", cwd=repo)
    upstream = sh.git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    (b / "eval.py").write_text("evaluate\n")
    sh.git("add", "eval.py", cwd=b)
    sh.gm("commit", "-m", "local work", "--metric", "acc=0.8", cwd=b)
    pulled = sh.git("-c", "pull.rebase=true", "pull", "-q", cwd=b)
    assert "invalid" not in pulled.stderr, pulled.stderr
    assert sh.git("rev-parse", "HEAD~1", cwd=b).stdout.strip() == upstream
    assert _note(sh, b, upstream)["metrics"] == {"acc": 0.9}
    assert _note(sh, b)["metrics"] == {"acc": 0.8}
    rows = sh.gm("log", "--json", cwd=b).json()
    assert [r["metrics"]["acc"] for r in rows[:2]] == [0.8, 0.9], rows


def test_merge_notes_commit_three_way_with_fanout(sh: Shell, repo: Path) -> None:
    """Hundreds of notes (a fanned-out tree), additions, a deletion and a conflict."""
    import pygit2

    from gitmodel import notes_sync

    g = pygit2.Repository(str(repo / ".git"))
    sig = pygit2.Signature("t", "t@example.com")

    def note(value: float, created: str) -> pygit2.Oid:
        body = {"metrics": {"acc": value}, "created": created}
        return g.create_blob(json.dumps(body).encode())

    def commit(entries: dict[str, pygit2.Oid], parents: list[pygit2.Oid]) -> pygit2.Oid:
        return g.create_commit(
            None, sig, sig, "notes\n", notes_sync._write_tree(g, entries), parents
        )

    shas = [f"{i:040x}" for i in range(1, 301)]
    base_entries = {s: note(0.5, "2026-01-01") for s in shas}
    base = commit(base_entries, [])
    ours_entries = dict(base_entries)
    ours_entries.update({f"{i:040x}": note(0.6, "2026-01-02") for i in range(1000, 1010)})
    ours_entries[shas[0]] = note(0.7, "2026-01-02")
    theirs_entries = dict(base_entries)
    theirs_entries.update({f"{i:040x}": note(0.8, "2026-01-03") for i in range(2000, 2010)})
    theirs_entries[shas[0]] = note(0.9, "2026-01-03")
    del theirs_entries[shas[1]]
    ours = commit(ours_entries, [base])
    theirs = commit(theirs_entries, [base])
    sh.git("update-ref", "refs/notes/metrics", str(ours), cwd=repo)

    outcome = notes_sync.merge_notes_commit(repo / ".git", repo, str(theirs))
    assert outcome.action == "merged" and outcome.conflicts == [shas[0]]
    listed = sh.git("notes", "--ref=metrics", "list", cwd=repo).stdout.splitlines()
    assert len(listed) == 300 + 20 - 1
    merged = notes_sync._note_entries(g, outcome.commit)
    assert shas[1] not in merged  # deleted over there, unchanged here: deleted
    conflict = json.loads(g[merged[shas[0]]].data)
    assert conflict["metrics"]["acc"] == 0.9
    assert conflict["history"][0]["value"] == 0.7
    parents = sh.git("rev-list", "--parents", "-n1", "refs/notes/metrics", cwd=repo).stdout.split()
    assert parents[1:] == [str(ours), str(theirs)]
    sh.git("fsck", "--no-dangling", cwd=repo)
    # Merging the same commit again changes nothing.
    assert notes_sync.merge_notes_commit(repo / ".git", repo, str(theirs)).action == "up-to-date"


def test_server_sees_the_note_before_the_branch_moves(
    sh: Shell, repo: Path, tmp_path: Path
) -> None:
    """A server hook that demands the note of every pushed commit accepts a plain git push."""
    origin = tmp_path / "origin.git"
    sh.git("init", "-q", "--bare", str(origin), cwd=tmp_path)
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "while read old new ref; do\n"
        '  case "$ref" in refs/heads/*) git notes --ref=metrics show "$new" >/dev/null 2>&1 '
        '|| { echo "no note for $new" >&2; exit 1; } ;; esac\n'
        "done\n"
    )
    hook.chmod(0o755)
    sh.git("remote", "add", "origin", str(origin), cwd=repo)
    if not (repo / ".git" / "hooks" / "pre-push").exists():
        import pytest

        pytest.skip("the pre-push hook is not installed by this build")
    (repo / "train.py").write_text("train\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train", "--metric", "acc=0.9", cwd=repo)
    r = sh.git("push", "origin", "main", cwd=repo, check=False)
    assert r.returncode == 0, r.stderr
    r = sh.git("push", "--no-verify", "origin", "HEAD:refs/heads/other", cwd=repo, check=False)
    assert r.returncode == 0  # its note is on the server already
    # Control: without the hook a new commit arrives before its note, and the server says no.
    (repo / "train.py").write_text("train v2\n")
    sh.git("add", "train.py", cwd=repo)
    sh.gm("commit", "-m", "train v2", "--metric", "acc=0.91", cwd=repo)
    r = sh.git("push", "--no-verify", "origin", "main", cwd=repo, check=False)
    assert r.returncode != 0 and "no note for" in r.stderr
