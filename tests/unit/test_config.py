"""gitmodel.config: the policy in .gitmodel.toml or pyproject's [tool.gitmodel]."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitmodel.config import (
    CONFIG_FILE,
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    direction_by_name,
    dvc_settings_outside,
    load_config,
    parse_config_text,
)
from gitmodel.errors import EXIT_USAGE, GitModelError

# One policy: accuracy gated higher with slack, loss gated lower, a release glob and a
# metrics file. Every valid TOML spelling of it must read the same.
SPELLINGS = {
    "tables": """
metrics-files = ["metrics.json"]
[release]
tags = "v*"
[gate.accuracy]
direction = "higher"
tolerance = 0.002
relative-tolerance = 0.01
[gate.loss]
direction = "lower"
""",
    "dotted keys": """
metrics-files = ["metrics.json"]
release.tags = "v*"
gate.accuracy.direction = "higher"
gate.accuracy.tolerance = 0.002
gate.accuracy.relative-tolerance = 0.01
gate.loss.direction = "lower"
""",
    "inline tables": """
metrics-files = ["metrics.json"]
release = { tags = "v*" }
gate = { accuracy = { direction = "higher", tolerance = 2e-3, relative-tolerance = 1e-2 }, loss = { direction = "lower" } }
""",
    "quoted keys, literal strings, spaces": """
"metrics-files" = [ 'metrics.json', ]
[ "release" ]
'tags' = 'v*'
[ gate . "accuracy" ]
"direction" = '''higher'''
tolerance = 0.002_0
"relative-tolerance" = 1_0e-3
[gate.'loss']
direction = \"\"\"lower\"\"\"
""",
    "a table under a dotted parent": """
metrics-files = "metrics.json"
[release]
tags = "v*"
[gate]
accuracy.direction = "higher"
accuracy.tolerance = 0.002
accuracy.relative-tolerance = 0.01
loss = {direction = "lower"}
""",
}


def _summary(cfg: Config) -> tuple[object, ...]:
    return (
        cfg.metrics_files,
        cfg.release_tags,
        cfg.require_metrics,
        {name: (r.direction, r.tolerance, r.relative_tolerance) for name, r in cfg.gates.items()},
        cfg.warnings,
    )


EXPECTED = (
    ["metrics.json"],
    "v*",
    True,
    {"accuracy": ("higher", 0.002, 0.01), "loss": ("lower", 0.0, 0.0)},
    [],
)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_toml_spelling_reads_the_same(spelling: str, tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(SPELLINGS[spelling])
    cfg = load_config(tmp_path)
    assert cfg.source == CONFIG_FILE
    assert _summary(cfg) == EXPECTED


def _as_pyproject(text: str, form: str) -> str:
    """The same policy under [tool.gitmodel], in one of pyproject's spellings."""
    lines = []
    for line in text.strip().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            inner = stripped.strip("[] ")
            lines.append(f"[tool.gitmodel.{inner}]")
        elif form == "tables":
            lines.append(line)
        else:
            lines.append(f"gitmodel.{line}" if "=" in line else line)
    if form == "tables":
        return '[project]\nname = "x"\n[tool.gitmodel]\n' + "\n".join(lines) + "\n"
    return '[project]\nname = "x"\n[tool]\n' + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("spelling", "form"),
    [
        ("tables", "tables"),
        ("dotted keys", "tables"),
        ("inline tables", "tables"),
        ("dotted keys", "dotted under [tool]"),
        ("inline tables", "dotted under [tool]"),
    ],
)
def test_pyproject_spellings_read_the_same(spelling: str, form: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(_as_pyproject(SPELLINGS[spelling], form))
    cfg = load_config(tmp_path)
    assert cfg.source == "pyproject.toml [tool.gitmodel]"
    assert _summary(cfg) == EXPECTED


def test_pyproject_inline_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        'tool = { gitmodel = { release = { tags = "rel-*" }, gate = { auc = {} } } }\n'
    )
    cfg = load_config(tmp_path)
    assert cfg.release_tags == "rel-*"
    assert cfg.gates["auc"].direction == "higher"


def test_gitmodel_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('[release]\ntags = "v*"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.gitmodel.release]\ntags = "other-*"\n')
    assert load_config(tmp_path).release_tags == "v*"


def test_no_policy_is_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    cfg = load_config(tmp_path)
    assert cfg.source is None
    assert (cfg.release_tags, cfg.require_metrics, cfg.gates, cfg.default_gates) == (
        "v*",
        True,
        {},
        True,
    )


