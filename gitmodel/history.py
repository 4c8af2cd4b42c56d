"""Training history: `gitmodel.log_metrics(step=epoch, loss=...)` from a training script.

Each call appends one JSON line to the history file (default ``.gitmodel/history.jsonl`` at
the repository root; ``[eval] history = "PATH"`` in the config or the ``GITMODEL_HISTORY``
environment variable move it). The next `git model commit` (or post-commit note) stores
the file as a content-addressed object, names it in the note
(``"training_history": {"md5": ...}``) and removes it, so the next training run starts a
fresh history.

Each line: ``{"run": "<id of the process that logged it>", "time": <unix seconds>,
"step": <int, optional>, "<metric>": <number>, ...}``. One `write` per line on a file
opened with O_APPEND, so concurrent loggers interleave whole lines, never bytes.

A diverged run logs NaN or an infinity: JSON has no such numbers, so they are recorded as
the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spellings of JavaScript and
of Python's json module) with a warning, and read back as floats (a plot shows a gap).

Cheap on purpose: a training loop calls it every epoch, so no git process, no numpy.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

from gitmodel.errors import GitModelError

HISTORY_ENV = "GITMODEL_HISTORY"
DEFAULT_HISTORY = ".gitmodel/history.jsonl"
HISTORY_KIND = "gitmodel-history"
MAX_HISTORY_BYTES = 256 * 1024 * 1024

# One id per process: the lines of one training run share it, so a history that holds
# several runs (trained twice before a commit) can still be told apart.
_RUN_ID = uuid.uuid4().hex[:12]
_resolved: dict[str, Path] = {}


class HistoryError(GitModelError):
    pass


def find_root(start: Path) -> Path | None:
    """The work tree root above start (a `.git` dir or file), without running git."""
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def history_path(root: Path | None = None) -> Path:
    """Where the history file of the repository at root (or around cwd) lives.

    `[eval] history` is repository content: the history file is appended to, stored and
    then removed, so the path must pass the work-tree policy (gitmodel.paths): relative,
    inside the work tree, not in .git, no link on the way or at the leaf. The environment
    variable is the user's own choice and is taken as given.
    """
    from gitmodel.paths import WorkTree

    cwd = Path.cwd()
    root = root or find_root(cwd) or cwd
    env = os.environ.get(HISTORY_ENV)
    if env:
        return Path(os.path.abspath(root / env))
    configured = DEFAULT_HISTORY
    where = "history"
    try:
        from gitmodel.config import CONFIG_FILE, load_config

        section = load_config(root).raw.get("eval", {})
        value = section.get("history") if isinstance(section, dict) else None
        if value is not None:
            if not isinstance(value, str):
                raise HistoryError(f"{CONFIG_FILE}: [eval] history must be a path")
            configured, where = value, f"{CONFIG_FILE}: [eval] history"
    except HistoryError:
        raise
    except GitModelError:
        pass  # a broken config is reported by the commands; logging must not die of it
    return WorkTree(root, [root / ".git"]).path(configured, where)


# The strings a non-finite value is recorded as, and what they read back as.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(name: str, value: Any) -> float | int | str:
    if isinstance(value, bool):
        raise HistoryError(f"log_metrics: {name} is a bool, not a number")
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # numpy scalars, 0-d tensors
    except (TypeError, ValueError):
        raise HistoryError(f"log_metrics: {name}={value!r} is not a number") from None
    if not math.isfinite(number):
        import warnings  # only for a diverged run

        spelled = "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
        # Once per metric and caller line (warnings' default), not once per epoch.
        warnings.warn(
            f"gitmodel.log_metrics: {name} is {spelled}; recorded as the string {spelled!r}",
            RuntimeWarning,
            stacklevel=3,
        )
        return spelled
    return number


def log_metrics(
    step: int | None = None, *, path: str | os.PathLike[str] | None = None, **metrics: Any
) -> None:
    """Append one record of training metrics (e.g. per epoch) to the history file."""
    if not metrics:
        raise HistoryError("log_metrics: give at least one metric, e.g. loss=0.3")
    record: dict[str, Any] = {"run": _RUN_ID, "time": round(time.time(), 3)}
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            try:
                step = int(step)  # numpy integers
            except (TypeError, ValueError):
                raise HistoryError(f"log_metrics: step={step!r} is not an integer") from None
        record["step"] = step
    for name, value in metrics.items():
        if name in ("run", "time", "step"):
            raise HistoryError(f"log_metrics: {name!r} is reserved")
        record[name] = _number(name, value)
    target = _target(path)
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    from gitmodel.paths import open_nofollow

    fd = open_nofollow(target, str(target), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _target(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        target = Path(os.path.abspath(path))
    else:
        key = f"{os.getcwd()}\0{os.environ.get(HISTORY_ENV, '')}"
        if key not in _resolved:
            _resolved[key] = history_path()
        target = _resolved[key]
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent.name == ".gitmodel":
            # Our own scratch directory: ignore it whole, so `git status` stays clean.
            fd = os.open(
                target.parent / ".gitignore",
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
            )
            try:
                os.write(fd, b"*\n")
            finally:
                os.close(fd)
    return target


def parse_history(data: bytes, where: str) -> list[dict[str, Any]]:
    """The records of a history file (untrusted): objects whose values are numbers."""
    if len(data) > MAX_HISTORY_BYTES:
        raise HistoryError(f"{where}: history too large")
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if lineno == len(data.splitlines()):
                continue  # a torn last line from a killed writer: drop it, keep the rest
            raise HistoryError(f"{where}:{lineno}: not a JSON line") from None
        if not isinstance(record, dict):
            raise HistoryError(f"{where}:{lineno}: not a JSON object")
        if not isinstance(record.get("run"), str) or "time" not in record:
            # Every line log_metrics writes has both: a file without them is not a history
            # gitmodel made, and commit (which removes the history it stores) must not take it.
            raise HistoryError(f"{where}:{lineno}: not a gitmodel training history line")
        for key, value in record.items():
            if key == "run":
                continue
            if key not in ("time", "step") and isinstance(value, str) and value in NON_FINITE:
                record[key] = NON_FINITE[value]
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise HistoryError(f"{where}:{lineno}: {key} is not a number")
        records.append(record)
    return records


def last_run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the most recent run (the one that logged last)."""
    if not records:
        return []
    run = records[-1].get("run")
    return [r for r in records if r.get("run") == run]


def series(records: list[dict[str, Any]]) -> tuple[list[float], dict[str, list[float | None]]]:
    """x values (step, else position) and one list per metric, aligned, gaps as None."""
    seen: dict[str, None] = {}  # first-seen order, constant-time membership
    for r in records:
        seen.update(dict.fromkeys(r))
    names = [k for k in seen if k not in ("run", "time", "step")]
    xs = [float(r["step"]) if "step" in r else float(i) for i, r in enumerate(records)]
    return xs, {n: [r.get(n) for r in records] for n in names}
