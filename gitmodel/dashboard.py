"""A static, offline HTML dashboard of the registry: `git model report --html DIR`.

One self-contained `index.html` a team publishes from CI (an artifact, GitHub Pages,
GitLab Pages): each release line's stages and releases with their metrics, recorded
verdicts and weights' sizes, and one inline SVG chart per gated metric across the
line's releases. Nothing is loaded from anywhere: no script at all, no font or style from
another host, so it renders the same from a file, an artifact viewer or behind a proxy.

Every string on the page comes from tags and notes (hostile) and is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from typing import Any

WeightsOf = Callable[[str], Sequence[tuple[str, "int | None"]]]

# A colour per stage name that reads on white; unknown stages cycle through the rest.
_STAGE_COLOURS = {
    "prod": "#b8321a",
    "production": "#b8321a",
    "staging": "#c77c02",
    "dev": "#2e6fba",
}
_PALETTE = ("#2e6fba", "#3a8a3a", "#7a3fb0", "#0f8a8a", "#8a5a2e")


def build_dashboard(
    lines: list[dict[str, Any]],
    gated: Sequence[str],
    weights_of: WeightsOf,
    title: str,
    head: str | None = None,
) -> dict[str, Any]:
    """The page's data: the release lines (registry.release_lines) with weights' sizes."""
    for line in lines:
        for r in line["releases"]:
            files = list(weights_of(r["commit"])) if r["commit"] else []
            r["weights"] = [{"path": p, "size": s} for p, s in files]
            r["weights_size"] = sum(s or 0 for _, s in files)
    return {
        "title": title,
        "generated": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "head": head,
        "gated": list(gated),
        "lines": lines,
    }


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _size(n: int | None) -> str:
    from gitmodel.render import fmt_size

    return "–" if not n else fmt_size(n)


def _day(ts: int | None) -> str:
    if not ts:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _colour(stage: str, i: int = 0) -> str:
    return _STAGE_COLOURS.get(stage.lower(), _PALETTE[i % len(_PALETTE)])


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#1d2b45;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d3e6;font-size:13px}
main{padding:18px 28px;max-width:1200px}
section.line{background:#fff;border:1px solid #d9dee7;border-radius:8px;padding:16px 20px;margin:0 0 20px}
h2{margin:0 0 10px;font-size:19px}
h3{margin:16px 0 6px;font-size:15px;color:#394459}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;color:#fff;font-size:12px;margin-right:3px}
.pass{color:#1f7a33;font-weight:600}.fail{color:#b8321a;font-weight:600}.overridden{color:#a8650a;font-weight:600}
.stages{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 8px}
.stage{border:2px solid;border-radius:8px;padding:8px 14px;min-width:150px;background:#fbfcfe}
.stage b{display:block;font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.stage span{font-size:17px;font-weight:600}
.latest{background:#f7f9fc;border-left:4px solid #8793a8;padding:8px 12px;margin:6px 0 10px}
.charts{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fbfcfe;border:1px solid #e1e5ec;border-radius:6px;padding:8px}
figcaption{font-size:12px;color:#394459;font-weight:600;margin-bottom:2px}
.muted{color:#6b7488}
"""


