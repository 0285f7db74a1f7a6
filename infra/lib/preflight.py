#!/usr/bin/env python3
"""Before `sam build && sam deploy`: check this machine and the AWS account/region.

Run through `infra/preflight` (which picks a Python with boto3). One line per check:
`[ OK ]`, `[WARN]` (works, but read it), `[FAIL]` (the build or deploy would fail) or
`[SKIP]`, each failure with what to do. Exit status: 0 nothing blocks, 1 a check failed,
2 usage error.

Checks (AWS documentation in the comments of each):
  credentials          sts get-caller-identity, and a region
  apigateway-role      the region's API Gateway CloudWatch Logs role (the API stage logs)
  redshift-subnets     subnets for the Redshift Serverless workgroup: >= 3 AZs
  redshift-serverless  the service answers in the region
  sam-cli              SAM CLI >= MIN_SAM_VERSION
  cargo-lambda, zig    what `sam build` (BuildMethod rust-cargolambda) runs
  rust-target          the Rust target of the chosen Architecture
  architecture         build and deploy use the same Architecture
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FLEETLINE_CACHE") or Path.home() / ".cache" / "fleetline")

# The first SAM CLI release whose `sam build` accepts BuildMethod rust-cargolambda without a
# beta opt-in: aws/aws-sam-cli#8526 ("graduate Rust cargo-lambda support from experimental",
# merged 2025-12-22) removed the gate. Checked in the released wheels: 1.155.2's build_context.py
# still maps "rust-cargolambda" to ExperimentalFlag.RustCargoLambda, 1.156.0 no longer names
# it. infra/constraints.txt pins 1.170.0.
MIN_SAM_VERSION = (1, 156, 0)

RUST_TARGETS = {"arm64": "aarch64-unknown-linux-gnu", "x86_64": "x86_64-unknown-linux-gnu"}
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass
class Result:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        tag = {OK: " OK ", WARN: "WARN", FAIL: "FAIL", SKIP: "SKIP"}[self.status]
        text = f"[{tag}] {self.name}: {self.detail}"
        return text + (f"\n       fix: {self.fix}" if self.fix else "")


def _error_code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)


# ---------------------------------------------------------------------------------------
# AWS checks (clients are passed in, so tests can stub them)


def check_credentials(sts, region: str | None) -> Result:
    if not region:
        return Result(
            "credentials", FAIL, "no region configured", "pass --region, or set AWS_REGION / a profile region (aws configure)"
        )
    try:
        ident = sts.get_caller_identity()
    except Exception as e:
        return Result(
            "credentials",
            FAIL,
            f"no usable credentials ({_error_code(e)}: {e})",
            "aws configure, aws sso login, or set AWS_PROFILE",
        )
    return Result("credentials", OK, f"account {ident['Account']} as {ident['Arn']}, region {region}")


def check_apigateway_role(apigw, region: str, stack_creates_role: bool) -> Result:
    # API Gateway writes execution/access logs only after the account's per-region
    # cloudWatchRoleArn is set ("Set up CloudWatch logging for REST APIs in API Gateway",
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html);
    # without it the stage with logging fails and the stack rolls back.
    name = "apigateway-role"
    try:
        arn = apigw.get_account().get("cloudwatchRoleArn")
    except Exception as e:
        return Result(name, WARN, f"could not read the API Gateway account settings ({_error_code(e)})", "")
    if arn:
        return Result(name, OK, f"CloudWatch Logs role set in {region}: {arn}")
    if stack_creates_role:
        return Result(name, OK, f"not set in {region}; the stack creates it (CreateApiGatewayAccountRole=true)")
    return Result(
        name,
        FAIL,
        f"no API Gateway CloudWatch Logs role in {region}: the API stage would fail "
        "('CloudWatch Logs role ARN must be set in account settings')",
        "deploy with --parameter-overrides CreateApiGatewayAccountRole=true (creates the role and sets it for "
        "the region; both are kept when the stack is deleted), or set it yourself: "
        "aws apigateway update-account --patch-operations "
        "op=replace,path=/cloudwatchRoleArn,value=<ARN of a role trusted by apigateway.amazonaws.com with the "
        "AmazonAPIGatewayPushToCloudWatchLogs managed policy> (with the parameter: rerun with "
        "--create-apigateway-account-role)",
    )


def check_redshift_subnets(ec2, region: str, subnet_ids: list[str]) -> Result:
    # "Considerations when using Amazon Redshift Serverless"
    # (https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-usage-considerations.html):
    # at least three subnets spanning three Availability Zones (US West (N. California):
    # three subnets in two AZs), and without Enhanced VPC Routing at least 3 free IP
    # addresses in each subnet. The template passes no subnets when ServingSubnetIds is
    # empty, and the workgroup then uses the default VPC.
    name = "redshift-subnets"
    need_azs = 2 if region == "us-west-1" else 3
    try:
        if subnet_ids:
            subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
            source = f"ServingSubnetIds ({len(subnet_ids)} subnets)"
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                return Result(
                    name,
                    FAIL,
                    f"no default VPC in {region} and no --subnet-ids: the Redshift Serverless workgroup needs subnets",
                    "deploy with --parameter-overrides ServingSubnetIds=subnet-a,subnet-b,subnet-c (3 AZs, one VPC; "
                    "no internet access needed) and check them with infra/preflight --subnet-ids ...",
                )
            vpc = vpcs[0]["VpcId"]
            subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
            source = f"default VPC {vpc} ({len(subnets)} subnets)"
    except Exception as e:
        return Result(name, FAIL, f"could not list subnets ({_error_code(e)}: {e})", "check --subnet-ids and ec2:Describe* permissions")
    azs = sorted({s.get("AvailabilityZoneId") or s.get("AvailabilityZone") for s in subnets})
    full = [s["SubnetId"] for s in subnets if int(s.get("AvailableIpAddressCount", 3)) < 3]
    if len(subnets) < 3 or len(azs) < need_azs:
        return Result(
            name,
            FAIL,
            f"{source} cover {len(azs)} Availability Zone(s) {azs}; Redshift Serverless needs 3 subnets in {need_azs}",
            "pass ServingSubnetIds with 3 subnets in 3 AZs of one VPC (aws ec2 create-subnet ...)",
        )
    if full:
        return Result(name, FAIL, f"{source}: fewer than 3 free IP addresses in {full}", "use subnets with free addresses")
    return Result(name, OK, f"{source} span {len(azs)} AZs: {', '.join(azs)}")


def check_redshift_serverless(rss, region: str) -> Result:
    # Regions: the "Redshift Serverless API" endpoints in the AWS General Reference.
    name = "redshift-serverless"
    try:
        rss.list_workgroups(maxResults=1)
    except Exception as e:
        code = _error_code(e)
        # No endpoint in the region: the DNS name does not resolve (EndpointConnectionError).
        if code in ("EndpointConnectionError", "UnknownEndpoint"):
            return Result(
                name,
                FAIL,
                f"Redshift Serverless has no endpoint in {region} ({code})",
                "deploy in a region that offers it (e.g. us-east-1), or use ServingTarget=existing-cluster",
            )
        return Result(name, WARN, f"could not check ({code}: {str(e)[:120]})")
    return Result(name, OK, f"available in {region}")


# ---------------------------------------------------------------------------------------
# Machine checks (the command runner is passed in, so tests can fake it)

Runner = Callable[[list[str]], "tuple[int, str]"]


def run_command(cmd: list[str]) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def find_tool(name: str, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """`name` on PATH, else in the project's venvs (infra/validate --setup, localstack/up)."""
    found = which(name)
    if found:
        return found
    for venv in [CACHE / "venv-infra", *sorted(CACHE.glob("venv-ls*"))]:
        p = venv / "bin" / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def parse_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else None


