"""Tests of infra/lib/cost.py against hand-computed values (worked out in the comments)."""

import contextlib
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import cost  # noqa: E402


class HundredVehicles(unittest.TestCase):
    """100 vehicles, one 420-byte reading per second each, template defaults.

    records = 100 x 730 h x 3600 s = 262,800,000; an on-demand stream has >= 4 shards.
    """

    def setUp(self):
        self.e = cost.estimate(100)

    def test_kinesis(self):
        # 730 h x $0.04 = 29.20
        # ingest, each record billed as 1 KiB: 262.8e6 x 1024 B / 2^30 = 250.6256 GB x $0.08 = 20.0500
        # retrieval, two consumers: 2 x 262.8e6 x 420 B / 2^30 = 205.5918 GB x $0.04 = 8.2237
        self.assertEqual(self.e.facts["shards"], 4)
        self.assertAlmostEqual(self.e.lines["Kinesis"], 29.20 + 20.0500 + 8.2237, places=3)

    def test_lambda(self):
        # 25 records/s per shard, far below a batch of 500: stream-processor runs once per
        # 1 s window per shard (4/s), lake-writer once per 5 s window (0.8/s).
        # requests: 4.8/s x 2,628,000 s = 12,614,400 -> 12.6144 x $0.20 = 2.52288
        # GB-s: (4 x 1 s x 0.25 GB + 0.8 x 0.5 s x 0.5 GB) x 2,628,000 = 3,153,600
        #       x $0.0000133334 = 42.04821
        self.assertEqual(self.e.facts["invocations_per_month"], 12_614_400)
        self.assertAlmostEqual(self.e.facts["gb_seconds"], 3_153_600)
        self.assertAlmostEqual(self.e.lines["Lambda"], 2.52288 + 42.04821, places=3)

    def test_s3(self):
        # one object per lake-writer invocation: 0.8/s x 2,628,000 = 2,102,400 PUTs x $0.005/1000 = 10.512
        # 262.8e6 readings x 200 B / 2^30 = 48.9503 GB x $0.023 = 1.12586
        self.assertEqual(self.e.facts["s3_puts"], 2_102_400)
        self.assertAlmostEqual(self.e.lines["S3 lake"], 10.512 + 1.12586, places=3)

    def test_sqs(self):
        # 2,102,400 objects x 1.2 requests / 1e6 x $0.40 = 1.009152
        self.assertAlmostEqual(self.e.lines["SQS lake changes"], 1.009152, places=6)

    def test_redshift_never_idles_while_readings_flow(self):
        # 4 statements/s, each keeping the workgroup billed >= 60 s: busy all month.
        # 8 RPU x 730 h x $0.375 = 2190; storage 100 x 86400 x 3 days x 40 B / 2^30 = 0.96559 GB x $0.024 = 0.02317
        self.assertEqual(self.e.facts["busy_fraction"], 1.0)
        self.assertAlmostEqual(self.e.lines["Redshift Serverless"], 2190 + 0.02317, places=3)


class Idle(unittest.TestCase):
    def test_idle_deployment(self):
        # No readings: no function invocations; the workgroup runs 4 refreshes an hour
        # (60 s minimum each) and 10 min of batch-views a day:
        # busy = 4 x 60 / 3600 + 10 / 1440 = 0.0666667 + 0.0069444 = 0.0736111
        # 8 RPU x 0.0736111 x 730 h x $0.375 = 161.2083; Kinesis: 730 h x $0.04 = 29.20
        e = cost.estimate(0)
        self.assertAlmostEqual(e.facts["busy_fraction"], 0.0736111, places=6)
        self.assertAlmostEqual(e.lines["Redshift Serverless"], 161.2083, places=3)
        self.assertAlmostEqual(e.lines["Kinesis"], 29.20, places=6)
        self.assertEqual(e.lines["Lambda"], 0)


class Invocations(unittest.TestCase):
    def test_a_full_batch_cuts_before_the_window(self):
        # 1,000 records/s per shard, batch 500, 5 s window, 0.2 s per invocation: 2/s per shard.
        self.assertAlmostEqual(cost.invocations_per_s(3, 1000, 500, 5, 0.2), 6)

    def test_one_invocation_at_a_time_per_shard(self):
        # 1,000 records/s, batch 100 would need 10/s, but each takes 0.5 s: 2/s per shard.
        self.assertAlmostEqual(cost.invocations_per_s(1, 1000, 100, 0, 0.5), 2)

    def test_provisioned_single_shard(self):
        # 1 shard x 730 h x $0.015 = 10.95; PUT units: 262.8e6 x 1 (<= 25 KB) / 1e6 x $0.014 = 3.6792
        e = cost.estimate(100, stream_mode="PROVISIONED", shards=1)
        self.assertAlmostEqual(e.lines["Kinesis"], 10.95 + 3.6792, places=4)


