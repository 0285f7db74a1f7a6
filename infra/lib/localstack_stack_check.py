#!/usr/bin/env python3
"""Deploy template.yaml's deployable part into LocalStack CloudFormation, check it, delete it.

LocalStack (community, no Docker) cannot run Lambda functions, Redshift, Redshift Serverless
or IoT Core, so this check:
  1. translates the SAM template with samtranslator (what CloudFormation's transform does),
     with parameter overrides that give every named resource a unique name;
  2. drops Lambda, Redshift, Redshift Serverless, IoT and EC2 resources, and replaces every
     reference to a dropped resource with a placeholder (a fake ARN or name), so that what
     uses them (event rules, API integration, alarms, IAM policies) still deploys;
  3. creates the stack under a unique name, waits for CREATE_COMPLETE;
  4. checks that the stream, bucket (+ policy, lifecycle, public access block), queue, Glue
     database/table (when LocalStack supports them), event rules, REST API with its stage,
     API key and usage plan, alarms and the alarm topic exist;
  5. deletes the stack (and the test bucket) whatever happened.

Run with the tools venv's python (boto3 and samtranslator come with aws-sam-cli):
    python infra/lib/localstack_stack_check.py [--template template.yaml] [--keep]
Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import sys
import time
import uuid
from pathlib import Path

DROPPED_PREFIXES = (
    "AWS::Lambda::",
    "AWS::Redshift::",
    "AWS::RedshiftServerless::",
    "AWS::IoT::",
    "AWS::EC2::",
    # The schema custom resource's function is dropped with AWS::Lambda::*; locally
    # localstack/up applies the same SQL with the same code (schema-migrator apply).
    "Custom::",
)
ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"))
REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))


def log(msg: str) -> None:
    print(f"[localstack-check] {msg}", flush=True)


class NoManagedPolicies:
    """samtranslator asks for AWS managed policy ARNs only for SAM policy templates; the
    template gives every function its own role, so nothing is ever looked up."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template_path: Path, params: dict[str, str]) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    # samtranslator warns about its own feature-toggle config on every Api; not ours to fix.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse(template_path.read_text())
    # Local CodeUri paths are replaced by `sam package`; any S3 URI will do here because the
    # functions are dropped anyway.
    for res in sam.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://fleetline-placeholder/code.zip"
    return transform(sam, params, NoManagedPolicies())


def placeholder(name: str, attr: str | None = None) -> str:
    if attr in (None, "Arn") or (attr and attr.endswith("Arn")):
        if attr is None:
            return f"fleetline-placeholder-{name.lower()}"
        return f"arn:aws:lambda:{REGION}:000000000000:function:fleetline-placeholder-{name.lower()}"
    return f"fleetline-placeholder-{name.lower()}-{attr.lower()}"


def substitute(node, dropped: set[str]):
    """Replace Ref/GetAtt/Sub references to dropped resources by placeholders."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, val), = node.items()
            if key == "Ref" and isinstance(val, str) and val in dropped:
                return placeholder(val)
            if key == "Fn::GetAtt":
                parts = val.split(".", 1) if isinstance(val, str) else list(val)
                if parts and parts[0] in dropped:
                    return placeholder(parts[0], parts[1] if len(parts) > 1 else "Arn")
            if key == "Fn::Sub":
                text, variables = (val, {}) if isinstance(val, str) else (val[0], val[1])

                def repl(m: re.Match) -> str:
                    ref = m.group(1)
                    base, _, attr = ref.partition(".")
                    if base in dropped and base not in variables:
                        return placeholder(base, attr or None)
                    return m.group(0)

                text = re.sub(r"\$\{([A-Za-z0-9_.:]+)\}", repl, text)
                variables = {k: substitute(v, dropped) for k, v in variables.items()}
                return {"Fn::Sub": [text, variables] if variables else text}
        return {k: substitute(v, dropped) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, dropped) for v in node]
    return node


def evaluate_conditions(cfn: dict, params: dict[str, str]) -> dict[str, bool]:
    """Evaluate the template's Conditions for the given parameters (defaults otherwise)."""
    values = {k: str(v.get("Default", "")) for k, v in cfn.get("Parameters", {}).items()}
    values.update(params)
    conds = cfn.get("Conditions", {})
    done: dict[str, bool] = {}

    def val(node):
        if isinstance(node, dict) and len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return values.get(v, f"<{v}>")
            if k == "Fn::Join":
                parts = [val(p) for p in v[1]] if isinstance(v[1], list) else val(v[1])
                if isinstance(parts, str):
                    parts = parts.split(",")
                return v[0].join(str(p) for p in parts)
            return truth(node)
        return str(node)

    def truth(node) -> bool:
        (k, v), = node.items()
        if k == "Fn::Equals":
            return str(val(v[0])) == str(val(v[1]))
        if k == "Fn::Not":
            return not truth(v[0])
        if k == "Fn::And":
            return all(truth(x) for x in v)
        if k == "Fn::Or":
            return any(truth(x) for x in v)
        if k == "Condition":
            return cond(v)
        raise ValueError(f"unsupported condition function {k}")

    def cond(name: str) -> bool:
        if name not in done:
            done[name] = truth(conds[name])
        return done[name]

    return {name: cond(name) for name in conds}


