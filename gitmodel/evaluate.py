"""Metrics from predictions: load label/prediction arrays, score them with scikit-learn.

numpy and scikit-learn are imported inside the functions that use them: this module is
imported by `git model eval` only, never on a hook or `--help` path.

Stored predictions (``git model eval --store``) are one JSON object in the cache, named by
its md5 like any other object::

    {"kind": "gitmodel-predictions", "version": 1, "task": "classification",
     "labels_md5": "...", "n": 200, "classes": [0, 1], "prefix": "",
     "y_true": [...], "y_pred": [...], "proba": [[...], ...] | null}

``labels_md5`` is the md5 of the canonical JSON of ``y_true``. It names the labels, not
the examples: two different sets with the same label order share it. The evaluation set's
identity (``eval_set``) covers the examples when `git model eval` is told what they are:
``--ids FILE`` (one id per example, in order) or ``--inputs PATH`` (the file or directory
the examples were read from, hashed by content); it falls back to the labels alone and says
so (``"by": "labels"``)::

    "eval_set": {"md5": "...", "by": "ids" | "inputs" | "labels", "n": 200,
                 "labels_md5": "..."}

`git model eval` in a repository leaves it for the next commit's note (under
``eval_sets``, by metric prefix), with or without ``--store``; the gate compares the
candidate's with each baseline's at every door.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError
from gitmodel.lockfile import write_file

if TYPE_CHECKING:
    import numpy as np

    from gitmodel.workspace_view import Workspace

TASKS = ("classification", "regression")
PREDICTIONS_KIND = "gitmodel-predictions"
MAX_ARRAY_BYTES = 2 * 1024**3  # a label file larger than this is not an evaluation set


class EvalError(GitModelError):
    pass


# -- loading ------------------------------------------------------------------------------


def load_array(path: str | os.PathLike[str], what: str) -> np.ndarray:
    """A 1-D (labels, predictions) or 2-D (probabilities) array from .npy, .csv or .json."""
    import numpy as np

    p = Path(path)
    where = f"{what} {path}"
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise EvalError(f"{where}: no such file") from None
    except OSError as exc:
        raise EvalError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_ARRAY_BYTES:
        raise EvalError(f"{where}: file too large for an evaluation set")
    ext = p.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)  # pickled object arrays could run code
        elif ext == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict) and len(data) == 1:
                data = next(iter(data.values()))  # {"y_pred": [...]}
            if not isinstance(data, list):
                raise EvalError(f"{where}: expected a JSON array")
            arr = np.asarray(data)
        elif ext in (".csv", ".txt", ".tsv"):
            arr = _load_csv(p, where)
        else:
            shown = ext or "(no extension)"
            raise EvalError(f"{where}: unknown format {shown} (use .npy, .csv or .json)")
    except EvalError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EvalError(f"{where}: cannot parse ({first})") from None
    if arr.dtype == object:
        raise EvalError(f"{where}: ragged or mixed-type array")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise EvalError(f"{where}: expected a 1-D or 2-D array, got {arr.ndim}-D")
    if arr.shape[0] == 0:
        raise EvalError(f"{where}: empty array")
    return arr


def _load_csv(path: Path, where: str) -> np.ndarray:
    import numpy as np

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter=delimiter) if r and any(c.strip() for c in r)]
    if not rows:
        raise EvalError(f"{where}: empty file")
    # A first row of names is a header: over numeric rows, or (string labels) when none of
    # its names occurs again in its column.
    if len(rows) > 1 and not any(_is_number(c) for c in rows[0]):
        below = [{r[i].strip() for r in rows[1:] if i < len(r)} for i in range(len(rows[0]))]
        numeric_below = all(_is_number(c) for c in rows[1])
        unseen = all(c.strip() not in col for c, col in zip(rows[0], below, strict=True))
        if numeric_below or (unseen and len(rows) > 2):
            rows = rows[1:]
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise EvalError(f"{where}: rows have different numbers of columns")
    cells = [[c.strip() for c in r] for r in rows]
    if all(_is_number(c) for r in cells for c in r):
        values = np.asarray([[float(c) for c in r] for r in cells])
        if (
            np.all(np.isfinite(values))
            and np.all(values == np.round(values))
            and not any("." in c or "e" in c.lower() for r in cells for c in r)
        ):
            values = values.astype(np.int64)
        return values
    return np.asarray(cells)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# -- checking -----------------------------------------------------------------------------


def _kind(arr: np.ndarray) -> str:
    return "str" if arr.dtype.kind in "US" else "bool" if arr.dtype.kind == "b" else "num"


def _as_labels(arr: np.ndarray, what: str) -> np.ndarray:
    """Class labels: strings, or numbers that are whole (0.0 and 0 are the same class)."""
    import numpy as np

    if arr.ndim != 1:
        raise EvalError(f"{what}: expected one label per example, got shape {arr.shape}")
    if _kind(arr) == "num":
        if not np.all(np.isfinite(arr)):
            raise EvalError(f"{what}: labels contain NaN or infinity")
        if np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
    return arr


def check_classification(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Validated (y_true, y_pred, proba as n x classes, classes); one-line errors otherwise."""
    import numpy as np

    y_true = _as_labels(y_true, "--y-true")
    y_pred = _as_labels(y_pred, "--y-pred")
    if len(y_true) != len(y_pred):
        raise EvalError(f"--y-true has {len(y_true)} examples but --y-pred has {len(y_pred)}")
    if _kind(y_true) != _kind(y_pred) and not {_kind(y_true), _kind(y_pred)} <= {"num", "bool"}:
        raise EvalError(
            f"label sets differ: --y-true has {_kind(y_true)} labels, "
            f"--y-pred has {_kind(y_pred)} labels"
        )
    if _kind(y_true) == "num" and y_true.dtype.kind == "f":
        raise EvalError("--y-true: labels are not whole numbers (is this a regression task?)")
    if _kind(y_pred) == "num" and y_pred.dtype.kind == "f":
        raise EvalError("--y-pred: predictions are not whole numbers (use --proba for scores)")
    classes = np.unique(y_true)
    unknown = np.setdiff1d(np.unique(y_pred), classes)
    if unknown.size:
        shown = ", ".join(str(x) for x in unknown[:5]) + (" ..." if unknown.size > 5 else "")
        raise EvalError(f"label sets differ: --y-pred has labels not in --y-true: {shown}")
    if proba is not None:
        if proba.dtype.kind not in "fiu":
            raise EvalError("--proba: probabilities must be numbers")
        proba = proba.astype(np.float64)
        if proba.shape[0] != len(y_true):
            raise EvalError(f"--y-true has {len(y_true)} examples but --proba has {proba.shape[0]}")
        if proba.ndim == 1:
            if len(classes) != 2:
                raise EvalError(
                    f"--proba has one column but there are {len(classes)} classes "
                    "(give one column per class)"
                )
            proba = np.column_stack([1 - proba, proba])
        if proba.shape[1] != len(classes):
            raise EvalError(
                f"--proba has {proba.shape[1]} columns but --y-true has {len(classes)} classes"
            )
        if not np.all(np.isfinite(proba)) or np.any(proba < 0) or np.any(proba > 1):
            raise EvalError("--proba: probabilities must be finite and within [0, 1]")
    return y_true, y_pred, proba, classes


