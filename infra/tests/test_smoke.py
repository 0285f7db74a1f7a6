"""Tests of infra/lib/smoke.py: the expected answers on hand-computed values, the comparison
of REST bodies, the stack lookup (botocore Stubber), PutRecords retries. The end-to-end run
against the local runner is tests/tests/smoke.rs."""

import json
import os
import random
import sys
import unittest
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import boto3
from botocore.stub import Stubber

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import smoke  # noqa: E402
from smoke import Reading  # noqa: E402

VIN = "SMK12345678901234"


def reading(ts, speed, accel, odo, trip="t1"):
    return Reading(VIN, trip, datetime.fromisoformat(ts).replace(tzinfo=timezone.utc), Decimal(speed), Decimal(accel), Decimal(odo))


def client(service):
    return boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client(
        service, endpoint_url="https://example.invalid"
    )


class ExpectedTests(unittest.TestCase):
    def test_hand_computed(self):
        rs = [
            reading("2026-12-07T10:00:00", "50.000", "1.5000", "1000.000"),
            reading("2026-12-07T10:00:01", "60.001", "10.0000", "1000.020"),
            reading("2026-12-07T10:00:02", "70.000", "12.5000", "1000.045"),
            # duplicate of the first (same VIN and timestamp): counted once
            reading("2026-12-07T10:00:00", "50.000", "1.5000", "1000.000"),
        ]
        exp = smoke.expected_answers(rs, Decimal("10.0"))
        (trip,) = exp.trips["2026-12-07"]
        self.assertEqual(trip.readings, 3)
        # (50000 + 60001 + 70000) / 3 = 60000.33 milli-km/h -> 60000 -> 60.000 km/h
        self.assertEqual(trip.avg_speed_kmh, Decimal("60.000"))
        # 0.045 km x 0.621371 = 0.027961695 mi
        self.assertEqual(trip.miles_exact, Decimal("0.027961695"))
        self.assertEqual(str(trip.miles_exact), "0.027961695")
        # >= 10.0 is rapid: 10.0 and 12.5
        self.assertEqual(trip.rapid_accelerations, 2)
        self.assertEqual(exp.miles_by_year, {2026: Decimal("0.027961695")})
        self.assertEqual(exp.rapid_by_year, {2026: 2})
        self.assertEqual(smoke.expected_answers(rs, Decimal("12.5")).rapid_by_year, {2026: 1})
        self.assertEqual(smoke.expected_answers(rs, Decimal("12.50005")).rapid_by_year, {2026: 0})

    def test_average_rounds_half_away_from_zero(self):
        rs = [
            reading("2026-12-07T10:00:00", "0.001", "0", "1.000"),
            reading("2026-12-07T10:00:01", "0.002", "0", "1.000"),
        ]
        # 3 / 2 = 1.5 milli -> 2 milli = 0.002 km/h
        self.assertEqual(smoke.expected_answers(rs, Decimal(10)).trips["2026-12-07"][0].avg_speed_kmh, Decimal("0.002"))

    def test_a_trip_across_midnight_is_two_days(self):
        rs = [
            reading("2026-12-31T23:59:59", "10", "0", "5.000"),
            reading("2027-01-01T00:00:00", "20", "11", "5.100"),
            reading("2027-01-01T00:00:01", "30", "0", "5.300"),
        ]
        exp = smoke.expected_answers(rs, Decimal(10))
        self.assertEqual(sorted(exp.trips), ["2026-12-31", "2027-01-01"])
        self.assertEqual(exp.trips["2026-12-31"][0].miles_exact, Decimal(0))
        # 0.200 km x 0.621371
        self.assertEqual(exp.miles_by_year, {2026: Decimal(0), 2027: Decimal("0.124274200")})
        self.assertEqual(exp.rapid_by_year, {2026: 0, 2027: 1})

    def test_generated_payloads_carry_the_exact_decimals(self):
        rs = smoke.make_readings(random.Random(3), 12, datetime(2026, 12, 7, 12, 0, 0, 500, tzinfo=timezone.utc))
        self.assertEqual(len({r.vin for r in rs}), 1)
        self.assertRegex(rs[0].vin, r"^[A-Z0-9]{17}$")
        self.assertEqual(rs[-1].ts, datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc))
        for r in rs:
            body = json.loads(r.payload(), parse_float=Decimal)
            self.assertEqual(body["vehicleSpeed"], r.speed)
            self.assertEqual(body["acceleration"], r.acceleration)
            self.assertEqual(body["odometer"], r.odometer)
            self.assertEqual(body["timestamp"], r.ts.strftime("%Y-%m-%d %H:%M:%S.000"))
        # The marked readings make the count depend on the threshold (10 vs 20).
        at10 = smoke.expected_answers(rs, Decimal("10.0")).total_readings()
        self.assertEqual(at10, 12)
        self.assertEqual(sum(smoke.expected_answers(rs, Decimal("10.0")).rapid_by_year.values()), 2)
        self.assertEqual(sum(smoke.expected_answers(rs, Decimal("20.0")).rapid_by_year.values()), 1)


