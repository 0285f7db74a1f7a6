"""Tests of infra/lib/preflight.py: AWS answers through botocore's Stubber (API Gateway
account settings, EC2 subnets: what LocalStack cannot be made to answer both ways), the
machine checks with a fake command runner, and the account checks against LocalStack when
the environment points at it (tests/run exports AWS_ENDPOINT_URL)."""

import os
import sys
import tempfile
import unittest
import urllib.request
from argparse import Namespace
from pathlib import Path

import boto3
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import preflight  # noqa: E402
from preflight import FAIL, OK, SKIP, WARN  # noqa: E402


def client(service, region="us-east-1"):
    return boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name=region
    ).client(service, endpoint_url="https://example.invalid")


def subnet(sid, az_id, free=250):
    return {"SubnetId": sid, "AvailabilityZoneId": az_id, "AvailabilityZone": az_id + "x", "AvailableIpAddressCount": free}


class ApiGatewayRoleTests(unittest.TestCase):
    def check(self, answer, creates=False):
        apigw = client("apigateway")
        with Stubber(apigw) as st:
            st.add_response("get_account", answer, {})
            r = preflight.check_apigateway_role(apigw, "us-east-1", creates)
            st.assert_no_pending_responses()
        return r

    def test_missing_role_blocks_and_names_both_fixes(self):
        r = self.check({"throttleSettings": {"burstLimit": 5000, "rateLimit": 10000.0}})
        self.assertEqual(r.status, FAIL)
        self.assertIn("CreateApiGatewayAccountRole=true", r.fix)
        self.assertIn("update-account", r.fix)

    def test_role_set(self):
        arn = "arn:aws:iam::123456789012:role/apigw-logs"
        r = self.check({"cloudwatchRoleArn": arn})
        self.assertEqual(r.status, OK)
        self.assertIn(arn, r.detail)

    def test_missing_role_is_fine_when_the_stack_creates_it(self):
        self.assertEqual(self.check({}, creates=True).status, OK)


class SubnetTests(unittest.TestCase):
    def run_default_vpc(self, subnets, region="us-east-1", vpcs=("vpc-1",)):
        ec2 = client("ec2", region)
        with Stubber(ec2) as st:
            st.add_response(
                "describe_vpcs",
                {"Vpcs": [{"VpcId": v} for v in vpcs]},
                {"Filters": [{"Name": "isDefault", "Values": ["true"]}]},
            )
            if vpcs:
                st.add_response(
                    "describe_subnets", {"Subnets": subnets}, {"Filters": [{"Name": "vpc-id", "Values": [vpcs[0]]}]}
                )
            r = preflight.check_redshift_subnets(ec2, region, [])
            st.assert_no_pending_responses()
        return r

    def test_no_default_vpc_blocks(self):
        r = self.run_default_vpc([], vpcs=())
        self.assertEqual(r.status, FAIL)
        self.assertIn("ServingSubnetIds=", r.fix)

    def test_default_vpc_in_two_azs_blocks(self):
        r = self.run_default_vpc([subnet("a", "use1-az1"), subnet("b", "use1-az2"), subnet("c", "use1-az2")])
        self.assertEqual(r.status, FAIL)
        self.assertIn("2 Availability Zone", r.detail)

    def test_default_vpc_in_three_azs(self):
        r = self.run_default_vpc([subnet("a", "use1-az1"), subnet("b", "use1-az2"), subnet("c", "use1-az4")])
        self.assertEqual(r.status, OK, r.line())
        self.assertIn("3 AZs", r.detail)

    def test_us_west_1_needs_two_azs(self):
        r = self.run_default_vpc([subnet("a", "usw1-az1"), subnet("b", "usw1-az3"), subnet("c", "usw1-az3")], region="us-west-1")
        self.assertEqual(r.status, OK, r.line())

    def test_full_subnet_blocks(self):
        r = self.run_default_vpc([subnet("a", "use1-az1"), subnet("b", "use1-az2"), subnet("c", "use1-az4", free=2)])
        self.assertEqual(r.status, FAIL)
        self.assertIn("free IP", r.detail)

    def test_given_subnets_are_looked_up_by_id(self):
        ec2 = client("ec2")
        ids = ["subnet-1", "subnet-2", "subnet-3"]
        with Stubber(ec2) as st:
            st.add_response(
                "describe_subnets",
                {"Subnets": [subnet("subnet-1", "use1-az1"), subnet("subnet-2", "use1-az2"), subnet("subnet-3", "use1-az2")]},
                {"SubnetIds": ids},
            )
            r = preflight.check_redshift_subnets(ec2, "us-east-1", ids)
        self.assertEqual(r.status, FAIL)

    def test_unknown_subnet_blocks(self):
        ec2 = client("ec2")
        with Stubber(ec2) as st:
            st.add_client_error("describe_subnets", "InvalidSubnetID.NotFound", "The subnet ID 'subnet-x' does not exist")
            r = preflight.check_redshift_subnets(ec2, "us-east-1", ["subnet-x"])
        self.assertEqual(r.status, FAIL)
        self.assertIn("InvalidSubnetID.NotFound", r.detail)