class DataApiCalls(unittest.TestCase):
    def test_describe_calls_follow_the_adapters_waits(self):
        # BatchExecuteStatement waits up to 30 s: a statement that ends within it needs one
        # DescribeStatement (row counts) whatever its length.
        self.assertEqual(cost.describe_polls(0), 1)
        self.assertEqual(cost.describe_polls(1.0), 1)
        self.assertEqual(cost.describe_polls(30), 1)
        # 45 s: the execute waits 30 s, the first DescribeStatement the remaining 15 s.
        self.assertEqual(cost.describe_polls(45), 2)
        # 61 s: 30 + 30 + 1.
        self.assertEqual(cost.describe_polls(61), 3)

    def test_one_transaction_up_to_the_largest_batch(self):
        # 100,000 // (215 + 1) = 462 rows per VALUES statement, 36 statements per transaction:
        # 16,632 rows; a 6 MB batch (5,719 readings) is one BatchExecuteStatement.
        self.assertEqual(cost.transactions_for(0), 0)
        self.assertEqual(cost.transactions_for(5719), 1)
        self.assertEqual(cost.transactions_for(16_632), 1)
        self.assertEqual(cost.transactions_for(16_633), 2)


class SpeedPathCapacity(unittest.TestCase):
    def test_template_defaults(self):
        # Window 1 s, batch 500, 1 s statements: a busy shard fills the batch (500 records);
        # 1 BatchExecuteStatement + 1 DescribeStatement per invocation.
        # Quotas: 20/s x 500 = 10,000; 100/1 x 500 = 50,000; 200 active / 1 s x 500 = 100,000.
        # The lock: one 500-reading transaction a second = 500 readings/s, which binds.
        c = cost.speed_path_capacity(1, batch_size=500)
        self.assertEqual(c.records_per_invocation, 500)
        self.assertEqual(c.calls, {"BatchExecuteStatement": 1, "DescribeStatement": 1, "GetStatementResult": 0})
        self.assertAlmostEqual(c.ceilings["BatchExecuteStatement requests/s"], 10_000)
        self.assertAlmostEqual(c.ceilings["DescribeStatement requests/s"], 50_000)
        self.assertAlmostEqual(c.ceilings["active statements"], 100_000)
        self.assertEqual(c.binding, (cost.LOCK_LIMIT, 500))
        self.assertEqual(c.binding_quota, ("BatchExecuteStatement requests/s", 10_000))

    def test_polling_describe_calls_move_the_quota_ceiling(self):
        # Polling without WaitTimeSeconds (11 DescribeStatement for a 1 s statement at 10 ms x
        # 1.5^n sleeps): 100/11 x 500 = 4,545.45 readings/s, reached before BatchExecuteStatement.
        c = cost.speed_path_capacity(1, batch_size=500, describe_calls=11)
        self.assertAlmostEqual(c.ceilings["DescribeStatement requests/s"], 4545.4545, places=3)
        self.assertEqual(c.binding_quota[0], "DescribeStatement requests/s")

    def test_five_second_window_largest_batch(self):
        # Batch 10,000 is cut at 6 MB: 6,291,456 // 1,100 = 5,719 readings. A 5 s window on a
        # shard at 1,000 records/s gives 5,000. DescribeStatement: 100/1 x 5,000 = 500,000;
        # BatchExecuteStatement: 20 x 5,000 = 100,000; the lock: 5,719 / 1 s.
        c = cost.speed_path_capacity(5, batch_size=10_000)
        self.assertEqual(c.records_per_invocation, 5000)
        self.assertAlmostEqual(c.ceilings["DescribeStatement requests/s"], 500_000)
        self.assertAlmostEqual(c.ceilings["BatchExecuteStatement requests/s"], 100_000)
        self.assertEqual(c.binding, (cost.LOCK_LIMIT, 5719))

    def test_one_second_window_is_window_bound(self):
        # Batch 2,000, window 1 s: 1,000 records per invocation; BatchExecuteStatement is the
        # first quota reached at 20 x 1,000 = 20,000 readings/s (DescribeStatement: 100,000).
        c = cost.speed_path_capacity(1, batch_size=2000)
        self.assertEqual(c.records_per_invocation, 1000)
        name, value = c.binding_quota
        self.assertEqual(name, "BatchExecuteStatement requests/s")
        self.assertAlmostEqual(value, 20_000)
        self.assertAlmostEqual(c.ceilings["DescribeStatement requests/s"], 100_000)


