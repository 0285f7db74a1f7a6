#!/usr/bin/env python3
"""Share the speed cluster's speed schema with the serving workgroup (AWS only).

Only for stacks deployed with EnableSpeedCluster=true. Looks up both namespaces, renders
infra/sql/optional/datashare/*.sql ({{CONSUMER_NAMESPACE}}, {{PRODUCER_NAMESPACE}}) and
applies the producer file on the speed cluster and the consumer file on the serving
workgroup through localstack/apply-sql --aws.

    infra/datashare --stack-name fleetline [--region us-east-1] [--dry-run]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "infra" / "sql" / "optional" / "datashare"


def render(src: Path, dest_dir: Path, values: dict[str, str]) -> Path:
    text = src.read_text()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", v)
    if "{{" in text:
        raise SystemExit(f"datashare: unrendered placeholder left in {src.name}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / src.name
    out.write_text(text)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack-name", required=True)
    ap.add_argument("--region")
    ap.add_argument("--dry-run", action="store_true", help="print the rendered SQL and the commands only")
    args = ap.parse_args()

    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=args.region)
    cfg = Config(ignore_configured_endpoint_urls=True)
    stack = session.client("cloudformation", config=cfg).describe_stacks(StackName=args.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    cluster = outputs.get("SpeedClusterId")
    workgroup = outputs.get("RedshiftWorkgroup")
    if not cluster:
        print("datashare: the stack has no speed cluster (deploy with EnableSpeedCluster=true)", file=sys.stderr)
        return 2
    if not workgroup:
        print("datashare: the stack has no serving workgroup output (ServingTarget=serverless)", file=sys.stderr)
        return 2

    desc = session.client("redshift", config=cfg).describe_clusters(ClusterIdentifier=cluster)["Clusters"][0]
    producer_ns = desc["ClusterNamespaceArn"].rsplit(":", 1)[-1]
    rss = session.client("redshift-serverless", config=cfg)
    wg = rss.get_workgroup(workgroupName=workgroup)["workgroup"]
    consumer_ns = rss.get_namespace(namespaceName=wg["namespaceName"])["namespace"]["namespaceId"]
    print(f"datashare: producer {cluster} (namespace {producer_ns}) -> consumer {workgroup} (namespace {consumer_ns})")

    values = {"CONSUMER_NAMESPACE": consumer_ns, "PRODUCER_NAMESPACE": producer_ns}
    apply_sql = str(ROOT / "localstack" / "apply-sql")
    region = ["--region", args.region] if args.region else []
    with tempfile.TemporaryDirectory(prefix="fleetline-datashare-") as tmp:
        producer = render(SQL_DIR / "90_datashare_producer.sql", Path(tmp) / "producer", values)
        consumer = render(SQL_DIR / "91_datashare_consumer.sql", Path(tmp) / "consumer", values)
        commands = [
            [apply_sql, "--aws", *region, "--dir", str(producer.parent), "--cluster-identifier", cluster,
             "--database", params.get("DatabaseName", "dev"), "--db-user", params.get("MasterUserName", "speedadmin")],
            [apply_sql, "--aws", *region, "--dir", str(consumer.parent), "--workgroup-name", workgroup,
             "--database", params.get("ServingDatabase", "dev"), "--secret-arn", outputs["RedshiftSecretArn"]],
        ]
        for cmd in commands:
            print("datashare: " + " ".join(cmd))
            if args.dry_run:
                print(Path(cmd[cmd.index("--dir") + 1]).joinpath(
                    producer.name if "--cluster-identifier" in cmd else consumer.name).read_text())
                continue
            if subprocess.run(cmd).returncode != 0:
                print("datashare: FAILED", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
