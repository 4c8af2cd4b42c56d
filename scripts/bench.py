#!/usr/bin/env python3
"""Side-by-side benchmark of gitmodel against md5sum, cp, dvc and plain git.

Generates its own data in a temporary directory, runs every comparison in one go
(alternating the contenders, several runs each, medians) and prints two Markdown tables:
the timings, and the targets of issues 6 (big files, hooks, log) and 17 (50,000 files of
8 KiB) with what was measured against them.

    python scripts/bench.py               # the issues' sizes: 1 GiB file, 8 x 128 MiB shards,
                                          # 50,000 x 8 KiB files, ...
    python scripts/bench.py --only files  # only the many-small-files rows
    python scripts/bench.py --only hooks  # only what the hooks add to plain git (a minute)
    python scripts/bench.py --full        # also the 200,000-file peak-memory row
    python scripts/bench.py --quick       # small sizes: a sanity run of a minute or two

Run it with the Python of the environment gitmodel is installed in: `git model` is found
next to that interpreter (as is `dvc`, unless --dvc names another one).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
# GNU time measures each command's peak memory (see Bench.timed); without it, no RSS.
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass(frozen=True)
class Sizes:
    file_bytes: int
    shard_bytes: int
    shards: int
    commits: int
    releases: int
    runs: int  # runs of each contender on the big-data rows
    small_runs: int  # runs of the quick commands (status, log, hooks, help)
    files: int = 50_000  # the many-files rows: files of 8 KiB in 100 directories
    files_runs: int = 3  # runs of each contender on the many-files rows
    huge_files: int = 200_000  # the peak-memory row that only --full runs


FULL = Sizes(1024 * MiB, 128 * MiB, 8, 5000, 1000, runs=5, small_runs=15)
QUICK = Sizes(16 * MiB, 4 * MiB, 4, 200, 30, runs=3, small_runs=3, files=400, files_runs=1)
QUICK = Sizes(**{**QUICK.__dict__, "huge_files": 2000})
SMALL_FILE = 8 * 1024
# ext4 without a journal (this VM's root filesystem) prefers not to hand out again an
# inode freed in the last 60 s, or 360 s while its inode table block is dirty
# (fs/ext4/ialloc.c: recently_deleted(), RECENTCY_MIN and RECENTCY_DIRTY): every new
# file's allocation looks up each such inode of its block group and walks past it. Created
# right after an `rm -rf` of 50,000 files, 50,000 files cost the kernel several times its
# usual system time, in whichever tool creates them. A command that creates files dirties
# the very table blocks it allocates in, so the 360 s apply however long ago a `sync` was:
# no timed many-files row starts within this long of a mass delete (docs/performance.md).
INODE_REUSE_WINDOW = 365.0


@dataclass
class Sample:
    seconds: float
    max_rss_kib: int
    ok: bool
    error: str = ""
    cpu_seconds: float = 0.0  # user + system, of the child and its waited-for descendants
    # What the run cost the server behind it (S3 rows): requests by kind, its CPU seconds.
    requests: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0


@dataclass
class Contender:
    label: str
    argv: list[str]
    cwd: Path
    setup: Callable[[], None] | None = None  # untimed, before every run
    samples: list[Sample] = field(default_factory=list)
    skip: str = ""  # reason this contender cannot run here
    ok_codes: tuple[int, ...] = (0,)  # `dvc status -q` exits 1 when it finds a change
    # Read before and after each run: (requests so far by kind, server CPU seconds so far).
    probe: Callable[[], tuple[dict[str, int], float]] | None = None

    def median(self) -> float | None:
        good = [s.seconds for s in self.samples if s.ok]
        return statistics.median(good) if good else None

    def max_rss_mib(self) -> float | None:
        good = [s.max_rss_kib for s in self.samples if s.ok and s.max_rss_kib]
        return max(good) / 1024 if good else None

    def failure(self) -> str:
        bad = [s.error for s in self.samples if not s.ok]
        return bad[0] if bad else ""


@dataclass
class Row:
    work: str
    contenders: list[Contender]
    runs: int
    skip: str = ""

    def get(self, label: str) -> Contender:
        return next(c for c in self.contenders if c.label == label)


@dataclass
class Target:
    work: str
    target: str
    measure: Callable[[], tuple[str, bool | None]]  # (what was measured, met?) None = n/a


REMOTE_KINDS = ("local", "ssh", "s3")


class Bench:
    def __init__(
        self,
        workdir: Path,
        sizes: Sizes,
        dvc: str | None,
        verbose: bool,
        only: str = "all",
        full: bool = False,
    ) -> None:
        self.dir = workdir
        self.sizes = sizes
        self.dvc = dvc
        self.verbose = verbose
        # Which remotes the push and pull rows use (--remotes): 50,000 files over ssh and
        # moto's S3 take dvc an hour on 2 cores, so a run may keep to the local remote.
        self.remotes: tuple[str, ...] = REMOTE_KINDS
        self.only = only  # "all", "files" (the many-files rows), "hooks", or "big" (the others)
        self.full = full  # also the 200,000-file row
        bindir = Path(sys.executable).parent
        home = workdir / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
            "[gc]\n\tauto = 0\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITMODEL_"))}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
            DVC_NO_ANALYTICS="1",
            DVC_NO_UPDATER="1",
            LC_ALL="C.UTF-8",
            NO_COLOR="1",
        )
        self.env = env
        self.rows: list[Row] = []
        self.targets: list[Target] = []
        # What the timed many-files rows take out of the way goes here (a rename on the
        # same filesystem, not a delete); it is removed after the last of them.
        self.pile = workdir / "discarded"
        self.piled = 0
        self.no_journal = _ext4_without_journal(workdir)
        # When the last mass delete ended; anything removed before the bench counts as now.
        self.freed_at = time.monotonic()

    # -- running ----------------------------------------------------------------------------

    def sh(self, argv: Sequence[str], cwd: Path, input: bytes | None = None) -> str:
        """Run an untimed setup command; fail loudly, since a broken setup breaks the numbers."""
        proc = subprocess.run(list(argv), cwd=cwd, env=self.env, input=input, capture_output=True)
        if proc.returncode != 0:
            raise SystemExit(
                f"bench setup failed: {' '.join(argv)} (exit {proc.returncode}): "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc.stdout.decode(errors="replace")

    def timed(self, argv: Sequence[str], cwd: Path, ok_codes: Sequence[int] = (0,)) -> Sample:
        """Wall time, CPU time and peak RSS of a command (and every descendant it waited for).

        Peak RSS comes from GNU time run as the parent: a child forked straight from this
        (large) Python would report this process's memory as its own high-water mark.
        """
        rss_file = self.dir / "rss.txt"
        wrapper = [TIME_BIN, "-f", "%M", "-o", str(rss_file)] if TIME_BIN else []
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*wrapper, *argv],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        ok = proc.returncode in ok_codes
        msg = "" if ok else (err.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        cpu = usage.ru_utime + usage.ru_stime
        try:
            rss = int(rss_file.read_text().split()[-1]) if TIME_BIN else 0
        except (OSError, ValueError, IndexError):
            rss = 0
        return Sample(elapsed, rss, ok, f"exit {proc.returncode}: {msg}", cpu)

    def run_row(self, row: Row) -> None:
        self.rows.append(row)
        active = [c for c in row.contenders if not c.skip]
        if row.skip or not active:
            return
        for r in range(row.runs):
            # Rotate the order each round so no contender always runs right after another
            # one's writeback or always gets the coolest cache.
            order = active[r % len(active) :] + active[: r % len(active)]
            for c in order:
                if c.setup:
                    c.setup()
                # Flush every dirty page first (untimed): otherwise whoever runs after a
                # big write pays for its writeback through the kernel's dirty throttling.
                os.sync()
                before = c.probe() if c.probe else None
                sample = self.timed(c.argv, c.cwd, c.ok_codes)
                if c.probe and before:
                    after = c.probe()
                    sample.requests = {
                        k: n - before[0].get(k, 0)
                        for k, n in after[0].items()
                        if n > before[0].get(k, 0)
                    }
                    sample.server_cpu = after[1] - before[1]
                c.samples.append(sample)
                if self.verbose:
                    state = f"{sample.seconds:.3f}s" if sample.ok else sample.error
                    print(f"  {row.work} / {c.label}: {state}", file=sys.stderr, flush=True)

    # -- data -------------------------------------------------------------------------------

    def random_file(self, path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 64 * MiB)
                f.write(os.urandom(n))
                left -= n

    def new_repo(self, name: str, gitmodel: bool = True) -> Path:
        path = self.dir / name
        path.mkdir()
        self.sh(["git", "init", "-q"], path)
        (path / "README.txt").write_text("bench\n")
        self.sh(["git", "add", "README.txt"], path)
        self.sh(["git", "commit", "-q", "-m", "init"], path)
        if gitmodel:
            self.sh(["git", "model", "init"], path)
            self.sh(["git", "commit", "-q", "-m", "git model init"], path)
        return path

    def dvc_repo(self, name: str) -> Path:
        path = self.new_repo(name, gitmodel=False)
        if self.dvc:
            self.sh([self.dvc, "init", "-q"], path)
            self.sh(["git", "commit", "-q", "-m", "dvc init"], path)
        return path

    def fast_import_history(
        self, repo: Path, commits: int, tags: int, accuracy: Callable[[int], float]
    ) -> None:
        """`commits` commits on main, each with a metrics note; the first `tags` are releases."""
        out: list[str] = []
        stamp = 1_700_000_000
        branch = self.sh(["git", "symbolic-ref", "HEAD"], repo).strip()
        head = self.sh(["git", "rev-parse", "HEAD"], repo).strip()
        for i in range(1, commits + 1):
            content = f"step {i}\n"
            msg = f"train step {i}\n"
            out += [
                f"commit {branch}",
                f"mark :{i}",
                f"committer Bench <bench@example.com> {stamp + i} +0000",
                f"data {len(msg)}",
                msg.rstrip("\n"),
            ]
            if i == 1:
                out.append(f"from {head}")
            out += ["M 100644 inline train.log", f"data {len(content)}", content.rstrip("\n"), ""]
        msg = "metrics notes\n"
        out += [
            "commit refs/notes/metrics",
            f"committer Bench <bench@example.com> {stamp + commits + 1} +0000",
            f"data {len(msg)}",
            msg.rstrip("\n"),
        ]
        for i in range(1, commits + 1):
            acc = round(accuracy(i), 6)
            metrics = json.dumps({"accuracy": acc, "loss": round(1 - acc, 6)})
            note = (
                f'{{"schema": 1, "metrics": {metrics}, "weights": {{}},'
                ' "created": "2026-01-01T00:00:00Z", "source": "bench", "tool": "bench"}\n'
            )
            out += [f"N inline :{i}", f"data {len(note.encode())}", note.rstrip("\n")]
        out.append("")
        for i in range(1, tags + 1):
            msg = f"release v1.{i}.0\n"
            out += [
                f"tag v1.{i}.0",
                f"from :{i}",
                f"tagger Bench <bench@example.com> {stamp + i} +0000",
                f"data {len(msg)}",
                msg.rstrip("\n"),
                "",
            ]
        self.sh(["git", "fast-import", "--quiet"], repo, input=("\n".join(out) + "\n").encode())
        self.sh(["git", "reset", "-q", "--hard", branch], repo)

    # -- the comparisons --------------------------------------------------------------------

    def gm_fresh(self, repo: Path) -> Callable[[], None]:
        def setup() -> None:
            shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
            shutil.rmtree(repo / ".dvc" / "tmp" / "gitmodel", ignore_errors=True)

        return setup

    def dvc_fresh(self, repo: Path) -> Callable[[], None]:
        def setup() -> None:
            shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
            shutil.rmtree(repo / ".dvc" / "tmp", ignore_errors=True)

        return setup

    def removing(self, *paths: Path) -> Callable[[], None]:
        def setup() -> None:
            for p in paths:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif os.path.lexists(p):
                    p.unlink()

        return setup

    def discarding(self, *paths: Path) -> Callable[[], None]:
        """A setup that takes paths away as `rm -rf` does for the command that runs next.

        They are renamed into a pile on the same filesystem instead, removed after the
        last timed many-files row (drop_pile): so a timed command never creates its
        files among inodes the kernel freed minutes before (INODE_REUSE_WINDOW).
        """

        def setup() -> None:
            for p in paths:
                if os.path.lexists(p):
                    self.pile.mkdir(exist_ok=True)
                    self.piled += 1
                    os.rename(p, self.pile / f"{self.piled}-{p.name}")

        return setup

    def drop_pile(self) -> None:
        if self.pile.exists():
            shutil.rmtree(self.pile)
            self.freed_at = time.monotonic()

    def settle(self, before: str) -> None:
        """Wait out the inode-reuse window of the last mass delete (INODE_REUSE_WINDOW).

        Only ext4 without a journal has the window. Below a few thousand files (--quick)
        the walk costs next to nothing, and nothing waits.
        """
        self.drop_pile()
        os.sync()
        if not self.no_journal or self.sizes.files < 5_000:
            return
        left = self.freed_at + INODE_REUSE_WINDOW - time.monotonic()
        if left > 0:
            print(
                f"bench: waiting {left:.0f} s before {before}: {self.no_journal} is ext4 "
                "without a journal, where a file created within 6 minutes of a mass delete "
                "costs the kernel a walk past every inode freed there (fs/ext4/ialloc.c, "
                "recently_deleted; see docs/performance.md)",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(left)

    def run(self) -> None:
        if self.only in ("all", "big"):
            self.run_big()
        if self.only in ("all", "files"):
            self.run_files()
        if self.only == "hooks":
            self.targets += self.hook_targets(*self.run_hooks())
        if self.only == "remotes":
            self.run_remotes()

    def file_tree(self, root: Path, n: int) -> None:
        """n files of 8 KiB of random bytes in 100 directories (an image data set's shape)."""
        for d in range(100):
            (root / f"d{d:03d}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            with open(root / f"d{i % 100:03d}" / f"img{i:06d}.jpg", "wb") as f:
                f.write(os.urandom(SMALL_FILE))

    def changing(self, path: Path) -> Callable[[], None]:
        """A setup that gives one file new content of the same size before every run."""

        def setup() -> None:
            os.chmod(path, 0o644)
            path.write_bytes(os.urandom(SMALL_FILE))

        return setup

    def run_files(self) -> None:
        """The many-small-files rows (issue 17): every command on one 8 KiB-file data set."""
        s = self.sizes
        n = s.files
        label = f"{n:,} x 8 KiB"
        dvc_skip = "" if self.dvc else "n/a: dvc not found"
        gm = ["git", "model"]
        dvc = [self.dvc or "dvc"]
        runs = s.files_runs

        self.log(f"generating {label} files ...")
        g = self.new_repo("gm-files")
        d = self.dvc_repo("dvc-files")
        p = self.new_repo("git-files", gitmodel=False)
        self.file_tree(g / "data", n)
        for other in (d, p):
            self.sh(["cp", "-r", str(g / "data"), str(other / "data")], self.dir)
        copy_dst = self.dir / "copy-data"

        self.settle("the fresh add")
        self.log("files: add")
        add = Row(
            f"add {label} files, fresh",
            [
                Contender(
                    "md5sum",
                    ["sh", "-c", "find data -type f -print0 | xargs -0 md5sum >/dev/null"],
                    g,
                ),
                Contender(
                    "cp -r", ["cp", "-r", "data", str(copy_dst)], g, self.discarding(copy_dst)
                ),
                Contender(
                    "dvc add",
                    [*dvc, "add", "-q", "data"],
                    d,
                    self.discarding(d / ".dvc" / "cache", d / ".dvc" / "tmp"),
                    skip=dvc_skip,
                ),
                Contender(
                    "git model add",
                    [*gm, "add", "data"],
                    g,
                    self.discarding(g / ".dvc" / "cache", g / ".dvc" / "tmp" / "gitmodel"),
                ),
            ],
            runs,
        )
        self.run_row(add)
        self.discarding(copy_dst)()
        self.sh(["git", "commit", "-q", "-m", "data"], g)
        if self.dvc:
            self.sh(["git", "add", "data.dvc", ".gitignore"], d)
            self.sh(["git", "commit", "-q", "-m", "data"], d)
        # The same tree committed to plain git: what `git status` and `git checkout` cost.
        self.sh(["git", "add", "data"], p)
        self.sh(["git", "commit", "-q", "-m", "data"], p)

        self.log("files: re-add, status")
        readd = Row(
            f"re-add {label} files, nothing changed",
            [
                Contender("dvc add", [*dvc, "add", "-q", "data"], d, skip=dvc_skip),
                Contender("git model add", [*gm, "add", "data"], g),
            ],
            runs + 2,
        )
        self.run_row(readd)
        status = Row(
            f"status {label} files, nothing changed",
            [
                Contender("git status", ["git", "status", "--short"], p),
                Contender("dvc status", [*dvc, "status", "-q"], d, skip=dvc_skip),
                Contender("git model status", [*gm, "status"], g),
            ],
            runs + 2,
        )
        self.run_row(status)
        one = "d042/img000042.jpg"
        readd1 = Row(
            f"re-add {label} files, one changed",
            [
                Contender(
                    "dvc add",
                    [*dvc, "add", "-q", "data"],
                    d,
                    self.changing(d / "data" / one),
                    skip=dvc_skip,
                ),
                Contender(
                    "git model add", [*gm, "add", "data"], g, self.changing(g / "data" / one)
                ),
            ],
            runs + 2,
        )
        self.run_row(readd1)
        status1 = Row(
            f"status {label} files, one changed",
            [
                Contender(
                    "dvc status",
                    [*dvc, "status", "-q"],
                    d,
                    self.changing(d / "data" / one),
                    skip=dvc_skip,
                    ok_codes=(0, 1),
                ),
                Contender("git model status", [*gm, "status"], g, self.changing(g / "data" / one)),
            ],
            runs + 2,
        )
        self.run_row(status1)
        # Store the last change, so that the work tree and the commit agree again.
        self.sh([*gm, "add", "data"], g)
        self.sh(["git", "commit", "-q", "-am", "one file changed"], g)
        if self.dvc:
            self.sh([*dvc, "add", "-q", "data"], d)
            self.sh(["git", "commit", "-q", "-am", "one file changed"], d)

        self.log("files: checkout")
        checkout = Row(
            f"checkout {label} files after rm -rf",
            [
                Contender(
                    "cp -r", ["cp", "-r", "data", str(copy_dst)], g, self.discarding(copy_dst)
                ),
                Contender(
                    "git checkout",
                    ["git", "checkout", "--", "data"],
                    p,
                    self.discarding(p / "data"),
                ),
                Contender(
                    "dvc checkout",
                    [*dvc, "checkout", "-q"],
                    d,
                    self.discarding(d / "data"),
                    skip=dvc_skip,
                ),
                Contender("git model checkout", [*gm, "checkout"], g, self.discarding(g / "data")),
            ],
            runs,
        )
        self.run_row(checkout)
        self.discarding(copy_dst, p)()

        transfers = self.run_transfers(g, d, label, runs)
        # Only now: a delete of the pile would have put every row above in the window.
        self.drop_pile()
        self.removing(g, d)()

        huge = None
        if self.full:
            m = s.huge_files
            self.log(f"generating {m:,} x 8 KiB files ...")
            h = self.new_repo("gm-huge")
            self.file_tree(h / "data", m)
            huge = Row(
                f"add {m:,} x 8 KiB files, fresh",
                [Contender("git model add", [*gm, "add", "data"], h, self.gm_fresh(h))],
                1,
            )
            self.run_row(huge)
            self.removing(h)()
        self.targets += self.files_targets(
            add, readd, status, readd1, status1, checkout, transfers, huge
        )

    def run_remotes(self) -> None:
        """Only the push and pull rows of the many-files data set (added untimed)."""
        n, gm, dvc = self.sizes.files, ["git", "model"], [self.dvc or "dvc"]
        label = f"{n:,} x 8 KiB"
        self.log(f"generating {label} files ...")
        g = self.new_repo("gm-files")
        d = self.dvc_repo("dvc-files")
        self.file_tree(g / "data", n)
        self.sh([*gm, "add", "data"], g)
        self.sh(["git", "commit", "-q", "-m", "data"], g)
        if self.dvc:
            self.sh(["cp", "-r", str(g / "data"), str(d / "data")], self.dir)
            self.sh([*dvc, "add", "-q", "data"], d)
            self.sh(["git", "add", "data.dvc", ".gitignore"], d)
            self.sh(["git", "commit", "-q", "-m", "data"], d)
        self.targets += transfer_targets(self.run_transfers(g, d, label, self.sizes.files_runs))
        self.removing(g, d)()

    def run_transfers(self, g: Path, d: Path, label: str, runs: int) -> list[tuple[Row, Row]]:
        """push, then pull, of the files to a local, an ssh and an S3 remote, dvc beside.

        sshd and moto's S3 server run for these rows only (scripts/bench_servers.py); a
        kind whose server is missing here gets rows that say why they were skipped."""
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_servers import Servers  # beside this file

        gm, dvc = ["git", "model"], [self.dvc or "dvc"]
        dvc_skip = "" if self.dvc else "n/a: dvc not found"
        pushes: list[Row] = []
        pulls: list[Row] = []
        with Servers(self.dir, self.env) as servers:
            servers.kinds = [k for k in servers.kinds if k.kind in self.remotes]
            for k in servers.kinds:
                if not k.skip:
                    self.sh([*gm, "remote", "add", k.kind, k.urls["gm"]], g)
                    for key, value in k.options.items():
                        self.sh([*gm, "remote", "modify", k.kind, key, value], g)
                    if self.dvc:
                        self.sh([*dvc, "remote", "add", k.kind, k.urls["dvc"]], d)
                        for key, value in k.options.items():
                            self.sh([*dvc, "remote", "modify", k.kind, key, value], d)
            record = g / ".dvc" / "tmp" / "gitmodel" / "remotes"

            def emptied(k: Any, who: str, *paths: Path) -> Callable[[], None]:
                remove = self.removing(*paths)

                def setup() -> None:
                    k.clear(who)
                    remove()

                return setup

            def probe_of(k: Any, who: str) -> Callable[[], tuple[dict[str, int], float]] | None:
                probe = k.probe
                return (lambda: probe(who)) if probe else None

            # Every push first, while the cache holds every commit's objects (a pull
            # brings only the work tree's), then every pull from what was pushed.
            for k in servers.kinds:
                self.log(f"files: push ({k.kind})")
                push = Row(
                    f"push {label} files to {k.title} DVC remote",
                    [
                        Contender(
                            "dvc push",
                            [*dvc, "push", "-q", "-r", k.kind],
                            d,
                            emptied(k, "dvc"),
                            skip=dvc_skip,
                            probe=probe_of(k, "dvc"),
                        ),
                        Contender(
                            "git model push",
                            [*gm, "push", "-r", k.kind],
                            g,
                            emptied(k, "gm", record),
                            probe=probe_of(k, "gm"),
                        ),
                    ],
                    runs,
                    skip=k.skip,
                )
                self.run_row(push)
                pushes.append(push)
            for k in servers.kinds:
                self.log(f"files: pull ({k.kind})")
                pull = Row(
                    f"pull {label} files into an empty cache from {k.title} DVC remote",
                    [
                        Contender(
                            "dvc pull",
                            [*dvc, "pull", "-q", "-r", k.kind],
                            d,
                            self.removing(d / "data", d / ".dvc" / "cache", d / ".dvc" / "tmp"),
                            skip=dvc_skip,
                            probe=probe_of(k, "dvc"),
                        ),
                        Contender(
                            "git model pull",
                            [*gm, "pull", "-r", k.kind],
                            g,
                            self.removing(g / "data", g / ".dvc" / "cache", g / ".dvc" / "tmp"),
                            probe=probe_of(k, "gm"),
                        ),
                    ],
                    runs,
                    skip=k.skip,
                )
                self.run_row(pull)
                pulls.append(pull)
                if not k.skip:
                    k.clear("gm")
                    k.clear("dvc")
        return list(zip(pushes, pulls, strict=True))

    def files_targets(
        self,
        add: Row,
        readd: Row,
        status: Row,
        readd1: Row,
        status1: Row,
        checkout: Row,
        transfers: list[tuple[Row, Row]],
        huge: Row | None,
    ) -> list[Target]:
        gm_add, gm_status = "git model add", "git model status"
        targets = [
            Target(add.work, "<= 0.2x dvc add", _ratio(add, gm_add, "dvc add", 0.2)),
            Target(readd.work, "<= 0.1x dvc add", _ratio(readd, gm_add, "dvc add", 0.1)),
            Target(status.work, "<= 0.1x dvc status", _ratio(status, gm_status, "dvc status", 0.1)),
            Target(status.work, "<= 3x git status", _ratio(status, gm_status, "git status", 3)),
            Target(readd1.work, "<= 0.5 s", _absolute(readd1, gm_add, 0.5)),
            Target(status1.work, "<= 0.5 s", _absolute(status1, gm_status, 0.5)),
            Target(
                checkout.work,
                "<= 0.3x dvc checkout",
                _ratio(checkout, "git model checkout", "dvc checkout", 0.3),
            ),
            Target(f"peak memory, {add.work}", "<= 100 MiB", _memory(add, gm_add, 100)),
        ]
        targets += transfer_targets(transfers)
        if huge is not None:
            targets.append(
                Target(f"peak memory, {huge.work}", "<= 100 MiB", _memory(huge, gm_add, 100))
            )
        return targets

    def run_big(self) -> None:
        s = self.sizes
        big_label = _size(s.file_bytes)
        dvc_skip = "" if self.dvc else "n/a: dvc not found"
        gm = ["git", "model"]
        dvc = [self.dvc or "dvc"]

        self.log(f"generating {big_label} of random data ...")
        g = self.new_repo("gm")
        d = self.dvc_repo("dvc")
        self.random_file(g / "big.bin", s.file_bytes)
        self.sh(["cp", str(g / "big.bin"), str(d / "big.bin")], self.dir)
        copy_dst = self.dir / "copy.bin"

        # 1. fresh store of one big file.
        self.log("store: fresh")
        store = Row(
            f"store {big_label}, fresh",
            [
                Contender("md5sum", ["md5sum", "big.bin"], g),
                Contender("cp", ["cp", "big.bin", str(copy_dst)], g, self.removing(copy_dst)),
                Contender(
                    "dvc add", [*dvc, "add", "-q", "big.bin"], d, self.dvc_fresh(d), skip=dvc_skip
                ),
                Contender("git model add", [*gm, "add", "big.bin"], g, self.gm_fresh(g)),
                # Durable like git's objects when git is told to be (core.fsync): the
                # disk's write speed, not hashing, sets this one.
                Contender(
                    "git model add, core.fsync=loose-object",
                    ["git", "-c", "core.fsync=loose-object", "model", "add", "big.bin"],
                    g,
                    self.gm_fresh(g),
                ),
            ],
            s.runs,
        )
        self.run_row(store)
        self.removing(copy_dst)()
        self.sh(["git", "commit", "-q", "-m", "weights"], g)
        if self.dvc:
            self.sh(["git", "add", "big.bin.dvc", ".gitignore"], d)
            self.sh(["git", "commit", "-q", "-m", "weights"], d)

        # 2. no-op re-add, 3. status.
        self.log("re-add, status")
        readd = Row(
            f"re-add unchanged {big_label}",
            [
                Contender("dvc add", [*dvc, "add", "-q", "big.bin"], d, skip=dvc_skip),
                Contender("git model add", [*gm, "add", "big.bin"], g),
            ],
            s.small_runs,
        )
        self.run_row(readd)
        status = Row(
            f"status, {big_label} tracked",
            [
                Contender("git status", ["git", "status", "--short"], g),
                Contender("dvc status", [*dvc, "status", "-q"], d, skip=dvc_skip),
                Contender("git model status", [*gm, "status"], g),
            ],
            s.small_runs,
        )
        self.run_row(status)

        # 4. checkout by copy, 5. by hardlink.
        self.log("checkout")

        def checkouts() -> list[Contender]:
            # the same contenders for both link types: each deletes the file, then restores it
            return [
                Contender(
                    "dvc checkout",
                    [*dvc, "checkout", "-q"],
                    d,
                    self.removing(d / "big.bin"),
                    skip=dvc_skip,
                ),
                Contender("git model checkout", [*gm, "checkout"], g, self.removing(g / "big.bin")),
            ]

        checkout = Row(
            f"checkout {big_label} (copy)",
            [
                Contender("cp", ["cp", "big.bin", str(copy_dst)], g, self.removing(copy_dst)),
                *checkouts(),
            ],
            s.runs,
        )
        self.run_row(checkout)
        self.removing(copy_dst)()
        for repo in (g, d):
            with open(repo / ".dvc" / "config", "a") as f:
                f.write("[cache]\n    type = hardlink\n")
        link = Row(
            f"checkout {big_label} (hardlink)",
            checkouts(),
            s.runs,
        )
        self.run_row(link)
        self.removing(g / "big.bin", d / "big.bin", g / ".dvc" / "cache", d / ".dvc" / "cache")()

        # 6. a directory of shards on every core.
        self.log(f"generating {s.shards} x {_size(s.shard_bytes)} shards ...")
        for i in range(s.shards):
            self.random_file(g / "shards" / f"shard-{i:02d}.bin", s.shard_bytes)
        self.sh(["cp", "-r", str(g / "shards"), str(d / "shards")], self.dir)
        names = sorted(os.listdir(g / "shards"))
        nproc = os.cpu_count() or 1
        shards = Row(
            f"store {s.shards} x {_size(s.shard_bytes)} shards, fresh",
            [
                Contender("md5sum (1 core)", ["md5sum", *names], g / "shards"),
                Contender(
                    f"md5sum ({nproc} procs)",
                    ["sh", "-c", f"ls | xargs -P{nproc} -n{max(1, len(names) // nproc)} md5sum"],
                    g / "shards",
                ),
                Contender(
                    "dvc add", [*dvc, "add", "-q", "shards"], d, self.dvc_fresh(d), skip=dvc_skip
                ),
                Contender("git model add", [*gm, "add", "shards"], g, self.gm_fresh(g)),
            ],
            s.runs,
        )
        self.run_row(shards)
        # Hashing alone (no copy): what `status` does on a fresh clone, stat cache empty.
        self.sh(["git", "commit", "-q", "-m", "shards"], g)
        hashing = Row(
            f"hash {s.shards} x {_size(s.shard_bytes)} shards (status, empty stat cache)",
            [
                Contender("md5sum (1 core)", ["md5sum", *names], g / "shards"),
                Contender(
                    "git model status",
                    [*gm, "status", "shards"],
                    g,
                    self.removing(g / ".dvc" / "tmp" / "gitmodel"),
                ),
            ],
            s.runs,
        )
        self.run_row(hashing)
        self.removing(g / "shards", d / "shards", g / ".dvc" / "cache", d / ".dvc" / "cache")()

        # 7. log over noted commits.
        self.log(f"log: {s.commits} noted commits")
        lg = self.new_repo("log")
        self.fast_import_history(lg, s.commits, 0, lambda i: 0.5 + i / (4 * s.commits))
        log = Row(
            f"log -n {s.commits}, noted commits",
            [
                Contender(
                    "git log --notes",
                    [
                        "git",
                        "log",
                        "--notes=refs/notes/metrics",
                        f"-n{s.commits}",
                        "--format=%H %s %N",
                    ],
                    lg,
                ),
                Contender("git model log", [*gm, "log", "-n", str(s.commits)], lg),
            ],
            s.small_runs,
        )
        self.run_row(log)

        commit, refs, tag = self.run_hooks()

        # 11. help.
        helprow = Row(
            "git model --help",
            [
                Contender("python -c pass", [sys.executable, "-c", "pass"], self.dir),
                # git turns `--help` into `git help model`: the man page, when installed.
                Contender("git model --help", ["git", "model", "--help"], self.dir),
                # What argparse prints (`-h` reaches git-model unchanged).
                Contender("git model -h", ["git", "model", "-h"], self.dir),
            ],
            s.small_runs,
        )
        self.run_row(helprow)

        self.define_targets(
            store, readd, status, checkout, link, shards, hashing, log, commit, refs, tag, helprow
        )

    def run_hooks(self) -> tuple[Row, Row, Row]:
        """What the hooks add to plain git: a commit, a branch update, a push, a gated tag."""
        s = self.sizes
        # 8. hooks on an everyday commit, 9. reference-transaction on a branch update.
        self.log("hooks")
        plain = self.new_repo("plain", gitmodel=False)
        hooked = self.new_repo("hooked")
        hooks_skip = "" if self.hooks_installed(hooked) else "n/a: not installed"
        for repo in (plain, hooked):
            self.sh(["git", "branch", "side"], repo)

        def edit(repo: Path) -> Callable[[], None]:
            counter = [0]

            def setup() -> None:
                counter[0] += 1
                (repo / "README.txt").write_text(f"bench {counter[0]}\n")
                self.sh(["git", "add", "README.txt"], repo)

            return setup

        commit = Row(
            "git commit (no weights, no metrics)",
            [
                Contender("plain git", ["git", "commit", "-q", "-m", "edit"], plain, edit(plain)),
                Contender(
                    "with gitmodel hooks",
                    ["git", "commit", "-q", "-m", "edit"],
                    hooked,
                    edit(hooked),
                ),
            ],
            s.small_runs,
            skip=hooks_skip,
        )
        self.run_row(commit)
        ref_skip = hooks_skip or (
            "" if self.hook_path(hooked, "reference-transaction") else "n/a: not installed"
        )

        refs = Row(
            "branch update (git update-ref)",
            [
                Contender(
                    "plain git",
                    ["git", "update-ref", "refs/heads/side", "HEAD"],
                    plain,
                    self.reset_branch(plain),
                ),
                Contender(
                    "with gitmodel hooks",
                    ["git", "update-ref", "refs/heads/side", "HEAD"],
                    hooked,
                    self.reset_branch(hooked),
                ),
            ],
            s.small_runs,
            skip=ref_skip,
        )
        self.run_row(refs)

        # 9b. `git push` of an everyday commit (no weights): what pre-push adds. No target in
        # issue 6; it shows what every push pays for the upload-before-push guarantee.
        self.log("push")
        for repo in (plain, hooked):
            remote = self.dir / f"{repo.name}-remote.git"
            self.sh(["git", "init", "-q", "--bare", str(remote)], self.dir)
            self.sh(["git", "remote", "add", "origin", str(remote)], repo)
            self.sh(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], repo)

        def committed(repo: Path) -> Callable[[], None]:
            change = edit(repo)

            def setup() -> None:
                change()
                self.sh(["git", "commit", "-q", "-m", "edit"], repo)

            return setup

        push_argv = ["git", "push", "-q", "origin", "HEAD:refs/heads/main"]
        push = Row(
            "git push of one commit (no weights), local remote",
            [
                Contender("plain git", push_argv, plain, committed(plain)),
                Contender("with gitmodel hooks", push_argv, hooked, committed(hooked)),
            ],
            s.small_runs,
            skip=hooks_skip,
        )
        self.run_row(push)

        # 10. gated `git tag` with many earlier releases.
        self.log(f"gate: {s.releases} earlier releases")
        gate = self.new_repo("gate")
        with open(gate / ".gitmodel.toml", "a") as f:
            f.write('\n[gate.accuracy]\ndirection = "higher"\ntolerance = 0.002\n')
        self.sh(["git", "commit", "-q", "-am", "gate on accuracy"], gate)
        self.fast_import_history(
            gate, s.releases + 1, s.releases, lambda i: 0.5 + i / (4 * s.commits)
        )
        tag_skip = "" if self.hook_path(gate, "reference-transaction") else "n/a: not installed"
        untag = self.removing(gate / ".git" / "refs" / "tags" / "v2.0.0")
        tag = Row(
            f"git tag, {s.releases} earlier releases",
            [
                Contender(
                    "git tag (no hooks)",
                    ["git", "-c", "core.hooksPath=/dev/null", "tag", "v2.0.0"],
                    gate,
                    untag,
                ),
                Contender("git tag (gated)", ["git", "tag", "v2.0.0"], gate, untag),
            ],
            s.small_runs,
            skip=tag_skip,
        )
        self.run_row(tag)

        return commit, refs, tag

    def hook_targets(self, commit: Row, refs: Row, tag: Row) -> list[Target]:
        return [
            Target(
                commit.work,
                "<= 10 ms added",
                _added(commit, "plain git", "with gitmodel hooks", 10),
            ),
            Target(refs.work, "<= 5 ms added", _added(refs, "plain git", "with gitmodel hooks", 5)),
            Target(tag.work, "<= 0.3 s", _absolute(tag, "git tag (gated)", 0.3)),
        ]

    def reset_branch(self, repo: Path) -> Callable[[], None]:
        def setup() -> None:
            self.sh(["git", "update-ref", "refs/heads/side", "HEAD~1"], repo)

        return setup

    def hook_path(self, repo: Path, name: str) -> Path | None:
        hooks = self.sh(["git", "rev-parse", "--git-path", "hooks"], repo).strip()
        configured = subprocess.run(
            ["git", "config", "core.hooksPath"],
            cwd=repo,
            env=self.env,
            capture_output=True,
            text=True,
        ).stdout.strip()
        base = Path(configured) if configured else repo / hooks
        path = base if base.is_absolute() else repo / base
        hook = path / name
        if hook.is_file() and os.access(hook, os.X_OK):
            text = hook.read_text(errors="replace")
            if "gitmodel" in text or "git-model" in text or "git model" in text:
                return hook
        return None

    def hooks_installed(self, repo: Path) -> bool:
        return any(
            self.hook_path(repo, h)
            for h in (
                "pre-commit",
                "post-commit",
                "reference-transaction",
                "pre-push",
                "post-checkout",
            )
        )

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    # -- targets ----------------------------------------------------------------------------

    def define_targets(
        self,
        store: Row,
        readd: Row,
        status: Row,
        checkout: Row,
        link: Row,
        shards: Row,
        hashing: Row,
        log: Row,
        commit: Row,
        refs: Row,
        tag: Row,
        helprow: Row,
    ) -> None:
        gm_add = "git model add"
        self.targets += [
            Target(store.work, "<= 1.1x md5sum", _ratio(store, gm_add, "md5sum", 1.1)),
            Target(store.work, "<= 0.55x dvc add", _ratio(store, gm_add, "dvc add", 0.55)),
            Target(readd.work, "<= 0.15 s", _absolute(readd, gm_add, 0.15)),
            Target(status.work, "<= 0.15 s", _absolute(status, "git model status", 0.15)),
            Target(checkout.work, "<= 1.1x cp", _ratio(checkout, "git model checkout", "cp", 1.1)),
            Target(
                link.work, "near-instant (<= 0.15 s)", _absolute(link, "git model checkout", 0.15)
            ),
            Target(
                shards.work,
                ">= 1.8x single-core md5 rate",
                _ratio(shards, gm_add, "md5sum (1 core)", 1.8, more=True),
            ),
            Target(
                hashing.work,
                ">= 1.8x single-core md5 rate",
                _ratio(hashing, "git model status", "md5sum (1 core)", 1.8, more=True),
            ),
            Target(log.work, "<= 0.3 s", _absolute(log, "git model log", 0.3)),
            *self.hook_targets(commit, refs, tag),
            Target(helprow.work, "<= 0.15 s", _absolute(helprow, "git model --help", 0.15)),
            Target("git model -h", "<= 0.15 s", _absolute(helprow, "git model -h", 0.15)),
            Target(f"peak memory, {store.work}", "<= 100 MiB", _memory(store, gm_add, 100)),
        ]

    # -- report -----------------------------------------------------------------------------

    def calibration(self) -> str:
        """This run's reference tools against the issue's quiet-machine figures (load factor)."""
        quiet = {  # issue 6, measured on a 2-core machine with a warm page cache
            ("store", "md5sum"): 1.63,
            ("store", "cp"): 0.36,
            ("store", "dvc add"): 3.14,
            ("re-add", "dvc add"): 0.86,
            ("status", "dvc status"): 0.37,
        }
        parts = []
        for (work, label), seconds in quiet.items():
            row = next((r for r in self.rows if r.work.startswith(work)), None)
            if row is None or self.sizes.file_bytes != 1024 * MiB or self.only == "files":
                continue
            m = next((c.median() for c in row.contenders if c.label == label), None)
            if m is not None:
                parts.append(f"{label} ({work}) {m:.2f} s vs {seconds:.2f} s = {m / seconds:.1f}x")
        return "; ".join(parts)

    def server_report(self) -> list[str]:
        """What each run cost the server behind it (the S3 rows: moto's access log and
        CPU), medians over the runs: on one machine, a server that spends the same CPU on
        each request bounds both tools alike, so the request counts say who asked more."""
        lines = []
        for row in self.rows:
            for c in row.contenders:
                good = [x for x in c.samples if x.ok and (x.requests or x.server_cpu)]
                if row.skip or c.skip or not good:
                    continue
                kinds = sorted({k for x in good for k in x.requests})
                counts = ", ".join(
                    f"{k} {statistics.median(x.requests.get(k, 0) for x in good):,.0f}"
                    for k in kinds
                )
                total = statistics.median(sum(x.requests.values()) for x in good)
                cpu = statistics.median(x.server_cpu for x in good)
                per = f"{1000 * cpu / total:.1f} ms" if total else "-"
                lines.append(
                    f"| {row.work} | {c.label} | {total:,.0f} | {counts} | {cpu:.1f} s | {per} |"
                )
        if not lines:
            return []
        return [
            "",
            "| work | contender | server requests | by kind | server CPU | per request |",
            "|---|---|---:|---|---:|---:|",
            *lines,
        ]

    def report(self) -> str:
        lines = [
            "| work | contender | median | min | max | runs | CPU (median) | peak RSS |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in self.rows:
            for c in row.contenders:
                reason = row.skip or c.skip
                if reason:
                    lines.append(f"| {row.work} | {c.label} | {reason} | | | | | |")
                    continue
                good = [x.seconds for x in c.samples if x.ok]
                if not good:
                    lines.append(f"| {row.work} | {c.label} | failed: {c.failure()} | | | | | |")
                    continue
                peak = c.max_rss_mib()
                rss = "?" if peak is None else f"{peak:.0f} MiB"
                cpu = statistics.median(x.cpu_seconds for x in c.samples if x.ok)
                lines.append(
                    f"| {row.work} | {c.label} | {statistics.median(good):.3f} s | "
                    f"{min(good):.3f} | "
                    f"{max(good):.3f} | {len(good)} | {cpu:.3f} s | {rss} |"
                )
        lines += self.server_report()
        lines += ["", "| work | target | measured | met |", "|---|---|---:|---|"]
        for t in self.targets:
            measured, met = t.measure()
            verdict = "n/a" if met is None else ("yes" if met else "**no**")
            lines.append(f"| {t.work} | {t.target} | {measured} | {verdict} |")
        return "\n".join(lines)


# -- targets: how a row is judged --------------------------------------------------------


def _ratio(
    row: Row, a: str, b: str, limit: float, more: bool = False
) -> Callable[[], tuple[str, bool | None]]:
    def measure() -> tuple[str, bool | None]:
        ca, cb = row.get(a), row.get(b)
        if row.skip or ca.skip or cb.skip:
            return row.skip or ca.skip or cb.skip, None
        ma, mb = ca.median(), cb.median()
        if ma is None or mb is None:
            return f"failed: {ca.failure() or cb.failure()}", False
        r = (mb / ma) if more else (ma / mb)
        met = (r >= limit) if more else (r <= limit)
        shown = f"{r:.2f}"
        if not met and float(shown) == limit:  # never let rounding hide a miss
            shown = f"{r:.4f}"
        return f"{shown}x", met

    return measure


def transfer_targets(transfers: Sequence[tuple[Row, Row]]) -> list[Target]:
    """Issue 17's push and pull targets, for each kind of remote."""
    targets = []
    for push, pull in transfers:
        targets += [
            Target(push.work, "<= 0.5x dvc push", _ratio(push, "git model push", "dvc push", 0.5)),
            Target(pull.work, "<= 0.5x dvc pull", _ratio(pull, "git model pull", "dvc pull", 0.5)),
        ]
    return targets


def _absolute(row: Row, a: str, limit: float) -> Callable[[], tuple[str, bool | None]]:
    def measure() -> tuple[str, bool | None]:
        c = row.get(a)
        if row.skip or c.skip:
            return row.skip or c.skip, None
        m = c.median()
        if m is None:
            return f"failed: {c.failure()}", False
        return f"{m:.3f} s", m <= limit

    return measure


def _added(row: Row, base: str, a: str, limit_ms: float) -> Callable[[], tuple[str, bool | None]]:
    def measure() -> tuple[str, bool | None]:
        cb, ca = row.get(base), row.get(a)
        if row.skip:
            return row.skip, None
        mb, ma = cb.median(), ca.median()
        if mb is None or ma is None:
            return f"failed: {ca.failure() or cb.failure()}", False
        extra = (ma - mb) * 1000
        return f"+{extra:.1f} ms", extra <= limit_ms

    return measure


def _memory(row: Row, a: str, limit_mib: float) -> Callable[[], tuple[str, bool | None]]:
    def measure() -> tuple[str, bool | None]:
        m = row.get(a).max_rss_mib()
        if m is None:
            return "n/a: needs GNU time (/usr/bin/time)", None
        return f"{m:.0f} MiB", m <= limit_mib

    return measure


def _size(n: int) -> str:
    return (
        f"{n // (1024 * MiB)} GiB"
        if n >= 1024 * MiB and n % (1024 * MiB) == 0
        else f"{n // MiB} MiB"
    )


def _mount(path: Path) -> tuple[str, str, str]:
    """(device, type, mount point) of the mount a path lives on, from /proc/mounts."""
    real = os.path.realpath(path)
    best = ("?", "?", "")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(
                    best[2]
                ):
                    best = (dev, fstype, mnt)
    except OSError:
        pass
    return best


def _filesystem(path: Path) -> str:
    dev, fstype, mnt = _mount(path)
    journal = ", no journal" if _ext4_without_journal(path) else ""
    return f"{dev} ({fstype}{journal}, mounted on {mnt or '?'})"


def _ext4_without_journal(path: Path) -> str:
    """The device, if path is on ext4 mounted with no journal; else ''.

    With a journal, ext4 lists its data mode (`data=ordered`) among the options it shows
    in /proc/fs/ext4/<device>/options; without one it has none.
    """
    dev, fstype, _ = _mount(path)
    if fstype != "ext4":
        return ""
    try:
        options = Path("/proc/fs/ext4", os.path.basename(dev), "options").read_text()
    except OSError:
        return ""
    return "" if any(o.startswith("data=") for o in options.split()) else dev


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast sanity run")
    parser.add_argument("--runs", type=int, help="runs of each contender on the big-data rows")
    parser.add_argument(
        "--dir", type=Path, help="where to create the temporary data (default: $TMPDIR or /tmp)"
    )
    parser.add_argument(
        "--dvc", help="the dvc executable (default: next to this Python, else on PATH)"
    )
    parser.add_argument(
        "--only",
        choices=("all", "files", "big", "hooks", "remotes"),
        default="all",
        help="files: only the many-small-files rows; remotes: of those, only push and pull "
        "(local, ssh, S3); hooks: only what the hooks add to plain "
        "git (commit, branch update, push, gated tag); big: all but the files rows "
        "(default: all)",
    )
    parser.add_argument(
        "--files", type=int, help="files in the many-files rows (default 50,000; --quick 400)"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also the 200,000-file peak-memory row (1.6 GB more data, minutes more)",
    )
    parser.add_argument(
        "--remotes",
        default=",".join(REMOTE_KINDS),
        help="which remotes the push and pull rows use, comma-separated (default: local,ssh,s3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--dedup",
        action="store_true",
        help="the deduplicated-storage rows instead (scripts/bench_dedup.py; --quick applies)",
    )
    args, rest = parser.parse_known_args(argv)
    if args.dedup:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_dedup  # beside this file; numpy is needed only for these rows

        return bench_dedup.main([*rest, *(["--quick"] if args.quick else [])])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    remotes = tuple(k.strip() for k in args.remotes.split(",") if k.strip())
    if not remotes or set(remotes) - set(REMOTE_KINDS):
        parser.error(f"--remotes: a comma-separated choice of {', '.join(REMOTE_KINDS)}")
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(
            **{
                **sizes.__dict__,
                "runs": args.runs,
                "small_runs": max(args.runs, sizes.small_runs),
                "files_runs": args.runs,
            }
        )
    if args.files:
        sizes = Sizes(**{**sizes.__dict__, "files": args.files})
    dvc = (
        args.dvc
        or shutil.which("dvc", path=str(Path(sys.executable).parent))
        or shutil.which("dvc")
    )
    if not shutil.which("git-model", path=str(Path(sys.executable).parent)):
        print("bench: git-model is not installed next to this Python", file=sys.stderr)
        return 2
    # A killed run still removes its GiBs of data (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="gitmodel-bench-", dir=args.dir))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        bench = Bench(workdir, sizes, dvc, not args.quiet, args.only, args.full)
        bench.remotes = remotes
        bench.run()
        table = bench.report()
        calibration = bench.calibration()
    finally:
        if args.keep:
            print(f"bench: data kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    mode = "--quick" if args.quick else "full"
    if args.only != "all":
        mode += f", --only {args.only}"
    print(f"# gitmodel benchmark ({mode})")
    print()
    print(f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    print(
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    print(f"- data: {workdir.parent} on {_filesystem(workdir.parent)}")
    print(
        f"- tools: {_version(['git', '--version'])}; "
        f"dvc {_version([dvc, '--version']) if dvc else 'n/a'}; "
        f"{_version(['md5sum', '--version'])}"
    )
    print(
        f"- load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    print(
        f"- medians of {sizes.runs} runs (big-data rows), {sizes.small_runs} runs "
        f"(quick commands) and {sizes.files_runs} (+2 for re-add and status) runs "
        f"(the {sizes.files:,}-file rows), "
        "contenders alternated; warm page cache, `sync` before every timed run"
    )
    if calibration:
        print(f"- against the issue's quiet-machine figures: {calibration}")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
