"""The README and docs/ as a user reads them: every link resolves, every shell block runs.

Each fenced ```bash or ```sh block of README.md and docs/*.md runs as written, with
`bash -e`, in a scratch repository of its own (one commit, after `git model init`), so a
block must stand alone. A block with `<!-- not-runnable: REASON -->` on the line just
before it is skipped, and the reason is required. The pages are found when the tests are
collected, so a page added later is covered without touching this file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import Shell

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)")
NOT_RUNNABLE = re.compile(r"^<!--\s*not-runnable:\s*(.*?)\s*-->\s*$")
SHELLS = {"bash", "sh", "shell"}


class Block:
    def __init__(self, page: Path, line: int, lang: str, text: str, skip: str | None) -> None:
        self.page, self.line, self.lang, self.text, self.skip = page, line, lang, text, skip

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the not-runnable marker before each."""
    found = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(1), m.group(2).lower(), i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        marker = NOT_RUNNABLE.match(lines[start - 1]) if start else None
        skip = marker.group(1) if marker else None
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", skip))
    return found


SHELL_BLOCKS = [b for page in PAGES for b in blocks(page) if b.lang in SHELLS]


def test_the_blocks_are_found() -> None:
    # The parser itself: the README's Quick start is there, and runs.
    names = [b.name for b in SHELL_BLOCKS if b.skip is None]
    assert any(n.startswith("README.md:") for n in names), names
    for b in SHELL_BLOCKS:
        if b.skip is not None:
            assert b.skip, f"{b.name}: a not-runnable marker must give a reason"


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.name)
def test_shell_block_runs(block: Block, repo: Path, sh: Shell) -> None:
    if block.skip is not None:
        pytest.skip(f"not runnable: {block.skip}")
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.text],
        cwd=repo,
        env=sh.env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{block.name} ({block.lang}) exited {proc.returncode}\n--- block\n{block.text}"
        f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    )


def quick_start() -> Block:
    for b in blocks(ROOT / "README.md"):
        if b.lang in SHELLS and "git model release v1.0.0" in b.text:
            return b
    raise AssertionError("README.md has no Quick start block")


def test_quick_start_ends_in_a_refused_release(repo: Path, sh: Shell) -> None:
    proc = subprocess.run(
        ["bash", "-e", "-c", quick_start().text],
        cwd=repo,
        env=sh.env,
        text=True,
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    project = repo / "quickstart"
    tags = sh.git("tag", "-l", cwd=project).stdout.split()
    assert tags == ["v1.0.0"], tags
    assert "refused (exit 1)" in proc.stdout
    assert "accuracy" in proc.stderr + proc.stdout


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    # links inside code are code, not links
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_readme_reads_in_five_minutes() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines; move detail into docs/"
    # The two commands a newcomer runs on a fresh machine come first.
    head = "\n".join(lines[:15])
    assert "bash scripts/demo.sh" in head and "bash scripts/test.sh" in head


def _module_names(package: Path) -> dict[str, str]:
    """Each module of the package -> how docs/architecture.md names it: `store/dirs.py`,
    a package by its directory (`hooks/`), the verbs by `commands/` (one module per verb)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("commands/"):
            names[rel] = "commands/"
        elif rel.endswith("/__init__.py"):
            names[rel] = rel.removesuffix("__init__.py")
        else:
            names[rel] = rel
    return names


def test_the_architecture_page_names_every_module() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = _module_names(ROOT / "gitmodel")
    assert "store/objects.py" in names and "cli.py" in names  # the real package
    missing = sorted(rel for rel, name in names.items() if f"`{name}`" not in page)
    assert not missing, f"docs/architecture.md has no sentence for: {missing}"


def test_the_module_check_sees_a_new_module(tmp_path: Path) -> None:
    (tmp_path / "commands").mkdir()
    for rel in ("__init__.py", "cli.py", "commands/__init__.py", "commands/add.py", "new.py"):
        (tmp_path / rel).write_text("")
    assert _module_names(tmp_path) == {
        "__init__.py": "__init__.py",
        "cli.py": "cli.py",
        "commands/__init__.py": "commands/",
        "commands/add.py": "commands/",
        "new.py": "new.py",
    }
