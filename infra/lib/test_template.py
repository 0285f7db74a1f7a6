#!/usr/bin/env python3
"""Tests that pin the deploy fixes of docs/aws-audit.md on the SAM-transformed template.

Each test names the audit item it guards; reverting the fix makes it fail. The template is
translated with the SAM translator the project pins (as `sam deploy` would), for the
parameter sets that matter, and conditions are evaluated the way CloudFormation does.

    python infra/lib/test_template.py [-v]        (infra/validate runs it)
"""

from __future__ import annotations

import copy
import logging
import os
import re
import tomllib
import unittest
from functools import lru_cache
from pathlib import Path

from check_template import statements  # infra/lib/check_template.py

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(os.environ.get("FLEETLINE_TEMPLATE", ROOT / "template.yaml"))
CAPACITIES = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 256, 512]
DATA_API_FUNCTIONS = ["StreamProcessorFunction", "BatchViewsFunction", "ViewRefresherFunction", "QueryApiFunction"]


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


@lru_cache(maxsize=None)
def sam() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


@lru_cache(maxsize=None)
def transformed(**params: str) -> dict:
    """The CloudFormation template `sam deploy` would create for these parameter values."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    from samtranslator.translator.transform import transform

    t = copy.deepcopy(sam())
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/code.zip"
    return transform(t, dict(params), _NoManagedPolicies())


class Evaluator:
    """Parameter and condition evaluation (Ref of parameters, Fn::If/Equals/Not/And/Or)."""

    def __init__(self, template: dict, **overrides: str) -> None:
        self.t = template
        self.params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.params.update(overrides)

    def param(self, name: str):
        if self.t["Parameters"][name]["Type"] == "CommaDelimitedList":
            return self.params[name].split(",")
        return self.params[name]

    def condition(self, name: str) -> bool:
        return bool(self.value(self.t["Conditions"][name]))

    def value(self, node):
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict) or len(node) != 1:
            return node
        (k, v), = node.items()
        if k == "Ref" and v in self.t["Parameters"]:
            return self.param(v)
        if k == "Condition":
            return self.condition(v)
        if k == "Fn::If":
            return self.value(v[1] if self.condition(v[0]) else v[2])
        if k == "Fn::Equals":
            a, b = (self.value(x) for x in v)
            return str(a) == str(b)
        if k == "Fn::Not":
            return not self.value(v[0])
        if k == "Fn::And":
            return all(self.value(x) for x in v)
        if k == "Fn::Or":
            return any(self.value(x) for x in v)
        if k == "Fn::Join":
            return v[0].join(str(x) for x in self.value(v[1]))
        if k == "Fn::Contains":  # Rules
            return str(self.value(v[1])) in [str(x) for x in self.value(v[0])]
        if k == "Fn::EachMemberEquals":  # Rules
            return all(str(x) == str(v[1]) for x in self.value(v[0]))
        return node

    def rules_pass(self) -> list[str]:
        """The AssertDescriptions of every failing rule assertion."""
        failed = []
        for rule in self.t.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            for a in rule["Assertions"]:
                if not self.value(a["Assert"]):
                    failed.append(a["AssertDescription"])
        return failed


def env(fn: str, **params: str) -> dict[str, str]:
    ev = Evaluator(sam(), **params)
    glob = sam()["Globals"]["Function"]["Environment"]["Variables"]
    local = sam()["Resources"][fn]["Properties"].get("Environment", {}).get("Variables", {})
    return {k: ev.value(v) for k, v in {**glob, **local}.items()}


def actions(st) -> list[str]:
    a = st["Action"]
    return a if isinstance(a, list) else [a]


def role_policies(cfn: dict, role: str) -> list[dict]:
    """The role's inline statements plus those of its managed policies in this template."""
    res = cfn["Resources"]
    props = res[role]["Properties"]
    out = list(statements(props.get("Policies", [])))
    for arn in props.get("ManagedPolicyArns", []):
        for ref in _refs(arn):
            if ref in res and res[ref]["Type"] == "AWS::IAM::ManagedPolicy":
                out += list(statements(res[ref]["Properties"]["PolicyDocument"]))
    return out


