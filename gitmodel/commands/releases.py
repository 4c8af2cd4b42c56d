from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "releases",
        help="every release line: versions, metrics, verdicts and the stages they hold",
        description="List every release line (the main line and each NAME@ line): its "
        "versions newest first with commit, date, the gated metrics, the verdict recorded "
        "when it was released, and the stages (GTO's NAME#STAGE#N tags) each holds now.",
    )
    p.add_argument("--json", action="store_true", help="print the lines as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import datetime as dt
    import sys

    from gitmodel.registry import release_lines
    from gitmodel.render import fmt_number, print_json
    from gitmodel.repo import Repo

    repo = Repo()
    lines = release_lines(repo.root, repo.config)
    if args.json:
        print_json({"lines": lines})
        return 0
    if not lines:
        print("no releases yet (git model release VERSION)")
        return 0
    out = []
    for line in lines:
        stages = ", ".join(f"{s}={h['version'][:12]}" for s, h in line["stages"].items())
        head = line["label"] + (" (deprecated)" if line["deprecated"] else "")
        out.append(head + (f"    stages: {stages}" if stages else ""))
        rows = []
        for r in line["releases"]:
            day = dt.datetime.fromtimestamp(r["date"], dt.timezone.utc).strftime("%Y-%m-%d")
            metrics = " ".join(f"{k}={fmt_number(v)}" for k, v in r["metrics"].items()) or "-"
            verdict = (r["verdict"] or {}).get("result", "-").upper() if r["verdict"] else "-"
            if r["override"] and verdict == "-":
                verdict = "OVERRIDDEN"
            marks = " ".join(f"[{s}]" for s in r["stages"])
            if r["deprecated"]:
                marks = (marks + " (deprecated)").strip()
            rows.append([r["tag"], (r["commit"] or "")[:10], day, metrics, verdict, marks])
        if not rows:
            out.append("  (no releases; stages on commits only)")
        widths = [max(len(row[i]) for row in rows) for i in range(6)] if rows else []
        for row in rows:
            out.append(
                ("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip()
            )
    sys.stdout.write("\n".join(out) + "\n")
    return 0