def test_the_default_file_init_writes_parses_cleanly() -> None:
    cfg = parse_config_text(DEFAULT_CONFIG, CONFIG_FILE)
    assert cfg.warnings == [] and cfg.metrics_files == ["metrics.json"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[release\n", "malformed TOML"),
        ("metrics-files = [1]\n", "metrics-files must be a list of paths"),
        ("metrics-files = ['']\n", "metrics-files must be a list of paths"),
        ("release = 3\n", "[release] must be a table"),
        ("[release]\ntags = ''\n", "release.tags must be a glob string"),
        ("[release]\nrequire-metrics = 'yes'\n", "require-metrics must be true or false"),
        ("[release]\neval-set-mismatch = 'maybe'\n", "eval-set-mismatch"),
        ("gate = []\n", "[gate] must be a table"),
        ("[gate]\ndefaults = 1\n", "gate.defaults must be true or false"),
        ("[gate]\nacc = 1\n", "[gate.acc] must be a table"),
        ("[gate.acc]\ndirection = 'up'\n", 'gate.acc.direction must be "higher" or "lower"'),
        ("[gate.acc]\ntolerance = 'small'\n", "gate.acc.tolerance must be a finite number"),
        ("[gate.acc]\ntolerance = true\n", "gate.acc.tolerance must be a finite number"),
        ("[gate.acc]\ntolerance = nan\n", "gate.acc.tolerance must be a finite number"),
        ("[gate.acc]\ntolerance = inf\n", "gate.acc.tolerance must be a finite number"),
        ("[gate.acc]\ntolerance = -0.1\n", "gate.acc.tolerance must not be negative"),
        ("[gate.acc]\nrelative-tolerance = -1\n", "relative-tolerance must not be negative"),
        ("[gate.acc]\nsignificance = 1.5\n", "significance must be between 0 and 1"),
        ("[gate.acc]\nmode = 'better'\n", "mode must be"),
        ("[gate.acc]\nmode = 'non-inferiority'\n", "needs a significance and a margin"),
        ("[gate.acc]\nminimum = nan\n", "gate.acc.minimum must be a finite number"),
        ("[storage]\ndedup = 'on'\n", "storage.dedup must be true or false"),
        ("storage = 1\n", "[storage] must be a table"),
    ],
)
def test_bad_policy_is_one_line_naming_the_key(text: str, fragment: str, tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert fragment in caught.value.message
    assert caught.value.message.startswith(CONFIG_FILE)
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_unknown_keys_are_warnings_not_errors() -> None:
    cfg = parse_config_text(
        "colour = 1\n[release]\nflavour = 2\n[gate.acc]\ntolerence = 0.1\n[storage]\nx = 1\n",
        CONFIG_FILE,
    )
    assert cfg.warnings == [
        f"{CONFIG_FILE}: unknown key 'colour' ignored",
        f"{CONFIG_FILE}: unknown key release.flavour ignored",
        f"{CONFIG_FILE}: unknown key storage.x ignored",
        f"{CONFIG_FILE}: unknown key gate.acc.tolerence ignored",
    ]


def test_floors_may_be_negative_and_drift_slack_defaults_to_the_slack() -> None:
    cfg = parse_config_text(
        "[gate.loss]\ndirection = 'lower'\nmaximum = 0.5\nminimum = -3\n"
        "tolerance = 0.1\nrelative-tolerance = 0.5\n[gate.acc]\ndrift-tolerance = 0.01\n",
        CONFIG_FILE,
    )
    loss, acc = cfg.gates["loss"], cfg.gates["acc"]
    assert (loss.minimum, loss.maximum) == (-3.0, 0.5)
    assert loss.slack(-2.0) == pytest.approx(0.1 + 0.5 * 2.0)  # of |previous|
    assert loss.drift_slack(2.0) == loss.slack(2.0)
    assert acc.drift_slack(10.0) == 0.01


def test_pyproject_tool_gitmodel_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\ngitmodel = 'on'\n")
    with pytest.raises(ConfigError, match=r"\[tool.gitmodel\] must be a table"):
        load_config(tmp_path)


def test_a_policy_that_is_a_link_is_refused_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.toml"
    outside.write_text('[release]\ntags = "*"\n')
    root = tmp_path / "repo"
    root.mkdir()
    (root / CONFIG_FILE).symlink_to(outside)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_config(root)
    (root / CONFIG_FILE).unlink()
    (root / "pyproject.toml").symlink_to(outside)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_config(root)


def test_a_policy_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b'[release]\ntags = "\xff"\n')
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("accuracy", "higher"),
        ("val_accuracy", "higher"),
        ("eval.f1", "higher"),
        ("roc_auc", "higher"),
        ("valLoss", "lower"),
        ("train-loss", "lower"),
        ("rmse", "lower"),
        ("log_loss", "lower"),
        ("latency_ms", None),  # says nothing about which way is better
        ("accuracy_loss", None),  # says both
        ("lossless", None),  # a word must be whole
    ],
)
def test_direction_by_name(metric: str, direction: str | None) -> None:
    assert direction_by_name(metric) == direction


def _dvc_config(root: Path, text: str) -> None:
    (root / ".dvc").mkdir(parents=True, exist_ok=True)
    (root / ".dvc" / "config").write_text(text)


