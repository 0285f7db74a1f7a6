#!/usr/bin/env python3
"""The Lambda functions, read from template.yaml: the one list of them.

Each `AWS::Serverless::Function` resource with `CodeUri: functions/<crate>` is a function
whose crate, binary and local name are `<crate>`. infra/validate, infra/lib/check_template.py
and the benches take their lists from here; check_template.py checks this reading against
the full SAM parse of the template.

Standard library only (the benches and shell scripts use it outside the tools venv), so it
reads the template's layout (resources at two spaces, `Type` at four, `CodeUri` at six)
rather than parsing YAML with its CloudFormation tags.

    python3 infra/lib/functions.py [--template PATH] [--local]   # one crate name a line
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# Runs only as CloudFormation's custom-resource handler (WarehouseSchema); the local stack
# applies infra/sql itself, so the local tools host every function but this one.
DEPLOY_ONLY = ("schema-migrator",)

_RESOURCE = re.compile(r"^  ([A-Za-z0-9]+):\s*$")
_TYPE = re.compile(r"^    Type:\s*(\S+)\s*$")
_CODE_URI = re.compile(r"^      CodeUri:\s*(\S+)\s*$")


def functions(template: Path = TEMPLATE) -> dict[str, str]:
    """Logical id → crate name, in template order."""
    found: dict[str, str] = {}
    current, kind, in_resources = None, None, False
    for line in template.read_text().splitlines():
        if re.match(r"^\S", line):
            in_resources = line.rstrip() == "Resources:"
            current = None
            continue
        if not in_resources:
            continue
        if m := _RESOURCE.match(line):
            current, kind = m[1], None
        elif current and (m := _TYPE.match(line)):
            kind = m[1]
        elif current and kind == "AWS::Serverless::Function" and (m := _CODE_URI.match(line)):
            uri = m[1].strip("'\"")
            if uri.startswith("functions/"):
                found[current] = uri.removeprefix("functions/").rstrip("/")
    return found


def local_functions(template: Path = TEMPLATE) -> list[str]:
    """The crate names the local tools host and the benches measure."""
    return [f for f in functions(template).values() if f not in DEPLOY_ONLY]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--template", type=Path, default=TEMPLATE)
    p.add_argument("--local", action="store_true", help=f"leave out {', '.join(DEPLOY_ONLY)}")
    args = p.parse_args()
    names = local_functions(args.template) if args.local else list(functions(args.template).values())
    if not names:
        print(f"functions.py: no AWS::Serverless::Function with a functions/ CodeUri in {args.template}",
              file=sys.stderr)
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
