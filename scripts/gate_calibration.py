"""Calibrate the noise-aware release gate by simulation, through the real gate code.

Each simulated release pair is a baseline and a candidate classifier scored on the same
fresh evaluation set of n binary examples, with independent errors: the baseline is
right with probability `--accuracy`, the candidate with that minus the true drop. Their
notes and stored predictions are built the way `git model eval --store` and
`git model commit` write them and judged by `gitmodel.gate.judge` (the function every
door calls) with `significance = ALPHA` and zero tolerance. The refusal rate for equal
models is the false-refusal rate (it should be ALPHA); for worse models, the power.

    python scripts/gate_calibration.py                       # the table in the docs
    python scripts/gate_calibration.py --n 200 --sims 500 --drops 0

With `--metrics 4` the gate judges accuracy, precision_macro, recall_macro and f1_macro at
once (Holm's correction): the rate is then the chance that at least one is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from gitmodel.bootstrap import MIN_RESAMPLES, _scorer  # noqa: E402
from gitmodel.config import parse_config_text  # noqa: E402
from gitmodel.evaluate import note_entry, predictions_record  # noqa: E402
from gitmodel.evidence import PredictionsEvidence  # noqa: E402
from gitmodel.gate import Baseline, Candidate, Release, judge  # noqa: E402
from gitmodel.versions import ReleaseTag, parse_tag  # noqa: E402

METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


def policy(alpha: float, metrics: int) -> Any:
    tables = "".join(
        f'[gate.{m}]\ndirection = "higher"\nsignificance = {alpha}\n' for m in METRICS[:metrics]
    )
    return parse_config_text(f'[release]\ntags = "v*"\ndrift = "off"\n{tables}', "calibration")


class Memory:
    """Stored predictions by md5, as the cache would hold them."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def load(self, entry: object, where: str) -> dict[str, Any]:
        assert isinstance(entry, dict)
        return self.objects[entry["md5"]]

    def note(self, y: np.ndarray, pred: np.ndarray, metrics: int) -> dict[str, Any]:
        record = predictions_record("classification", y, pred, None, [0, 1])
        data = json.dumps(record, separators=(",", ":")).encode()
        md5 = hashlib.md5(data).hexdigest()
        self.objects[md5] = record
        ones = np.ones((1, len(y)))
        values = {
            m: float(_scorer(m, "classification", y, pred, None, np.array([0, 1]))(ones)[0])
            for m in METRICS[:metrics]
        }
        return {"metrics": values, "predictions": note_entry(record, md5, len(data))}


def refusals(
    n: int,
    drop: float,
    sims: int,
    *,
    alpha: float = 0.05,
    accuracy: float = 0.9,
    metrics: int = 1,
    resamples: int = MIN_RESAMPLES,
    seed: int = 0,
) -> int:
    """How many of `sims` simulated candidates the real gate refuses."""
    import gitmodel.bootstrap as bootstrap

    cfg = policy(alpha, metrics)
    rng = np.random.default_rng(seed)
    previous = ReleaseTag(parse_tag("v1.0.0"), "a" * 40, 1)
    refused = 0
    default = bootstrap.DEFAULT_RESAMPLES
    # The gate runs noise_check with its default; fewer resamples (no fewer than the
    # minimum) make the simulation affordable and change the rule's level by less than
    # the Monte Carlo error of the table.
    bootstrap.DEFAULT_RESAMPLES = resamples
    try:
        for _ in range(sims):
            memory = Memory()
            y = rng.integers(0, 2, n)
            base = np.where(rng.random(n) < accuracy, y, 1 - y)
            cand = np.where(rng.random(n) < accuracy - drop, y, 1 - y)
            base_note = memory.note(y, base, metrics)
            cand_note = memory.note(y, cand, metrics)
            before = Release(previous, base_note)
            v = judge(
                cfg,
                Candidate("v1.1.0", "b" * 40, cand_note, tag="v1.1.0"),
                Baseline(before, [before]),
                PredictionsEvidence(memory.load),
            )
            refused += not v.passed
    finally:
        bootstrap.DEFAULT_RESAMPLES = default
    return refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[500, 5000], help="evaluation sizes")
    parser.add_argument(
        "--sims",
        type=int,
        nargs="+",
        default=[2000, 500],
        help="simulations per n (one or one per n)",
    )
    parser.add_argument(
        "--drops", type=float, nargs="+", default=[0.0, 0.01, 0.02, 0.03, 0.05],
        help="true accuracy drops of the candidate",
    )  # fmt: skip
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--accuracy", type=float, default=0.9)
    parser.add_argument("--metrics", type=int, default=1, choices=range(1, 5))
    parser.add_argument("--resamples", type=int, default=MIN_RESAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sims = args.sims if len(args.sims) == len(args.n) else args.sims[:1] * len(args.n)
    print(
        f"noise-aware gate, significance {args.alpha}, tolerance 0, base accuracy "
        f"{args.accuracy}, independent errors, {args.metrics} gated metric(s), "
        f"{args.resamples} resamples"
    )
    print("| n | true drop | simulations | refused | rate | Monte Carlo s.e. | seconds |")
    print("|---|---|---|---|---|---|---|")
    for n, count in zip(args.n, sims, strict=True):
        for drop in args.drops:
            start = time.perf_counter()
            k = refusals(
                n, drop, count, alpha=args.alpha, accuracy=args.accuracy,
                metrics=args.metrics, resamples=args.resamples, seed=args.seed,
            )  # fmt: skip
            rate = k / count
            se = math.sqrt(max(rate * (1 - rate), 1e-12) / count)
            took = time.perf_counter() - start
            kind = "false refusals" if drop == 0 else "power"
            print(
                f"| {n} | {drop:g} ({kind}) | {count} | {k} | {rate:.3f} | {se:.3f} | {took:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
