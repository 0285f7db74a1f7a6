#!/usr/bin/env python3
"""Static checks of template.yaml against the project's contracts (DESIGN.md §1, §4, §7).

What cfn-lint, sam validate and checkov cannot know: the six functions and their crates,
the Kinesis event-source settings that the failure semantics rely on, the schedules, the
API routes, the lake schema, that IAM allows no wildcard actions and "*" resources only for
actions without resource-level permissions, and that every checkov skip has a reason.

    python infra/lib/check_template.py [template.yaml]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

FUNCTIONS = {
    "StreamProcessorFunction": "stream-processor",
    "LakeWriterFunction": "lake-writer",
    "BatchViewsFunction": "batch-views",
    "ViewRefresherFunction": "view-refresher",
    "QueryApiFunction": "query-api",
    "SimulatorFunction": "simulator",
}
KINESIS_CONSUMERS = ("StreamProcessorFunction", "LakeWriterFunction")
# The lake schema (lake-writer writes it; Firehose converts to it; Spectrum reads it).
LAKE_COLUMNS = [
    ("vin", "string"), ("trip_id", "string"), ("ts", "timestamp"), ("event_day", "date"),
    ("vehicle_speed", "decimal(12,3)"), ("acceleration", "decimal(10,4)"),
    ("odometer", "decimal(12,3)"), ("latitude", "double"), ("longitude", "double"),
    ("shard_id", "string"), ("sequence_number", "string"), ("raw", "string"),
]
LAKE_PARTITIONS = [("year", "int"), ("month", "int"), ("day", "int")]
# Actions that support no resource-level permissions (Service Authorization Reference).
STAR_RESOURCE_OK = {
    "redshift-data:DescribeStatement", "redshift-data:GetStatementResult",
    "redshift-data:CancelStatement", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
}
REQUIRED_ENV = {
    "StreamProcessorFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_CLUSTER", "FLEETLINE_REDSHIFT_DATABASE", "FLEETLINE_REDSHIFT_SECRET_ARN"],
    "LakeWriterFunction": ["LAKE_SINK", "FIREHOSE_STREAM"],
    "BatchViewsFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE", "FLEETLINE_REDSHIFT_SECRET_ARN"],
    "ViewRefresherFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE"],
    "QueryApiFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE"],
}
GLOBAL_ENV = ["RUST_LOG", "FLEETLINE_RAPID_ACCEL_KMH_PER_S", "STREAM_NAME", "LAKE_BUCKET", "LAKE_PREFIX", "REJECTED_PREFIX"]


def main() -> int:
    from samtranslator.yaml_helper import yaml_parse

    root = Path(__file__).resolve().parents[2]
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "template.yaml"
    t = yaml_parse(path.read_text())
    res = t["Resources"]
    errors: list[str] = []
    checked = 0

    def expect(cond: bool, msg: str) -> None:
        nonlocal checked
        checked += 1
        if not cond:
            errors.append(msg)

    glob = t.get("Globals", {}).get("Function", {})
    expect(glob.get("Runtime") == "provided.al2023", "Globals.Function.Runtime must be provided.al2023")
    expect(glob.get("Handler") == "bootstrap", "Globals.Function.Handler must be bootstrap")
    expect(glob.get("Architectures") == [{"Ref": "Architecture"}], "Globals.Function.Architectures must be [!Ref Architecture]")
    gvars = glob.get("Environment", {}).get("Variables", {})
    for var in GLOBAL_ENV:
        expect(var in gvars, f"Globals environment lacks {var}")
    expect(gvars.get("LAKE_PREFIX") == "vehicle_telematics_raw/", "LAKE_PREFIX must be vehicle_telematics_raw/")
    expect(gvars.get("REJECTED_PREFIX") == "rejected/", "REJECTED_PREFIX must be rejected/")
    expect(t["Parameters"]["Architecture"]["Default"] == "arm64", "Architecture defaults to arm64")

    for lid, name in FUNCTIONS.items():
        fn = res.get(lid)
        expect(fn is not None and fn["Type"] == "AWS::Serverless::Function", f"{lid} missing")
        if not fn:
            continue
        props, meta = fn["Properties"], fn.get("Metadata", {})
        expect(props.get("CodeUri") == f"functions/{name}", f"{lid}.CodeUri must be functions/{name}")
        expect(meta.get("BuildMethod") == "rust-cargolambda", f"{lid} BuildMethod must be rust-cargolambda")
        expect(meta.get("BuildProperties", {}).get("Binary") == name, f"{lid} BuildProperties.Binary must be {name}")
        expect("Role" in props, f"{lid} must have its own least-privilege Role")
        env = props.get("Environment", {}).get("Variables", {})
        for var in REQUIRED_ENV.get(lid, []):
            expect(var in env, f"{lid} environment lacks {var}")
        # checkov's SAM support merges Globals badly when a function overrides a global key.
        for var in env:
            expect(var not in gvars, f"{lid} overrides global variable {var}; keep each key in one place")

    for lid in KINESIS_CONSUMERS:
        events = res[lid]["Properties"].get("Events", {})
        kin = [e["Properties"] for e in events.values() if e["Type"] == "Kinesis"]
        expect(len(kin) == 1, f"{lid} needs exactly one Kinesis event")
        if kin:
            k = kin[0]
            expect(k.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], f"{lid}: ReportBatchItemFailures")
            expect(k.get("BisectBatchOnFunctionError") is True, f"{lid}: BisectBatchOnFunctionError true")
            expect(k.get("StartingPosition") == "TRIM_HORIZON", f"{lid}: StartingPosition TRIM_HORIZON")
            for p in ("MaximumRetryAttempts", "MaximumBatchingWindowInSeconds", "BatchSize"):
                expect(p in k, f"{lid}: {p}")
            dest = k.get("DestinationConfig", {}).get("OnFailure", {})
            expect(dest.get("Type") == "SQS" and dest.get("Destination") == {"Fn::GetAtt": ["OnFailureQueue", "Arn"]},
                   f"{lid}: DestinationConfig.OnFailure -> OnFailureQueue")

    def schedule(lid: str) -> object:
        ev = [e["Properties"] for e in res[lid]["Properties"].get("Events", {}).values() if e["Type"] == "Schedule"]
        return ev[0]["Schedule"] if ev else None

    expect(schedule("ViewRefresherFunction") == {"Ref": "ViewRefreshSchedule"}, "view-refresher schedule parameter")
    expect(schedule("BatchViewsFunction") == {"Ref": "BatchViewsSchedule"}, "batch-views schedule parameter")
    expect(t["Parameters"]["ViewRefreshSchedule"]["Default"] == "rate(1 minute)", "view refresh every minute")
    expect(t["Parameters"]["BatchViewsSchedule"]["Default"] == "cron(30 0 * * ? *)", "batch views daily 00:30 UTC")

    api_routes = sorted(
        (e["Properties"]["Path"], e["Properties"]["Method"].upper())
        for e in res["QueryApiFunction"]["Properties"]["Events"].values() if e["Type"] == "Api"
    )
    expect(api_routes == [("/", "GET"), ("/dashboard", "GET"), ("/v1/{proxy+}", "GET")], f"query-api routes: {api_routes}")

    table = res["LakeTable"]["Properties"]["TableInput"]
    cols = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    expect(cols == LAKE_COLUMNS, f"lake columns differ from the contract: {cols}")
    parts = [(c["Name"], c["Type"]) for c in table["PartitionKeys"]]
    expect(parts == LAKE_PARTITIONS, f"lake partitions: {parts}")
    expect(table["Name"] == "vehicle_telematics_raw", "lake table name")

    expect(res["TelemetryStream"]["Properties"]["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
           "stream encrypted with aws/kinesis")
    expect(t["Parameters"]["StreamName"]["Default"] == "vehicle-telemetry", "stream name default")
    rule = res["TelemetryTopicRule"]["Properties"]["TopicRulePayload"]
    expect(rule["Sql"] == {"Ref": "SQLForData"}, "topic rule SQL from SQLForData")
    expect(rule["Actions"][0]["Kinesis"]["PartitionKey"] == "${VIN}", "topic rule partition key ${VIN}")
    expect(t["Parameters"]["SQLForData"]["Default"] == "SELECT * FROM 'connectedvehicle/telemetry'", "SQLForData default")
    for p in ("DatabaseName", "NumberOfNodes", "NodeType", "MasterUserName", "MasterUserPassword", "InboundTraffic", "PortNumber"):
        expect(p in t["Parameters"], f"seed parameter {p}")
    expect(t["Parameters"]["MasterUserPassword"].get("NoEcho") is True, "MasterUserPassword NoEcho")

    # IAM: no wildcard actions in Allow statements; "*" resources only where unavoidable.
    def statements(node):
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                yield node
            for v in node.values():
                yield from statements(v)
        elif isinstance(node, list):
            for v in node:
                yield from statements(v)

    for lid, r in res.items():
        for st in statements(r.get("Properties", {})):
            if st["Effect"] != "Allow":
                continue
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for a in actions:
                expect(isinstance(a, str) and "*" not in a, f"{lid}: wildcard action {a}")
            resources = st.get("Resource", [])
            resources = resources if isinstance(resources, list) else [resources]
            if "*" in resources:
                bad = [a for a in actions if a not in STAR_RESOURCE_OK]
                expect(not bad, f"{lid}: Resource '*' for actions with resource-level permissions: {bad}")

    for lid, r in res.items():
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", []):
            expect(bool(re.fullmatch(r"CKV2?_AWS_\d+", str(skip.get("id", "")))), f"{lid}: bad checkov skip id {skip}")
            expect(len(str(skip.get("comment", "")).strip()) >= 20, f"{lid}: checkov skip {skip.get('id')} needs a reason")

    for out in ("ApiUrl", "ApiKeyId", "LakeBucketName", "StreamName", "RedshiftWorkgroup"):
        expect(out in t.get("Outputs", {}), f"output {out}")

    for e in errors:
        print(f"[template-contract] FAIL {e}")
    print(f"[template-contract] {checked - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
