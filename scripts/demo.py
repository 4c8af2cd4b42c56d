"""End-to-end demo of gitmodel on real scikit-learn models (digits, shipped with sklearn).

Runs the real `git` and `git model` commands in a fresh repository and shows each
command with its output. Usage: scripts/demo.sh [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent

# Colour only on a terminal that has not asked for none (https://no-color.org): piped into
# a file or a pager, the story must read as plain text.
COLOUR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def paint(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if COLOUR else text


class Demo:
    """A scratch repository plus a narrator that shows every command it runs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.repo = workdir / "project"
        self.out = workdir / "output"  # plots, reports
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Demo User\n\temail = demo@example.com\n[init]\n\tdefaultBranch = main\n"
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1",
        }

    def step(self, title: str) -> None:
        print("\n" + paint("1", f"== {title}"), flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def run(
        self, cmd: str, expect: int | None = 0, cwd: Path | None = None, show: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command line in the repo; print it and its output."""
        print(paint("36", f"$ {cmd}"), flush=True)
        # stderr joins stdout so messages appear in the order the commands wrote them;
        # callers that parse output (json()) ask for a clean stdout.
        proc = subprocess.run(
            cmd,
            shell=True,
            cwd=cwd or self.repo,
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if show else subprocess.PIPE,
        )
        if show and proc.stdout.strip():
            print(proc.stdout.rstrip(), flush=True)
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"demo: `{cmd}` exited {proc.returncode}, expected {expect}")
        if expect != 0:
            print(paint("33", f"(exit code {proc.returncode})"), flush=True)
        return proc

    def write(self, path: str, text: str, cwd: Path | None = None) -> None:
        """Write a file of the story, showing it as the heredoc that would write it."""
        print(paint("36", f"$ cat > {path} <<'EOF'"), flush=True)
        print(text.rstrip("\n") + "\nEOF", flush=True)
        (cwd or self.repo).joinpath(path).write_text(text)

    def json(self, cmd: str) -> Any:
        return json.loads(self.run(cmd, show=False).stdout)


def train(demo: Demo, kind: str, seed: int = 0) -> dict[str, float]:
    """Train a digits classifier, save it as model.pkl, write metrics.json; return metrics."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y
    )
    models = {
        "weak": lambda: LogisticRegression(C=1e-4, max_iter=200),
        "logreg": lambda: LogisticRegression(C=0.05, max_iter=2000),
        "svc": lambda: SVC(C=10, gamma=0.001, probability=True, random_state=seed),
        "knn-1": lambda: KNeighborsClassifier(n_neighbors=1),
    }
    model = models[kind]()
    import warnings

    with warnings.catch_warnings():
        # newer scikit-learn deprecates SVC(probability=True); the demo only needs it to work
        warnings.simplefilter("ignore", FutureWarning)
        model.fit(x_train, y_train)
    pred = model.predict(x_test)
    proba = model.predict_proba(x_test)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, pred)), 4),
        "f1_macro": round(float(f1_score(y_test, pred, average="macro")), 4),
        "log_loss": round(float(log_loss(y_test, proba)), 4),
    }
    with open(demo.repo / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    (demo.repo / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    # Kept for the evaluation step: the test labels and this model's predictions.
    demo.last_eval = (y_test, pred, proba)  # type: ignore[attr-defined]
    demo.say(f"trained {kind}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return metrics


def demo_core(demo: Demo) -> None:
    demo.step("A project with training code in git")
    demo.repo.mkdir(parents=True)
    demo.run(
        "git init -q && echo '# digits classifier' > README.md && git add README.md && git commit -qm 'start project'"
    )
    demo.run("git model init")
    demo.say("the policy: which metrics a release may not make worse, and by how much")
    demo.write(
        ".gitmodel.toml",
        'metrics-files = ["metrics.json"]\n\n[release]\ntags = "v*"\n\n'
        '[gate.accuracy]\ndirection = "higher"\ntolerance = 0.005\n\n'
        '[gate.log_loss]\ndirection = "lower"\nrelative-tolerance = 0.10\n',
    )
    demo.run("git add .gitmodel.toml && git commit -qm 'gitmodel: gate accuracy and log loss'")

    demo.step("Version 1: logistic regression, committed with its metrics")
    train(demo, "logreg")
    demo.run("cat metrics.json")
    demo.run("git model commit model.pkl -m 'logistic regression baseline'")
    demo.run("cat model.pkl.dvc")
    demo.run("git log -1")

    demo.step("Version 2: an SVM")
    train(demo, "svc")
    demo.run("git model commit model.pkl -m 'SVM, gamma=0.001'")

    demo.step("Metrics across history, and what changed")
    demo.run("git model log")
    demo.run("git model diff HEAD~1 HEAD")
    demo.run("git model metrics --json")

    demo.step("Status and checkout: weights one command away")
    demo.run("git model status")
    demo.run("rm model.pkl && git model status")
    demo.run("git model checkout && git model status")
    demo.say("the baseline's weights, byte for byte:")
    demo.run(
        "git checkout -q HEAD~1 && git model checkout && md5sum model.pkl && grep md5 model.pkl.dvc"
    )
    demo.run("git checkout -q main && git model checkout && git model status")

    demo.step("Still a DVC repository: the real dvc agrees")
    demo.run("dvc status")


def demo_release_gate(demo: Demo) -> None:
    """The release gate at its doors: a refused plain `git tag`, then a passing release."""
    demo.step("Release gate: the baseline becomes v1.0.0")
    demo.run("git model release v1.0.0 --rev HEAD~1 -m 'logistic regression baseline'")

    demo.step("An experiment that got worse: plain `git tag` refuses it")
    demo.run("git checkout -q -b experiment")
    train(demo, "weak")
    demo.run("git model commit model.pkl -m 'experiment: heavier regularisation'")
    demo.run("git tag v1.1.0", expect=None)  # the reference-transaction hook says no
    demo.run("git tag -l")
    demo.say("no tag was left behind; `git model release --allow-regression REASON` would")
    demo.say("release it anyway and record the reason in the tag and in the commit's note.")

    demo.step("Back to the SVM (the post-checkout hook restores its weights): it passes")
    demo.run("git checkout -q main && git model status")
    demo.run("git model check")
    demo.run("git model release --bump minor -m 'SVM'")
    demo.run("git tag -n40 v1.1.0")
    demo.run("git model diff")


def demo_default_gate(demo: Demo) -> None:
    """No configuration at all: a metric named for its direction is gated by default."""
    repo = demo.workdir / "defaults"
    repo.mkdir(parents=True)

    def run(cmd: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return demo.run(cmd, expect=expect, cwd=repo)

    demo.step("Gated out of the box: no [gate] table, accuracy still cannot drop")
    run("git init -q && git model init > /dev/null && git commit -qm 'gitmodel init'")
    run("""echo '{"accuracy": 0.99, "score": 7}' > metrics.json && git add metrics.json""")
    run("git commit -qm 'train' && git tag v1.0.0")
    run("""echo '{"accuracy": 0.11, "score": 9}' > metrics.json && git commit -qam 'retrain'""")
    run("git tag v1.1.0", expect=None)  # refused by the hook: accuracy fell
    run("git tag -l")


def demo_remotes(demo: Demo) -> None:
    """Weights to a DVC remote (a local directory here) and notes to a git remote, via git push."""
    origin = demo.workdir / "origin.git"
    store = demo.workdir / "dvc-store"
    clone = demo.workdir / "teammate"
    demo.step("Remotes: a git remote for code and notes, a DVC remote for the weights")
    demo.run(f"git init -q --bare {origin}", cwd=demo.workdir)
    demo.run(f"git remote add origin {origin}")
    demo.run(f"git model remote add store {store} --default")
    demo.run("git commit -q -m 'weights go to the DVC remote store'")

    demo.step("git push: the pre-push hook uploads the new weights and the notes before the refs")
    demo.run("git push -q origin main experiment")
    demo.run("git push -q origin --tags")
    demo.run("git model push")  # nothing left: every object is already there
    demo.run(f"find {store} -type f | wc -l")

    demo.step("A teammate clones: git model pull brings the weights and every note")
    demo.run(f"git clone -q {origin} {clone}", cwd=demo.workdir)
    demo.run("git model init", cwd=clone)
    demo.run("git model pull", cwd=clone)
    demo.run("git model log -n 3", cwd=clone)
    demo.run("git model status", cwd=clone)
    demo.run("dvc pull", cwd=clone)  # the real dvc reads the same remote


def demo_registry(demo: Demo) -> None:
    """Stages: promote to prod (gated), roll back with a reason, deploy with get, a dashboard."""
    origin = demo.workdir / "origin.git"
    deploy = demo.workdir / "serving"  # a deploy box: no clone of the training repository
    demo.step("Registry: promote the SVM release to prod (a GTO stage tag, gated)")
    demo.run("git model promote v1.1.0 prod -m 'SVM to production'")
    demo.step("Promoting the older, weaker v1.0.0 over it is refused")
    demo.run("git model promote v1.0.0 prod", expect=1)
    # Stage events are ordered by tag time in whole seconds, as GTO orders them.
    time.sleep(1.1)
    demo.step("A rollback is a promotion with a reason, recorded in the tag and the note")
    demo.run(
        "git model promote v1.0.0 prod --allow-regression 'rollback: the SVM is too slow "
        "on the serving hardware'"
    )
    demo.run("git push -q origin 'main#prod#1' 'main#prod#2'")  # gated again at the doors
    demo.run("git model releases")

    demo.step("Deploy: fetch what holds prod now, without cloning the training repository")
    deploy.mkdir(parents=True, exist_ok=True)
    demo.run(f"git model get {origin} model.pkl --rev '#prod' -o model.pkl", cwd=deploy)
    demo.run(
        "python -c \"import pickle; m = pickle.load(open('model.pkl', 'rb')); "
        "print('serving', type(m).__name__)\"",
        cwd=deploy,
    )

    demo.step("A dashboard for the team: a static page CI can publish")
    demo.run(f"git model report --html {demo.out}/dashboard")
    demo.say(f"open {demo.out}/dashboard/index.html (offline: no script, nothing remote)")


SCIENCE_TRAIN = """\
\"\"\"Train a digits classifier epoch by epoch; log the history; save predictions for eval.\"\"\"
import argparse
import pickle
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import gitmodel

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
x, y = load_digits(return_X_y=True)
x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=0.25, random_state=0, stratify=y
)
scaler = StandardScaler().fit(x_train)
x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
model = SGDClassifier(loss="log_loss", random_state=args.seed)
for epoch in range(args.epochs):
    model.partial_fit(x_train, y_train, classes=np.arange(10))
    gitmodel.log_metrics(
        step=epoch,
        loss=log_loss(y_train, model.predict_proba(x_train), labels=np.arange(10)),
        val_accuracy=model.score(x_test, y_test),
    )
Path("eval").mkdir(exist_ok=True)
np.save("eval/y_true.npy", y_test)
np.save("eval/y_pred.npy", model.predict(x_test))
np.save("eval/proba.npy", model.predict_proba(x_test))
with open("model.pkl", "wb") as f:
    pickle.dump(model, f)
"""


def demo_science(demo: Demo) -> None:
    """Training history, metrics from predictions, the noise-aware gate, plots and a report."""
    repo = demo.workdir / "science"
    repo.mkdir(parents=True)

    def run(cmd: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        return demo.run(cmd, expect=expect, cwd=repo)

    demo.step("Release science: a training loop that logs its history")
    run("git init -q && git model init")
    demo.write(
        ".gitmodel.toml",
        'metrics-files = ["metrics.json"]\n\n[release]\ntags = "v*"\n\n'
        '[gate.accuracy]\ndirection = "higher"\ntolerance = 0.002\n'
        "significance = 0.05   # refuse only drops beyond the tolerance that are not noise\n",
        cwd=repo,
    )
    demo.write("train.py", SCIENCE_TRAIN, cwd=repo)
    demo.write(".gitignore", "/eval/\n", cwd=repo)
    run("git add -A && git commit -qm 'digits: SGD training loop with gitmodel.log_metrics'")
    run("python train.py --epochs 20 --seed 0 && tail -n 2 .gitmodel/history.jsonl")

    demo.step("Metrics from predictions (scikit-learn), stored for the gate")
    run(
        "git model eval --y-true eval/y_true.npy --y-pred eval/y_pred.npy "
        "--proba eval/proba.npy --task classification --store"
    )
    run("git model commit model.pkl -m 'SGD, 20 epochs, seed 0'")
    run('git model metrics --json | grep -A7 \'"predictions"\\|"training_history"\'')
    run("git model release v1.0.0 -m 'first SGD release'")

    demo.step("A retrain with another seed, a little worse on 450 examples: noise or regression?")
    run("python train.py --epochs 20 --seed 4")
    run(
        "git model eval --y-true eval/y_true.npy --y-pred eval/y_pred.npy "
        "--proba eval/proba.npy --task classification --store"
    )
    run("git model commit model.pkl -m 'SGD, 20 epochs, seed 4'")
    demo.say("the plain rule refuses any drop beyond the 0.002 tolerance; the paired bootstrap on")
    demo.say("the stored predictions asks whether a drop beyond it is demonstrated (one-sided at")
    demo.say("5%). A pass says what is not known: how far down the interval allows, and the")
    demo.say("smallest drop this test set could detect with 80% power:")
    if run("git model check", expect=None).returncode == 0:
        run("git model release v1.1.0 -m 'retrained'")
    else:
        demo.say("(with this scikit-learn version the seed-4 model is significantly worse)")

    demo.step("An undertrained model: a real drop, refused with its one-sided bound")
    run("python train.py --epochs 1 --seed 0")
    run(
        "git model eval --y-true eval/y_true.npy --y-pred eval/y_pred.npy "
        "--proba eval/proba.npy --task classification --store"
    )
    run("git model commit model.pkl -m 'SGD, 1 epoch'")
    run("git model check", expect=1)

    demo.step("Plots: the loss curve of a commit, accuracy across commits with releases marked")
    run("git model plot --history HEAD~1")
    run(f"git model plot --history HEAD~1 -o {demo.out}/training-history.png")
    run("git model plot --metric accuracy")
    run(f"git model plot --metric accuracy --metric log_loss -o {demo.out}/accuracy.png")

    demo.step("A report for the pull request: the previous release against the candidate")
    run(f"git model report --format md -o {demo.out}/report.md")
    run(f"cat {demo.out}/report.md")


def _checkpoint(path: Path, weights: dict[str, Any]) -> None:
    """A bf16 safetensors file written by hand (numpy has no bf16: float32's top half)."""
    import numpy as np

    header, at, blobs = {}, 0, []
    for name, w in weights.items():
        u = w.astype(np.float32).view(np.uint32).astype(np.uint64)
        blob = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
        header[name] = {"dtype": "BF16", "shape": [w.size], "data_offsets": [at, at + len(blob)]}
        at += len(blob)
        blobs.append(blob)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"".join(blobs))


def demo_dedup(demo: Demo) -> None:
    """[storage] dedup: versions of one checkpoint share chunks; every version is exact."""
    import hashlib

    import numpy as np

    repo = demo.workdir / "checkpoints"
    demo.step("Deduplicated storage: four versions of a checkpoint in the space of one")
    demo.run(f"git init -q {repo} && cd {repo} && git model init", cwd=demo.workdir)
    demo.run("printf '\\n[storage]\\ndedup = true\\n' >> .gitmodel.toml", cwd=repo)
    demo.run("git add .gitmodel.toml && git commit -q -m 'dedup on'", cwd=repo)
    rng = np.random.default_rng(0)
    weights = {
        f"layers.{i}.weight": rng.normal(0, 0.02 * (1 + i % 4), 256 * 1024).astype(np.float32)
        for i in range(24)
    }
    names = sorted(weights)
    sums, raw = [], 0
    for v in range(4):
        if v:  # a fine-tune step: 3 of the 24 tensors move, the rest stay frozen
            for name in names[3 * v : 3 * v + 3]:
                w = weights[name]
                weights[name] = (w * (1 + rng.normal(0, 1e-3, w.shape))).astype(np.float32)
        _checkpoint(repo / "model.safetensors", weights)
        data = (repo / "model.safetensors").read_bytes()
        sums.append(hashlib.md5(data).hexdigest())
        raw += len(data)
        demo.say(f"version {v}: {len(data) / 2**20:.1f} MiB of bf16 weights")
        demo.run(f"git model commit model.safetensors -m v{v} --metric step={v}", cwd=repo)
    demo.say("gc keeps chunks only (whole-file objects are a cache chunks can rebuild):")
    demo.run("git model gc --grace 0 --chunks-only", cwd=repo)
    store = sum(f.stat().st_size for f in (repo / ".dvc" / "cache").rglob("*") if f.is_file())
    demo.say(
        f"stored: {store / 2**20:.1f} MiB for {raw / 2**20:.1f} MiB of versions "
        f"(plain storage keeps all {raw / 2**20:.1f} MiB)"
    )
    demo.run("git checkout -q HEAD~2 && git model checkout", cwd=repo)
    demo.run("md5sum model.safetensors && grep md5 model.safetensors.dvc", cwd=repo)
    got = hashlib.md5((repo / "model.safetensors").read_bytes()).hexdigest()
    if got != sums[1]:
        raise SystemExit("demo: the rebuilt version is not byte-exact")
    demo.say(
        "version 1, rebuilt from chunks by git's post-checkout hook: byte-exact "
        "(every chunk checked against its sha256, the file against its md5)"
    )
    demo.run("git checkout -q main && git model checkout && git model fsck", cwd=repo)


def demo_mistakes(demo: Demo) -> None:
    """What a newcomer gets wrong in the first hour, and the one line that answers each."""
    fresh = demo.workdir / "fresh"
    demo.step("First-hour mistakes get one line each, and nothing is half done")
    demo.run(f"git init -q {fresh}", cwd=demo.workdir)
    demo.run("echo weights > model.bin && git model add model.bin", expect=2, cwd=fresh)
    demo.run("git model status modle.pkl", expect=2)
    demo.run("git model checkout modle.pkl", expect=2)
    demo.run("git model log --metric acuracy", expect=2)
    demo.run("git model check HEAD~1 --tag v0.0.1")  # a typo for v1.0.1?
    demo.say("shell completion of verbs, flags, weights and release tags, for ~/.bashrc:")
    demo.say('  eval "$(git model completion bash)"   (zsh: git model completion zsh)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)"
    )
    args = parser.parse_args()
    if args.keep:
        workdir = Path(args.keep).resolve()
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="gitmodel-demo-"))
    demo = Demo(workdir)
    print(f"demo directory: {workdir}")
    try:
        demo_core(demo)
        demo_release_gate(demo)
        demo_default_gate(demo)
        demo_remotes(demo)
        demo_registry(demo)
        demo_science(demo)
        demo_dedup(demo)
        demo_mistakes(demo)
    except BaseException:
        print(f"\ndemo stopped; everything it made is kept in {workdir}", file=sys.stderr)
        raise
    print("\n" + paint("1", "demo finished: every step above ran for real."))
    if args.keep:
        print(f"the repositories, plots, report and dashboard are kept in {workdir}")
    else:
        # The repositories go; what the demo drew and wrote for people to look at stays.
        for child in workdir.iterdir():
            if child != demo.out:
                shutil.rmtree(child, ignore_errors=True)
        print(
            f"the plots, the report and the dashboard are kept in {demo.out}; the repositories "
            "were removed (scripts/demo.sh --keep DIR keeps them too)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