class PerMillion(unittest.TestCase):
    def test_sums_back_to_the_monthly_table(self):
        # 100 vehicles: 262.8 million readings a month; the per-million lines times that are
        # the monthly lines, so the two README tables agree.
        e = cost.estimate(100, batch_size=2000)
        per = cost.per_million(e)
        self.assertAlmostEqual(sum(per.values()) * 262.8, e.total, places=6)
        # Redshift: 2,190.02 / 262.8 = 8.3334 per million readings
        self.assertAlmostEqual(per["Redshift Serverless"], 8.3334, places=4)

    def test_no_readings_no_rate(self):
        self.assertEqual(cost.per_million(cost.estimate(0)), {})
        # An idle deployment has no column in the per-million table.
        head = cost.per_million_table([cost.estimate(0), cost.estimate(100)]).splitlines()[0]
        self.assertEqual(head, "| USD per million readings | 100 vehicles |")

    def test_bench_sections_follow_the_contract(self):
        # benches/README.md: one JSON file per section, every metric with the same keys.
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(cost.main(["--batch-size", "2000", "--bench-json", d]), 0)
            for name in ("cost_per_million", "speed_path_capacity"):
                doc = json.loads((Path(d) / f"{name}.json").read_text())
                self.assertEqual(doc["section"], name)
                self.assertTrue(doc["metrics"])
                for m in doc["metrics"]:
                    self.assertEqual(set(m), {"name", "value", "unit", "target", "met", "baseline", "ratio", "detail"})
            title = json.loads((Path(d) / "cost_per_million.json").read_text())["title"]
            self.assertIn("cost per million readings", title.lower())


class StreamingIngestion(unittest.TestCase):
    """SpeedPath=streaming-ingestion: no stream-processor; view-refresher loads on its schedule."""

    def test_lambda_requests_and_gb_seconds(self):
        # lake-writer 0.8/s as in HundredVehicles; view-refresher 60/h = 1/60 per s.
        # requests: (0.8 + 1/60) x 2,628,000 = 2,146,200
        # GB-s: (0.8 x 0.5 s x 0.5 GB + 1/60 x 5 s x 0.25 GB) x 2,628,000 = 525,600 + 54,750 = 580,350
        e = cost.estimate(100, speed_path="streaming-ingestion")
        self.assertAlmostEqual(e.facts["invocations_per_month"], 2_146_200)
        self.assertAlmostEqual(e.facts["gb_seconds"], 580_350)

    def test_a_five_minute_schedule_lets_the_workgroup_idle(self):
        # 12 loads/h, each billed at least 60 s: 720 s/h = 0.2, plus batch 10 min/day = 0.006944
        e = cost.estimate(100, speed_path="streaming-ingestion", loads_per_hour=12)
        self.assertAlmostEqual(e.facts["busy_fraction"], 0.2 + 10 / 1440)
        # every minute: 60 x 60 s fills the hour
        self.assertEqual(cost.estimate(100, speed_path="streaming-ingestion").facts["busy_fraction"], 1.0)

    def test_streaming_mv_rows_kept_are_stored_too(self):
        # Loads delete what they loaded (default 0 days); kept 7 days, the extra storage is
        # 100 readings/s x 86,400 s x 7 days x 900 B / 2^30 = 50.6639 GB of managed storage
        lam = cost.estimate(100)
        st = cost.estimate(100, speed_path="streaming-ingestion", stream_mv_days_kept=7)
        extra_gb = 100 * 86_400 * 7 * 900 / 2**30
        rpu_delta = (st.facts["rpu_hours"] - lam.facts["rpu_hours"]) * cost.PRICES["redshift_rpu_hour"]
        self.assertAlmostEqual(st.lines["Redshift Serverless"] - lam.lines["Redshift Serverless"] - rpu_delta,
                               extra_gb * cost.PRICES["redshift_rms_gb_month"], places=6)

    def test_unknown_path_is_refused(self):
        with self.assertRaises(ValueError):
            cost.estimate(100, speed_path="kinesis")

    def test_comparison_marks_loads_the_lambda_path_cannot_carry(self):
        # KinesisBatchSize 500: the LOCK ceiling is 500 readings per 1 s transaction.
        rows = cost.path_comparison([100, 500, 1_000], batch_size=500)
        self.assertEqual([r["lambda_carries"] for r in rows], [True, True, False])
        self.assertAlmostEqual(rows[0]["lambda_ceiling"], 500)
        table = cost.comparison_table(rows)
        self.assertIn("no (ceiling ≈ 500 readings/s)", table)


if __name__ == "__main__":
    unittest.main()
