"""Configuration: the project policy (`.gitmodel.toml` at the repo root, or
`[tool.gitmodel]` in pyproject.toml) and DVC's config at every level (system, global,
repo, local), each read by one reader here.

A little over 500 lines on purpose: every reader of configuration, ours and DVC's, is
in one foundation module, so that no other module parses a config file of its own (two
readers of DVC's config once disagreed about a global cache.type).
"""

from __future__ import annotations

import math
from pathlib import Path

from gitmodel.errors import GitModelError
from gitmodel.record import FrozenRecord, Record

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = ".gitmodel.toml"
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a policy file, not a data set

DEFAULT_CONFIG = """\
# gitmodel policy. Docs: docs/configuration.md and docs/release-gate.md.

# Metrics files read by `git model commit` (without --metrics) and by the post-commit
# hook: a plain `git commit` that includes one of them records its metrics in a note.
metrics-files = ["metrics.json"]

[release]
# Tags matching this glob are releases and pass through the gate.
tags = "v*"
# A release commit must carry a metrics note.
require-metrics = true

[gate]
# While there is no [gate.NAME] table below, every metric whose name says which way is
# better is gated with zero slack: higher is better for accuracy, f1, precision, recall,
# auc, r2, bleu, iou, dice, mcc, ndcg, ...; lower for loss, error, rmse, mae, mse, mape,
# perplexity, wer, cer, nll, brier, ... (also as a word of a longer name: val_loss,
# eval.f1). Other metrics are listed in the verdict as not gated. `defaults = false`
# turns this off.
defaults = true

# One table per gated metric (then only the tables gate). Uncomment and adapt:
# [gate.accuracy]
# direction = "higher"          # "higher" or "lower" is better
# tolerance = 0.002             # absolute slack
# relative-tolerance = 0.01     # slack as a fraction of the previous value
"""


class ConfigError(GitModelError):
    pass


# Words that say which way a metric is better, for the default gates. A name is split into
# words (val_loss, eval.f1, valLoss); exactly one direction among its words decides.
HIGHER_IS_BETTER = frozenset(
    "accuracy acc balanced_accuracy f1 fbeta precision recall sensitivity specificity auc "
    "auroc roc_auc pr_auc ap map r2 bleu sacrebleu chrf rouge rouge1 rouge2 rougel meteor "
    "iou miou dice mcc kappa ndcg mrr hit_rate hitrate top1 top5 exact_match".split()
)
LOWER_IS_BETTER = frozenset(
    "loss error err rmse mae mse msle mape smape perplexity ppl wer cer nll log_loss "
    "logloss brier eer fpr fnr".split()
)


def direction_by_name(metric: str) -> str | None:
    """ "higher" or "lower" when the metric's name says which way is better, else None."""
    import re

    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", metric).lower())
    pairs = {f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)}
    named = {w for w in words if w} | pairs
    higher, lower = bool(named & HIGHER_IS_BETTER), bool(named & LOWER_IS_BETTER)
    if higher == lower:
        return None
    return "higher" if higher else "lower"


GATE_KEYS = {
    "direction",
    "tolerance",
    "relative-tolerance",
    "significance",
    "mode",
    "margin",
    "minimum",
    "maximum",
    "drift-tolerance",
    "drift-relative-tolerance",
}
MODES = ("superiority", "non-inferiority")


class GateRule(FrozenRecord):
    """One gated metric. Slack against the previous release: tolerance + relative *
    |previous|; against the drift baseline: the drift- pair (default: the same)."""

    __slots__ = (
        "metric",
        "direction",
        "tolerance",
        "relative_tolerance",
        "significance",
        "mode",
        "margin",
        "minimum",
        "maximum",
        "drift_tolerance",
        "drift_relative_tolerance",
    )

    def __init__(
        self,
        metric: str,
        direction: str = "higher",
        tolerance: float = 0.0,
        relative_tolerance: float = 0.0,
        significance: float | None = None,
        mode: str = "superiority",
        margin: float = 0.0,
        minimum: float | None = None,
        maximum: float | None = None,
        drift_tolerance: float | None = None,
        drift_relative_tolerance: float | None = None,
    ) -> None:
        self._set(
            metric=metric,
            direction=direction,
            tolerance=tolerance,
            relative_tolerance=relative_tolerance,
            significance=significance,
            mode=mode,
            margin=margin,
            minimum=minimum,
            maximum=maximum,
            drift_tolerance=drift_tolerance,
            drift_relative_tolerance=drift_relative_tolerance,
        )

    if TYPE_CHECKING:  # the slots' types, for the type checker only
        metric: str
        direction: str
        tolerance: float
        relative_tolerance: float
        significance: float | None
        mode: str
        margin: float
        minimum: float | None
        maximum: float | None
        drift_tolerance: float | None
        drift_relative_tolerance: float | None

    def slack(self, previous: float) -> float:
        return self.tolerance + self.relative_tolerance * abs(previous)

    def drift_slack(self, baseline: float) -> float:
        tol = self.tolerance if self.drift_tolerance is None else self.drift_tolerance
        rel = (
            self.relative_tolerance
            if self.drift_relative_tolerance is None
            else self.drift_relative_tolerance
        )
        return tol + rel * abs(baseline)