def check_regression(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    for arr, what in ((y_true, "--y-true"), (y_pred, "--y-pred")):
        if arr.ndim != 1:
            raise EvalError(f"{what}: expected one value per example, got shape {arr.shape}")
        if arr.dtype.kind not in "fiub":
            raise EvalError(f"{what}: regression values must be numbers")
    if len(y_true) != len(y_pred):
        raise EvalError(f"--y-true has {len(y_true)} examples but --y-pred has {len(y_pred)}")
    yt, yp = y_true.astype(np.float64), y_pred.astype(np.float64)
    if not (np.all(np.isfinite(yt)) and np.all(np.isfinite(yp))):
        raise EvalError("regression values contain NaN or infinity")
    return yt, yp


# -- scoring ------------------------------------------------------------------------------


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> dict[str, float]:
    from sklearn import metrics as skm

    out: dict[str, float] = {"accuracy": skm.accuracy_score(y_true, y_pred)}
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=0
        )
        out[f"precision_{avg}"] = p
        out[f"recall_{avg}"] = r
        out[f"f1_{avg}"] = f
    if proba is not None:
        out["log_loss"] = skm.log_loss(y_true, proba, labels=classes)
        if len(classes) == 2:
            out["roc_auc"] = skm.roc_auc_score(y_true == classes[1], proba[:, 1])
        elif len(classes) > 2:
            # scikit-learn wants rows that sum to one for the one-vs-rest average.
            rows = proba / proba.sum(axis=1, keepdims=True).clip(min=1e-300)
            out["roc_auc"] = skm.roc_auc_score(y_true, rows, multi_class="ovr", labels=classes)
    return {k: _finite(k, v) for k, v in out.items()}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    mse = skm.mean_squared_error(y_true, y_pred)
    out = {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": skm.mean_absolute_error(y_true, y_pred),
    }
    if len(y_true) > 1:
        out["r2"] = skm.r2_score(y_true, y_pred)
    return {k: _finite(k, v) for k, v in out.items()}