def check_sam(run: Runner, which) -> Result:
    name = "sam-cli"
    want = ".".join(map(str, MIN_SAM_VERSION))
    fix = (
        f"pip install 'aws-sam-cli>={want}', or infra/validate --setup (pinned copy) and put "
        f"{CACHE / 'venv-infra' / 'bin'} on PATH"
    )
    sam = find_tool("sam", which)
    if not sam:
        return Result(name, FAIL, "sam not found", fix)
    code, out = run([sam, "--version"])
    version = parse_version(out) if code == 0 else None
    if version is None:
        return Result(name, FAIL, f"{sam} --version failed: {out[:200]}", fix)
    shown = ".".join(map(str, version))
    if version < MIN_SAM_VERSION:
        return Result(
            name,
            FAIL,
            f"SAM CLI {shown} ({sam}) needs a beta opt-in for BuildMethod rust-cargolambda (minimum {want})",
            fix + f"; or keep {shown} and export SAM_CLI_BETA_RUST_CARGO_LAMBDA=1",
        )
    if not which("sam"):
        return Result(name, WARN, f"SAM CLI {shown} >= {want} at {sam}, not on PATH", f"export PATH={Path(sam).parent}:$PATH")
    return Result(name, OK, f"SAM CLI {shown} ({sam}) >= {want}")


