from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print the completion script for SHELL: verbs, flags, tracked weights "
        "and release tags. Load it from your shell's start-up file, after git's own "
        'completion: eval "$(git model completion bash)" in ~/.bashrc, or '
        'eval "$(git model completion zsh)" in ~/.zshrc (after compinit).',
    )
    p.add_argument("shell", choices=("bash", "zsh"), metavar="SHELL", help="bash or zsh")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from gitmodel.cli import build_parser
    from gitmodel.completion import bash_script, zsh_script

    parser = build_parser()
    script = bash_script(parser) if args.shell == "bash" else zsh_script(parser)
    sys.stdout.write(script)
    return 0