class CompareTests(unittest.TestCase):
    def setUp(self):
        self.exp = smoke.expected_answers(
            [
                reading("2026-12-07T10:00:00", "50.000", "1.5", "1000.000"),
                reading("2026-12-07T10:00:01", "60.001", "10.0", "1000.020"),
                reading("2026-12-07T10:00:02", "70.000", "12.5", "1000.045"),
            ],
            Decimal("10.0"),
        )

    def body(self, text):
        return json.loads(text, parse_float=Decimal)

    def test_matching_answers(self):
        trips = self.body(
            '{"boundary":null,"data":[{"trip_id":"t1","date":"2026-12-07","readings":3,"avg_speed_kmh":60.0,'
            '"miles":0.027962,"miles_exact":"0.027961695","rapid_accelerations":2}]}'
        )
        checks = smoke.compare_trips(self.exp.trips["2026-12-07"], trips)
        self.assertTrue(all(c.ok for c in checks), [c.detail for c in checks])
        miles = self.body(f'{{"data":[{{"vin":"{VIN}","year":2026,"miles":0.027962,"miles_exact":"0.027961695"}}]}}')
        self.assertTrue(smoke.compare_miles(VIN, 2026, self.exp.miles_by_year[2026], miles).ok)
        rapid = self.body(f'{{"data":[{{"vin":"{VIN}","year":2026,"rapid_accelerations":2}}],"next_token":null}}')
        self.assertTrue(smoke.compare_rapid(VIN, 2026, 2, rapid).ok)

    def test_each_difference_is_reported(self):
        trips = self.body(
            '{"data":[{"trip_id":"t1","readings":4,"avg_speed_kmh":60.001,"miles_exact":"0.027961695","rapid_accelerations":2},'
            '{"trip_id":"other","readings":1}]}'
        )
        checks = smoke.compare_trips(self.exp.trips["2026-12-07"], trips)
        self.assertEqual([c.ok for c in checks], [False, False])
        self.assertIn("readings: expected 3, got 4", checks[0].detail)
        self.assertIn("avg_speed_kmh: expected 60.000, got 60.001", checks[0].detail)
        self.assertIn("unexpected trips", checks[1].detail)
        self.assertFalse(smoke.compare_rapid(VIN, 2026, 2, self.body('{"data":[]}')).ok)
        self.assertFalse(smoke.compare_miles(VIN, 2026, Decimal("1"), self.body('{"data":[{"year":2026,"miles_exact":"1.000000001"}]}')).ok)


