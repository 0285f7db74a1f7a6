"""What the benchmarks on the local stack share (benches/lib/memory_bench.py and
benches/stack/stack_bench.py): the boto3 clients, Data API statements, and one run's
throwaway resources (database with the infra/sql schema, Kinesis streams, lake objects
under the run's prefix, the run directory), created and removed the same way.
Stdlib + boto3 (the LocalStack venv's); endpoints come from the environment that
localstack/lib/common.sh's fl_export_client_env sets.
"""

import os
import random
import shutil
import string
import subprocess
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rnd(x, digits=3):
    """`x` rounded for a results file (None stays None)."""
    return None if x is None else round(x, digits)


def percentile(values, p):
    """Linear interpolation between closest ranks (NumPy's default, Hyndman-Fan type 7)."""
    xs = sorted(values)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class BenchError(Exception):
    """A benchmark could not run (a missed target is not an error)."""


class StackRun:
    """One run's clients and resources, named `<tag><MMDDHHMMSS><4 letters>`.

    `args` needs: workgroup, admin_database, bucket, state_dir, psql, pg_port.
    """

    def __init__(self, args, tag):
        self.args = args
        suffix = "".join(random.SystemRandom().choice(string.ascii_lowercase) for _ in range(4))
        self.id = f"{tag}{time.strftime('%m%d%H%M%S', time.gmtime())}{suffix}"
        self.run_dir = Path(args.state_dir) / self.id
        self.database = self.id
        self.lake_prefix = f"{self.id}/vehicle_telematics_raw/"
        self.streams = []
        self.db_created = False
        cfg = Config(retries={"max_attempts": 10, "mode": "standard"})
        self.s3 = boto3.client("s3", config=cfg)
        self.kinesis = boto3.client("kinesis", config=cfg)
        self.data_api_url = os.environ.get("AWS_ENDPOINT_URL_REDSHIFT_DATA", "http://127.0.0.1:4599")
        self.data_api = boto3.client("redshift-data", config=cfg, endpoint_url=self.data_api_url)

    def sql(self, sql, database=None, timeout=300):
        """Runs one statement through the Data API; its description once it has finished."""
        r = self.data_api.execute_statement(
            WorkgroupName=self.args.workgroup, Database=database or self.database, Sql=sql)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            d = self.data_api.describe_statement(Id=r["Id"])
            if d["Status"] == "FINISHED":
                return d
            if d["Status"] in ("FAILED", "ABORTED"):
                raise BenchError(f"SQL failed: {sql[:80]}: {d.get('Error')}")
            if time.monotonic() > deadline:
                raise BenchError(f"SQL timed out: {sql[:80]}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def create_database(self):
        """The run directory, and the run's database with infra/sql and infra/sql/local."""
        self.run_dir.mkdir(parents=True)
        self.sql(f"CREATE DATABASE {self.database}", database=self.args.admin_database)
        self.db_created = True
        apply = [str(ROOT / "localstack/apply-sql"), "--database", self.database,
                 "--var", f"LAKE_PREFIX={self.lake_prefix}"]
        with open(self.run_dir / "apply-sql.log", "wb") as logf:
            for extra in ([], ["--dir", str(ROOT / "infra/sql/local")]):
                # CREATE DATABASE finishes asynchronously in the emulator's pool: retry a bit.
                for _ in range(10):
                    if subprocess.run(apply + extra, stdout=logf, stderr=subprocess.STDOUT).returncode == 0:
                        break
                    time.sleep(1)
                else:
                    raise BenchError(f"apply-sql failed; see {self.run_dir / 'apply-sql.log'}")

    def add_stream(self, name, shards):
        """A Kinesis stream, removed by `remove_resources`; returns once it exists."""
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        self.streams.append(name)
        self.kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        return name

    def remove_resources(self, ok):
        """Best effort, each failure logged: streams, lake objects, database, run directory
        (kept when the run failed or BENCH_KEEP is set)."""
        for s in self.streams:
            try:
                self.kinesis.delete_stream(StreamName=s, EnforceConsumerDeletion=True)
            except Exception as e:  # noqa: BLE001 - cleanup is best effort, report and go on
                log(f"cleanup: stream {s}: {e}")
        try:
            self.delete_objects()
        except Exception as e:  # noqa: BLE001
            log(f"cleanup: lake objects: {e}")
        if self.db_created and self.args.psql:
            # FORCE: the emulator keeps pooled sessions open on the database.
            r = subprocess.run(
                [self.args.psql, "-X", "-q", "-h", "127.0.0.1", "-p", str(self.args.pg_port),
                 "-U", "postgres", "-d", "postgres", "-c",
                 f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)"],
                capture_output=True, text=True)
            if r.returncode != 0:
                log(f"cleanup: DROP DATABASE {self.database}: {r.stderr.strip()}")
        if ok and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            log(f"logs kept in {self.run_dir}")

    def delete_objects(self):
        """Every object under `<id>/` in the lake bucket."""
        # List and delete until nothing is left: LocalStack's ListObjectsV2 was seen to
        # report a 1000-key page as not truncated, so its pagination is not relied on.
        deleted = 0
        for _ in range(1000):
            page = self.s3.list_objects_v2(Bucket=self.args.bucket, Prefix=f"{self.id}/")
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                break
            self.s3.delete_objects(Bucket=self.args.bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
        if deleted:
            log(f"cleanup: deleted {deleted} lake objects under s3://{self.args.bucket}/{self.id}/")