def render_html(data: dict[str, Any]) -> str:
    """The dashboard as one self-contained HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network at all: not even a favicon request.
        '<link rel="icon" href="data:,">',
        f"<title>{_e(data['title'])} · model registry</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(data['title'])}: model registry</h1>",
        f"<p>generated {_e(data['generated'])}"
        + (f" at <code>{_e(str(data['head'])[:12])}</code>" if data.get("head") else "")
        + " by git model report --html</p></header><main>",
    ]
    if not data["lines"]:
        parts.append('<section class="line"><p>No releases yet.</p></section>')
    for line in data["lines"]:
        parts.append(_line_html(line, data["gated"]))
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _verdict_html(r: dict[str, Any]) -> str:
    verdict = r.get("verdict")
    if verdict:
        result = verdict["result"]
        return f'<span class="{_e(result)}" title="{_e(verdict["summary"])}">{_e(result.upper())}</span>'
    if r.get("override"):
        return f'<span class="overridden" title="{_e(r["override"])}">OVERRIDDEN</span>'
    return '<span class="muted">not recorded</span>'


def _line_html(line: dict[str, Any], gated: Sequence[str]) -> str:
    releases = line["releases"]
    out = [f'<section class="line" id="line-{_e(line["name"])}">']
    title = line["label"] + (" (deprecated)" if line.get("deprecated") else "")
    out.append(f"<h2>{_e(title)}</h2>")
    stages = line["stages"]
    if stages:
        out.append('<div class="stages">')
        for i, (stage, h) in enumerate(stages.items()):
            colour = _colour(stage, i)
            out.append(
                f'<div class="stage" style="border-color:{colour}"><b style="color:{colour}">'
                f"{_e(stage)}</b><span>{_e(h['version'][:24])}</span><br>"
                f'<small class="muted">since {_e(_day(h["since"]))} · {_e(h["tag"])}</small></div>'
            )
        out.append("</div>")
    else:
        out.append('<p class="muted">No stage assigned (git model promote REF STAGE).</p>')
    if releases:
        latest = releases[0]
        summary = (latest.get("verdict") or {}).get("summary") or (
            f"released despite the gate: {latest['override']}"
            if latest.get("override")
            else "no verdict recorded in the tag"
        )
        for word in ("PASS:", "FAIL:", "OVERRIDDEN:"):
            summary = summary.removeprefix(word).strip()
        out.append(
            f'<div class="latest">Latest release <b>{_e(latest["tag"])}</b> '
            f"({_e(_day(latest['date']))}): {_verdict_html(latest)} "
            f'<span class="muted">{_e(summary)}</span></div>'
        )
    names = _metric_names(releases, gated)
    out.append("<h3>Releases</h3><table><thead><tr><th>release</th><th>commit</th><th>date</th>")
    out += [f'<th class="num">{_e(m)}</th>' for m in names]
    out.append('<th>verdict</th><th>stages</th><th class="num">weights</th></tr></thead><tbody>')
    for r in releases:
        badges = "".join(
            f'<span class="badge" style="background:{_colour(s, i)}">{_e(s)}</span>'
            for i, s in enumerate(r["stages"])
        )
        if r.get("deprecated"):
            badges += '<span class="muted">deprecated</span>'
        weights = "; ".join(f"{w['path']} {_size(w['size'])}" for w in r.get("weights", []))
        out.append(
            f"<tr><td><b>{_e(r['tag'])}</b></td><td><code>{_e((r['commit'] or '')[:10])}</code></td>"
            f"<td>{_e(_day(r['date']))}</td>"
            + "".join(f'<td class="num">{_e(_num(r["all_metrics"].get(m)))}</td>' for m in names)
            + f"<td>{_verdict_html(r)}</td><td>{badges}</td>"
            f'<td class="num" title="{_e(weights)}">{_e(_size(r.get("weights_size")))}</td></tr>'
        )
    if not releases:
        out.append(f'<tr><td colspan="{6 + len(names)}" class="muted">no releases</td></tr>')
    out.append("</tbody></table>")
    charts = [c for c in (_chart(line, m) for m in names) if c]
    if charts:
        out.append('<h3>Metrics across releases</h3><div class="charts">')
        out += charts
        out.append("</div>")
    if line.get("history"):
        out.append(
            "<h3>Stage history</h3><table><thead><tr><th>date</th><th>tag</th>"
            "<th>event</th><th>version</th><th>by</th><th>message</th></tr></thead><tbody>"
        )
        for e in line["history"][:15]:
            out.append(
                f"<tr><td>{_e(_day(e['date']))}</td><td><code>{_e(e['tag'])}</code></td>"
                f"<td>{_e(e['action'])} {_e(e['stage'])}</td><td>{_e(e['version'][:24])}</td>"
                f"<td>{_e(e['by'])}</td><td>{_e(e['message'])}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</section>")
    return "\n".join(out)


def _metric_names(releases: list[dict[str, Any]], gated: Sequence[str]) -> list[str]:
    present = {k for r in releases for k in r["all_metrics"]}
    if gated:
        return [m for m in gated if m in present]
    return sorted(present)[:8]


def _chart(line: dict[str, Any], metric: str, width: int = 520, height: int = 220) -> str:
    """An inline SVG line chart of metric over the line's releases, oldest on the left."""
    points = [
        (r, r["all_metrics"][metric])
        for r in reversed(line["releases"])
        if isinstance(r["all_metrics"].get(metric), (int, float))
        and math.isfinite(r["all_metrics"][metric])
    ]
    if not points:
        return ""
    left, right, top, bottom = 56, 16, 14, 58
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi == lo:
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    span_x = max(1, len(points) - 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / span_x if len(points) > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    svg = [
        f'<figure><figcaption>{_e(metric)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(metric)} across releases of {_e(line["label"])}">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" '
        f'height="{height - top - bottom}" fill="#ffffff" stroke="#d9dee7"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        svg.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            'stroke="#eef1f6"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#6b7488">{_e(_num(v))}</text>'
        )
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    svg.append(f'<polyline points="{path}" fill="none" stroke="#2e6fba" stroke-width="2.5"/>')
    for i, (r, v) in enumerate(points):
        cx, cy = x(i), y(v)
        fill = "#2e6fba"
        ring = ""
        for j, s in enumerate(r["stages"]):
            ring += (
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{9 + 3 * j}" fill="none" '
                f'stroke="{_colour(s, j)}" stroke-width="2"/>'
                f'<text x="{cx:.1f}" y="{cy - 12 - 3 * j:.1f}" font-size="11" text-anchor="middle" '
                f'fill="{_colour(s, j)}">{_e(s)}</text>'
            )
        if (r.get("verdict") or {}).get("result") in ("fail", "overridden") or r.get("override"):
            fill = "#c77c02"
        svg.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}"><title>'
            f"{_e(r['tag'])}: {_e(metric)} = {_e(_num(v))}</title></circle>{ring}"
            f'<text x="{cx:.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="end" '
            f'transform="rotate(-30 {cx:.1f} {height - bottom + 16})" fill="#394459">'
            f"{_e(r['tag'][-18:])}</text>"
        )
    svg.append("</svg></figure>")
    return "".join(svg)
