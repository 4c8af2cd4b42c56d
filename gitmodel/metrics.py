"""Metrics: load JSON/YAML/TOML files, flatten nested keys with '.', validate the numbers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from gitmodel.errors import GitModelError

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 32  # deeper nesting than this is hostile, not a metrics file
# Metrics per note or file: per-class scores of a thousand classes fit many times over;
# a note with more is hostile (stated in docs/security.md).
MAX_METRICS = 100_000
# An int beyond a float's range cannot be compared with a tolerance (OverflowError).
_MAX_INT = 2**1023


class MetricsError(GitModelError):
    pass


def spell(value: object) -> str:
    """A value as the metrics file spelled it (JSON: true, null, "x"), not as Python's repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def tidy(value: float | int | None) -> float | int | None:
    """A computed value (a delta, a slack) without binary noise: 0.00765, not
    0.0076500000000000005. Twelve significant digits keep every digit a metric has."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


def check_value(name: str, value: object, where: str) -> float | int:
    """A metric value must be a finite int or float (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricsError(f"{where}: metric {name!r} is not a number ({spell(value)})")
    if isinstance(value, float) and not math.isfinite(value):
        raise MetricsError(f"{where}: metric {name!r} is not finite ({spell(value)})")
    if isinstance(value, int) and not -_MAX_INT < value < _MAX_INT:
        raise MetricsError(f"{where}: metric {name!r} is too large to compare")
    return value


def flatten(
    data: Mapping[str, Any], where: str, prefix: str = "", depth: int = 0
) -> dict[str, float | int]:
    """{"a": {"b": 1}} -> {"a.b": 1}; every leaf must be a number."""
    if depth > MAX_DEPTH:
        raise MetricsError(f"{where}: metrics nested deeper than {MAX_DEPTH} levels")
    flat: dict[str, float | int] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not key:
            raise MetricsError(f"{where}: metric names must be non-empty strings ({key!r})")
        if isinstance(value, Mapping):
            flat.update(flatten(value, where, name + ".", depth + 1))
        else:
            flat[name] = check_value(name, value, where)
    return flat


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number")


def parse_metrics_text(text: str, kind: str, where: str) -> dict[str, float | int]:
    """Parse metrics text of kind json|yaml|toml into a flat name -> number map."""
    try:
        if kind == "json":
            # NaN/Infinity are not JSON; Python accepts them unless told otherwise.
            data = json.loads(text, parse_constant=_reject_constant)
        elif kind == "yaml":
            import yaml

            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        elif kind == "toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        else:
            raise MetricsError(f"{where}: unknown metrics format {kind!r}")
    except MetricsError:
        raise
    except RecursionError:
        raise MetricsError(f"{where}: metrics nested too deeply") from None
    except Exception as exc:  # each parser has its own error type; all mean "malformed"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetricsError(f"{where}: malformed {kind.upper()} ({first})") from None
    if not isinstance(data, Mapping):
        raise MetricsError(f"{where}: metrics must be a mapping of names to numbers")
    flat = flatten(data, where)
    if len(flat) > MAX_METRICS:
        raise MetricsError(f"{where}: more than {MAX_METRICS} metrics")
    return flat


def kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    return {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}.get(ext, "json")


MAX_METRICS_FILE_BYTES = 64 * 1024 * 1024


def load_metrics_file(
    path: Path, display: str | None = None, follow_links: bool = True
) -> dict[str, float | int]:
    """A metrics file's flat metrics. follow_links=False for a file the repository's config
    names: a link there is refused, never read through (see gitmodel.paths)."""
    where = display or str(path)
    try:
        if follow_links:
            text = path.read_text(encoding="utf-8")
        else:
            from gitmodel.paths import read_bytes

            text = read_bytes(path, where, limit=MAX_METRICS_FILE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise MetricsError(f"{where}: no such metrics file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetricsError(f"{where}: cannot read ({exc})") from None
    return parse_metrics_text(text, kind_of(path), where)


def parse_metric_args(args: Iterable[str]) -> dict[str, float | int]:
    """--metric NAME=VALUE arguments."""
    out: dict[str, float | int] = {}
    for arg in args:
        name, sep, raw = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise MetricsError(f"--metric {arg!r}: expected NAME=VALUE")
        try:
            value: float | int = int(raw) if raw.strip().lstrip("-+").isdigit() else float(raw)
        except ValueError:
            raise MetricsError(f"--metric {arg!r}: {raw!r} is not a number") from None
        out[name] = check_value(name, value, "--metric")
    return out


def validate_note_metrics(metrics: object, where: str) -> dict[str, float | int]:
    """Metrics read back from a note (untrusted): a flat map of finite numbers."""
    # Fast path for the common, valid case (`log` checks thousands of notes): exact types,
    # and `v - v == 0` is false only for NaN and infinities.
    if type(metrics) is dict and len(metrics) <= MAX_METRICS:
        for k, v in metrics.items():
            if type(k) is not str or not (
                (type(v) is int and -_MAX_INT < v < _MAX_INT) or (type(v) is float and v - v == 0)
            ):
                break
        else:
            return metrics
    if not isinstance(metrics, Mapping):
        raise MetricsError(f"{where}: 'metrics' is not an object")
    if len(metrics) > MAX_METRICS:
        raise MetricsError(f"{where}: more than {MAX_METRICS} metrics")
    return {str(k): check_value(str(k), v, where) for k, v in metrics.items()}
