"""gitmodel.metrics: metrics files and arguments read into a flat map of finite numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmodel.errors import EXIT_USAGE, GitModelError
from gitmodel.metrics import (
    MAX_DEPTH,
    MetricsError,
    flatten,
    kind_of,
    load_metrics_file,
    parse_metric_args,
    parse_metrics_text,
    spell,
    tidy,
    validate_note_metrics,
)

NESTED = {"accuracy": 0.9, "loss": {"train": 0.1, "val": 0.2}, "per_class": {"a": {"f1": 1}}}
FLAT = {"accuracy": 0.9, "loss.train": 0.1, "loss.val": 0.2, "per_class.a.f1": 1}


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (
            "json",
            '{"accuracy": 0.9, "loss": {"train": 0.1, "val": 0.2}, "per_class": {"a": {"f1": 1}}}',
        ),
        ("yaml", "accuracy: 0.9\nloss:\n  train: 0.1\n  val: 0.2\nper_class: {a: {f1: 1}}\n"),
        ("toml", "accuracy = 0.9\n[loss]\ntrain = 0.1\nval = 0.2\n[per_class.a]\nf1 = 1\n"),
    ],
)
def test_every_format_flattens_the_same(kind: str, text: str) -> None:
    flat = parse_metrics_text(text, kind, "metrics")
    assert flat == FLAT
    assert type(flat["per_class.a.f1"]) is int  # an int stays an int


def test_flatten() -> None:
    assert flatten(NESTED, "m") == FLAT


@pytest.mark.parametrize(
    ("kind", "text", "fragment"),
    [
        ("json", '{"acc": NaN}', "malformed JSON"),  # not JSON, though Python reads it
        ("json", '{"acc": Infinity}', "malformed JSON"),
        ("json", '{"acc": 1e999}', "not finite"),
        ("yaml", "acc: .nan\n", "not finite (NaN)"),
        ("yaml", "acc: .inf\n", "not finite (Infinity)"),
        ("toml", "acc = nan\n", "not finite"),
        ("json", '{"acc": true}', "not a number (true)"),
        ("json", '{"acc": "0.9"}', 'not a number ("0.9")'),
        ("json", '{"acc": null}', "not a number (null)"),
        ("json", '{"acc": [0.9]}', "not a number ([0.9])"),
        ("yaml", "acc: yes\n", "not a number (true)"),
        ("json", '{"acc": 1' + "0" * 400 + "}", "too large to compare"),
        ("json", "[0.9]", "must be a mapping"),
        ("yaml", "- 1\n", "must be a mapping"),
        ("json", '{"acc": ', "malformed JSON"),
        ("yaml", "acc: [\n", "malformed YAML"),
        ("toml", "acc = \n", "malformed TOML"),
        ("json", '{"": 1}', "non-empty strings"),
        ("yaml", "1: 0.5\n", "non-empty strings"),
        ("json", "[" * 100_000, "nested too deeply"),  # no RecursionError traceback
        ("xml", "<a/>", "unknown metrics format"),
    ],
)
def test_bad_metrics_are_one_line(kind: str, text: str, fragment: str) -> None:
    with pytest.raises(MetricsError) as caught:
        parse_metrics_text(text, kind, "metrics.x")
    assert caught.value.message.startswith("metrics.x: ")
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


def test_nesting_has_a_limit() -> None:
    deep: dict[str, object] = {"x": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"d": deep}
    with pytest.raises(MetricsError, match=f"deeper than {MAX_DEPTH}"):
        flatten(deep, "m")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("metrics.json", "json"),
        ("m.YAML", "yaml"),
        ("m.yml", "yaml"),
        ("m.toml", "toml"),
        ("metrics", "json"),
    ],
)
def test_kind_of(name: str, kind: str) -> None:
    assert kind_of(Path(name)) == kind


def test_load_metrics_file(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text("acc: 0.5\n")
    assert load_metrics_file(path) == {"acc": 0.5}
    with pytest.raises(MetricsError, match="eval.json: no such metrics file"):
        load_metrics_file(tmp_path / "eval.json", "eval.json")
    (tmp_path / "latin1.json").write_bytes(b'{"acc\xe9": 1}')
    with pytest.raises(MetricsError, match="cannot read"):
        load_metrics_file(tmp_path / "latin1.json")


def test_a_metrics_file_the_config_names_is_not_read_through_a_link(tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": 12345}')
    link = tmp_path / "metrics.json"
    link.symlink_to(secret)
    assert load_metrics_file(link) == {"token": 12345}  # a path the user typed
    with pytest.raises(GitModelError, match="metrics.json is a symbolic link"):
        load_metrics_file(link, "metrics.json", follow_links=False)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["acc=0.9"], {"acc": 0.9}),
        (["n=3", "delta=-2", "x=+4"], {"n": 3, "delta": -2, "x": 4}),
        (["lr=1e-3", " spaced =0.5"], {"lr": 0.001, "spaced": 0.5}),
        (["a.b=1"], {"a.b": 1}),
    ],
)
def test_metric_arguments(args: list[str], expected: dict[str, float]) -> None:
    parsed = parse_metric_args(args)
    assert parsed == expected
    assert [type(v) for v in parsed.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [
        ("acc", "expected NAME=VALUE"),
        ("=0.9", "expected NAME=VALUE"),
        ("acc=high", "'high' is not a number"),
        ("acc=", "is not a number"),
        ("acc=nan", "not finite"),
        ("acc=inf", "not finite"),
        ("acc=1e999", "not finite"),
    ],
)
def test_bad_metric_arguments(arg: str, fragment: str) -> None:
    with pytest.raises(MetricsError, match=fragment):
        parse_metric_args([arg])


def test_note_metrics_are_checked_again() -> None:
    good = {"acc": 0.9, "n": 3}
    assert validate_note_metrics(good, "note") is good  # the fast path hands it back
    for bad, fragment in (
        ({"acc": True}, "not a number"),  # bool is an int subclass: not a metric
        ({"acc": float("nan")}, "not finite"),
        ({"acc": 2**2000}, "too large"),
        ({"acc": "0.9"}, "not a number"),
        ([1, 2], "'metrics' is not an object"),
        ("0.9", "'metrics' is not an object"),
    ):
        with pytest.raises(MetricsError, match=fragment):
            validate_note_metrics(bad, "note on abc")


def test_tidy_and_spell() -> None:
    assert tidy(0.0076500000000000005) == 0.00765
    assert tidy(3) == 3 and tidy(None) is None
    assert spell(float("nan")) == "NaN" and spell(float("-inf")) == "-Infinity"
    assert spell(True) == "true" and spell(None) == "null" and spell("x") == '"x"'
    assert len(spell("y" * 1000)) == 60
