"""A change report between two revisions, ready to post on a pull request.

Metrics with deltas, the release gate's verdict on the newer revision, and the weights that
changed with their sizes. `build_report` takes what it reports on (the diff, the gate rules,
a judge of the newer commit, the notes) and returns plain data (the JSON format); `git
model report` gathers those from the repository. `render_markdown` turns it into Markdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gitmodel.config import GateRule
    from gitmodel.lineage import Diff
    from gitmodel.notes import Notes
    from gitmodel.verdict import Verdict


def check_revisions(a: str | None, b: str | None) -> None:
    """A report compares a (default: the previous release, else HEAD~1) with b (HEAD)."""
    if a is None and b is not None:
        raise GitModelError("give A too when giving B")


def build_report(
    diff: Diff,
    gates: Mapping[str, GateRule],
    judge: Callable[[str], Verdict],
    notes: Notes,
) -> dict[str, Any]:
    """The report of diff: its metrics against the gate rules, judge's verdict on the newer
    commit (a GitModelError from it is reported, not raised), and the attachments that
    commit's note (in notes) names."""
    metrics = []
    for name, row in diff.metrics.items():
        rule = gates.get(name)
        better = None
        if rule is not None and row.delta is not None:
            better = row.delta >= 0 if rule.direction == "higher" else row.delta <= 0
        metrics.append(
            {
                "metric": name,
                "old": row.old,
                "new": row.new,
                "delta": row.delta,
                "gated": rule is not None,
                "direction": rule.direction if rule else None,
                "better": better,
            }
        )
    weights = []
    for path, w in diff.weights.items():
        old_size = w.old["size"] if w.old else None
        new_size = w.new["size"] if w.new else None
        weights.append(
            {
                "path": path,
                "status": w.status,
                "old": w.old,
                "new": w.new,
                "size_delta": (new_size or 0) - (old_size or 0),
            }
        )
    gate, gate_note = gate_verdict(judge, diff.b.commit)
    return {
        "a": diff.a.to_json(),
        "b": diff.b.to_json(),
        "metrics": metrics,
        "weights": weights,
        "gate": gate,
        "gate_note": gate_note,
        "attachments": _attachments(notes, diff.b.commit),
    }


def gate_verdict(
    judge: Callable[[str], Verdict], commit: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The release gate's verdict on commit as JSON, or None and why there is none."""
    try:
        verdict = judge(commit)
    except GitModelError as exc:
        return None, f"no gate verdict: {exc.message}"
    return verdict.to_json(), None


def _attachments(notes: Notes, commit: str) -> dict[str, Any]:
    note = notes.read(commit) or {}
    out: dict[str, Any] = {}
    from gitmodel.attachments import HISTORY_KEY

    hist = note.get(HISTORY_KEY)
    if isinstance(hist, dict):
        out["history"] = {k: hist.get(k) for k in ("md5", "records")}
    pred = note.get("predictions")
    if isinstance(pred, dict):
        out["predictions"] = {k: pred.get(k) for k in ("md5", "n", "task", "labels_md5")}
    return out


# -- Markdown -----------------------------------------------------------------------------


def _num(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _delta(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:+.6g}" if isinstance(v, float) else f"{v:+d}"


def _size(n: int | None) -> str:
    from gitmodel.text import fmt_size

    return "–" if n is None else fmt_size(n)


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _rev(side: dict[str, Any]) -> str:
    rev, sha = side["rev"], side["commit"][:10]
    return f"`{sha}`" if rev.startswith(side["commit"][:7]) else f"`{rev}` (`{sha}`)"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"## Model report: {_rev(report['a'])} → {_rev(report['b'])}", ""]
    lines += _gate_markdown(report)
    lines += ["### Metrics", ""]
    if report["metrics"]:
        lines += ["| metric | old | new | Δ | |", "|---|---:|---:|---:|---|"]
        for m in report["metrics"]:
            mark = ""
            if m["gated"]:
                arrow = "↑" if m["direction"] == "higher" else "↓"
                mark = f"gated {arrow}" + (
                    "" if m["better"] is None else " ✅" if m["better"] else " ⚠️"
                )
            lines.append(
                f"| {m['metric']} | {_num(m['old'])} | {_num(m['new'])} | "
                f"{_delta(m['delta'])} | {mark} |"
            )
    else:
        lines.append("No metrics on either revision.")
    lines += ["", "### Weights", ""]
    if report["weights"]:
        lines += ["| path | change | old size | new size | Δ size |", "|---|---|---:|---:|---:|"]
        for w in report["weights"]:
            old = w["old"]["size"] if w["old"] else None
            new = w["new"]["size"] if w["new"] else None
            sign = "+" if w["size_delta"] >= 0 else "-"
            lines.append(
                f"| `{w['path']}` | {w['status']} | {_size(old)} | {_size(new)} | "
                f"{sign}{_size(abs(w['size_delta']))} |"
            )
    else:
        lines.append("No weights changed.")
    att = report.get("attachments") or {}
    if att:
        lines += [""]
        if "history" in att:
            lines.append(
                f"Training history: {_plural(att['history']['records'], 'record')} "
                f"(`git model plot --history {report['b']['commit'][:10]}`)."
            )
        if "predictions" in att:
            p = att["predictions"]
            lines.append(
                f"Stored predictions: {p['n']} examples ({p['task']}), "
                "used by the noise-aware gate."
            )
    return "\n".join(lines) + "\n"


def _gate_markdown(report: dict[str, Any]) -> list[str]:
    gate = report.get("gate")
    if not gate:
        return [f"_Gate verdict omitted: {report.get('gate_note') or 'not available'}._", ""]
    previous = gate.get("previous") or {}
    if gate.get("overridden"):
        head = "⚠️ **fails the release gate, overridden**"
    elif gate.get("passed"):
        head = "✅ **passes the release gate**"
    else:
        head = "❌ **fails the release gate**"
    if previous.get("tag"):
        head += f" against `{previous['tag']}`"
    lines = [head, ""]
    checks = gate.get("metrics") or []
    if checks:
        lines += [
            "| gated metric | against | was | new | Δ | slack | result |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for c in checks:
            result = "pass" if c.get("passed") else "**FAIL**"
            if c.get("reason"):
                result += f" ({c['reason']})"
            lines.append(
                f"| {c.get('metric')} | {_against(c)} | {_num(c.get('previous'))} | "
                f"{_num(c.get('new'))} | {_delta(c.get('delta'))} | {_num(c.get('slack'))} | "
                f"{result} |"
            )
        lines.append("")
        for c in checks:
            noise = c.get("noise")
            if isinstance(noise, dict) and noise.get("reason"):
                lines += [f"- {c.get('metric')} against {_against(c)}: {noise['reason']}"]
        if any(isinstance(c.get("noise"), dict) for c in checks):
            lines.append("")
    for problem in gate.get("problems") or []:
        lines.append(f"- problem: {problem}")
    for note in gate.get("notes") or []:
        lines.append(f"- note: {note}")
    if gate.get("summary"):
        lines += [f"`{gate['summary']}`", ""]
    return lines


def _against(check: dict[str, Any]) -> str:
    """Which comparison a verdict row is: a release tag, the drift baseline, or a floor."""
    kind = check.get("kind") or "previous"
    if kind in ("minimum", "maximum"):
        return str(kind)
    tag = check.get("against") or "-"
    return f"{tag} (drift)" if kind == "drift" else str(tag)
