"""Write man/git-model.1 from the CLI's own parser.

`git model --help` makes git run `man git-model`; installing this page (pyproject
data-files -> share/man/man1, which man finds next to the venv's bin/) answers it.
Run after changing commands: `python scripts/gen_manpage.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitmodel import __version__  # noqa: E402
from gitmodel.cli import build_parser  # noqa: E402


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-").replace("\n.", "\n\\&.")


def main() -> None:
    parser = build_parser()
    lines = [
        f'.TH GIT-MODEL 1 "" "gitmodel {__version__}" "Git Manual"',
        ".SH NAME",
        "git\\-model \\- " + escape(parser.description or ""),
        ".SH SYNOPSIS",
        ".B git model",
        "[\\-\\-version] [\\-\\-help] COMMAND [ARGS]",
        ".SH COMMANDS",
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for p in sub.choices.values():
        lines += [
            ".SS " + escape(p.format_usage().replace("usage: ", "").strip()),
            escape(p.description or ""),
        ]
        for action in p._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            lines += [
                ".TP",
                ".B " + escape(", ".join(action.option_strings)),
                escape(action.help or ""),
            ]
    lines += [
        ".SH EXIT STATUS",
        "0 done; 1 refused (regression, failed check, problems found); 2 bad input or usage; 3 a bug.",
        ".SH SEE ALSO",
        "README.md of gitmodel; \\fBgit\\-notes\\fR(1), \\fBdvc\\fR(1)",
    ]
    out = Path(__file__).resolve().parent.parent / "man" / "git-model.1"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
