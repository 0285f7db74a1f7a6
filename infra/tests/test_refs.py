"""Tests of infra/lib/check_refs.py, and the check itself on this repository."""

import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "lib"))
import check_refs  # noqa: E402


class Dangling(unittest.TestCase):
    def test_a_missing_section_and_old_spellings_are_reported(self):
        known = check_refs.sections("# T\n## 1. A\n## 3. C\n")
        self.assertEqual(known, {1, 3})
        text = "see docs/design.md §3\nsee docs/design.md §2\nDESIGN §4\nCONTRACTS.md\n"
        problems = check_refs.dangling(text, known)
        self.assertEqual(len(problems), 3, problems)
        self.assertTrue(problems[0].startswith("2: §2"), problems)

    def test_a_markdown_link_counts(self):
        self.assertEqual(check_refs.dangling("[design](docs/design.md) §9", {1}), ["1: §9 is not a section of docs/design.md"])

    def test_this_repository_has_no_dangling_reference(self):
        self.assertEqual(check_refs.check(ROOT), [])


if __name__ == "__main__":
    unittest.main()