class WaitTests(unittest.TestCase):
    def setUp(self):
        rs = smoke.make_readings(random.Random(5), 10, datetime(2026, 12, 7, 12, tzinfo=timezone.utc))
        self.exp = smoke.expected_answers(rs, Decimal(10))
        self.trip = rs[0].trip_id
        self.lines = []

    def test_times_out_while_readings_are_missing(self):
        seen = iter([0, 4, 9])

        def get(path):
            n = next(seen, 9)
            return 200, {"data": [{"trip_id": self.trip, "readings": n}] if n else []}

        ok = smoke.wait_visible(get, self.exp, timeout=0.05, say=self.lines.append, poll=0.01)
        self.assertFalse(ok)
        self.assertIn("waiting: 9/10 readings visible", "\n".join(self.lines))
        self.assertIn("gave up", self.lines[-1])

    def test_done_when_all_are_visible(self):
        def get(path):
            self.assertEqual(path, f"v1/vehicles/{self.exp.vin}/trips?date=2026-12-07")
            return 200, {"data": [{"trip_id": self.trip, "readings": 10}]}

        self.assertTrue(smoke.wait_visible(get, self.exp, timeout=5, say=self.lines.append, poll=0.01))

    def test_server_errors_are_retried(self):
        answers = iter([(500, {"error": {"code": "internal"}}), (503, {}), (200, {"data": [{"trip_id": self.trip, "readings": 10}]})])
        self.assertTrue(smoke.wait_visible(lambda p: next(answers), self.exp, timeout=5, say=self.lines.append, poll=0.01))
        self.assertEqual(sum("(retrying)" in line for line in self.lines), 2)

    def test_forbidden_is_a_usage_error(self):
        with self.assertRaises(smoke.SmokeError) as e:
            smoke.wait_visible(lambda p: (403, {"message": "Forbidden"}), self.exp, 5, self.lines.append)
        self.assertEqual(e.exception.code, smoke.EXIT_USAGE)
        self.assertIn("API key", str(e.exception))


class HttpTests(unittest.TestCase):
    """http_get against a local HTTP server that records the request headers."""

    def setUp(self):
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = b'{"data":[{"miles":1.5}]}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_api_key_header_and_exact_numbers(self):
        t = smoke.Target(self.url, "s", "the-key", Decimal(10))
        status, body = smoke.http_get(t, "v1/status")
        self.assertEqual(status, 200)
        self.assertEqual(body["data"][0]["miles"], Decimal("1.5"))
        path, headers = self.seen[0]
        self.assertEqual(path, "/api/v1/status")
        self.assertEqual(headers.get("x-api-key"), "the-key")
        self.assertNotIn("authorization", headers)

    def test_aws_iam_requests_are_sigv4_signed(self):
        session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s", region_name="us-east-1")
        t = smoke.Target(self.url, "s", "the-key", Decimal(10), sign_region="us-east-1")
        smoke.http_get(t, "v1/status", session)
        _, headers = self.seen[0]
        self.assertTrue(headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), headers)
        self.assertIn("/us-east-1/execute-api/aws4_request", headers["authorization"])
        self.assertIn("x-amz-date", headers)
        self.assertEqual(headers.get("x-api-key"), "the-key")


class StackTests(unittest.TestCase):
    def test_outputs_key_and_parameters(self):
        cfn, apigw = client("cloudformation"), client("apigateway")
        with Stubber(cfn) as c, Stubber(apigw) as g:
            c.add_response(
                "describe_stacks",
                {
                    "Stacks": [
                        {
                            "StackName": "fleetline",
                            "CreationTime": datetime(2026, 12, 7, tzinfo=timezone.utc),
                            "StackStatus": "CREATE_COMPLETE",
                            "Outputs": [
                                {"OutputKey": "ApiUrl", "OutputValue": "https://abc.execute-api.us-east-1.amazonaws.com/api/"},
                                {"OutputKey": "StreamName", "OutputValue": "fleetline-TelemetryStream-X"},
                                {"OutputKey": "ApiKeyId", "OutputValue": "k123"},
                            ],
                            "Parameters": [
                                {"ParameterKey": "RapidAccelThreshold", "ParameterValue": "12.5"},
                                {"ParameterKey": "ApiAuth", "ParameterValue": "NONE"},
                            ],
                        }
                    ]
                },
                {"StackName": "fleetline"},
            )
            g.add_response("get_api_key", {"id": "k123", "value": "secret-value"}, {"apiKey": "k123", "includeValue": True})
            t = smoke.resolve_stack(cfn, apigw, "fleetline")
        self.assertEqual(t.api_url, "https://abc.execute-api.us-east-1.amazonaws.com/api/")
        self.assertEqual(t.stream, "fleetline-TelemetryStream-X")
        self.assertEqual(t.api_key, "secret-value")
        self.assertEqual(t.rapid_threshold, Decimal("12.5"))
        self.assertIsNone(t.sign_region)

    def test_missing_stack_is_a_usage_error(self):
        cfn, apigw = client("cloudformation"), client("apigateway")
        with Stubber(cfn) as c:
            c.add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
            with self.assertRaises(smoke.SmokeError) as e:
                smoke.resolve_stack(cfn, apigw, "nope")
        self.assertEqual(e.exception.code, smoke.EXIT_USAGE)
        self.assertIn("does not exist", str(e.exception))