def localize(cfn: dict, params: dict[str, str]) -> tuple[dict, list[str]]:
    """Drop what LocalStack cannot deploy here, and resources whose Condition is false
    (LocalStack 4.9 rejects references between two such resources); returns the new
    template and the dropped ids."""
    cfn = copy.deepcopy(cfn)
    resources = cfn["Resources"]
    conditions = evaluate_conditions(cfn, params)
    for lid in [lid for lid, r in resources.items() if r.get("Condition") and not conditions[r["Condition"]]]:
        del resources[lid]
    dropped = {lid for lid, r in resources.items() if r["Type"].startswith(DROPPED_PREFIXES)}
    for lid in dropped:
        del resources[lid]
    for lid, res in list(resources.items()):
        deps = res.get("DependsOn")
        if isinstance(deps, str):
            deps = [deps]
        if deps:
            deps = [d for d in deps if d not in dropped]
            if deps:
                res["DependsOn"] = deps
            else:
                res.pop("DependsOn")
        # A test stack must leave nothing behind.
        res.pop("DeletionPolicy", None)
        res.pop("UpdateReplacePolicy", None)
        resources[lid] = substitute(res, dropped)
    outputs = cfn.get("Outputs", {})
    for name in list(outputs):
        if json.dumps(outputs[name]).find('"') >= 0:
            outputs[name] = substitute(outputs[name], dropped)
    return cfn, sorted(dropped)


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, name: str, fn) -> None:
        try:
            detail = fn()
            self.passed += 1
            log(f"ok   {name}" + (f" ({detail})" if detail else ""))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            self.failed.append(name)
            log(f"FAIL {name}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--template", default=str(root / "template.yaml"))
    ap.add_argument("--keep", action="store_true", help="leave the stack in place (debugging)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds to wait for the stack")
    ap.add_argument("--lake-sink", default="firehose", choices=["s3", "firehose"],
                    help="LakeSink of the test stack (firehose also deploys the delivery stream)")
    ap.add_argument("--speed-path", default="streaming-ingestion", choices=["lambda", "streaming-ingestion"],
                    help="SpeedPath of the test stack (streaming-ingestion also deploys its Redshift role)")
    ap.add_argument("--dump", help="write the localized template to this file")
    args = ap.parse_args()

    import boto3
    from botocore.config import Config

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    cfg = Config(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=60)

    def client(svc: str):
        return boto3.client(svc, endpoint_url=ENDPOINT, region_name=REGION, config=cfg)

    suffix = uuid.uuid4().hex[:8]
    stack = f"fltest-{suffix}"
    params = {
        "StreamName": f"fltest-telemetry-{suffix}",
        "LakeBucketName": f"fltest-lake-{suffix}",
        "GlueDatabaseName": f"fltest_{suffix}",
        "ServingName": f"fltest-{suffix}",
        "LakeSink": args.lake_sink,
        "SpeedPath": args.speed_path,
        "EnableIotRule": "true",
        "AlarmEmail": "ops@example.com",
        "StreamMode": "PROVISIONED",
        "ShardCount": "2",
        # The opt-in account-level logging role (retained on delete; removed below).
        "CreateApiGatewayAccountRole": "true",
    }
    log(f"translating {args.template} (SAM transform, parameters {params})")
    cfn = translate(Path(args.template), params)
    local, dropped = localize(cfn, params)
    log(f"left out (not runnable in LocalStack here): {', '.join(dropped)}")
    # Compact: CreateStack takes at most 51,200 bytes inline (larger bodies go through S3,
    # as `sam deploy` does with resolve_s3).
    body = json.dumps(local, separators=(",", ":"))
    if args.dump:
        Path(args.dump).write_text(json.dumps(local, indent=1))

    try:
        client("sts").get_caller_identity()
    except Exception as e:  # noqa: BLE001
        log(f"LocalStack is not reachable at {ENDPOINT}: {e} (start it with localstack/up)")
        return 2

    cf = client("cloudformation")
    log(f"creating stack {stack}")
    checks = Checks()
    bucket = params["LakeBucketName"]
    try:
        # Inside the try: LocalStack may keep a stack record even when it rejects the template.
        source = {"TemplateBody": body}
        if len(body.encode()) > 51200:
            s3 = client("s3")
            s3.create_bucket(Bucket=f"{stack}-cfn")
            s3.put_object(Bucket=f"{stack}-cfn", Key="template.json", Body=body.encode())
            source = {"TemplateURL": f"{ENDPOINT}/{stack}-cfn/template.json"}
        cf.create_stack(
            StackName=stack,
            **source,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        deadline = time.time() + args.timeout
        status = "CREATE_IN_PROGRESS"
        while time.time() < deadline:
            status = cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
            if not status.endswith("IN_PROGRESS"):
                break
            time.sleep(2)
        log(f"stack status: {status}")
        if status != "CREATE_COMPLETE":
            for ev in cf.describe_stack_events(StackName=stack)["StackEvents"]:
                if "FAILED" in ev.get("ResourceStatus", ""):
                    log(f"  {ev['LogicalResourceId']} ({ev['ResourceType']}): {ev.get('ResourceStatusReason')}")
            checks.failed.append(f"stack {status}")
            return 1  # the finally block still deletes the stack

        res = {
            r["LogicalResourceId"]: r
            for r in cf.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        }
        phys = {k: v.get("PhysicalResourceId") for k, v in res.items()}
        not_complete = [k for k, v in res.items() if v["ResourceStatus"] != "CREATE_COMPLETE"]
        checks.check("every resource CREATE_COMPLETE", lambda: (_ for _ in ()).throw(
            AssertionError(not_complete)) if not_complete else f"{len(res)} resources")

        kinesis, s3, sqs = client("kinesis"), client("s3"), client("sqs")

        def stream():
            d = kinesis.describe_stream_summary(StreamName=params["StreamName"])["StreamDescriptionSummary"]
            assert d["StreamStatus"] == "ACTIVE", d["StreamStatus"]
            assert d["OpenShardCount"] == 2, d["OpenShardCount"]
            return f"{d['StreamName']}, {d['OpenShardCount']} shards, {d.get('EncryptionType')}"

        def lake_bucket():
            s3.head_bucket(Bucket=bucket)
            assert phys["LakeBucket"] == bucket, phys["LakeBucket"]
            pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            assert all(pab.values()), pab
            policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
            assert any(st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                       for st in policy["Statement"]), policy
            # LocalStack 4.9's CloudFormation bucket provider does not apply
            # LifecycleConfiguration, so the rule is checked in the deployed template.
            lc = local["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
            rejected = [r for r in lc if r.get("Id") == "expire-rejected"]
            assert rejected and rejected[0].get("Prefix") == "rejected/", lc
            try:
                live = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
                note = f"{len(live)} lifecycle rules live"
            except s3.exceptions.ClientError as e:
                if "NoSuchLifecycleConfiguration" not in str(e):
                    raise
                note = "lifecycle rule in template (LocalStack CFN does not apply it)"
            return f"{bucket}, {note}"

        def queue():
            url = sqs.get_queue_url(QueueName=f"{stack}-on-failure")["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return f"{url.rsplit('/', 1)[-1]}, SSE={attrs.get('SqsManagedSseEnabled', '?')}"

        def glue():
            if "LakeDatabase" not in res:
                raise AssertionError("LakeDatabase missing from the stack")
            g = client("glue")
            try:
                t = g.get_table(DatabaseName=params["GlueDatabaseName"], Name="vehicle_telematics_raw")["Table"]
            except Exception as e:  # noqa: BLE001
                if "not yet implemented" in str(e) or "InternalFailure" in str(e) or "501" in str(e):
                    return "Glue API not in LocalStack community: resources accepted by CloudFormation only"
                raise
            cols = [c["Name"] for c in t["StorageDescriptor"]["Columns"]]
            parts = [c["Name"] for c in t.get("PartitionKeys", [])]
            assert parts == ["year", "month", "day"], parts
            return f"{len(cols)} columns, partitions {parts}"

        def rules():
            # Every schedule of the template (its defaults are pinned by test_template.py).
            want = []
            for r in local["Resources"].values():
                expr = r["Properties"].get("ScheduleExpression") if r["Type"] == "AWS::Events::Rule" else None
                if isinstance(expr, dict) and "Ref" in expr:
                    expr = params.get(expr["Ref"], str(local["Parameters"][expr["Ref"]].get("Default")))
                if expr:
                    want.append(expr)
            ev = client("events")
            names = [phys[k] for k, v in res.items() if v["ResourceType"] == "AWS::Events::Rule"]
            exprs = sorted(ev.describe_rule(Name=n)["ScheduleExpression"] for n in names)
            assert exprs == sorted(want) and "rate(15 minutes)" in exprs, (exprs, want)
            return ", ".join(exprs)

        def api():
            apigw = client("apigateway")
            api_id = phys["Api"]
            stages = [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]]
            assert "api" in stages, stages
            paths = sorted(r["path"] for r in apigw.get_resources(restApiId=api_id, limit=500)["items"])
            for p in ("/", "/dashboard", "/v1/{proxy+}"):
                assert p in paths, paths
            key = apigw.get_api_key(apiKey=phys["ApiApiKey"], includeValue=True)
            assert key.get("value"), "API key has no value"
            plans = [p for p in apigw.get_usage_plans()["items"] if p["id"] == phys["ApiUsagePlan"]]
            assert plans, "usage plan missing"
            return f"{api_id}, stages {stages}, paths {paths}"

        def api_account():
            role = phys["ApiGatewayCloudWatchRole"]
            arn = client("iam").get_role(RoleName=role)["Role"]["Arn"]
            got = client("apigateway").get_account().get("cloudwatchRoleArn")
            assert got == arn, (got, arn)
            return f"cloudwatchRoleArn = {arn}"

        def alarms():
            cw = client("cloudwatch")
            names = [phys[k] for k, v in res.items() if v["ResourceType"] == "AWS::CloudWatch::Alarm"]
            found = {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
            found |= {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"]).get("MetricAlarms", [])}
            assert len(names) == 9, names
            return f"{len(names)} alarms ({len(found)} listed by CloudWatch)"

        def topic():
            sns = client("sns")
            subs = sns.list_subscriptions_by_topic(TopicArn=phys["AlarmTopic"])["Subscriptions"]
            assert any(s["Protocol"] == "email" for s in subs), subs
            return phys["AlarmTopic"]

        def firehose():
            if args.lake_sink != "firehose":
                assert "LakeDeliveryStream" not in res, "delivery stream created although LakeSink=s3"
                return "not created (LakeSink=s3), as intended"
            fh = client("firehose")
            d = fh.describe_delivery_stream(DeliveryStreamName=f"{stack}-lake")["DeliveryStreamDescription"]
            return f"{d['DeliveryStreamName']} {d['DeliveryStreamStatus']}"

        def streaming_role():
            if args.speed_path != "streaming-ingestion":
                assert "StreamingIngestionRole" not in res, "streaming role created although SpeedPath=lambda"
                return "not created (SpeedPath=lambda), as intended"
            iam = client("iam")
            role = iam.get_role(RoleName=phys["StreamingIngestionRole"])["Role"]
            trust = role["AssumeRolePolicyDocument"]
            trust = json.loads(trust) if isinstance(trust, str) else trust
            services = {s for st in trust["Statement"] for s in st["Principal"]["Service"]}
            assert services == {"redshift.amazonaws.com", "redshift-serverless.amazonaws.com"}, services
            names = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
            doc = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=names[0])["PolicyDocument"]
            doc = json.loads(doc) if isinstance(doc, str) else doc
            stream_arn = kinesis.describe_stream_summary(StreamName=params["StreamName"])["StreamDescriptionSummary"]["StreamARN"]
            scoped = [st for st in doc["Statement"] if st["Resource"] == stream_arn]
            assert scoped, doc
            return f"{role['RoleName']}: Kinesis read on {stream_arn}"

        def secret():
            sm = client("secretsmanager")
            v = json.loads(sm.get_secret_value(SecretId=phys["ServingAdminSecret"])["SecretString"])
            assert v.get("username") and len(v.get("password", "")) == 32, sorted(v)
            return "username + generated password"

        checks.check("Kinesis stream", stream)
        checks.check("lake bucket (public access block, lifecycle, TLS-only policy)", lake_bucket)
        checks.check("on-failure queue", queue)
        checks.check("Glue database and table", glue)
        checks.check("EventBridge schedule rules", rules)
        checks.check("REST API, stage, API key, usage plan", api)
        checks.check("API Gateway account CloudWatch role (CreateApiGatewayAccountRole)", api_account)
        checks.check("CloudWatch alarms", alarms)
        checks.check("alarm topic with e-mail subscription", topic)
        checks.check("Firehose delivery stream", firehose)
        checks.check("serving admin secret", secret)
        checks.check("streaming ingestion role (SpeedPath)", streaming_role)
    finally:
        if args.keep:
            log(f"--keep: stack {stack} left in place")
        else:
            log(f"deleting stack {stack}")
            try:
                try:
                    s3 = client("s3")
                    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                        objs = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                                for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                        if objs:
                            s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
                except Exception:  # noqa: BLE001 - the bucket may not exist
                    pass
                try:  # the template bucket, when the body went through S3
                    s3.delete_object(Bucket=f"{stack}-cfn", Key="template.json")
                    s3.delete_bucket(Bucket=f"{stack}-cfn")
                except Exception:  # noqa: BLE001 - not created
                    pass
                cf.delete_stack(StackName=stack)
                deadline = time.time() + args.timeout
                while time.time() < deadline:
                    try:
                        st = cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
                    except Exception:  # noqa: BLE001 - gone
                        st = "DELETE_COMPLETE"
                    if st in ("DELETE_COMPLETE", "DELETE_FAILED"):
                        break
                    time.sleep(2)
                log(f"stack {stack}: {st}")
                if st != "DELETE_COMPLETE":
                    checks.failed.append("stack deletion")
                # DeletionPolicy: Retain kept the API Gateway logging role; not ours to keep here.
                try:
                    iam = client("iam")
                    for r in iam.list_roles()["Roles"]:
                        if r["RoleName"].startswith(f"{stack}-ApiGatewayCloudWatchRole"):
                            for pol in iam.list_attached_role_policies(RoleName=r["RoleName"])["AttachedPolicies"]:
                                iam.detach_role_policy(RoleName=r["RoleName"], PolicyArn=pol["PolicyArn"])
                            iam.delete_role(RoleName=r["RoleName"])
                except Exception as e:  # noqa: BLE001
                    log(f"could not remove the retained API Gateway role: {e}")
            except Exception as e:  # noqa: BLE001
                log(f"could not delete stack {stack}: {e}")
                checks.failed.append("stack deletion")
        log(f"{checks.passed} passed, {len(checks.failed)} failed" +
            (f": {', '.join(checks.failed)}" if checks.failed else ""))
    return 0 if not checks.failed else 1


if __name__ == "__main__":
    sys.exit(main())
