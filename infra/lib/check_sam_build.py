#!/usr/bin/env python3
"""Checks what `sam build` produced: every AWS::Serverless::Function in the built template
has a `bootstrap` that is a Linux ELF executable for the architecture that was asked for.

`sam build` exits 0 in some cases where a function's artifact is missing or stale (for example
when cargo-lambda built a different binary name), so the build check looks at the files.

    python infra/lib/check_sam_build.py BUILD_DIR [--arch x86_64|arm64]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

# ELF e_machine values: what a Lambda with that Architectures entry can execute.
MACHINES = {"x86_64": 0x3E, "arm64": 0xB7}


def function_dirs(build_dir: Path) -> dict[str, Path]:
    """Logical id -> artifact directory, from the template `sam build` wrote."""
    from cfnlint.decode import cfn_yaml  # in the infra venv; understands !Ref and friends

    template = cfn_yaml.load(str(build_dir / "template.yaml"))
    out: dict[str, Path] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = (resource.get("Properties") or {}).get("CodeUri")
        if not isinstance(code_uri, str):
            out[logical_id] = build_dir / logical_id
        else:
            out[logical_id] = (build_dir / code_uri).resolve()
    return out


def check_bootstrap(path: Path, arch: str) -> str | None:
    """None when `path` is an executable ELF for `arch`, else why not."""
    if not path.is_file():
        return "no bootstrap"
    if not os.access(path, os.X_OK):
        return "bootstrap is not executable"
    with path.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "bootstrap is not an ELF binary"
    if header[4] != 2:
        return "bootstrap is not 64-bit"
    (machine,) = struct.unpack_from("<H", header, 18)
    if machine != MACHINES[arch]:
        return f"bootstrap is for ELF machine {machine:#x}, not {arch}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--arch", choices=sorted(MACHINES), default="x86_64")
    args = parser.parse_args()

    dirs = function_dirs(args.build_dir)
    if not dirs:
        print(f"check_sam_build: no functions in {args.build_dir / 'template.yaml'}", file=sys.stderr)
        return 1
    failed = 0
    for logical_id, directory in sorted(dirs.items()):
        problem = check_bootstrap(directory / "bootstrap", args.arch)
        if problem:
            failed += 1
            print(f"  FAIL {logical_id}: {problem} ({directory})")
        else:
            size = (directory / "bootstrap").stat().st_size
            print(f"  ok   {logical_id}: bootstrap {size / 1e6:.1f} MB ({args.arch})")
    if failed:
        print(f"check_sam_build: {failed} of {len(dirs)} functions have no usable bootstrap")
        return 1
    print(f"check_sam_build: all {len(dirs)} functions have a {args.arch} bootstrap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