def _finite(name: str, value: Any) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise EvalError(f"metric {name} is not finite for these predictions")
    return v


@dataclass
class Evaluation:
    task: str
    metrics: dict[str, float]
    record: dict[str, Any]  # the predictions object (see module docstring)


def evaluate(
    y_true_file: str | os.PathLike[str],
    y_pred_file: str | os.PathLike[str],
    task: str,
    proba_file: str | os.PathLike[str] | None = None,
    prefix: str = "",
    ids_file: str | os.PathLike[str] | None = None,
    inputs: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """Score predictions against labels; metric names get `prefix` (e.g. "test.").

    `ids_file` (one id per example) or `inputs` (the examples' file or directory) make
    the evaluation set's identity cover the examples, not just the labels.
    """
    if task not in TASKS:
        raise EvalError(f"--task must be one of {', '.join(TASKS)}")
    y_true = load_array(y_true_file, "--y-true")
    y_pred = load_array(y_pred_file, "--y-pred")
    proba = load_array(proba_file, "--proba") if proba_file is not None else None
    if task == "classification":
        yt, yp, pr, classes = check_classification(y_true, y_pred, proba)
        metrics = classification_metrics(yt, yp, pr, classes)
        record = predictions_record(task, yt, yp, pr, classes.tolist(), prefix)
    else:
        if proba is not None:
            raise EvalError("--proba is for classification")
        yt, yp = check_regression(y_true, y_pred)
        metrics = regression_metrics(yt, yp)
        record = predictions_record(task, yt, yp, None, None, prefix)
    ids = None
    if ids_file is not None:
        arr = load_array(ids_file, "--ids")
        if arr.ndim != 1 or len(arr) != len(yt):
            raise EvalError(f"--ids has {len(arr)} entries but --y-true has {len(yt)} examples")
        ids = arr.tolist()
        if len(set(ids)) != len(ids):
            raise EvalError("--ids: ids must be unique (one per example)")
    inputs_md5 = inputs_hash(inputs) if inputs is not None else None
    record["eval_set"] = eval_set_identity(record["labels_md5"], len(yt), ids, inputs_md5)
    return Evaluation(task, {f"{prefix}{k}": v for k, v in metrics.items()}, record)


def eval_set_identity(
    labels_md5: str, n: int, ids: list[Any] | None = None, inputs_md5: str | None = None
) -> dict[str, Any]:
    """The evaluation set's identity: its examples (ids or inputs) with their labels."""
    if ids is not None:
        by, what = "ids", hashlib.md5(json.dumps(ids, separators=(",", ":")).encode()).hexdigest()
    elif inputs_md5 is not None:
        by, what = "inputs", inputs_md5
    else:
        by, what = "labels", ""
    md5 = hashlib.md5(f"{by}\0{what}\0{labels_md5}".encode()).hexdigest()
    return {"md5": md5, "by": by, "n": n, "labels_md5": labels_md5}


def inputs_hash(path: str | os.PathLike[str]) -> str:
    """md5 over a file's bytes, or a directory's files (relative path and md5, sorted).

    Symlinks are not followed (a link's target text is hashed): the identity is what the
    directory holds, and a link out of it must not make gitmodel read elsewhere.
    """
    from gitmodel.store import hash_file

    root = Path(path)
    if root.is_symlink() or not root.exists():
        raise EvalError(f"--inputs {path}: no such file or directory")
    if root.is_file():
        return hash_file(root)
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                digest = "link:" + os.readlink(full)
            elif full.is_file():
                digest = hash_file(full)
            else:
                continue
            lines.append(f"{rel}\0{digest}\n")
    if not lines:
        raise EvalError(f"--inputs {path}: an empty directory is not an evaluation set")
    return hashlib.md5("".join(lines).encode()).hexdigest()


# -- stored predictions -------------------------------------------------------------------


def labels_hash(y_true: Sequence[Any]) -> str:
    """md5 of the labels' canonical JSON: equal labels in equal order, equal hash."""
    return hashlib.md5(json.dumps(list(y_true), separators=(",", ":")).encode()).hexdigest()


def predictions_record(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    prefix: str = "",
) -> dict[str, Any]:
    yt = y_true.tolist()
    return {
        "kind": PREDICTIONS_KIND,
        "version": 1,
        "task": task,
        "labels_md5": labels_hash(yt),
        "n": len(yt),
        "classes": classes,
        "prefix": prefix,
        "y_true": yt,
        "y_pred": y_pred.tolist(),
        "proba": proba.tolist() if proba is not None else None,
    }


def note_entry(record: dict[str, Any], md5: str, size: int) -> dict[str, Any]:
    """What a note says about stored predictions: enough to match evaluation sets cheaply."""
    return {
        "md5": md5,
        "size": size,
        "labels_md5": record["labels_md5"],
        "n": record["n"],
        "task": record["task"],
        "prefix": record.get("prefix", ""),
        "proba": record.get("proba") is not None,
        **({"eval_set": record["eval_set"]} if isinstance(record.get("eval_set"), dict) else {}),
    }


def leave_eval_set(repo: Workspace, prefix: str, identity: dict[str, Any]) -> None:
    """Leave the evaluation set's identity for the next commit's note (by metric prefix)."""
    from gitmodel.attachments import PENDING_EVAL_SETS

    pending = repo.git_dir / PENDING_EVAL_SETS
    sets: dict[str, Any] = {}
    try:
        loaded = json.loads(pending.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            sets = loaded
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    sets[prefix] = identity
    pending.parent.mkdir(parents=True, exist_ok=True)
    write_file(pending, json.dumps(sets, indent=2, sort_keys=True).encode())


def store_predictions(repo: Workspace, record: dict[str, Any]) -> dict[str, Any]:
    """Store the record as an object and leave it for the next commit's note to reference."""
    data = json.dumps(record, separators=(",", ":")).encode()
    from gitmodel.attachments import store_attachment

    md5 = store_attachment(repo.store, data)  # named only by a note: kept from `dvc gc`
    entry = note_entry(record, md5, len(data))
    from gitmodel.attachments import PENDING_PREDICTIONS

    pending = repo.git_dir / PENDING_PREDICTIONS
    pending.parent.mkdir(parents=True, exist_ok=True)
    write_file(pending, json.dumps(entry, indent=2).encode())
    return entry


def load_predictions(repo: Workspace, entry: object, where: str) -> dict[str, Any]:
    """The predictions object a note entry names, verified against its md5."""
    from gitmodel.attachments import read_object

    try:
        data = read_object(repo, entry, "predictions", where)
    except GitModelError as exc:
        raise EvalError(exc.message) from None
    md5 = entry["md5"]  # type: ignore[index]  # read_object checked it
    try:
        record = json.loads(data)
    except ValueError:
        raise EvalError(f"{where}: predictions object {md5} is not JSON") from None
    if not isinstance(record, dict) or record.get("kind") != PREDICTIONS_KIND:
        raise EvalError(f"{where}: object {md5} is not a predictions object")
    for key in ("y_true", "y_pred"):
        if not isinstance(record.get(key), list):
            raise EvalError(f"{where}: predictions object {md5} has no {key}")
    if len(record["y_true"]) != len(record["y_pred"]):
        raise EvalError(f"{where}: predictions object {md5} has mismatched lengths")
    return record


def write_metrics_file(path: Path, metrics: dict[str, float]) -> dict[str, Any]:
    """Merge metrics into a JSON metrics file (other metrics in it are kept)."""
    existing: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError, UnicodeDecodeError):
            loaded = None
        if isinstance(loaded, dict):
            existing = loaded
    merged = {**existing, **metrics}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())
    return merged
