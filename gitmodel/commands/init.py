from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "init",
        help="make the repository gitmodel- and DVC-ready",
        description="Create .dvc/ as `dvc init` would, a default .gitmodel.toml, set git to "
        "show and keep metrics notes, and install the hooks. Safe to run again.",
    )
    p.add_argument("--no-hooks", action="store_true", help="do not install git hooks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gitmodel.render import info
    from gitmodel.repo import Repo

    repo = Repo()
    created = repo.init()
    for rel in created:
        info(f"created {rel}")
    from gitmodel.hooks import installer

    if args.no_hooks:
        installer.mark_no_hooks(installer.HookPlace.of(repo))
    else:
        for line in installer.install(installer.HookPlace.of(repo)).lines:
            info(line)
    from gitmodel.config import dvc_settings_outside

    for warning in dvc_settings_outside(repo.root):
        info(f"warning: {warning}")
    info(f"gitmodel is ready in {repo.root}")
    return 0