class OtherAwsTests(unittest.TestCase):
    def test_bad_credentials(self):
        sts = client("sts")
        with Stubber(sts) as st:
            st.add_client_error("get_caller_identity", "InvalidClientTokenId", "The security token is invalid")
            r = preflight.check_credentials(sts, "us-east-1")
        self.assertEqual(r.status, FAIL)
        self.assertIn("InvalidClientTokenId", r.detail)

    def test_no_region(self):
        self.assertEqual(preflight.check_credentials(None, None).status, FAIL)

    def test_redshift_serverless_without_endpoint_blocks(self):
        class NoEndpoint:
            def list_workgroups(self, **_):
                raise EndpointConnectionError(endpoint_url="https://redshift-serverless.xx-west-9.amazonaws.com/")

        self.assertEqual(preflight.check_redshift_serverless(NoEndpoint(), "xx-west-9").status, FAIL)

    def test_redshift_serverless_available(self):
        rss = client("redshift-serverless")
        with Stubber(rss) as st:
            st.add_response("list_workgroups", {"workgroups": []}, {"maxResults": 1})
            self.assertEqual(preflight.check_redshift_serverless(rss, "us-east-1").status, OK)

    def test_checks_after_failed_credentials_are_skipped(self):
        class Session:
            region_name = None

        results = preflight.aws_checks(Namespace(serving_target="serverless"), Session())
        self.assertEqual([r.status for r in results], [FAIL, SKIP, SKIP, SKIP])