def check_cargo_lambda(run: Runner, which) -> Result:
    name = "cargo-lambda"
    fix = "pip install cargo-lambda (installs zig too), or localstack/stack install; then put its bin directory on PATH"
    tool = find_tool("cargo-lambda", which)
    if not tool:
        return Result(name, FAIL, "cargo-lambda not found (sam build runs `cargo lambda build`)", fix)
    on_path = which("cargo-lambda") is not None
    code, out = run([tool, "lambda", "--version"])
    if code != 0:
        code, out = run([tool, "--version"])
    if code != 0:
        return Result(name, FAIL, f"{tool} does not run: {out[:200]}", fix)
    if not on_path:
        return Result(name, WARN, f"{out.splitlines()[0] if out else tool} found at {tool} but not on PATH", f"export PATH={Path(tool).parent}:$PATH")
    return Result(name, OK, f"{out.splitlines()[0] if out else 'cargo-lambda'} ({tool})")


def check_zig(run: Runner, which, arch: str, host: str) -> Result:
    # cargo-lambda cross-compiles with zig; the PyPI cargo-lambda brings it as the `ziglang`
    # Python package (found through `python3 -m ziglang`).
    name = "zig"
    if which("zig"):
        return Result(name, OK, f"zig on PATH ({which('zig')})")
    py = which("python3")
    if py and run([py, "-c", "import ziglang"])[0] == 0:
        return Result(name, OK, f"ziglang Python package ({py})")
    cargo_lambda = find_tool("cargo-lambda", which)
    venv_py = Path(cargo_lambda).parent / "python3" if cargo_lambda else None
    if venv_py and venv_py.is_file() and run([str(venv_py), "-c", "import ziglang"])[0] == 0:
        return Result(
            name,
            WARN,
            f"ziglang is in {venv_py.parent.parent} but that venv is not first on PATH",
            f"export PATH={venv_py.parent}:$PATH (cargo-lambda runs `python3 -m ziglang`)",
        )
    status = FAIL if arch != host else WARN
    return Result(
        name,
        status,
        f"no zig (cargo-lambda needs it to build {arch} on this {host} machine)" if status == FAIL else "no zig (not needed for a native build)",
        "pip install ziglang, or put the venv that has cargo-lambda first on PATH (its python3 has ziglang)",
    )


def check_rust_target(run: Runner, which, arch: str) -> Result:
    name = "rust-target"
    target = RUST_TARGETS[arch]
    rustup = which("rustup")
    if not rustup:
        return Result(name, FAIL, "rustup not found", "install Rust with rustup (https://rustup.rs)")
    code, out = run([rustup, "target", "list", "--installed"])
    if code != 0:
        return Result(name, FAIL, f"rustup target list --installed failed: {out[:200]}", "rustup self update")
    if target not in out.split():
        return Result(name, FAIL, f"Rust target {target} (Architecture={arch}) not installed", f"rustup target add {target}")
    return Result(name, OK, f"{target} installed (Architecture={arch})")


def samconfig_overrides(path: Path) -> dict[str, dict[str, str]]:
    """parameter_overrides of samconfig.toml's default environment, per command
    (build, deploy, global), as {parameter: value}."""
    import shlex
    import tomllib

    if not path.is_file():
        return {}
    try:
        env = tomllib.loads(path.read_text()).get("default", {})
    except tomllib.TOMLDecodeError:
        return {}
    found: dict[str, dict[str, str]] = {}
    for cmd in ("global", "build", "deploy"):
        raw = env.get(cmd, {}).get("parameters", {}).get("parameter_overrides")
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else shlex.split(raw)
        found[cmd] = dict(i.split("=", 1) for i in items if "=" in i)
    return found


def samconfig_architectures(path: Path) -> dict[str, str]:
    """Architecture=... in samconfig.toml's parameter_overrides, per command (build, deploy)."""
    return {cmd: o["Architecture"] for cmd, o in samconfig_overrides(path).items() if o.get("Architecture")}


def template_default_architecture(template: Path) -> str:
    text = template.read_text() if template.is_file() else ""
    m = re.search(r"^  Architecture:\n(?:    .*\n)*?    Default: ['\"]?(arm64|x86_64)", text, re.M)
    return m.group(1) if m else "arm64"


