#!/usr/bin/env python3
"""Static checks of template.yaml against the project's contracts (docs/design.md §1, §4, §7).

What cfn-lint, sam validate and checkov cannot know: the functions (listed by
infra/lib/functions.py, checked here against the full parse) and their crates,
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

from functions import functions, local_functions  # infra/lib/functions.py

# Start only after the WarehouseSchema custom resource succeeded (their event source
# mappings, schedules and rule reference them, so they are created after them).
NEEDS_SCHEMA = ("StreamProcessorFunction", "LakeWriterFunction", "BatchViewsFunction",
                "ViewRefresherFunction", "TelemetryTopicRule")
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
    # The RedshiftDbRoles tag lookup behind IAM sign-in (Resource Groups Tagging API).
    "tag:GetResources", "tag:GetTagKeys",
    # Streaming ingestion's role (SpeedPath=streaming-ingestion): ListStreams lists the account's streams.
    "kinesis:ListStreams",
}
REQUIRED_ENV = {
    "StreamProcessorFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_CLUSTER", "FLEETLINE_REDSHIFT_DATABASE", "FLEETLINE_REDSHIFT_SECRET_ARN"],
    "LakeWriterFunction": ["LAKE_SINK", "FIREHOSE_STREAM"],
    "BatchViewsFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE", "FLEETLINE_REDSHIFT_SECRET_ARN"],
    "ViewRefresherFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE"],
    "QueryApiFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_DATABASE"],
    "SchemaMigratorFunction": ["FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_CLUSTER", "FLEETLINE_REDSHIFT_DATABASE", "FLEETLINE_REDSHIFT_SECRET_ARN", "FLEETLINE_REDSHIFT_TIMEOUT_SECS"],
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

    # The one function list (infra/lib/functions.py reads the template's layout) must be what
    # the full parse finds, and every function's crate a workspace member.
    listed = functions(path)
    parsed = {lid for lid, r in res.items() if r.get("Type") == "AWS::Serverless::Function"}
    expect(set(listed) == parsed, f"infra/lib/functions.py lists {sorted(listed)}, the template has {sorted(parsed)}")
    members = (root / "Cargo.toml").read_text()
    for name in listed.values():
        expect(f'"functions/{name}"' in members, f"functions/{name} is not a workspace member (Cargo.toml)")
    # lambda-host's default --functions (used when it runs alone) must be the local list.
    host = re.search(r'const FLEETLINE_FUNCTIONS: &str =\s*"([^"]*)"',
                     (root / "localstack/lambda-host/src/main.rs").read_text())
    expect(host is not None and host[1].split(",") == local_functions(path),
           f"lambda-host's FLEETLINE_FUNCTIONS must be {','.join(local_functions(path))}")
    for lid in {*NEEDS_SCHEMA, *KINESIS_CONSUMERS, *REQUIRED_ENV} - {"TelemetryTopicRule"}:
        expect(lid in listed, f"{lid} is named in the checks but is not a function in the template")

    for lid, name in listed.items():
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

    # The schema custom resource: infra/sql at deploy time, before anything consumes.
    schema = res.get("WarehouseSchema", {})
    sprops = schema.get("Properties", {})
    expect(schema.get("Type") == "Custom::WarehouseSchema", "WarehouseSchema custom resource missing")
    expect(sprops.get("ServiceToken") == {"Ref": "SchemaMigratorFunction.Alias"}, "WarehouseSchema.ServiceToken: the migrator's alias")
    expect(sprops.get("CodeVersion") == {"Ref": "SchemaMigratorFunction.Version"}, "WarehouseSchema.CodeVersion follows the code")
    for key in ("LakeBucket", "GlueDatabase", "SpectrumRole"):
        expect(key in sprops, f"WarehouseSchema.{key} missing")
    # The speed path's SQL (infra/sql/15_speed_streaming.sql) needs these placeholders.
    for var in ("SPEED_PATH", "STREAM_NAME", "STREAMING_IAM_ROLE"):
        expect(var in sprops.get("Variables", {}), f"WarehouseSchema.Variables.{var} missing")
    migrator = res.get("SchemaMigratorFunction", {}).get("Properties", {})
    expect(migrator.get("Timeout") == 900, "SchemaMigratorFunction.Timeout 900 (a cold workgroup)")
    expect(int(migrator.get("Environment", {}).get("Variables", {}).get("FLEETLINE_REDSHIFT_TIMEOUT_SECS", "0")) + 30 <= 900,
           "schema-migrator's statement wait leaves time to answer CloudFormation")
    for lid in NEEDS_SCHEMA:
        deps = res.get(lid, {}).get("DependsOn", [])
        deps = [deps] if isinstance(deps, str) else deps
        expect("WarehouseSchema" in deps, f"{lid} must DependsOn WarehouseSchema")

    def schedule(lid: str) -> object:
        ev = [e["Properties"] for e in res[lid]["Properties"].get("Events", {}).values() if e["Type"] == "Schedule"]
        return ev[0]["Schedule"] if ev else None

    expect(schedule("ViewRefresherFunction") == {"Ref": "ViewRefreshSchedule"}, "view-refresher schedule parameter")
    expect(schedule("BatchViewsFunction") == {"Ref": "BatchViewsSchedule"}, "batch-views schedule parameter")
    expect(t["Parameters"]["ViewRefreshSchedule"]["Default"] == "rate(15 minutes)", "view refresh every 15 minutes (cost)")
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
    # The seed's speed-cluster parameters went with the speed cluster (one warehouse).
    for p in ("EnableSpeedCluster", "NumberOfNodes", "NodeType", "MasterUserPassword", "InboundTraffic"):
        expect(p not in t["Parameters"], f"speed-cluster parameter {p} is gone")

    # IAM: no wildcard actions in Allow statements; "*" resources only where unavoidable.
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

    # On the template `sam deploy` creates: every event source mapping, schedule rule and the
    # IoT rule is ordered after WarehouseSchema (SAM copies a function's DependsOn only to the
    # generated AWS::Lambda::Function; the generated resources follow through their Ref/GetAtt).
    cfn = transformed_resources(t)
    starters = [lid for lid, r in cfn.items()
                if r["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Events::Rule", "AWS::IoT::TopicRule")]
    expect(len(starters) >= 5, f"expected the ESMs, schedules and IoT rule, found {starters}")
    for lid in starters:
        expect("WarehouseSchema" in dependencies(cfn, lid), f"{lid} can start before WarehouseSchema succeeded")

    for e in errors:
        print(f"[template-contract] FAIL {e}")
    print(f"[template-contract] {checked - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


def statements(node):
    """Every IAM policy statement (a dict with Effect and Action) anywhere below node."""
    if isinstance(node, dict):
        if "Effect" in node and "Action" in node:
            yield node
        for v in node.values():
            yield from statements(v)
    elif isinstance(node, list):
        for v in node:
            yield from statements(v)


def transformed_resources(sam_template: dict) -> dict:
    """Resources of the SAM-transformed template (code locations stubbed)."""
    import copy
    import logging
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    t = copy.deepcopy(sam_template)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    return transform(t, {}, NoManagedPolicies())["Resources"]


def dependencies(resources: dict, lid: str) -> set[str]:
    """Every resource `lid` is ordered after: DependsOn, Ref and Fn::GetAtt, transitively."""
    def direct(node, out: set[str]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Ref" and isinstance(v, str):
                    out.add(v.split(".")[0])
                elif k == "Fn::GetAtt":
                    out.add((v[0] if isinstance(v, list) else str(v).split(".")[0]))
                elif k == "Fn::Sub":
                    text = v[0] if isinstance(v, list) else v
                    out.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", str(text)))
                    if isinstance(v, list):
                        direct(v[1:], out)
                else:
                    direct(v, out)
        elif isinstance(node, list):
            for v in node:
                direct(v, out)

    seen: set[str] = set()
    todo = [lid]
    while todo:
        r = resources.get(todo.pop())
        if r is None:
            continue
        deps = r.get("DependsOn", [])
        found = set([deps] if isinstance(deps, str) else deps)
        direct(r.get("Properties", {}), found)
        for d in found - seen:
            if d in resources:
                seen.add(d)
                todo.append(d)
    return seen


if __name__ == "__main__":
    sys.exit(main())
