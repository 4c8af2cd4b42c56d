from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="compute metrics from labels and predictions (scikit-learn)",
        description="Score predictions against labels with scikit-learn and write the metrics "
        "where `git model commit` and the post-commit hook read them (the first of "
        "metrics-files, or -o). Classification: accuracy, precision/recall/F1 (macro and "
        "weighted), and ROC AUC and log loss with --proba. Regression: MSE, RMSE, MAE, R2. "
        "Arrays are .npy, .csv or .json. --store keeps the per-example labels and predictions "
        "as an object named by the next commit's note, for the noise-aware release gate.",
    )
    p.add_argument("--y-true", required=True, metavar="FILE", help="true labels or values")
    p.add_argument("--y-pred", required=True, metavar="FILE", help="predicted labels or values")
    p.add_argument(
        "--proba",
        metavar="FILE",
        help="class probabilities: one column per class in sorted label order "
        "(or one column, the positive class, for binary)",
    )
    p.add_argument("--task", required=True, choices=["classification", "regression"])
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="metrics JSON to write or merge into (default: the first of metrics-files; "
        "'-' writes no file)",
    )
    p.add_argument("--prefix", default="", metavar="P", help='prefix metric names, e.g. "test."')
    p.add_argument(
        "--ids",
        metavar="FILE",
        help="one id per example, in order: the evaluation set's identity covers the "
        "examples (the gate says when candidate and baseline were measured on different sets)",
    )
    p.add_argument(
        "--inputs",
        metavar="PATH",
        help="the file or directory the examples came from, hashed into the evaluation "
        "set's identity (instead of --ids)",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help="store labels and predictions for the next commit's note (noise-aware gate)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from gitmodel.errors import GitModelError
    from gitmodel.evaluate import evaluate, leave_eval_set, store_predictions, write_metrics_file
    from gitmodel.render import fmt_number, info, print_json, table
    from gitmodel.repo import Repo

    repo = None
    try:
        repo = Repo()  # also outside --store: the evaluation set's identity goes in the note
    except GitModelError:
        if args.store:
            raise GitModelError("--store needs a git repository") from None
    if args.ids and args.inputs:
        raise GitModelError("give --ids or --inputs, not both")
    evaluation = evaluate(
        args.y_true, args.y_pred, args.task, args.proba, args.prefix, args.ids, args.inputs
    )
    output: Path | None = None
    if args.output and args.output != "-":
        output = Path(os.path.abspath(args.output))
    elif args.output is None and repo is not None and not repo.bare and repo.config.metrics_files:
        # Repository content names it: the work-tree policy decides (gitmodel.paths).
        output = repo.worktree.path(repo.config.metrics_files[0], ".gitmodel.toml metrics-files")
    if output is not None:
        write_metrics_file(output, evaluation.metrics)
    stored = None
    identity = evaluation.record["eval_set"]
    if repo is not None and not repo.bare:
        leave_eval_set(repo, args.prefix, identity)
    if args.store:
        assert repo is not None
        stored = store_predictions(repo, evaluation.record)
    if args.json:
        print_json(
            {
                "task": evaluation.task,
                "metrics": evaluation.metrics,
                "output": str(output) if output else None,
                "predictions": stored,
                "eval_set": identity,
            }
        )
        return 0
    table(None, ["metric", "value"], [[k, fmt_number(v)] for k, v in evaluation.metrics.items()])
    if output is not None:
        info(f"wrote {os.path.relpath(output)}")
    if stored is not None:
        info(
            f"stored {stored['n']} predictions (object {stored['md5'][:12]}, labels "
            f"{stored['labels_md5'][:12]}); the next commit's note will name them"
        )
    if identity["by"] == "labels":
        info(
            "the evaluation set is identified by its labels only: give --ids or --inputs so "
            "the gate can tell two sets with the same labels apart"
        )
    return 0
