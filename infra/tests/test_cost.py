"""Tests of infra/lib/cost.py against hand-computed values (worked out in the comments)."""

import sys
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


if __name__ == "__main__":
    unittest.main()