class AwsChecksWithSamconfig(unittest.TestCase):
    def test_deploy_overrides_drive_the_account_checks(self):
        clients = {n: client(n) for n in ("sts", "apigateway", "ec2", "redshift-serverless")}

        class Session:
            region_name = "us-east-1"

            def client(self, name):
                return clients[name]

        stubs = {n: Stubber(c) for n, c in clients.items()}
        stubs["sts"].add_response("get_caller_identity", {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/me", "UserId": "x"}, {})
        stubs["apigateway"].add_response("get_account", {}, {})
        ids = ["subnet-a", "subnet-b", "subnet-c"]
        stubs["ec2"].add_response(
            "describe_subnets",
            {"Subnets": [subnet("subnet-a", "use1-az1"), subnet("subnet-b", "use1-az2"), subnet("subnet-c", "use1-az4")]},
            {"SubnetIds": ids},
        )
        stubs["redshift-serverless"].add_response("list_workgroups", {"workgroups": []}, {"maxResults": 1})
        for st in stubs.values():
            st.activate()
        args = Namespace(create_apigateway_account_role=False, serving_target=None, subnet_ids="")
        results = preflight.aws_checks(
            args, Session(), {"CreateApiGatewayAccountRole": "true", "ServingSubnetIds": ",".join(ids)}
        )
        for st in stubs.values():
            st.assert_no_pending_responses()
        self.assertEqual([r.status for r in results], [OK, OK, OK, OK], [r.line() for r in results])
        self.assertIn("the stack creates it", results[1].detail)

    def test_existing_target_skips_the_serverless_checks(self):
        clients = {"sts": client("sts"), "apigateway": client("apigateway")}

        class Session:
            region_name = "us-east-1"

            def client(self, name):
                return clients[name]

        with Stubber(clients["sts"]) as a, Stubber(clients["apigateway"]) as b:
            a.add_response("get_caller_identity", {"Account": "1", "Arn": "arn:aws:iam::1:user/me", "UserId": "x"}, {})
            b.add_response("get_account", {"cloudwatchRoleArn": "arn:aws:iam::1:role/r"}, {})
            args = Namespace(create_apigateway_account_role=False, serving_target=None, subnet_ids="")
            results = preflight.aws_checks(args, Session(), {"ServingTarget": "existing-cluster"})
        self.assertEqual([r.status for r in results], [OK, OK, SKIP, SKIP])


class FakeMachine:
    """`which` and a command runner answering from tables."""

    def __init__(self, tools, outputs):
        self.tools, self.outputs = tools, outputs

    def which(self, name):
        return self.tools.get(name)

    def run(self, cmd):
        key = " ".join([Path(cmd[0]).name, *cmd[1:]])
        return self.outputs.get(key, (127, f"not found: {key}"))


class MachineTests(unittest.TestCase):
    def test_sam_versions(self):
        for out, want in [
            ("SAM CLI, version 1.154.0", FAIL),
            ("SAM CLI, version 1.155.2", FAIL),
            ("SAM CLI, version 1.156.0", OK),
            ("SAM CLI, version 1.170.0", OK),
            ("SAM CLI, version 2.0.0", OK),
        ]:
            m = FakeMachine({"sam": "/usr/bin/sam"}, {"sam --version": (0, out)})
            r = preflight.check_sam(m.run, m.which)
            self.assertEqual(r.status, want, (out, r.line()))
        m = FakeMachine({"sam": "/opt/sam"}, {"sam --version": (0, "SAM CLI, version 1.100.0")})
        self.assertIn("SAM_CLI_BETA_RUST_CARGO_LAMBDA", preflight.check_sam(m.run, m.which).fix)

    def test_sam_missing(self):
        old = preflight.CACHE
        preflight.CACHE = Path(tempfile.mkdtemp())  # no project venvs to fall back on
        try:
            m = FakeMachine({}, {})
            self.assertEqual(preflight.check_sam(m.run, m.which).status, FAIL)
        finally:
            preflight.CACHE = old

    def test_rust_target(self):
        installed = "x86_64-unknown-linux-gnu\n"
        m = FakeMachine({"rustup": "/r/rustup"}, {"rustup target list --installed": (0, installed)})
        self.assertEqual(preflight.check_rust_target(m.run, m.which, "x86_64").status, OK)
        r = preflight.check_rust_target(m.run, m.which, "arm64")
        self.assertEqual(r.status, FAIL)
        self.assertEqual(r.fix, "rustup target add aarch64-unknown-linux-gnu")

    def test_zig_needed_only_to_cross_compile(self):
        old = preflight.CACHE
        preflight.CACHE = Path(tempfile.mkdtemp())
        try:
            m = FakeMachine({"python3": "/p/python3"}, {"python3 -c import ziglang": (1, "ModuleNotFoundError")})
            self.assertEqual(preflight.check_zig(m.run, m.which, "arm64", "x86_64").status, FAIL)
            self.assertEqual(preflight.check_zig(m.run, m.which, "x86_64", "x86_64").status, WARN)
            m = FakeMachine({"python3": "/p/python3"}, {"python3 -c import ziglang": (0, "")})
            self.assertEqual(preflight.check_zig(m.run, m.which, "arm64", "x86_64").status, OK)
        finally:
            preflight.CACHE = old


class ArchitectureTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.template = self.dir / "template.yaml"
        self.template.write_text(
            "Parameters:\n  Architecture:\n    Type: String\n    Default: arm64\n    AllowedValues: [arm64, x86_64]\n"
        )

    def samconfig(self, text):
        p = self.dir / "samconfig.toml"
        p.write_text(text)
        return preflight.samconfig_architectures(p)

    def test_mismatch_between_build_and_deploy_blocks(self):
        cfg = self.samconfig(
            'version = 0.1\n[default.build.parameters]\nparameter_overrides = "Architecture=x86_64"\n'
            '[default.deploy.parameters]\nparameter_overrides = "Architecture=arm64 AlarmEmail=a@b.c"\n'
        )
        self.assertEqual(cfg, {"build": "x86_64", "deploy": "arm64"})
        _, r = preflight.choose_architecture(None, cfg, self.template)
        self.assertEqual(r.status, FAIL)

    def test_same_override_for_both(self):
        cfg = self.samconfig(
            '[default.build.parameters]\nparameter_overrides = "Architecture=x86_64"\n'
            '[default.deploy.parameters]\nparameter_overrides = "Architecture=x86_64"\n'
        )
        arch, r = preflight.choose_architecture(None, cfg, self.template)
        self.assertEqual((arch, r.status), ("x86_64", OK))

    def test_cli_override_without_samconfig_warns_to_pass_it_twice(self):
        arch, r = preflight.choose_architecture("x86_64", {}, self.template)
        self.assertEqual((arch, r.status), ("x86_64", WARN))
        self.assertIn("BOTH sam build and sam deploy", r.fix)

    def test_overrides_as_sam_deploy_guided_writes_them(self):
        p = self.dir / "samconfig.toml"
        p.write_text(
            'version = 0.1\n[default.deploy.parameters]\nstack_name = "fleetline"\n'
            'parameter_overrides = "Architecture=\\"arm64\\" ServingSubnetIds=\\"subnet-a,subnet-b,subnet-c\\" '
            'CreateApiGatewayAccountRole=\\"true\\" AlarmEmail=\\"\\""\n'
        )
        o = preflight.samconfig_overrides(p)["deploy"]
        self.assertEqual(o["ServingSubnetIds"], "subnet-a,subnet-b,subnet-c")
        self.assertEqual(o["CreateApiGatewayAccountRole"], "true")
        self.assertEqual(o["AlarmEmail"], "")
        self.assertEqual(preflight.samconfig_architectures(p), {"deploy": "arm64"})

    def test_template_default(self):
        arch, r = preflight.choose_architecture(None, {}, self.template)
        self.assertEqual((arch, r.status), ("arm64", OK))


@unittest.skipUnless(os.environ.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL not set (tests/run points it at LocalStack)")
class LocalStackTests(unittest.TestCase):
    """What LocalStack answers for real: STS, EC2's default VPC and its subnets."""

    def setUp(self):
        url = os.environ["AWS_ENDPOINT_URL"]
        urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=10).read()  # fails when down
        self.session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
        )

    def test_credentials_and_default_vpc(self):
        creds = preflight.check_credentials(self.session.client("sts"), self.session.region_name)
        self.assertEqual(creds.status, OK, creds.line())
        self.assertIn("account 000000000000", creds.detail)
        r = preflight.check_redshift_subnets(self.session.client("ec2"), self.session.region_name, [])
        # Independently: the default VPC's subnets and their AZs as EC2 reports them.
        ec2 = self.session.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        azs = {s["AvailabilityZoneId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
        self.assertEqual(r.status, OK if len(azs) >= 3 else FAIL, r.line())
        self.assertIn(vpc, r.detail)

    def test_subnets_created_in_two_azs_block(self):
        ec2 = self.session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        try:
            zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
            ids = [
                ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=zones[i % 2])["Subnet"]["SubnetId"]
                for i in range(3)
            ]
            r = preflight.check_redshift_subnets(ec2, self.session.region_name, ids)
            self.assertEqual(r.status, FAIL, r.line())
            self.assertIn("2 Availability Zone", r.detail)
        finally:
            for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
                ec2.delete_subnet(SubnetId=s["SubnetId"])
            ec2.delete_vpc(VpcId=vpc)


if __name__ == "__main__":
    unittest.main()
