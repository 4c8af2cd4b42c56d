#!/usr/bin/env python3
"""Deduplicated storage against plain gitmodel storage and `zstd -3`, side by side in one run.

    python scripts/bench_dedup.py           # 256 MiB checkpoints, 10 versions per scenario
    python scripts/bench_dedup.py --quick   # 32 MiB checkpoints: a sanity run
    python scripts/bench_dedup.py --full    # also the peak memory of a 10 GB add/checkout

How the checkpoints are made (honestly, not as random bytes): a transformer-shaped set of
float32 tensors (embedding, per layer q/k/v/o and MLP matrices with 1/sqrt(fan-in) spread,
layer norms near 1, biases near 0) rounded to bf16 (float32's top half, round to nearest
even, kept as numpy uint16) and written in safetensors' format by hand (numpy cannot hold
bf16, so the `safetensors` package cannot write it from numpy).

- "5% changed": each version re-trains 5% of the tensors (w + N(0, 0.1 * std(w)), in
  float32, rounded again); every other tensor is bit-identical to the parent's (frozen).
- "full fine-tunes": each version multiplies every tensor by (1 + N(0, 1e-3)) in float32
  and rounds to bf16 (a fine-tune step: most bf16 values keep their bits, the rest move
  an ulp or so).

Each version is committed with `git model commit` in a plain repository and in one with
`[storage] dedup = true`, pushed to a local DVC remote, and `zstd -3` compresses each file
on its own. Sizes are bytes on disk (`du`-like, of the files); times are medians of each
contender's runs, contenders alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

MiB = 1024 * 1024


# -- checkpoints ------------------------------------------------------------------------------


def to_bf16(a: np.ndarray) -> np.ndarray:
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def model_shapes(total_bytes: int, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    """A transformer's tensors, as many layers as fit total_bytes of bf16."""
    vocab = max(1024, total_bytes // (2 * hidden) // 6)
    shapes: list[tuple[str, tuple[int, ...]]] = [("embed.weight", (vocab, hidden))]
    used = vocab * hidden * 2
    layer = 0
    while True:
        block = [
            (f"layers.{layer}.attn.q.weight", (hidden, hidden)),
            (f"layers.{layer}.attn.k.weight", (hidden, hidden)),
            (f"layers.{layer}.attn.v.weight", (hidden, hidden)),
            (f"layers.{layer}.attn.o.weight", (hidden, hidden)),
            (f"layers.{layer}.mlp.up.weight", (4 * hidden, hidden)),
            (f"layers.{layer}.mlp.down.weight", (hidden, 4 * hidden)),
            (f"layers.{layer}.norm1.weight", (hidden,)),
            (f"layers.{layer}.norm2.weight", (hidden,)),
            (f"layers.{layer}.mlp.up.bias", (4 * hidden,)),
        ]
        size = sum(int(np.prod(s)) * 2 for _, s in block)
        if used + size > total_bytes and layer:
            break
        shapes += block
        used += size
        layer += 1
    shapes.append(("final_norm.weight", (hidden,)))
    # the embedding takes what the layers leave, so the file is total_bytes to a row
    rest = total_bytes - sum(int(np.prod(s)) * 2 for _, s in shapes[1:])
    shapes[0] = ("embed.weight", (max(1, rest // (2 * hidden)), hidden))
    return shapes


def base_model(shapes: list[tuple[str, tuple[int, ...]]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes:
        if "norm" in name:
            w = 1 + rng.normal(0, 0.05, shape)
        elif name.endswith("bias"):
            w = rng.normal(0, 0.01, shape)
        else:
            w = rng.normal(0, 1 / np.sqrt(shape[-1]), shape)
        out[name] = w.astype(np.float32)
    return out


def write_safetensors(path: Path, weights: dict[str, np.ndarray]) -> None:
    header, at = {}, 0
    for name, w in weights.items():
        n = w.size * 2
        header[name] = {"dtype": "BF16", "shape": list(w.shape), "data_offsets": [at, at + n]}
        at += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for w in weights.values():
            f.write(to_bf16(w).tobytes())


def five_percent(weights: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[dict, int]:
    names = sorted(weights)
    k = max(1, round(0.05 * len(names)))
    changed = list(rng.choice(names, size=k, replace=False))
    out = dict(weights)
    for n in changed:
        w = weights[n]
        out[n] = (w + rng.normal(0, 0.1 * float(w.std()) + 1e-6, w.shape)).astype(np.float32)
    return out, sum(weights[n].size * 2 for n in changed)


def fine_tune(weights: dict[str, np.ndarray], rng: np.random.Generator) -> dict:
    return {
        n: (w * (1 + rng.normal(0, 1e-3, w.shape))).astype(np.float32) for n, w in weights.items()
    }


# -- running ----------------------------------------------------------------------------------


class Env:
    def __init__(self, workdir: Path) -> None:
        home = workdir / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(
            "[user]\n\tname = Bench\n\temail = bench@example.com\n"
            "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITMODEL_"))}
        env.update(
            HOME=str(home),
            GIT_CONFIG_NOSYSTEM="1",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            DVC_NO_ANALYTICS="1",
            DVC_NO_UPDATER="1",
            NO_COLOR="1",
        )
        self.env = env
        self.dir = workdir
        self.last_cpu = 0.0

    def sh(self, *argv: str, cwd: Path) -> str:
        proc = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"bench: {' '.join(argv)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def timed(self, *argv: str, cwd: Path) -> tuple[float, float]:
        """(seconds, peak RSS MiB) of one command, both measured by a small Python parent:
        resource.getrusage(RUSAGE_CHILDREN) there is the command's own peak (git's and the
        git-model it runs). Measured from here, a fork of this process (which holds the
        checkpoints' arrays) would count toward the child's peak before its exec."""
        os.sync()
        proc = subprocess.run(
            [sys.executable, "-c", _TIMED, *argv], cwd=cwd, env=self.env, capture_output=True
        )
        if proc.returncode:
            raise SystemExit(f"bench: {' '.join(argv)} failed: {proc.stderr.decode().strip()}")
        took, rss_kib, cpu = proc.stdout.split()[-3:]
        self.last_cpu = float(cpu)  # user + system seconds of the command and its children
        return float(took), int(rss_kib) / 1024


_TIMED = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
took = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(took, usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
sys.exit(code)
"""


def du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_size
    return total


def new_repo(env: Env, path: Path, dedup: bool) -> Path:
    path.mkdir()
    env.sh("git", "init", "-q", cwd=path)
    env.sh("git", "model", "init", cwd=path)
    if dedup:
        cfg = path / ".gitmodel.toml"
        cfg.write_text(cfg.read_text() + "\n[storage]\ndedup = true\n")
    env.sh(
        "git",
        "model",
        "remote",
        "add",
        "store",
        str(path.parent / f"{path.name}-remote"),
        "--default",
        cwd=path,
    )
    env.sh("git", "add", "-A", cwd=path)
    env.sh("git", "commit", "-q", "-m", "init", cwd=path)
    return path


def scenario(env: Env, name: str, files: list[Path], changed: list[int], runs: int) -> dict:
    """Commit every version in both repos; sizes, upload bytes, add and checkout times."""
    plain = new_repo(env, env.dir / f"{name}-plain", dedup=False)
    dd = new_repo(env, env.dir / f"{name}-dedup", dedup=True)
    res: dict = {"name": name, "versions": len(files), "one": files[0].stat().st_size}
    res["raw_total"] = sum(f.stat().st_size for f in files)
    add_plain, add_dedup, uploads = [], [], []
    cpu: dict[str, list[float]] = {"add_plain": [], "add_dedup": []}
    for i, f in enumerate(files):
        for repo, times, key in ((plain, add_plain, "add_plain"), (dd, add_dedup, "add_dedup")):
            target = repo / "model.safetensors"
            if target.exists():
                target.chmod(0o644)
                target.unlink()
            shutil.copyfile(f, target)
            times.append(env.timed("git", "model", "add", "model.safetensors", cwd=repo))
            cpu[key].append(env.last_cpu)
            env.sh("git", "model", "commit", "model.safetensors", "-m", f"v{i}", cwd=repo)
        out = json.loads(env.sh("git", "model", "push", "--json", cwd=dd))
        uploads.append(out["weights"]["bytes"] if out["weights"] else 0)
        env.sh("git", "model", "push", cwd=plain)
    res["add_plain"] = [t for t, _ in add_plain]
    res["add_dedup"] = [t for t, _ in add_dedup]
    res["add_cpu_plain"], res["add_cpu_dedup"] = cpu["add_plain"], cpu["add_dedup"]
    res["add_rss"] = max(r for _, r in add_dedup)
    res["uploads"] = uploads
    res["changed_bytes"] = changed
    res["plain_store"] = du(plain / ".dvc" / "cache")
    res["plain_remote"] = du(env.dir / f"{name}-plain-remote")
    res["dedup_store_with_cache"] = du(dd / ".dvc" / "cache")
    res["dedup_remote"] = du(env.dir / f"{name}-dedup-remote")
    env.sh("git", "model", "gc", "--grace", "0", cwd=dd)
    res["dedup_store_gc"] = du(dd / ".dvc" / "cache")
    env.sh("git", "model", "gc", "--grace", "0", "--chunks-only", cwd=dd)
    res["dedup_chunks"] = du(dd / ".dvc" / "cache" / "gitmodel" / "packs") + du(
        dd / ".dvc" / "cache" / "gitmodel" / "recipes"
    )
    res["dedup_store_chunks_only"] = du(dd / ".dvc" / "cache")
    # checkout of the latest version: plain (from the cache), dedup with its whole object
    # cached (what gc keeps for the work tree), dedup rebuilt from chunks
    times: dict[str, list[float]] = {"plain": [], "dedup_cached": [], "dedup_chunks": []}
    co_cpu: dict[str, list[float]] = {k: [] for k in times}
    rss_chunks = 0.0
    obj = None
    # untimed: after gc --chunks-only above, one checkout puts the whole object back
    (dd / "model.safetensors").chmod(0o644)
    (dd / "model.safetensors").unlink()
    env.sh("git", "model", "checkout", cwd=dd)
    for _ in range(runs):
        for label, repo in (("plain", plain), ("dedup_cached", dd), ("dedup_chunks", dd)):
            (repo / "model.safetensors").chmod(0o644)
            (repo / "model.safetensors").unlink()
            if label == "dedup_chunks":
                env.sh("git", "model", "gc", "--grace", "0", "--chunks-only", cwd=repo)
            t, rss = env.timed("git", "model", "checkout", cwd=repo)
            times[label].append(t)
            co_cpu[label].append(env.last_cpu)
            if label == "dedup_chunks":
                rss_chunks = max(rss_chunks, rss)
            obj = obj or (repo / "model.safetensors")
        # the anchor of the rebuild's bound: md5 of the same bytes (a verifying rebuild
        # hashes them all on one core), timed in the same loop as the checkouts
        times.setdefault("md5sum", []).append(
            env.timed("md5sum", str(dd / "model.safetensors"), cwd=dd)[0]
        )
        co_cpu.setdefault("md5sum", []).append(env.last_cpu)
    res["checkout"] = {k: statistics.median(v) for k, v in times.items()}
    res["checkout_cpu"] = {k: statistics.median(v) for k, v in co_cpu.items()}
    res["checkout_rss"] = rss_chunks
    res["teammate"] = teammate(env, name, plain, dd, runs)
    # zstd -3 of each file on its own
    zs = 0
    for f in files:
        if shutil.which("zstd"):
            out = subprocess.run(
                ["zstd", "-3", "-q", "-c", str(f)], capture_output=True, check=True
            )
            zs += len(out.stdout)
        else:
            import zstandard

            zs += len(zstandard.ZstdCompressor(level=3).compress(f.read_bytes()))
    res["zstd3_total"] = zs
    return res


def teammate(env: Env, name: str, plain: Path, dd: Path, runs: int) -> dict:
    """What a teammate does to get the latest version: a fresh `git clone` of the
    repository (and `git model init` in it), then `git model pull` (fetch the work tree's
    weights from the DVC remote, here a local directory, and check them out). Plain
    storage downloads the whole object, md5s it and copies it into the work tree; dedup
    downloads the packs holding its chunks (each pack's sha256 checked against its name),
    then rebuilds the file (every chunk's sha256, the whole file's md5). The anchor is
    `dvc pull` in a clone of the plain repository (a local remote's `verify` is off by
    default: DVC does not hash what it downloads). Contenders alternate; each run starts
    from a fresh clone, removed after it. Medians of wall and CPU seconds."""
    labels = ("plain", "dedup", "dvc")
    times: dict[str, list[float]] = {k: [] for k in labels}
    cpu: dict[str, list[float]] = {k: [] for k in labels}
    clone: dict[str, list[float]] = {k: [] for k in labels}
    for run in range(runs):
        for label, repo in (("plain", plain), ("dedup", dd), ("dvc", plain)):
            dest = env.dir / f"{name.replace(' ', '-').replace('%', 'pc')}-teammate-{label}"
            took, _ = env.timed("git", "clone", "-q", str(repo), str(dest), cwd=env.dir)
            if label == "dvc":
                argv: tuple[str, ...] = ("dvc", "pull", "-q")
            else:
                took += env.timed("git", "model", "init", cwd=dest)[0]
                argv = ("git", "model", "pull")
            clone[label].append(took)
            t, _ = env.timed(*argv, cwd=dest)
            times[label].append(t)
            cpu[label].append(env.last_cpu)
            if not run:  # the bytes are the latest version's (once, untimed)
                got = subprocess.run(
                    ["md5sum", str(dest / "model.safetensors")], capture_output=True, text=True
                ).stdout.split()[0]
                want = (dest / "model.safetensors.dvc").read_text().split("md5: ")[1].split()[0]
                if got != want:
                    raise SystemExit(f"bench: {label} pull in a fresh clone made {got}, not {want}")
            shutil.rmtree(dest)
    return {
        "pull": {k: statistics.median(v) for k, v in times.items()},
        "pull_cpu": {k: statistics.median(v) for k, v in cpu.items()},
        "clone": {k: statistics.median(v) for k, v in clone.items()},
    }


def big_file_memory(env: Env, size: int) -> dict:
    """Peak RSS of add and of a checkout rebuilt from chunks, for a file of size bytes."""
    repo = new_repo(env, env.dir / "big-dedup", dedup=True)
    hidden = 4096
    shapes = []
    left, i = size, 0
    rng = np.random.default_rng(7)
    path = repo / "model.safetensors"
    # written tensor by tensor, so the generator itself stays small
    rows = 2048
    while left > rows * hidden * 2:
        shapes.append((f"t{i}", (rows, hidden)))
        left -= rows * hidden * 2
        i += 1
    header, at = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [at, at + n]}
        at += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        # one block of bf16 weights, rotated differently for each tensor: every tensor is
        # distinct (nothing deduplicates) and compresses as weights do, and generating
        # 10 GB costs a roll per tensor rather than a random draw
        block = to_bf16(rng.normal(0, 0.02, (rows, hidden)).astype(np.float32)).ravel()
        for k in range(len(shapes)):
            f.write(np.roll(block, k * 4099 + 1).tobytes())
    add_t, add_rss = env.timed("git", "model", "add", "model.safetensors", cwd=repo)
    env.sh("git", "commit", "-q", "-m", "big", cwd=repo)
    env.sh("git", "model", "gc", "--grace", "0", "--chunks-only", cwd=repo)
    path.chmod(0o644)
    path.unlink()
    co_t, co_rss = env.timed("git", "model", "checkout", cwd=repo)
    ok = subprocess.run(["md5sum", str(path)], capture_output=True, text=True).stdout.split()[0]
    pointer = (repo / "model.safetensors.dvc").read_text()
    if ok not in pointer:
        raise SystemExit("bench: the 10 GB file did not check out byte-exact")
    return {"size": at, "add_s": add_t, "add_rss": add_rss, "co_s": co_t, "co_rss": co_rss}


# -- report -----------------------------------------------------------------------------------


def gib(n: float) -> str:
    return f"{n / MiB:.1f} MiB" if n < 1024 * MiB else f"{n / 1024 / MiB:.2f} GiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(a: dict, b: dict, big: dict | None, load: str) -> str:
    one = a["one"]
    lines = [
        f"Machine: {os.cpu_count()} cores; load before the run: {load}",
        "",
        "| scenario | raw total | plain gitmodel store / remote | zstd -3 of each file "
        "| dedup store (after gc) / chunks only / remote |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in (a, b):
        lines.append(
            f"| {s['name']} ({s['versions']} x {gib(s['one'])}) | {gib(s['raw_total'])} "
            f"| {gib(s['plain_store'])} / {gib(s['plain_remote'])} | {gib(s['zstd3_total'])} "
            f"| {gib(s['dedup_store_gc'])} / {gib(s['dedup_store_chunks_only'])} "
            f"/ {gib(s['dedup_remote'])} |"
        )
    up = a["uploads"][1:]
    ch = a["changed_bytes"][1:]
    ratio_up = max(u / c for u, c in zip(up, ch, strict=True)) if up else 0
    add_ratio_a = statistics.median(a["add_dedup"][1:]) / statistics.median(a["add_plain"][1:])
    add_ratio_b = statistics.median(b["add_dedup"][1:]) / statistics.median(b["add_plain"][1:])
    add_first = a["add_dedup"][0] / a["add_plain"][0]

    def cpu_ratio(s: dict) -> float:
        return statistics.median(s["add_cpu_dedup"][1:]) / statistics.median(s["add_cpu_plain"][1:])

    co = a["checkout"]
    co_cpu = a["checkout_cpu"]
    rows = [
        (
            "10 versions, 5% changed: local store + remote",
            "<= 1.5x one version",
            f"store {a['dedup_store_chunks_only'] / one:.2f}x (gc --chunks-only; "
            f"{a['dedup_store_gc'] / one:.2f}x with the work tree's object kept), "
            f"remote {a['dedup_remote'] / one:.2f}x; plain {a['plain_store'] / one:.2f}x",
            a["dedup_store_chunks_only"] <= 1.5 * one and a["dedup_remote"] <= 1.5 * one,
        ),
        (
            "10 full fine-tunes: store",
            "<= 0.7x raw total",
            f"{b['dedup_store_chunks_only'] / b['raw_total']:.2f}x raw (remote "
            f"{b['dedup_remote'] / b['raw_total']:.2f}x; zstd -3 "
            f"{b['zstd3_total'] / b['raw_total']:.2f}x)",
            b["dedup_store_chunks_only"] <= 0.7 * b["raw_total"],
        ),
        (
            "upload of version k+1 (5% changed)",
            "<= 1.2x changed tensors' bytes",
            f"worst {ratio_up:.2f}x (median {statistics.median(up) / 1e6:.1f} MB for "
            f"{statistics.median(ch) / 1e6:.1f} MB changed)",
            ratio_up <= 1.2,
        ),
        (
            "add of one version",
            "<= 2x plain add",
            f"{add_ratio_a:.2f}x (5% changed), {add_ratio_b:.2f}x (fine-tune); "
            f"first version {add_first:.2f}x; CPU time {cpu_ratio(a):.2f}x, {cpu_ratio(b):.2f}x",
            max(add_ratio_a, add_ratio_b) <= 2,
        ),
        (
            "checkout of one version",
            "<= 1.5x plain checkout",
            f"{co['dedup_cached'] / co['plain']:.2f}x with the object cached, "
            f"{co['dedup_chunks'] / co['plain']:.2f}x rebuilt from chunks "
            f"(plain {co['plain']:.2f}s); CPU time {co_cpu['dedup_cached'] / co_cpu['plain']:.2f}x, "
            f"{co_cpu['dedup_chunks'] / co_cpu['plain']:.2f}x",
            co["dedup_chunks"] <= 1.5 * co["plain"],
        ),
        (
            "checkout rebuilt from chunks, full fine-tune (its last version)",
            "<= 1.5x plain checkout",
            f"{b['checkout']['dedup_chunks'] / b['checkout']['plain']:.2f}x "
            f"({b['checkout']['dedup_chunks']:.2f}s against plain "
            f"{b['checkout']['plain']:.2f}s); CPU time "
            f"{b['checkout_cpu']['dedup_chunks'] / b['checkout_cpu']['plain']:.2f}x "
            f"({b['checkout_cpu']['dedup_chunks']:.2f}s); md5sum {b['checkout']['md5sum']:.2f}s",
            b["checkout"]["dedup_chunks"] <= 1.5 * b["checkout"]["plain"],
        ),
    ]
    for s in (a, b):
        tm = s["teammate"]
        pull, pcpu = tm["pull"], tm["pull_cpu"]
        rows.append(
            (
                f"teammate, {s['name']}: fresh clone, then `git model pull` of the latest version",
                "<= 1.5x plain (as checkout)",
                f"dedup {pull['dedup']:.2f}s = {pull['dedup'] / pull['plain']:.2f}x plain "
                f"gitmodel {pull['plain']:.2f}s (CPU {pcpu['dedup']:.2f}s / "
                f"{pcpu['plain']:.2f}s = {pcpu['dedup'] / pcpu['plain']:.2f}x); `dvc pull` "
                f"{pull['dvc']:.2f}s (CPU {pcpu['dvc']:.2f}s); clone + init before it "
                f"{tm['clone']['dedup']:.2f}s / {tm['clone']['plain']:.2f}s",
                pull["dedup"] <= 1.5 * pull["plain"],
            )
        )
    rows += [
        (
            "anchor: `md5sum` of the checked-out file",
            "(the bound of a verifying rebuild)",
            f"{co['md5sum']:.2f}s = {co['md5sum'] / co['plain']:.2f}x plain checkout "
            f"(CPU {co_cpu['md5sum']:.2f}s); rebuilt from chunks {co['dedup_chunks']:.2f}s "
            f"= {co['dedup_chunks'] / co['md5sum']:.2f}x md5sum (CPU {co_cpu['dedup_chunks']:.2f}s)",
            True,
        ),
    ]
    if big:
        rows.append(
            (
                f"peak memory, {gib(big['size'])} file",
                "<= 256 MiB",
                f"add {big['add_rss']:.0f} MiB, checkout from chunks {big['co_rss']:.0f} MiB",
                max(big["add_rss"], big["co_rss"]) <= 256,
            )
        )
    else:
        rows.append(
            (
                f"peak memory ({gib(one)} file; 10 GB with --full)",
                "<= 256 MiB",
                f"add {a['add_rss']:.0f} MiB, checkout from chunks {a['checkout_rss']:.0f} MiB",
                max(a["add_rss"], a["checkout_rss"]) <= 256,
            )
        )
    lines += ["", "| work | goal | measured | |", "|---|---|---|---|"]
    lines += [
        f"| {w} | {g} | {m} | {verdict(ok) if not w.startswith('anchor') else ''} |"
        for w, g, m, ok in rows
    ]
    lines += [
        "",
        "add seconds (plain / dedup) per version, 5% changed: "
        + ", ".join(
            f"{p:.2f}/{d:.2f}" for p, d in zip(a["add_plain"], a["add_dedup"], strict=True)
        ),
        "add seconds (plain / dedup) per version, fine-tunes: "
        + ", ".join(
            f"{p:.2f}/{d:.2f}" for p, d in zip(b["add_plain"], b["add_dedup"], strict=True)
        ),
        "upload bytes per version (dedup, 5% changed): "
        + ", ".join(f"{u / 1e6:.1f} MB" for u in a["uploads"]),
        "upload bytes per version (dedup, fine-tunes): "
        + ", ".join(f"{u / 1e6:.1f} MB" for u in b["uploads"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="32 MiB checkpoints")
    parser.add_argument("--full", action="store_true", help="also the 10 GB peak-memory row")
    parser.add_argument(
        "--big-only", action="store_true", help="only the peak-memory row (implies --full)"
    )
    parser.add_argument(
        "--big-gb", type=float, default=10.0, help="size of the peak-memory file (GB)"
    )
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="checkout runs per contender")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    size = (32 if args.quick else 256) * MiB
    hidden = 512 if args.quick else 1024
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    work = Path(tempfile.mkdtemp(prefix="gitmodel-bench-dedup-"))
    try:
        env = Env(work)
        if args.big_only:
            big = big_file_memory(env, int(args.big_gb * 1000**3))
            print(f"Machine: {os.cpu_count()} cores; load before the run: {load}")
            print(
                f"| peak memory, {gib(big['size'])} file | <= 256 MiB | add {big['add_rss']:.0f} "
                f"MiB ({big['add_s']:.0f} s), checkout from chunks {big['co_rss']:.0f} MiB "
                f"({big['co_s']:.0f} s) | {verdict(max(big['add_rss'], big['co_rss']) <= 256)} |"
            )
            return 0
        shapes = model_shapes(size, hidden)
        rng = np.random.default_rng(1)
        base = base_model(shapes, 0)
        results = []
        for name in ("5% changed", "full fine-tunes"):
            d = work / name.replace(" ", "-").replace("%", "pc")
            d.mkdir()
            files, changed, w = [], [], base
            for k in range(args.versions):
                if k:
                    if name == "5% changed":
                        w, c = five_percent(w, rng)
                    else:
                        w = fine_tune(w, rng)
                        c = sum(x.size * 2 for x in w.values())
                else:
                    c = 0
                path = d / f"v{k}.safetensors"
                write_safetensors(path, w)
                files.append(path)
                changed.append(c)
            print(
                f"bench: {name}: {len(shapes)} tensors, {gib(files[0].stat().st_size)} each",
                file=sys.stderr,
            )
            results.append(scenario(env, name, files, changed, args.runs))
            # each scenario's raw figures as soon as they exist (a long run may be cut short)
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            shutil.rmtree(d)
        big = big_file_memory(env, int(args.big_gb * 1000**3)) if args.full else None
        print(report(results[0], results[1], big, load))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