class Config(Record):
    __slots__ = (
        "metrics_files",
        "release_tags",
        "require_metrics",
        "gates",
        "default_gates",
        "dedup",
        "dvc_objects",
        "drift",
        "eval_set_mismatch",
        "source",
        "warnings",
        "raw",
    )

    def __init__(self, source: str | None = None, raw: dict[str, Any] | None = None) -> None:
        self.metrics_files: list[str] = []
        self.release_tags = "v*"
        self.require_metrics = True
        self.gates: dict[str, GateRule] = {}
        # [gate] defaults: metrics named for their direction are gated with zero slack.
        self.default_gates = True
        self.dedup = False  # [storage] dedup: chunked, compressed, delta'd (gitmodel.dedup)
        self.dvc_objects = False  # [storage] dvc-objects: push whole objects too
        # The drift guard's baseline: "best" earlier release, a pinned tag, or "off".
        self.drift = "best"
        # Candidate and baseline measured on different evaluation sets: "warn" or "refuse".
        self.eval_set_mismatch = "warn"
        self.source = source
        self.warnings: list[str] = []
        self.raw: dict[str, Any] = raw if raw is not None else {}


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)


def _number(value: object, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a finite number, not {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: {key} must not be negative")
    return float(value)


def _bound(rule: dict[str, Any], name: str, key: str, where: str) -> float | None:
    """A floor: any finite number (a loss floor may be negative)."""
    value = rule.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key}.{name} must be a finite number, not {value!r}")
    return float(value)


def parse_config(data: dict[str, Any], where: str) -> Config:
    """Validate a config mapping; wrong types are one-line errors naming the key."""
    cfg = Config(source=where, raw=data)
    known_top = {"metrics-files", "release", "gate", "cache", "remote", "eval", "storage"}
    for key in data:
        if key not in known_top:
            cfg.warnings.append(f"{where}: unknown key {key!r} ignored")
    mf = data.get("metrics-files", [])
    if isinstance(mf, str):
        mf = [mf]
    if not isinstance(mf, list) or not all(isinstance(x, str) and x for x in mf):
        raise ConfigError(f"{where}: metrics-files must be a list of paths")
    cfg.metrics_files = list(mf)
    release = data.get("release", {})
    if not isinstance(release, dict):
        raise ConfigError(f"{where}: [release] must be a table")
    for key in release:
        if key not in {"tags", "require-metrics", "drift", "eval-set-mismatch"}:
            cfg.warnings.append(f"{where}: unknown key release.{key} ignored")
    tags = release.get("tags", "v*")
    if not isinstance(tags, str) or not tags:
        raise ConfigError(f"{where}: release.tags must be a glob string")
    cfg.release_tags = tags
    req = release.get("require-metrics", True)
    if not isinstance(req, bool):
        raise ConfigError(f"{where}: release.require-metrics must be true or false")
    cfg.require_metrics = req
    _parse_storage(cfg, data.get("storage", {}), where)
    drift = release.get("drift", "best")
    if not isinstance(drift, str) or not drift:
        raise ConfigError(f'{where}: release.drift must be "best", "off" or a release tag')
    cfg.drift = drift
    mismatch = release.get("eval-set-mismatch", "warn")
    if mismatch not in ("warn", "refuse"):
        raise ConfigError(f'{where}: release.eval-set-mismatch must be "warn" or "refuse"')
    cfg.eval_set_mismatch = mismatch
    gates = data.get("gate", {})
    if not isinstance(gates, dict):
        raise ConfigError(f"{where}: [gate] must be a table of metric tables")
    for metric, rule in gates.items():
        key = f"gate.{metric}"
        if metric == "defaults" and not isinstance(rule, dict):
            if not isinstance(rule, bool):
                raise ConfigError(f"{where}: gate.defaults must be true or false")
            cfg.default_gates = rule
            continue
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: [{key}] must be a table")
        for k in rule:
            if k not in GATE_KEYS:
                cfg.warnings.append(f"{where}: unknown key {key}.{k} ignored")
        direction = rule.get("direction", "higher")
        if direction not in ("higher", "lower"):
            raise ConfigError(f'{where}: {key}.direction must be "higher" or "lower"')
        sig = rule.get("significance")
        significance = None
        if sig is not None:
            significance = _number(sig, f"{key}.significance", where)
            if not 0 < significance < 1:
                raise ConfigError(f"{where}: {key}.significance must be between 0 and 1")
        mode = rule.get("mode", "superiority")
        if mode not in MODES:
            raise ConfigError(f'{where}: {key}.mode must be "superiority" or "non-inferiority"')
        margin = _number(rule.get("margin", 0), f"{key}.margin", where)
        if mode == "non-inferiority" and (significance is None or margin <= 0):
            raise ConfigError(
                f"{where}: {key}.mode = non-inferiority needs a significance and a margin > 0"
            )
        drift = {
            name: _number(rule[k], f"{key}.{k}", where) if k in rule else None
            for name, k in (
                ("drift_tolerance", "drift-tolerance"),
                ("drift_relative_tolerance", "drift-relative-tolerance"),
            )
        }
        cfg.gates[metric] = GateRule(
            metric=metric,
            direction=direction,
            tolerance=_number(rule.get("tolerance", 0), f"{key}.tolerance", where),
            relative_tolerance=_number(
                rule.get("relative-tolerance", 0), f"{key}.relative-tolerance", where
            ),
            significance=significance,
            mode=mode,
            margin=margin,
            minimum=_bound(rule, "minimum", key, where),
            maximum=_bound(rule, "maximum", key, where),
            **drift,
        )
    return cfg


def _parse_storage(cfg: Config, storage: object, where: str) -> None:
    if not isinstance(storage, dict):
        raise ConfigError(f"{where}: [storage] must be a table")
    for key in storage:
        if key not in {"dedup", "dvc-objects"}:
            cfg.warnings.append(f"{where}: unknown key storage.{key} ignored")
    for key, attr in (("dedup", "dedup"), ("dvc-objects", "dvc_objects")):
        value = storage.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: storage.{key} must be true or false")
        setattr(cfg, attr, value)


def parse_config_text(text: str, where: str, pyproject: bool = False) -> Config:
    try:
        data = _toml_loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError; one line for the user
        raise ConfigError(f"{where}: malformed TOML ({str(exc).splitlines()[0]})") from None
    if pyproject:
        data = data.get("tool", {}).get("gitmodel", {})
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: [tool.gitmodel] must be a table")
    return parse_config(data, where)


def load_config(root: Path) -> Config:
    """The project's config; defaults when neither file has any."""
    path = root / CONFIG_FILE
    if path.is_file() or path.is_symlink():  # a link is refused by _read, not skipped
        return parse_config_text(_read(path), CONFIG_FILE)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() or pyproject.is_symlink():
        text = _read(pyproject)
        if "gitmodel" in text:
            return parse_config_text(text, "pyproject.toml [tool.gitmodel]", pyproject=True)
    return Config()


def _read(path: Path) -> str:
    from gitmodel.paths import UnsafePath, read_bytes

    try:
        # Repository content: a committed `.gitmodel.toml -> ~/...` is refused, not read.
        return read_bytes(path, path.name, limit=MAX_CONFIG_BYTES).decode("utf-8")
    except UnsafePath as exc:
        raise ConfigError(exc.message) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: cannot read ({exc})") from None


# -- DVC's config ---------------------------------------------------------------------------

# DVC's config levels, lowest precedence first, as dvc.config.Config.LEVELS.
DVC_LEVELS = ("system", "global", "repo", "local")


def dvc_config_files(dvc_dir: Path) -> list[tuple[str, Path]]:
    """(level, file) of DVC's config, lowest precedence first, where DVC itself looks.

    The system and global directories are dvc.dirs' (DVC_SYSTEM_CONFIG_DIR and
    DVC_GLOBAL_CONFIG_DIR, else platformdirs' site and user config directories for
    "dvc"), worked out here for Linux's XDG rules without importing platformdirs: this is
    on the path of every command that opens the cache, hooks included.
    """
    import os
    import sys

    system = os.environ.get("DVC_SYSTEM_CONFIG_DIR")
    user = os.environ.get("DVC_GLOBAL_CONFIG_DIR")
    if not (system and user):
        if sys.platform in ("win32", "darwin") or hasattr(sys, "getandroidapilevel"):
            import platformdirs  # what dvc.dirs asks, where the rules are not XDG's

            system = system or platformdirs.site_config_dir("dvc", "iterative")
            user = user or platformdirs.user_config_dir("dvc", "iterative")
        else:
            # platformdirs.unix: the first absolute entry of XDG_CONFIG_DIRS, else
            # /etc/xdg; XDG_CONFIG_HOME when absolute, else ~/.config.
            dirs = [
                d for d in os.environ.get("XDG_CONFIG_DIRS", "").split(os.pathsep) if d[:1] == "/"
            ]
            home = os.environ.get("XDG_CONFIG_HOME", "")
            system = system or os.path.join(dirs[0] if dirs else "/etc/xdg", "dvc")
            user = user or os.path.join(
                home if home[:1] == "/" else os.path.expanduser("~/.config"), "dvc"
            )
    return [
        ("system", Path(system) / "config"),
        ("global", Path(user) / "config"),
        ("repo", dvc_dir / "config"),
        ("local", dvc_dir / "config.local"),
    ]


class DvcConfig:
    """DVC's config merged over its levels: a later level's key wins, as in DVC."""

    __slots__ = ("sections", "origin")

    def __init__(self) -> None:
        # configobj writes ['remote "name"'], git-style files [remote "name"]: one key.
        self.sections: dict[str, dict[str, str]] = {}
        self.origin: dict[tuple[str, str], Path] = {}  # (section, key) -> the file that set it

    def get(self, section: str, key: str) -> str | None:
        return self.sections.get(section, {}).get(key)

    def path(self, section: str, key: str) -> Path | None:
        """A path setting, relative to the directory of the file that set it (as DVC's
        Config._load_paths resolves it), with ~ expanded, links resolved."""
        import os

        value = self.get(section, key)
        if not value:
            return None
        return (self.origin[(section, key)].parent / os.path.expanduser(value)).resolve()


def read_dvc_config(
    dvc_dir: Path, levels: tuple[str, ...] = DVC_LEVELS, mentioning: bytes | None = None
) -> DvcConfig:
    """DVC's config over levels (default all four, in DVC's order), without importing dvc.

    The repository's own levels are read without following a link (a committed
    `.dvc/config -> ~/.aws/credentials` is refused: gitmodel.paths); a file that cannot be
    opened is skipped, as configparser.read and DVC skip a missing one; a file that does
    not parse is a one-line error. With mentioning, nothing is parsed (and configparser
    not imported) unless some file contains those bytes.
    """
    from gitmodel.paths import read_bytes

    found: list[tuple[str, Path, bytes]] = []
    for level, path in dvc_config_files(dvc_dir):
        if level not in levels:
            continue
        label = f".dvc/{path.name}" if level in ("repo", "local") else str(path)
        try:
            if level in ("repo", "local"):
                data = read_bytes(path, label, limit=MAX_CONFIG_BYTES)
            else:
                data = path.read_bytes()  # the user's own files
        except OSError:
            continue
        found.append((label, path, data))
    conf = DvcConfig()
    if mentioning is not None and not any(mentioning in data for _, _, data in found):
        return conf
    import configparser  # lazy: most repositories leave DVC's settings alone

    for label, path, data in found:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(data.decode("utf-8"), source=label)
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot parse ({str(exc).splitlines()[0]})") from None
        for section in parser.sections():
            name = section.strip("'").strip()
            values = conf.sections.setdefault(name, {})
            for key, value in parser[section].items():
                values[key] = value
                conf.origin[(name, key)] = path
    return conf


def dvc_settings_outside(root: Path) -> list[str]:
    """What the repository's own `.dvc/config` (repository content, unlike the user's
    `.dvc/config.local`) aims outside the work tree: the cache directory, links from the
    work tree into the cache, local remotes. One line each, for `init` and `fsck`."""
    import os

    try:
        conf = read_dvc_config(root / ".dvc", ("repo",))
    except GitModelError:
        return []  # unreadable: the commands that read it report that
    real_root = os.path.realpath(root)

    def outside(value: str) -> bool:
        real = os.path.realpath(os.path.join(root, ".dvc", os.path.expanduser(value)))
        return real != real_root and not real.startswith(real_root + os.sep)

    found = []
    cache_link = root / ".dvc" / "cache"
    if os.path.islink(cache_link) and outside(os.readlink(cache_link)):
        found.append(f".dvc/cache is a link to {os.readlink(cache_link)}, outside the repository")
    cache_dir = conf.get("cache", "dir") or ""
    if cache_dir and outside(cache_dir):
        found.append(
            f".dvc/config: cache.dir = {cache_dir} is outside the repository "
            "(weights are written there; gc refuses it without --projects)"
        )
    kind = conf.get("cache", "type") or ""
    if "symlink" in kind or "hardlink" in kind:
        found.append(
            f".dvc/config: cache.type = {kind} links the work tree's weights to the cache "
            "(editing one in place changes the cache)"
        )
    for section, values in conf.sections.items():
        words = section.split(None, 1)  # [remote "name"]
        if len(words) != 2 or words[0] != "remote":
            continue
        url = values.get("url", "")
        local = url.removeprefix("file://")
        if url and "://" not in local and outside(local):
            name = words[1].strip('"')
            found.append(
                f".dvc/config: remote {name} is the local directory {url} outside the "
                "repository (push writes there, pull reads from there)"
            )
    return found
