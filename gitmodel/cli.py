"""`git model`: build the parser, dispatch to a command, map failures to exit codes.

Each verb lives in gitmodel/commands/<verb>.py with `register(subparsers)` (which sets
`func`) and a function returning an int exit code. Command modules import nothing heavy
at top level, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gitmodel import __version__
from gitmodel.errors import EXIT_BUG, EXIT_USAGE, GitModelError

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any

# Order is the order of `git model --help`.
COMMANDS = [
    "init",
    "add",
    "commit",
    "metrics",
    "log",
    "diff",
    "status",
    "checkout",
    "check",
    "release",
    "releases",
    "promote",
    "demote",
    "install",
    "uninstall",
    "remote",
    "push",
    "fetch",
    "pull",
    "get",
    "gc",
    "fsck",
    "eval",
    "plot",
    "report",
    "completion",
    "hook",
]


def _terminal_width() -> int:
    """shutil.get_terminal_size's answer ($COLUMNS, else the terminal, else 80) without
    importing shutil, which brings bz2, lzma and fnmatch: argparse builds a formatter for
    every add_argument, so its own lookup costs every command ~7 ms before it runs."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        super().__init__(prog, indent_increment, max_help_position, _terminal_width() - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's default prints usage + error and exits 2; keep it to one line.
        self.exit(EXIT_USAGE, f"git model: error: {message} (see --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser for every verb, or (only=VERB) for that verb alone."""
    parser = _Parser(
        prog="git model",
        description="Version model weights and metrics with git: weights in a DVC-compatible "
        "cache, metrics in git notes, releases that refuse regressions.",
    )
    parser.add_argument("--version", action="version", version=f"git-model {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in [only] if only else COMMANDS:
        module = importlib.import_module(f"gitmodel.commands.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # Import and register only the verb being run (every hook and command pays for one
    # module, not all of them); `git model`, `--help` and typos still get the full parser.
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        return code
    except GitModelError as exc:
        print(f"git model: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("git model: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if os.environ.get("GITMODEL_DEBUG"):
            raise
        print(
            f"git model: internal error: {type(exc).__name__}: {exc} "
            "(set GITMODEL_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