def test_dvc_settings_inside_the_repository_are_quiet(tmp_path: Path) -> None:
    _dvc_config(
        tmp_path,
        "[core]\n    remote = store\n[cache]\n    dir = cache\n    type = copy\n"
        "['remote \"store\"']\n    url = ../storage-inside\n['remote \"s3\"']\n    url = s3://b/p\n",
    )
    (tmp_path / "storage-inside").mkdir()
    assert dvc_settings_outside(tmp_path) == []


def test_dvc_settings_that_aim_outside_are_named(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _dvc_config(
        root,
        "[cache]\n    dir = ../../elsewhere\n    type = symlink\n"
        "['remote \"up\"']\n    url = /srv/shared\n['remote \"f\"']\n    url = file:///tmp/x\n",
    )
    found = dvc_settings_outside(root)
    assert len(found) == 4
    assert "cache.dir = ../../elsewhere is outside the repository" in found[0]
    assert "cache.type = symlink" in found[1]
    assert "remote up is the local directory /srv/shared" in found[2]
    assert "remote f is the local directory file:///tmp/x" in found[3]


def test_a_cache_linked_outside_is_named(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _dvc_config(root, "[core]\n    autostage = true\n")
    (root / ".dvc" / "cache").symlink_to(tmp_path)
    assert dvc_settings_outside(root) == [
        f".dvc/cache is a link to {tmp_path}, outside the repository"
    ]


def test_an_unreadable_dvc_config_is_not_this_check_s_business(tmp_path: Path) -> None:
    assert dvc_settings_outside(tmp_path) == []  # absent
    _dvc_config(tmp_path, "[cache\n")
    assert dvc_settings_outside(tmp_path) == []  # malformed: the commands that read it say so


# -- DVC's config levels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {},  # as on a user's machine: platformdirs under HOME
        {"XDG_CONFIG_HOME": "xdg", "XDG_CONFIG_DIRS": "etc-a:etc-b"},
        {"XDG_CONFIG_HOME": "relative/is/ignored"},
        {"DVC_GLOBAL_CONFIG_DIR": "g", "DVC_SYSTEM_CONFIG_DIR": "s"},
    ],
)
def test_dvc_config_files_are_where_dvc_looks(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.config import Config

    from gitmodel.config import dvc_config_files

    for name in (
        "XDG_CONFIG_HOME",
        "XDG_CONFIG_DIRS",
        "DVC_GLOBAL_CONFIG_DIR",
        "DVC_SYSTEM_CONFIG_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        absolute = ":".join(v if "relative" in v else str(tmp_path / v) for v in value.split(":"))
        monkeypatch.setenv(name, absolute)
    dvc_dir = tmp_path / "repo" / ".dvc"
    dvc_dir.mkdir(parents=True)
    ours = {level: str(path) for level, path in dvc_config_files(dvc_dir)}
    theirs = Config(dvc_dir=str(dvc_dir), validate=False).files
    assert ours == {k: os.path.normpath(v) for k, v in theirs.items()}


def test_dvc_levels_merge_key_by_key_in_dvc_s_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitmodel.config import read_dvc_config

    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "global"))
    files = {
        "system/config": "[cache]\n    type = symlink\n    dir = /srv/cache\n",
        "global/config": "[cache]\n    type = hardlink\n[core]\n    remote = shared\n",
        "repo/.dvc/config": "[cache]\n    type = copy\n['remote \"shared\"']\n    url = ../store\n",
        "repo/.dvc/config.local": "[cache]\n    type = reflink,copy\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    dvc_dir = tmp_path / "repo" / ".dvc"
    conf = read_dvc_config(dvc_dir)
    assert conf.get("cache", "type") == "reflink,copy"  # local wins
    assert conf.get("cache", "dir") == "/srv/cache"  # the one level that sets it
    assert conf.get("core", "remote") == "shared"
    # a path is relative to the file that set it, as DVC resolves it
    assert conf.path('remote "shared"', "url") == (tmp_path / "repo" / "store").resolve()
    assert read_dvc_config(dvc_dir, ("system", "global")).get("cache", "type") == "hardlink"
    assert read_dvc_config(dvc_dir, ("repo",)).get("core", "remote") is None


def test_a_repository_s_dvc_config_that_is_a_link_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitmodel.config import read_dvc_config

    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = x\n")
    (tmp_path / "repo" / ".dvc").mkdir(parents=True)
    (tmp_path / "repo" / ".dvc" / "config").symlink_to(secret)
    with pytest.raises(GitModelError, match="symbolic link"):
        read_dvc_config(tmp_path / "repo" / ".dvc")


def test_a_dvc_config_that_does_not_parse_is_one_line(tmp_path: Path) -> None:
    from gitmodel.config import read_dvc_config

    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[cache\ntype = copy\n")
    with pytest.raises(ConfigError, match=r"^\.dvc/config: cannot parse") as caught:
        read_dvc_config(tmp_path / ".dvc")
    assert "\n" not in caught.value.message