@unittest.skipUnless(os.environ.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL not set (tests/run points it at LocalStack)")
class LocalStackStackTests(unittest.TestCase):
    """resolve_stack on a real (LocalStack) CloudFormation stack: outputs, parameters and an
    API key whose value comes back through apigateway get-api-key --include-value."""

    TEMPLATE = {
        "Parameters": {
            "RapidAccelThreshold": {"Type": "String", "Default": "10.0"},
            "ApiAuth": {"Type": "String", "Default": "NONE"},
        },
        "Resources": {
            "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Enabled": True, "Value": "smoke-test-key-value-0123456789"}}
        },
        "Outputs": {
            "ApiUrl": {"Value": "http://127.0.0.1:3000"},
            "StreamName": {"Value": "vehicle-telemetry"},
            "ApiKeyId": {"Value": {"Ref": "Key"}},
        },
    }

    def test_outputs_parameters_and_key(self):
        url = os.environ["AWS_ENDPOINT_URL"]
        urllib.request.urlopen(url.rstrip("/") + "/_localstack/health", timeout=10).read()  # fails when down
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=os.environ.get("AWS_REGION", "us-east-1")
        )
        cfn, apigw = session.client("cloudformation"), session.client("apigateway")
        name = f"fleetline-smoke-test-{random.randrange(10**9)}"
        cfn.create_stack(
            StackName=name,
            TemplateBody=json.dumps(self.TEMPLATE),
            Parameters=[{"ParameterKey": "RapidAccelThreshold", "ParameterValue": "12.5"}],
        )
        try:
            cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            t = smoke.resolve_stack(cfn, apigw, name)
            self.assertEqual(t.api_url, "http://127.0.0.1:3000/")
            self.assertEqual(t.stream, "vehicle-telemetry")
            self.assertEqual(t.api_key, "smoke-test-key-value-0123456789")
            self.assertEqual(t.rapid_threshold, Decimal("12.5"))
            self.assertIsNone(t.sign_region)
        finally:
            cfn.delete_stack(StackName=name)


class PutTests(unittest.TestCase):
    def test_only_failed_entries_are_resent(self):
        rs = smoke.make_readings(random.Random(1), 10, datetime(2026, 12, 7, tzinfo=timezone.utc))
        kinesis = client("kinesis")
        ok = {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
        bad = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
        with Stubber(kinesis) as st:
            st.add_response(
                "put_records",
                {"FailedRecordCount": 2, "Records": [ok] * 8 + [bad] * 2},
                {"StreamName": "s", "Records": [{"Data": r.payload(), "PartitionKey": rs[0].vin} for r in rs]},
            )
            st.add_response(
                "put_records",
                {"Records": [ok] * 2},
                {"StreamName": "s", "Records": [{"Data": r.payload(), "PartitionKey": rs[0].vin} for r in rs[8:]]},
            )
            self.assertEqual(smoke.put_readings(kinesis, "s", rs), 10)
            st.assert_no_pending_responses()


if __name__ == "__main__":
    unittest.main()
