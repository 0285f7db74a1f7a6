#!/usr/bin/env python3
"""Every reference to the design document names a section that exists.

  python3 infra/lib/check_refs.py [ROOT]     exit 1 and list what dangles

References look like `docs/design.md §3` (or `design.md §3`, `§3.2` counts as §3). Also
refused: the old spellings `DESIGN §n` and `CONTRACTS.md` (the files are docs/design.md and
docs/contracts.md). Tracked text files only (git ls-files), so build output is never read.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SECTION = re.compile(r"^## (\d+)\. ", re.MULTILINE)
REFERENCE = re.compile(r"design\.md\)?\s*§\s*(\d+)")
OLD = re.compile(r"\bDESIGN §|\bCONTRACTS\.md\b")
SUFFIXES = {".rs", ".md", ".py", ".sql", ".yaml", ".yml", ".sh", ".toml", ".html", ""}


def sections(design: str) -> set[int]:
    return {int(n) for n in SECTION.findall(design)}


def dangling(text: str, known: set[int]) -> list[str]:
    """The problems in one file's text, one line each."""
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in REFERENCE.finditer(line):
            if int(m.group(1)) not in known:
                problems.append(f"{lineno}: §{m.group(1)} is not a section of docs/design.md")
        if OLD.search(line):
            problems.append(f"{lineno}: old reference {OLD.search(line).group(0)!r}")
    return problems


def tracked_files(root: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True)
    return [root / p for p in out.stdout.splitlines() if Path(p).suffix in SUFFIXES]


def check(root: Path) -> list[str]:
    known = sections((root / "docs/design.md").read_text())
    problems = []
    for path in tracked_files(root):
        if path.name in ("check_refs.py", "test_refs.py") or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(root)}:{p}" for p in dangling(text, known)]
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_refs: {len(problems)} dangling reference(s)", file=sys.stderr)
        return 1
    print("check_refs: every design reference resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