def choose_architecture(cli: str | None, samconfig: dict[str, str], template: Path) -> tuple[str, Result]:
    name = "architecture"
    build = samconfig.get("build", samconfig.get("global"))
    deploy = samconfig.get("deploy", samconfig.get("global"))
    default = template_default_architecture(template)
    if build and deploy and build != deploy:
        return build, Result(
            name,
            FAIL,
            f"samconfig.toml builds {build} but deploys {deploy}: the functions would not start",
            "use the same Architecture=... in [default.build.parameters] and [default.deploy.parameters] parameter_overrides",
        )
    arch = cli or deploy or build or default
    if (build or deploy) and cli and cli != (deploy or build):
        return arch, Result(
            name,
            FAIL,
            f"--architecture {cli} but samconfig.toml builds/deploys {deploy or build}",
            f"set Architecture={cli} in both parameter_overrides lines of samconfig.toml (build and deploy)",
        )
    if arch != default and not (build and deploy):
        return arch, Result(
            name,
            WARN,
            f"Architecture={arch} (template default {default})",
            f"pass --parameter-overrides Architecture={arch} to BOTH sam build and sam deploy "
            "(a build override is not written into the built template), or set it in samconfig.toml for both",
        )
    return arch, Result(name, OK, f"Architecture={arch} for build and deploy")


# ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="infra/preflight", description=__doc__.split("\n\n")[0])
    p.add_argument("--region", help="AWS region (default: the SDK's: AWS_REGION, profile)")
    p.add_argument("--architecture", choices=sorted(RUST_TARGETS), help="default: samconfig.toml, else the template's")
    p.add_argument(
        "--subnet-ids", default="", help="the ServingSubnetIds you will deploy with (default: samconfig.toml's)"
    )
    p.add_argument(
        "--serving-target",
        help="the ServingTarget you will deploy with (default: samconfig.toml's, else serverless)",
        choices=["serverless", "existing-workgroup", "existing-cluster"],
    )
    p.add_argument(
        "--create-apigateway-account-role",
        action="store_true",
        help="you will deploy with CreateApiGatewayAccountRole=true (also read from samconfig.toml)",
    )
    p.add_argument("--machine-only", action="store_true", help="skip the AWS account checks")
    p.add_argument("--template", default=str(ROOT / "template.yaml"))
    p.add_argument("--samconfig", default=str(ROOT / "samconfig.toml"))
    return p.parse_args(argv)


def machine_checks(a: argparse.Namespace, run: Runner = run_command, which=shutil.which, host: str | None = None) -> tuple[str, list[Result]]:
    import platform

    host = host or HOST_ARCH.get(platform.machine().lower(), platform.machine())
    arch, arch_result = choose_architecture(a.architecture, samconfig_architectures(Path(a.samconfig)), Path(a.template))
    return arch, [
        check_sam(run, which),
        check_cargo_lambda(run, which),
        check_zig(run, which, arch, host),
        check_rust_target(run, which, arch),
        arch_result,
    ]


def aws_checks(a: argparse.Namespace, session, deploy_overrides: dict[str, str] | None = None) -> list[Result]:
    """deploy_overrides: samconfig.toml's deploy parameter_overrides (what `sam deploy` will
    pass when the command line does not say otherwise)."""
    o = deploy_overrides or {}
    region = session.region_name
    creds = check_credentials(session.client("sts") if region else None, region)
    results = [creds]
    names = ["apigateway-role", "redshift-subnets", "redshift-serverless"]
    if creds.status != OK:
        return results + [Result(n, SKIP, "needs credentials and a region") for n in names]
    creates_role = a.create_apigateway_account_role or o.get("CreateApiGatewayAccountRole") == "true"
    results.append(check_apigateway_role(session.client("apigateway"), region, creates_role))
    target = a.serving_target or o.get("ServingTarget", "serverless")
    if target == "serverless":
        subnets = [s.strip() for s in (a.subnet_ids or o.get("ServingSubnetIds", "")).split(",") if s.strip()]
        results.append(check_redshift_subnets(session.client("ec2"), region, subnets))
        results.append(check_redshift_serverless(session.client("redshift-serverless"), region))
    else:
        results += [Result(n, SKIP, f"ServingTarget={target}") for n in names[1:]]
    return results


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    _, results = machine_checks(a)
    if a.machine_only:
        results.append(Result("aws", SKIP, "--machine-only"))
    else:
        import boto3

        deploy = samconfig_overrides(Path(a.samconfig))
        overrides = {**deploy.get("global", {}), **deploy.get("deploy", {})}
        results = aws_checks(a, boto3.session.Session(region_name=a.region), overrides) + results
    for r in results:
        print(r.line(), flush=True)
    failed = [r.name for r in results if r.status == FAIL]
    if failed:
        print(f"preflight: {len(failed)} check(s) would block the deploy: {', '.join(failed)}")
        return 1
    print("preflight: nothing blocks `sam build && sam deploy --guided`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