def _refs(node) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return {node["Ref"]}
        return set().union(*(_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


class DeployFailures(unittest.TestCase):
    """Template audit section A."""

    def test_a1_api_gateway_account_role_is_opt_in_and_retained(self):
        self.assertEqual(sam()["Parameters"]["CreateApiGatewayAccountRole"]["Default"], "false")
        cfn = transformed(CreateApiGatewayAccountRole="true")
        res = cfn["Resources"]
        acct = res["ApiGatewayAccount"]
        self.assertEqual(acct["Type"], "AWS::ApiGateway::Account")
        self.assertEqual(acct["Properties"]["CloudWatchRoleArn"], {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]})
        role = res["ApiGatewayCloudWatchRole"]
        for r in (acct, role):
            self.assertEqual((r.get("DeletionPolicy"), r.get("UpdateReplacePolicy")), ("Retain", "Retain"))
        self.assertIn("AmazonAPIGatewayPushToCloudWatchLogs", str(role["Properties"]["ManagedPolicyArns"]))
        self.assertIn("apigateway.amazonaws.com", str(role["Properties"]["AssumeRolePolicyDocument"]))
        # In an account that never used API Gateway the setting needs another API Gateway
        # resource first, one that does not itself wait for the setting.
        first = res["ApiGatewayFirstUse"]
        self.assertEqual((first["Type"], first["Properties"]["Enabled"]), ("AWS::ApiGateway::ApiKey", False))
        self.assertEqual(acct.get("DependsOn"), "ApiGatewayFirstUse")
        self.assertNotIn("DependsOn", first)
        # The stage (through the RestApi) waits for the account setting when it is created here.
        ready = res["ApiAccountReady"]["Metadata"]["ApiGatewayAccount"]
        self.assertEqual(ready["Fn::If"][:2], ["CreateApiGatewayAccount", {"Ref": "ApiGatewayAccount"}])
        rest = [k for k, v in res.items() if v["Type"] == "AWS::ApiGateway::RestApi"]
        self.assertEqual(rest, ["Api"])
        deps = res["Api"].get("DependsOn")
        self.assertIn("ApiAccountReady", deps if isinstance(deps, list) else [deps])

    def test_a2_subnets_rules(self):
        ok = Evaluator(sam())
        self.assertEqual(ok.rules_pass(), [])
        sgs_only = Evaluator(sam(), ServingSecurityGroupIds="sg-1")
        self.assertTrue(any("ServingSubnetIds" in d for d in sgs_only.rules_pass()))
        both = Evaluator(sam(), ServingSecurityGroupIds="sg-1", ServingSubnetIds="subnet-a,subnet-b,subnet-c")
        self.assertEqual(both.rules_pass(), [])
        # Fewer than three subnets: Fn::Select index 2 fails the deploy before any resource.
        meta = sam()["Resources"]["ServingWorkgroup"]["Metadata"]["ThirdServingSubnet"]
        self.assertEqual(meta["Fn::If"][0], "HasServingSubnets")
        self.assertEqual(meta["Fn::If"][1], {"Fn::Select": [2, {"Ref": "ServingSubnetIds"}]})
        self.assertIn("no default VPC", sam()["Parameters"]["ServingSubnetIds"]["Description"])

    def test_a5_capacities_max_at_least_base_in_steps_of_8(self):
        p = sam()["Parameters"]
        self.assertEqual([int(x) for x in p["ServingBaseCapacity"]["AllowedValues"]], CAPACITIES)
        self.assertEqual([int(x) for x in p["ServingMaxCapacity"]["AllowedValues"]], CAPACITIES)
        for base in CAPACITIES:
            for cap in CAPACITIES:
                failed = Evaluator(sam(), ServingBaseCapacity=str(base), ServingMaxCapacity=str(cap)).rules_pass()
                self.assertEqual(bool(failed), cap < base, (base, cap, failed))

    def test_a5_speed_cluster_removed(self):
        """B8 / SQL A3: one warehouse; no half option left behind."""
        t = sam()
        for p in ("EnableSpeedCluster", "NumberOfNodes", "NodeType", "MasterUserName", "MasterUserPassword",
                  "InboundTraffic", "PortNumber", "DatabaseName"):
            self.assertNotIn(p, t["Parameters"])
        types = {r["Type"] for r in transformed()["Resources"].values()}
        self.assertFalse({t for t in types if t.startswith(("AWS::Redshift::", "AWS::EC2::"))}, types)
        self.assertNotIn("SpeedClusterId", t["Outputs"])
        self.assertFalse((ROOT / "infra/sql/optional").exists())
        self.assertFalse((ROOT / "infra/datashare").exists())


class DeployedButWrong(unittest.TestCase):
    """Template audit section B."""

    def test_b1_alarm_topic_is_deliverable(self):
        res = transformed()["Resources"]
        topic = res["AlarmTopic"]["Properties"]
        self.assertNotIn("KmsMasterKeyId", topic)
        alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
        self.assertGreaterEqual(len(alarms), 8)
        for a in alarms:
            self.assertEqual(a["Properties"]["AlarmActions"], [{"Ref": "AlarmTopic"}])

    def test_b2_dashboard_paths_need_no_api_key(self):
        body = transformed(ApiAuth="NONE")["Resources"]["Api"]["Properties"]["Body"]
        self.assertEqual(body["paths"]["/"]["get"]["security"], [])
        self.assertEqual(body["paths"]["/dashboard"]["get"]["security"], [])
        self.assertEqual(body["paths"]["/v1/{proxy+}"]["get"]["security"], [{"api_key": []}])
        iam = transformed(ApiAuth="AWS_IAM")["Resources"]["Api"]["Properties"]["Body"]
        self.assertEqual(iam["paths"]["/v1/{proxy+}"]["get"]["security"], [{"AWS_IAM": []}, {"api_key": []}])
        self.assertNotIn({"api_key": []}, iam["paths"]["/dashboard"]["get"]["security"])

    def test_b3_data_api_wait_below_function_timeout(self):
        res = sam()["Resources"]
        default_timeout = sam()["Globals"]["Function"]["Timeout"]
        # Every function that talks to the warehouse, whoever added it.
        clients = [k for k, r in res.items() if r["Type"] == "AWS::Serverless::Function"
                   and "FLEETLINE_REDSHIFT_WORKGROUP" in r["Properties"].get("Environment", {}).get("Variables", {})]
        self.assertTrue(set(DATA_API_FUNCTIONS) <= set(clients), clients)
        for fn in clients:
            # view-refresher's timeout and wait follow SpeedPath: check both paths.
            for path in ("lambda", "streaming-ingestion"):
                timeout = Evaluator(sam(), SpeedPath=path).value(res[fn]["Properties"].get("Timeout", default_timeout))
                wait = env(fn, SpeedPath=path).get("FLEETLINE_REDSHIFT_TIMEOUT_SECS")
                self.assertIsNotNone(wait, f"{fn} leaves the 120 s default wait")
                self.assertLess(int(wait), int(timeout), f"{fn}, SpeedPath={path}")
        # A full rebuild's CALL scans the whole lake: minutes, not seconds (SQL audit B2).
        self.assertGreaterEqual(int(env("BatchViewsFunction")["FLEETLINE_REDSHIFT_TIMEOUT_SECS"]), 600)

    def test_b5_least_privilege_in_the_warehouse(self):
        cfn = transformed()
        res = cfn["Resources"]
        for fn, role, db_role in (("QueryApiFunction", "QueryApiRole", "fleetline_reader"),
                                  ("StreamProcessorFunction", "StreamProcessorRole", "fleetline_speed_writer")):
            self.assertEqual(env(fn)["FLEETLINE_REDSHIFT_SECRET_ARN"], "", f"{fn} must not get the admin secret")
            sts = role_policies(cfn, role)
            self.assertNotIn("ServingAdminSecret", str(sts), role)
            self.assertFalse([s for s in sts if "secretsmanager:GetSecretValue" in actions(s)
                              and "ExistingRedshiftSecretArn" not in str(s)], role)
            self.assertTrue([s for s in sts if "redshift-serverless:GetCredentials" in actions(s)], role)
            self.assertTrue([s for s in sts if "tag:GetResources" in actions(s)], role)
            self.assertIn({"Key": "RedshiftDbRoles", "Value": db_role}, res[role]["Properties"]["Tags"])
        for fn, role in (("BatchViewsFunction", "BatchViewsRole"), ("ViewRefresherFunction", "ViewRefresherRole")):
            self.assertEqual(env(fn)["FLEETLINE_REDSHIFT_SECRET_ARN"], {"Ref": "ServingAdminSecret"}, fn)
            self.assertIn("ServingAdminSecret", str(role_policies(cfn, role)))
        # Only the jobs that need owner rights can read the admin secret.
        admins = {k for k, r in res.items() if r["Type"] == "AWS::IAM::Role"
                  and "ServingAdminSecret" in str(role_policies(cfn, k))}
        self.assertLessEqual(admins, {"BatchViewsRole", "ViewRefresherRole", "SchemaMigratorRole"}, admins)
        # The database roles exist and the reader can only read.
        sql = (ROOT / "infra/sql/30_access.sql").read_text()
        for db_role in ("fleetline_reader", "fleetline_speed_writer"):
            self.assertIn(f"CREATE ROLE {db_role}", sql)
        reader = [ln for ln in sql.splitlines() if "TO ROLE fleetline_reader" in ln and "GRANT" in ln]
        self.assertGreaterEqual(len(reader), 3)
        for ln in reader:
            granted = re.search(r"GRANT (.*?) ON", ln).group(1)
            self.assertIn(granted, ("USAGE", "SELECT"), ln)
        self.assertNotIn("fleetline:aws-only", sql)  # one file for both stacks (no-op locally)

    def test_b6_api_key_only_is_documented_as_demo_only(self):
        self.assertIn("demos", sam()["Parameters"]["ApiAuth"]["Description"])

    def test_b7_same_architecture_for_build_and_deploy(self):
        cfg = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
        arch = [re.search(r"Architecture=(\S+)", cfg[c]["parameters"].get("parameter_overrides", "")) for c in ("build", "deploy")]
        self.assertTrue(all(arch), "Architecture must be in build and deploy parameter_overrides")
        self.assertEqual(arch[0].group(1), arch[1].group(1))

    def test_b10_final_snapshot(self):
        ns = sam()["Resources"]["ServingNamespace"]["Properties"]
        self.assertIn("FinalSnapshotName", ns)
        self.assertGreater(ns["FinalSnapshotRetentionPeriod"], 0)

    def test_b11_deliberate_async_retries(self):
        res = transformed()["Resources"]
        cfg = {v["Properties"]["FunctionName"]["Ref"]: v["Properties"]
               for v in res.values() if v["Type"] == "AWS::Lambda::EventInvokeConfig"}
        self.assertEqual(cfg["ViewRefresherFunction"]["MaximumRetryAttempts"], 0)
        self.assertLessEqual(cfg["ViewRefresherFunction"]["MaximumEventAgeInSeconds"], 300)
        self.assertEqual(cfg["BatchViewsFunction"]["MaximumRetryAttempts"], 1)

    def test_b12_iot_error_action_can_describe_log_streams(self):
        sts = list(statements(sam()["Resources"]["IotToKinesisRole"]["Properties"]["Policies"]))
        logs = [s for s in sts if "logs:PutLogEvents" in actions(s)]
        self.assertEqual(len(logs), 1)
        self.assertEqual(set(actions(logs[0])), {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"})

    def test_b13_service_log_groups(self):
        self.assertNotIn("useractivitylog", sam()["Resources"]["ServingNamespace"]["Properties"]["LogExports"])
        lg = sam()["Resources"]["ApiExecutionLogGroup"]["Properties"]
        self.assertEqual(lg["LogGroupName"], {"Fn::Sub": "API-Gateway-Execution-Logs_${Api}/${ApiStageName}"})
        self.assertEqual(lg["RetentionInDays"], {"Ref": "LogRetentionDays"})

    def test_b15_database_output(self):
        self.assertEqual(sam()["Outputs"]["RedshiftDatabase"]["Value"], {"Ref": "ServingDatabase"})

    def test_schema_migrator_target_comes_with_the_request(self):
        # SAM hashes the environment's template text, not parameter values, into the version
        # (SAM issues #1640, #3820): another ServingName publishes no version for the alias ...
        def versions(**params: str) -> set[str]:
            return {k for k, v in transformed(**params)["Resources"].items()
                    if v["Type"] == "AWS::Lambda::Version" and k.startswith("SchemaMigratorFunction")}
        self.assertEqual(versions(ServingName="wg-a"), versions(ServingName="wg-b"))
        # ... so WarehouseSchema carries the target, as the function's environment states it.
        fn_env = sam()["Resources"]["SchemaMigratorFunction"]["Properties"]["Environment"]["Variables"]
        prop = sam()["Resources"]["WarehouseSchema"]["Properties"]["Warehouse"]
        target_keys = {"FLEETLINE_REDSHIFT_WORKGROUP", "FLEETLINE_REDSHIFT_CLUSTER", "FLEETLINE_REDSHIFT_DATABASE",
                       "FLEETLINE_REDSHIFT_SECRET_ARN", "FLEETLINE_REDSHIFT_DB_USER"}
        self.assertEqual(set(prop), target_keys)
        self.assertEqual(prop, {k: fn_env[k] for k in target_keys})

    def test_b16_statement_actions_limited_to_own_statements(self):
        sts = list(statements(sam()["Resources"]["WarehouseStatementsPolicy"]["Properties"]))
        follow = [s for s in sts if "redshift-data:GetStatementResult" in actions(s)]
        self.assertEqual(len(follow), 1)
        self.assertEqual(follow[0]["Condition"], {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}})


class SpeedPath(unittest.TestCase):
    """SpeedPath=lambda (default) | streaming-ingestion: one parameter switches the speed layer."""

    def _esm_enabled(self, function: str, **params: str):
        cfn = transformed()
        ev = Evaluator(cfn, **params)
        esms = [r["Properties"] for r in cfn["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and r["Properties"]["FunctionName"] == {"Ref": function}]
        self.assertEqual(len(esms), 1, function)
        return ev.value(esms[0].get("Enabled", True))

    def test_stream_processor_mapping_follows_the_speed_path(self):
        self.assertIs(self._esm_enabled("StreamProcessorFunction"), True)
        self.assertIs(self._esm_enabled("StreamProcessorFunction", SpeedPath="streaming-ingestion"), False)
        # The lake is written the same way on both paths.
        self.assertIs(self._esm_enabled("LakeWriterFunction", SpeedPath="streaming-ingestion"), True)

    def test_streaming_role_reads_only_the_stream_and_is_attached(self):
        res = sam()["Resources"]
        role = res["StreamingIngestionRole"]
        self.assertEqual(role["Condition"], "CreateStreamingRole")
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual([s["Principal"]["Service"] for s in trust],
                         [["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]])
        for st in statements(role["Properties"]["Policies"]):
            if actions(st) == ["kinesis:ListStreams"]:
                self.assertEqual(st["Resource"], "*")
            else:
                self.assertEqual(st["Resource"], {"Fn::GetAtt": ["TelemetryStream", "Arn"]}, st)
        granted = {a for st in statements(role["Properties"]["Policies"]) for a in actions(st)}
        self.assertEqual(granted, {"kinesis:DescribeStreamSummary", "kinesis:GetShardIterator", "kinesis:GetRecords",
                                   "kinesis:DescribeStream", "kinesis:ListShards", "kinesis:ListStreams"})
        ns = res["ServingNamespace"]["Properties"]
        for params, roles in (({}, 1), ({"SpeedPath": "streaming-ingestion"}, 2)):
            ev = Evaluator(sam(), **params)
            self.assertEqual(ev.condition("CreateStreamingRole"), roles == 2)
            self.assertEqual(len(ev.value(ns["IamRoles"])), roles, params)
        self.assertEqual(ns["DefaultIamRoleArn"], {"Fn::GetAtt": ["SpectrumRole", "Arn"]})
        # The stream is encrypted with the AWS managed key: no KMS permission needed.
        self.assertEqual(res["TelemetryStream"]["Properties"]["StreamEncryption"]["KeyId"], "alias/aws/kinesis")

    def test_schema_variables_follow_the_speed_path_and_target(self):
        var = sam()["Resources"]["WarehouseSchema"]["Properties"]["Variables"]
        role_arn = "arn:aws:iam::123456789012:role/streaming"
        cases = [
            ({}, "lambda", ""),
            ({"SpeedPath": "streaming-ingestion"}, "streaming-ingestion", {"Fn::GetAtt": ["StreamingIngestionRole", "Arn"]}),
            ({"SpeedPath": "streaming-ingestion", "ServingTarget": "existing-cluster",
              "ExistingRedshiftArn": "arn:aws:redshift:us-east-1:123456789012:cluster:c", "ExistingStreamingRoleArn": role_arn},
             "streaming-ingestion", role_arn),
        ]
        for params, path, role in cases:
            ev = Evaluator(sam(), **params)
            self.assertEqual(ev.value(var["SPEED_PATH"]), path, params)
            self.assertEqual(ev.value(var["STREAMING_IAM_ROLE"]), role, params)
            self.assertEqual(var["STREAM_NAME"], {"Ref": "TelemetryStream"})
            self.assertEqual(env("ViewRefresherFunction", **params)["SPEED_PATH"], path)

    def test_existing_target_needs_an_attached_streaming_role(self):
        existing = {"SpeedPath": "streaming-ingestion", "ServingTarget": "existing-workgroup",
                    "ExistingRedshiftArn": "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/x"}
        self.assertTrue([f for f in Evaluator(sam(), **existing).rules_pass() if "ExistingStreamingRoleArn" in f])
        self.assertEqual(Evaluator(sam(), **existing, ExistingStreamingRoleArn="arn:aws:iam::123456789012:role/r").rules_pass(), [])
        self.assertEqual(Evaluator(sam(), SpeedPath="streaming-ingestion").rules_pass(), [])

    def test_view_refresher_writes_dead_letters_only_when_streaming(self):
        def puts(**params: str) -> list:
            ev = Evaluator(sam(), **params)
            policy = sam()["Resources"]["ViewRefresherRole"]["Properties"]["Policies"][0]["PolicyDocument"]
            sts = [ev.value(st) for st in policy["Statement"]]
            return [s for s in sts if "Action" in s and "s3:PutObject" in actions(s)]
        self.assertEqual(puts(), [])
        streaming = puts(SpeedPath="streaming-ingestion")
        self.assertEqual([s["Resource"] for s in streaming], [{"Fn::Sub": "${LakeBucket.Arn}/rejected/*"}])


class Cost(unittest.TestCase):
    """Template audit section C."""

    def test_capacity_cap_and_refresh_cadence(self):
        p = sam()["Parameters"]
        self.assertEqual(p["ServingBaseCapacity"]["Default"], 8)
        self.assertEqual(p["ServingMaxCapacity"]["Default"], 16)
        self.assertEqual(sam()["Resources"]["ServingWorkgroup"]["Properties"]["MaxCapacity"], {"Ref": "ServingMaxCapacity"})
        self.assertEqual(p["ViewRefreshSchedule"]["Default"], "rate(15 minutes)")


if __name__ == "__main__":
    unittest.main()
