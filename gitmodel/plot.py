"""Charts: a commit's training history, and metrics across commits with releases marked.

The data functions take what they chart (log entries, a note and a reader of the object it
names, the release tags by commit) and return plain values; `git model plot` gathers those
from the repository. `render_image` draws them with matplotlib (Agg, so no display is
needed) and `render_terminal` as block characters for a terminal. matplotlib is imported
only inside `render_image`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitmodel.errors import GitModelError

if TYPE_CHECKING:
    from gitmodel.lineage import LogEntry

MAX_DEFAULT_METRICS = 6
IMAGE_FORMATS = (".png", ".svg", ".pdf")


@dataclass
class Chart:
    """Series over a shared x axis; `marks` are x positions worth labelling (releases)."""

    title: str
    xlabel: str
    x: list[float]
    series: dict[str, list[float | None]]
    xticks: list[str] = field(default_factory=list)  # one label per x (commits)
    marks: dict[int, str] = field(default_factory=dict)  # index into x -> label
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "xlabel": self.xlabel,
            "x": self.x,
            "xticks": self.xticks,
            # JSON has no NaN: a non-finite value (a diverged run) is null, as a gap is.
            "series": {k: [_finite(v) for v in vs] for k, vs in self.series.items()},
            "marks": {
                self.xticks[i] if self.xticks else str(self.x[i]): label
                for i, label in self.marks.items()
            },
            "note": self.note,
        }


# -- data ---------------------------------------------------------------------------------


def release_tags(root: Path, glob: str) -> dict[str, list[str]]:
    """commit sha -> release tag names, by the gate's own reading of `[release] tags`
    (glob) in the repository at root."""
    from gitmodel.releases import list_release_tags

    tags: dict[str, list[str]] = {}
    for release in list_release_tags(root, glob):
        if release.commit:
            tags.setdefault(release.commit, []).append(release.name)
    return tags


def metric_chart(
    log: Sequence[LogEntry],
    tags: dict[str, list[str]],
    gated: Sequence[str] = (),
    rev_range: str = "HEAD",
    metrics: Sequence[str] = (),
) -> Chart:
    """Metrics of the commits of rev_range's log that have notes, oldest first, releases
    (tags: sha -> names) marked; without metrics named, the gated ones it has, else the
    first few."""
    rows = [r for r in log if r.has_note and r.error is None]
    rows.reverse()
    if not rows:
        raise GitModelError(f"no commits with metrics in {rev_range}")
    names = list(metrics)
    if not names:
        seen: list[str] = []
        for r in rows:
            seen += [k for k in r.metrics if k not in seen]
        charted = [m for m in gated if m in seen]
        names = charted or seen[:MAX_DEFAULT_METRICS]
    missing = [m for m in names if not any(m in r.metrics for r in rows)]
    if missing:
        raise GitModelError(f"no commit in {rev_range} has metric {missing[0]!r}")
    marks = {i: ", ".join(tags[r.commit]) for i, r in enumerate(rows) if r.commit in tags}
    return Chart(
        title=f"{', '.join(names)} across {rev_range}",
        xlabel="commit",
        x=[float(i) for i in range(len(rows))],
        series={m: [r.metrics.get(m) for r in rows] for m in names},
        xticks=[r.commit[:7] for r in rows],
        marks=marks,
    )


def history_chart(
    note: dict[str, Any],
    read: Callable[[object], bytes],
    described: Callable[[], str],
    rev: str = "HEAD",
    metrics: Sequence[str] = (),
) -> Chart:
    """The training history attached to rev's note (its last run), e.g. loss per epoch.

    read: the verified bytes of the object a note entry names (attachments.read_object);
    described: rev as a reader knows it (`describe`), for the title, asked last."""
    from gitmodel.attachments import HISTORY_KEY
    from gitmodel.history import last_run, parse_history, series

    entry = note.get(HISTORY_KEY)
    if entry is None:
        raise GitModelError(
            f"{rev} has no training history (call gitmodel.log_metrics() while training, "
            "then `git model commit`)"
        )
    data = read(entry)
    records = parse_history(data, f"history of {rev}")
    run = last_run(records)
    if not run:
        raise GitModelError(f"the training history of {rev} is empty")
    x, all_series = series(run)
    names = list(metrics) or list(all_series)
    unknown = [m for m in names if m not in all_series]
    if unknown:
        raise GitModelError(
            f"the training history of {rev} has no metric {unknown[0]!r} "
            f"(it has {', '.join(all_series)})"
        )
    earlier = len({r.get("run") for r in records}) - 1
    return Chart(
        title=f"training history of {described()}",
        xlabel="step" if any("step" in r for r in run) else "record",
        x=x,
        series={m: all_series[m] for m in names},
        note=f"last of {earlier + 1} runs in the history" if earlier else None,
    )


def describe(root: Path, sha: str, tags: dict[str, list[str]]) -> str:
    """A commit as a reader knows it: its release tags, else its subject, with the short
    sha (a title that says HEAD~1 stops being true at the next commit)."""
    from gitmodel.git import run_git
    from gitmodel.verdict import clean_text

    if sha in tags:
        return f"{', '.join(sorted(tags[sha]))} ({sha[:7]})"
    subject = run_git(["log", "-1", "--format=%s", sha], cwd=root).stdout.strip()
    return f"{sha[:7]} ({clean_text(subject, 60)})" if subject else sha[:7]


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


# -- drawing ------------------------------------------------------------------------------


def render_image(chart: Chart, output: Path) -> None:
    """Write the chart as PNG/SVG/PDF (by output's suffix) with matplotlib's Agg backend."""
    if output.suffix.lower() not in IMAGE_FORMATS:
        raise GitModelError(f"{output}: use a .png, .svg or .pdf file name")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = list(chart.series)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(9, 2.6 * len(names) + 0.8), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], names, strict=True):
        # A commit without the metric (or a NaN step) is NaN here: matplotlib breaks the
        # line there, so a gap shows instead of a line through a value nobody measured.
        ys = [math.nan if _finite(y) is None else y for y in chart.series[name]]
        marker = "o" if len(ys) <= 60 else None
        ax.plot(chart.x, ys, marker=marker, markersize=4, lw=1.6, color="#1f77b4")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        for i, label in chart.marks.items():
            ax.axvline(chart.x[i], color="#d62728", ls="--", lw=1, alpha=0.6)
            value = _finite(chart.series[name][i])
            if value is not None:
                ax.plot([chart.x[i]], [value], marker="*", markersize=13, color="#d62728", zorder=5)
                ax.annotate(
                    label,
                    (chart.x[i], value),
                    textcoords="offset points",
                    xytext=(0, 9),
                    ha="center",
                    fontsize=8,
                    color="#d62728",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
                )
        ax.margins(y=0.25)
    bottom = axes[-1, 0]
    bottom.set_xlabel(chart.xlabel)
    if not chart.xticks:
        from matplotlib.ticker import MaxNLocator

        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    else:
        step = max(1, math.ceil(len(chart.xticks) / 20))
        bottom.set_xticks(chart.x[::step])
        bottom.set_xticklabels(chart.xticks[::step], rotation=45, ha="right", fontsize=8)
    title = chart.title + (f"\n({chart.note})" if chart.note else "")
    if chart.marks:
        title += "\n★ release"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(output, dpi=120)
    except OSError as exc:
        raise GitModelError(f"{output}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)


_BLOCKS = " ▁▂▃▄▅▆▇█"


def render_terminal(chart: Chart, width: int = 60, height: int = 6) -> str:
    """Each series as a block-character column chart, releases marked with ▲ below."""
    lines = [chart.title + (f" ({chart.note})" if chart.note else "")]
    n = len(chart.x)
    # More points than columns: each column shows the last point of its bucket.
    if n <= width:
        buckets = [[i] for i in range(n)]
    else:
        buckets = [list(range(i * n // width, (i + 1) * n // width)) for i in range(width)]
    # Few points: draw each a few columns wide so the chart reads as bars, not hairlines.
    repeat = max(1, min(4, width // max(1, len(buckets))))
    finite = {k: [_finite(v) for v in vs] for k, vs in chart.series.items()}
    known_all = [v for vals in finite.values() for v in vals if v is not None]
    label_w = max((len(_num(v)) for v in known_all), default=1)
    for name, values in finite.items():
        known = [v for v in values if v is not None]
        if not known:
            continue
        lo, hi = min(known), max(known)
        cols: list[float | None] = []
        for b in buckets:
            vals = [values[i] for i in b if values[i] is not None]
            cols.append(vals[-1] if vals else None)
        span = hi - lo
        # Heights in eighths of a row; the minimum still shows as a sliver.
        top = height * 8
        heights = [
            None if v is None else top if span == 0 else 1 + round((v - lo) / span * (top - 1))
            for v in cols
        ]
        lines.append("")
        lines.append(f"{name}  (first {_num(known[0])}, last {_num(known[-1])})")
        for row in range(height - 1, -1, -1):
            cells = []
            for h in heights:
                if h is None:
                    cells.append(" " * repeat)
                else:
                    fill = h - row * 8
                    block = _BLOCKS[max(0, min(8, fill))]
                    # Wide columns get a gap so neighbours read as separate bars.
                    cells.append(block if repeat == 1 else block * (repeat - 1) + " ")
            axis = _num(hi) if row == height - 1 else _num(lo) if row == 0 else ""
            lines.append(f"{axis.rjust(label_w)} │{''.join(cells)}")
        lines.append(" " * label_w + " └" + "─" * (len(heights) * repeat))
    if chart.marks:
        marker_row = [" " * repeat] * len(buckets)
        for i in chart.marks:
            for col, b in enumerate(buckets):
                if i in b:
                    marker_row[col] = "▲".center(repeat - 1) + " " if repeat > 1 else "▲"
        lines.append(" " * (label_w + 2) + "".join(marker_row).rstrip())
        named = [f"{label} ({chart.xticks[i]})" for i, label in chart.marks.items()]
        lines.append("▲ releases: " + ", ".join(named))
    if chart.xticks:
        lines.append(f"{chart.xlabel}s {chart.xticks[0]} … {chart.xticks[-1]} ({n})")
    else:
        lines.append(f"{chart.xlabel} {_num(chart.x[0])} … {_num(chart.x[-1])} ({n} records)")
    return "\n".join(lines)


def _num(v: float) -> str:
    return f"{v:.4g}"
