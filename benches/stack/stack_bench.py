#!/usr/bin/env python3
"""Fleetline stack benchmarks (issue #9, part B), run by benches/stack/run.

Sections (one JSON file each in --out, contract in benches/stack/README.md):
  freshness          PutRecords -> reading visible through the REST API, p50/p95/max
  sustained_ingest   readings/s through Kinesis, both consumers and the REST API, at 2 and 4
                     shards, offered load steps until one is not sustained (ingest.py)
  data_api_calls     Data API calls per 1,000 readings and per stream-processor invocation,
                     as the emulator counts them (calls.py)
  query_latency      p50/p99 of the six REST endpoints over a year of data for N vehicles
  batch_incremental  batch-views: one new day (incremental) vs a full rebuild
  batch_history      batch-views: the same change after 30, 120 and 365 days of history

Everything goes through the real pieces: LocalStack Kinesis, the local runner (which hosts
the real function binaries and plays the event source mappings and API Gateway), the Data
API emulator over PostgreSQL. Every resource gets a unique name and is removed at the end.
Stdlib + boto3 (the LocalStack venv's).
"""

import argparse
import base64
import datetime as dt
import decimal
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import string
import subprocess
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches" / "lib"))
from stack_run import BenchError, StackRun, log, percentile, rnd  # noqa: E402  (benches/lib/stack_run.py)
sys.path.insert(0, str(ROOT / "localstack" / "lib"))
from resources import ensure_lake_changes, remove_lake_changes  # noqa: E402  (the demo's too)
from ingest import sustained_ingest  # noqa: E402  (benches/stack/ingest.py)
from calls import data_api_calls  # noqa: E402  (benches/stack/calls.py)

# Sizes. "full" is what the issue asks for; "quick" keeps the whole run under ~3 min.
SIZES = {
    "full": {
        # Freshness with stream-processor's batching window at 0 (what the window costs).
        "fresh_rounds": 24,
        "fresh_group": 5,
        # Freshness with the template's defaults (SpeedBatchingWindowSeconds=1): >= 200 samples.
        "fresh_default_rounds": 55,
        "fresh_default_group": 4,
        # The year: N vehicles x 365 days (+ 1 new day), coarse readings.
        "vehicles": 100,
        "days": 365,
        "trips_per_day": 2,
        "interval": "120s",
        "duration": "1200s",
        "requests": 200,
        "load_timeout_s": 1500,
        # Batch cost against history length: the same change after this many days of lake.
        "history": (30, 120, 365),
    },
    "quick": {
        "fresh_rounds": 3,
        "fresh_group": 4,
        "fresh_default_rounds": 10,
        "fresh_default_group": 4,
        "vehicles": 10,
        "days": 30,
        "trips_per_day": 2,
        "interval": "120s",
        "duration": "1200s",
        "requests": 30,
        "load_timeout_s": 300,
        "history": (5, 10, 20),
    },
}
POLL_S = 0.05  # pause between two polls of the REST API while waiting for a reading
VISIBLE_DEADLINE_S = 30.0  # a reading not visible by then counts as "not visible"
DEFAULT_WINDOW_S = 1  # template.yaml SpeedBatchingWindowSeconds default (stream-processor)
SEED = 11
LAKE_BATCH = 1000  # records per lake-writer invocation in the bulk load
SECTIONS = ("freshness", "sustained_ingest", "data_api_calls", "batch_history", "batch_incremental",
            "query_latency")


# Every endpoint's p99 at most this many times SELECT 1's, measured in the same run.
P99_TARGET_RATIO = 3.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(name, value, unit, target=None, met=None, baseline=None, ratio=None):
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "met": met,
        "baseline": baseline,
        "ratio": ratio,
    }


class Interrupted(BaseException):
    pass


# ------------------------------------------------------------------------------------------
# HTTP (one persistent connection per target, so the numbers are the server's, not TCP setup)


class Http:
    def __init__(self, port, timeout=60.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, timeout=None):
        """Returns (status, headers dict, body bytes, seconds)."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=timeout or self.timeout
                )
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                elapsed = time.perf_counter() - started
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return resp.status, hdrs, data, elapsed
            except (ConnectionError, http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: retry once on a new one.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path):
        return self.request("GET", path)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------------------------------------------
# The local runner


class Runner:
    """One local-runner process with its own stream, state dir, ports and logs."""

    def __init__(self, bench, name, stream, overrides=(), functions=None, resource_refs=()):
        self.bench = bench
        self.name = name
        self.stream = stream
        self.api_port = free_port()
        self.invoke_port = free_port()
        self.dir = bench.run_dir / name
        self.proc = None
        args = [
            str(bench.bin_dir / "local-runner"),
            "--template", str(ROOT / "template.yaml"),
            "--bin-dir", str(bench.bin_dir),
            "--state-dir", str(self.dir / "state"),
            "--log-dir", str(self.dir / "logs"),
            "--env-file", str(bench.env_file),
            "--stream", stream,
            "--api-listen", f"127.0.0.1:{self.api_port}",
            "--invoke-listen", f"127.0.0.1:{self.invoke_port}",
            "--quiet",
            # The benchmark runs batch-views itself; a daily schedule firing mid-run would
            # distort the numbers (and the boundary).
            "--schedule-override", "batch-views=off",
        ]
        for o in overrides:
            args += ["--parameter-override", o]
        for r in resource_refs:
            args += ["--resource-ref", r]
        if functions:
            args += ["--functions", ",".join(functions)]
        self.args = args
        self.api = Http(self.api_port)
        self.invoke = Http(self.invoke_port, timeout=1000.0)

    def start(self):
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        out = open(self.dir / "runner.log", "ab")
        self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()
        self.bench.processes.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"runner {self.name} exited ({self.proc.returncode}); "
                                 f"log: {self.dir / 'runner.log'}")
            try:
                status, _, _, _ = self.invoke.get("/health")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise BenchError(f"runner {self.name} not ready after 60 s; log: {self.dir / 'runner.log'}")
        # Ready = the mappings poll their shards (the stream exists before the runner starts).
        self.wait_for(lambda s: all(m.get("state") == "running" for m in s.get("mappings", []))
                      and len(s.get("shards", [])) > 0, 60, "mappings running")
        log(f"runner {self.name}: API :{self.api_port}, Invoke API :{self.invoke_port}, stream {self.stream}")

    def status(self):
        code, _, body, _ = self.invoke.get("/runner/status")
        if code != 200:
            raise BenchError(f"/runner/status -> {code}")
        return json.loads(body)

    def wait_for(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if pred(self.status()):
                    return
            except (OSError, ValueError, BenchError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"runner {self.name}: {what}: not reached within {timeout} s")
            time.sleep(0.5)

    def acked(self, status=None):
        """Records acknowledged (or sent to the on-failure file) per function, all shards."""
        status = status or self.status()
        done = {}
        for shard in status.get("shards", []):
            f = shard.get("function")
            done[f] = done.get(f, 0) + shard.get("records_acknowledged", 0) + shard.get(
                "records_to_on_failure", 0)
        return done

    def invoke_fn(self, function, payload):
        """Synchronous invocation through the Invoke API; returns (answer, seconds)."""
        body = json.dumps(payload).encode()
        code, hdrs, data, secs = self.invoke.request(
            "POST", f"/2015-03-31/functions/{function}/invocations", body=body,
            headers={"content-type": "application/json"}, timeout=1000.0)
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            answer = {"raw": data.decode("utf-8", "replace")}
        if code != 200 or "x-amz-function-error" in hdrs or (
                isinstance(answer, dict) and "error" in answer):
            what = json.dumps(payload)[:120]
            raise BenchError(f"{function} {what} -> {code} {hdrs.get('x-amz-function-error')}: "
                             f"{str(answer)[:600]}")
        return answer, secs

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.api.close()
        self.invoke.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log(f"runner {self.name} did not stop after SIGTERM; killing it")
            self.proc.kill()
            self.proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------
# The benchmark


class Bench(StackRun):
    def __init__(self, args):
        super().__init__(args, "bench")
        self.quick = args.quick
        self.size = SIZES["quick" if args.quick else "full"]
        self.out = Path(args.out)
        self.bin_dir = Path(args.bin_dir)
        self.env_file = self.run_dir / "env"
        self.processes = []
        self.runners = []
        self.today = dt.datetime.now(dt.timezone.utc).date()
        self.rng = random.Random(SEED)
        self.truths = []
        self.retries = []
        self.sqs = boto3.client("sqs")
        self.changes_queue = None
        self.command = ("BENCH_QUICK=1 " if self.quick else "") + "benches/stack/run"
        self.machine = (f"{platform.machine()}, {os.cpu_count()} cores "
                        f"({cpu_model()}), {mem_gib()} GiB RAM, {platform.system()} "
                        f"{platform.release()}; debug build of the functions (as tests/run and the "
                        f"demo use); the stack is shared with whatever else runs on the machine")

    # --- resources ---

    def setup(self):
        log(f"run {self.id}: database {self.database}, lake s3://{self.args.bucket}/{self.lake_prefix}, "
            f"logs {self.run_dir}")
        self.create_database()
        self.env_file.write_text(
            f"FLEETLINE_REDSHIFT_DATABASE={self.database}\n"
            f"LAKE_PREFIX={self.lake_prefix}\n"
            f"REJECTED_PREFIX={self.id}/rejected/\n")

    def create_stream(self, tag):
        return self.add_stream(f"fleetline-{self.id}-{tag}", self.args.stream_shards)

    def runner(self, name, stream, overrides=(), functions=None, resource_refs=()):
        r = Runner(self, name, stream, overrides, functions, resource_refs)
        self.runners.append(r)
        r.start()
        return r

    def cleanup(self, ok):
        for r in self.runners:
            try:
                r.stop()
            except Exception as e:  # noqa: BLE001 - cleanup is best effort, report and go on
                log(f"cleanup: runner {r.name}: {e}")
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.changes_queue:
            try:
                remove_lake_changes(self.s3, self.sqs, self.args.bucket, self.changes_queue)
            except Exception as e:  # noqa: BLE001 - cleanup is best effort, report and go on
                log(f"cleanup: queue {self.changes_queue}: {e}")
        self.remove_resources(ok)

    def write(self, section, title, notes, metrics, tables=None):
        doc = {"section": section, "title": title, "command": self.command,
               "notes": [self.machine] + notes, "metrics": metrics}
        if tables:
            doc["tables"] = tables
        path = self.out / f"{section}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"wrote {path}")
        for m in metrics:
            extra = ""
            if m["target"]:
                extra = f"  (target {m['target']}: {'met' if m['met'] else 'NOT met' if m['met'] is False else 'n/a'})"
            print(f"    {m['name']}: {m['value']} {m['unit']}{extra}", flush=True)

    # --- freshness ---

    def freshness_samples(self, runner, rounds, group, label):
        """Rounds of `group` readings of one fresh VIN (distinct trips), one PutRecords call
        each; the trips endpoint is polled every POLL_S until every trip shows up."""
        latencies, missing, put_times, polls = [], 0, [], 0
        for rnd_no in range(rounds):
            vin = "BENCH" + "".join(self.rng.choice(string.ascii_uppercase + string.digits)
                                    for _ in range(12))
            now = dt.datetime.now(dt.timezone.utc)
            if now + dt.timedelta(seconds=1) > dt.datetime.combine(
                    now.date() + dt.timedelta(days=1), dt.time(), dt.timezone.utc):
                time.sleep(1.1)  # do not straddle midnight UTC: all readings on one date
                now = dt.datetime.now(dt.timezone.utc)
            date = now.date().isoformat()
            trips, records = [], []
            for j in range(group):
                ts = now + dt.timedelta(milliseconds=j)
                trip = f"fresh-{label}-{rnd_no:03d}-{j}"
                trips.append(trip)
                reading = {
                    "VIN": vin, "trip_id": trip, "_id_": f"bench-{j}",
                    "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S.%f") + "000",
                    "vehicleSpeed": 50.0, "acceleration": 0.0, "odometer": 1000.0 + j,
                    "engineSpeed": 2000, "fuelLevel": 50.0, "fuelConsumedSinceRestart": 0.1,
                    "oilTemp": 90.0, "brake": 0, "brakePedalStatus": False,
                    "ignitionStatus": "run", "transmissionGearPosition": "third",
                    "location": {"latitude": 47.61, "longitude": -122.33},
                }
                records.append({"Data": json.dumps(reading).encode(), "PartitionKey": vin})
            t0 = time.perf_counter()
            resp = self.kinesis.put_records(StreamName=runner.stream, Records=records)
            put_times.append(time.perf_counter() - t0)
            if resp.get("FailedRecordCount"):
                raise BenchError(f"PutRecords: {resp['FailedRecordCount']} records failed")
            seen = {}
            while len(seen) < group and time.perf_counter() - t0 < VISIBLE_DEADLINE_S:
                code, _, body, _ = runner.api.get(f"/v1/vehicles/{vin}/trips?date={date}")
                polls += 1
                t = time.perf_counter() - t0
                if code == 200:
                    for row in json.loads(body).get("data", []):
                        if row.get("trip_id") in trips and row.get("readings", 0) >= 1:
                            seen.setdefault(row["trip_id"], t)
                if len(seen) < group:
                    time.sleep(POLL_S)
            latencies += [seen[t] for t in trips if t in seen]
            missing += sum(1 for t in trips if t not in seen)
            if (rnd_no + 1) % 10 == 0 or rnd_no + 1 == rounds:
                log(f"  {label}: {rnd_no + 1}/{rounds} rounds, {len(latencies)} samples, "
                    f"p50 so far {percentile(latencies, 50):.2f} s")
            # Random phase against the runner's 1 s idle poll, so rounds do not lock onto it
            # (a spread of start times, not a synchronisation wait).
            time.sleep(self.rng.uniform(0.0, 1.0))
        return latencies, missing, put_times, polls

    def freshness(self):
        s = self.size
        log("freshness 1/2: runner with SpeedBatchingWindowSeconds=0 (read -> invoke at once)")
        stream = self.create_stream("w0")
        r0 = self.runner("fresh-w0", stream, overrides=["SpeedBatchingWindowSeconds=0"],
                         functions=["stream-processor", "query-api"])
        lat0, miss0, put0, polls0 = self.freshness_samples(r0, s["fresh_rounds"], s["fresh_group"], "w0")
        r0.stop()
        log(f"freshness 2/2: runner with the template's defaults (batching window {DEFAULT_WINDOW_S} s)")
        stream = self.create_stream("w1")
        r5 = self.runner("fresh-w1", stream, functions=["stream-processor", "query-api"])
        lat5, miss5, put5, _ = self.freshness_samples(
            r5, s["fresh_default_rounds"], s["fresh_default_group"], "w1")
        r5.stop()
        # The readings of this section are not part of the year of data the next sections use.
        self.sql("DELETE FROM speed.telemetry WHERE vin LIKE 'BENCH%'")

        p95 = percentile(lat0, 95)
        p95_5 = percentile(lat5, 95)
        dflt = f"template default, {DEFAULT_WINDOW_S} s window"
        metrics = [
            metric(f"p50 PutRecords→REST ({dflt})", rnd(percentile(lat5, 50)), "s"),
            metric(f"p95 PutRecords→REST ({dflt})", rnd(p95_5), "s",
                   target="<= 3 s", met=None if p95_5 is None else p95_5 <= 3.0),
            metric(f"max PutRecords→REST ({dflt})", rnd(max(lat5, default=None)), "s"),
            metric(f"samples ({dflt})", len(lat5), "readings",
                   target=">= 200" if not self.quick else None,
                   met=(len(lat5) >= 200) if not self.quick else None),
            metric(f"not visible within 30 s ({dflt})", miss5, "readings"),
            metric("p50 PutRecords→REST (batching window 0 s)", rnd(percentile(lat0, 50)), "s"),
            metric("p95 PutRecords→REST (batching window 0 s)", rnd(p95), "s"),
            metric("samples (batching window 0 s)", len(lat0), "readings"),
            metric("not visible within 30 s (batching window 0 s)", miss0, "readings"),
            metric("p50 PutRecords call (LocalStack Kinesis)", rnd(percentile(put0 + put5, 50) * 1000, 1), "ms"),
        ]
        notes = [
            "Latency = from just before the PutRecords call to the receipt of the first "
            "GET /v1/vehicles/{vin}/trips?date=D response (runner's API Gateway → query-api → "
            "Data API emulator) that lists the reading's trip. query-api aggregates "
            "speed.telemetry directly, not the materialized view, so view-refresher's schedule "
            "is not on this path: a reading is visible once stream-processor's insert commits.",
            f"Path: LocalStack Kinesis → local runner (idle shard poll every 1 s, then the "
            f"batching window) → stream-processor (one Data API transaction per batch) → "
            f"speed.telemetry. Polled every {POLL_S * 1000:.0f} ms plus the request's own time "
            f"({polls0} polls in the window-0 part).",
            f"Rounds of {s['fresh_group']} (window 0) / {s['fresh_default_group']} (default) "
            f"readings of one new VIN with distinct trips per PutRecords call, a random 0–1 s "
            f"pause between rounds; {s['fresh_rounds']} / {s['fresh_default_rounds']} rounds. "
            "Samples of one round share a Kinesis batch, so they are not independent.",
            f"stream-processor's batching window is its own parameter, SpeedBatchingWindowSeconds "
            f"(default {DEFAULT_WINDOW_S} s), separate from lake-writer's KinesisBatchingWindowSeconds "
            "(the lake wants fewer, larger objects; the speed layer wants fresh rows). The "
            "window-0 rows show what the window itself costs.",
            "Percentiles: linear interpolation between closest ranks.",
        ]
        if self.quick:
            notes.append("BENCH_QUICK=1: smoke sizes, fewer samples than the issue asks for.")
        self.write("freshness", "Freshness: PutRecords to visible through the REST API", notes, metrics)

    # --- the year of data ---

    def simulator(self, label, start_day, days, extra):
        """Runs the simulator for the fleet; returns its ground truth (also kept for checks)."""
        s = self.size
        truth = self.run_dir / f"truth-{label}.json"
        cmd = [str(self.bin_dir / "simulator"), "--vehicles", str(s["vehicles"]),
               "--interval", s["interval"], "--duration", s["duration"],
               "--trips-per-day", str(s["trips_per_day"]), "--days", str(days),
               "--start", f"{start_day.isoformat()}T06:00:00Z", "--seed", str(SEED),
               "--truth", str(truth), "--quiet"] + extra
        with open(self.run_dir / f"simulator-{label}.log", "wb") as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.processes.append(proc)
            while proc.poll() is None:
                time.sleep(0.2)
        if proc.returncode != 0:
            raise BenchError(f"simulator failed ({proc.returncode}); see {self.run_dir}/simulator-{label}.log")
        t = json.loads(truth.read_text())
        self.truths.append(t)
        return t

    def load_lake(self, runner, start_day, days):
        """Writes `days` days of the fleet into the lake with the real lake-writer, invoked
        through the runner's Invoke API with Kinesis events of LAKE_BATCH records per shard
        (what an event source mapping with that batch size hands over from a busy stream).
        Kinesis itself is bypassed for this bulk load: LocalStack's kinesis-local takes
        seconds per 500-record PutRecords on this machine."""
        lines_path = self.run_dir / "year.jsonl"
        t0 = time.monotonic()
        truth = self.simulator("year", start_day, days, ["--out", str(lines_path)])
        gen_s = time.monotonic() - t0
        shards = [f"shardId-{i:012d}" for i in range(self.args.stream_shards)]
        per_shard = {sh: [] for sh in shards}
        with open(lines_path, "rb") as f:
            for line in f:
                line = line.rstrip(b"\n")
                vin = json.loads(line)["VIN"]
                # Any stable VIN -> shard mapping does; Kinesis hashes the partition key.
                per_shard[shards[sum(vin.encode()) % len(shards)]].append((vin, line))
        arn = f"arn:aws:kinesis:{os.environ.get('AWS_REGION', 'us-east-1')}:000000000000:stream/{runner.stream}"
        batches = []
        for sh, recs in per_shard.items():
            for i in range(0, len(recs), LAKE_BATCH):
                batches.append((sh, i, recs[i:i + LAKE_BATCH]))
        # Shards interleaved, as the runner's per-shard pollers would deliver them.
        batches.sort(key=lambda b: (b[1], b[0]))
        t1 = time.monotonic()
        last = t1
        for n, (sh, first, recs) in enumerate(batches, 1):
            event = {"Records": [{
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": vin,
                            "sequenceNumber": f"4959{first + k + 1:052d}",
                            "data": base64.b64encode(line).decode(),
                            # Whole milliseconds: the runtime's decoder rejects finer ones.
                            "approximateArrivalTimestamp": round(time.time(), 3)},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": f"{sh}:4959{first + k + 1:052d}", "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/lake-writer-role",
                "awsRegion": os.environ.get("AWS_REGION", "us-east-1"), "eventSourceARN": arn,
            } for k, (vin, line) in enumerate(recs)]}
            answer, _ = runner.invoke_fn("lake-writer", event)
            if isinstance(answer, dict) and answer.get("batchItemFailures"):
                raise BenchError(f"lake-writer reported failures: {answer['batchItemFailures'][:3]}")
            if time.monotonic() - last > 15 or n == len(batches):
                last = time.monotonic()
                log(f"  lake-writer: {n}/{len(batches)} batches")
        write_s = time.monotonic() - t1
        lines_path.unlink()
        records = truth["counts"]["records_sent"]
        log(f"  the year: {records} readings generated in {gen_s:.0f} s, written to the lake in {write_s:.0f} s")
        return records, gen_s, write_s

    def stream_day(self, runner, day):
        """Sends one day of the fleet through LocalStack Kinesis (PutRecords) and waits until
        the runner's stream-processor and lake-writer have taken every record."""
        before = runner.acked()
        t0 = time.monotonic()
        truth = self.simulator("new-day", day, 1, ["--kinesis-stream", runner.stream])
        expected = truth["counts"]["records_sent"]
        functions = ("stream-processor", "lake-writer")
        deadline = time.monotonic() + self.size["load_timeout_s"]
        while True:
            done = runner.acked()
            got = {f: done.get(f, 0) - before.get(f, 0) for f in functions}
            if all(v >= expected for v in got.values()):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"new day: consumers did not catch up: {got} of {expected}")
            time.sleep(0.5)
        secs = time.monotonic() - t0
        log(f"  new day {day}: {expected} readings through Kinesis, consumed after {secs:.0f} s")
        return expected, secs

    # --- batch: incremental vs full ---

    def batch(self, runner, payload, what):
        log(f"  batch-views {json.dumps(payload)} ({what})")
        try:
            answer, secs = runner.invoke_fn("batch-views", payload)
        except BenchError as e:
            # The stack is shared: e.g. another session restarting the Data API emulator
            # loses the statement in flight. Every batch-views step is idempotent, so run it
            # again and time that run; the retry is reported in the notes.
            log(f"    failed, retrying once: {e}")
            self.retries.append(f"{what}: {str(e)[:200]}")
            self.wait_emulator()
            answer, secs = runner.invoke_fn("batch-views", payload)
        log(f"    {secs:.1f} s: days_recomputed {answer.get('days_recomputed')}, rows_written "
            f"{answer.get('rows_written')}, partitions_registered {answer.get('partitions_registered')}, "
            f"lake_partitions {answer.get('lake_partitions')}, pruned {answer.get('pruned_speed_rows')}")
        return answer, secs

    def batch_notes_tail(self, notes, ratios):
        """The notes every batch section ends with: retries, and the quick-mode caveat."""
        if self.retries:
            notes.append("Retried once after a failure (shared stack), the successful run is "
                         "the one timed: " + " | ".join(self.retries))
        if self.quick:
            notes.append(f"BENCH_QUICK=1: smoke sizes; {ratios} not compared with the target.")

    def psql_args(self, *tail):
        """psql on the bench's database in the stack's PostgreSQL, stopping at the first error."""
        return [self.args.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                "-p", str(self.args.pg_port), "-U", "postgres", "-d", self.database, *tail]

    def pg_batch_sql(self, from_day, to_day, threshold):
        """Seconds PostgreSQL spends on batch-views' three CALLs for [from_day, to_day),
        run directly (psql) in a transaction that is rolled back. Returns (all three,
        recompute_daily alone)."""
        script = ("\\timing on\nBEGIN;\n"
                  f"CALL batch.recompute_daily(DATE '{from_day}', DATE '{to_day}', "
                  f"CAST({threshold} AS DECIMAL(10,4)));\n"
                  "CALL batch.rapid_acceleration_by_year_sp();\n"
                  "CALL batch.total_miles_driven_by_year_sp();\n"
                  "ROLLBACK;\n")
        r = subprocess.run(
            self.psql_args("-f", "-"),
            input=script, capture_output=True, text=True, timeout=900)
        times = [float(x) / 1000 for x in re.findall(r"^Time: ([0-9.]+) ms", r.stdout, re.M)]
        if r.returncode != 0 or len(times) != 5:  # BEGIN, 3 CALLs, ROLLBACK
            raise BenchError(f"psql batch SQL failed: {r.stderr.strip()[:300]} {r.stdout[:300]}")
        return sum(times[1:4]), times[1]

    def settle_tables(self):
        """VACUUM ANALYZE the bench database before timing queries. The year load and the
        batch runs before leave PostgreSQL dead rows that autovacuum has not reclaimed yet;
        Redshift reclaims deleted rows and refreshes statistics itself in the background
        (automatic vacuum delete and automatic analyze: "Vacuuming tables",
        https://docs.aws.amazon.com/redshift/latest/dg/t_Reclaiming_storage_space202.html),
        so timing a bloated table would measure the emulator's storage, not the query."""
        if not self.args.psql:
            return "not run (no psql): tables may hold dead rows from the load"
        r = subprocess.run(
            self.psql_args("-c", "VACUUM ANALYZE"),
            capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise BenchError(f"VACUUM ANALYZE failed: {r.stderr.strip()[:300]}")
        return "VACUUM ANALYZE before timing (Redshift vacuums and analyzes in the background)"

    def wait_emulator(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self.sql("SELECT 1", timeout=10)
                return
            except Exception:  # noqa: BLE001 - any failure means "not back yet"
                time.sleep(1)
        raise BenchError("the Data API emulator did not answer within 120 s")

    # --- query latency ---

    def query_latency(self, runner, load):
        settled = self.settle_tables()
        s = self.size
        first_day = self.today - dt.timedelta(days=s["days"] + 1)
        last_day = self.today - dt.timedelta(days=1)
        days_in_year = {}
        d = first_day
        while d <= last_day:
            days_in_year[d.year] = days_in_year.get(d.year, 0) + 1
            d += dt.timedelta(days=1)
        year = max(days_in_year, key=lambda y: (days_in_year[y], y))
        vins = sorted({r["vin"] for t in self.truths for r in t["rapid_accelerations_by_vin_year"]})
        if not vins:
            raise BenchError("no VINs in the simulator's ground truth")
        span = min(365, (last_day - first_day).days + 1)
        daily_from = last_day - dt.timedelta(days=span - 1)
        rng = random.Random(SEED + 1)

        def some_day():
            return first_day + dt.timedelta(days=rng.randrange((last_day - first_day).days + 1))

        endpoints = [
            (f"GET /v1/fleet/miles?year={year}", lambda: f"/v1/fleet/miles?year={year}"),
            (f"GET /v1/vehicles/rapid-accelerations?year={year} (first page, limit 100)",
             lambda: f"/v1/vehicles/rapid-accelerations?year={year}"),
            (f"GET /v1/vehicles/{{vin}}/miles?year={year}",
             lambda: f"/v1/vehicles/{rng.choice(vins)}/miles?year={year}"),
            ("GET /v1/vehicles/{vin}/trips?date={day}",
             lambda: f"/v1/vehicles/{rng.choice(vins)}/trips?date={some_day().isoformat()}"),
            (f"GET /v1/fleet/daily ({span} days)",
             lambda: f"/v1/fleet/daily?from={daily_from.isoformat()}&to={last_day.isoformat()}"),
            ("GET /v1/status", lambda: "/v1/status"),
        ]
        # Answers first: the numbers below are only worth something if the API is right.
        checks = self.check_answers(runner, year)

        data_api = Http(int(urllib.parse.urlsplit(self.data_api_url).port or 80))

        def data_api_call(op, body):
            code, _, data, _ = data_api.request(
                "POST", "/", body=json.dumps(body).encode(),
                headers={"content-type": "application/x-amz-json-1.1",
                         "x-amz-target": f"RedshiftData.{op}"})
            if code != 200:
                raise BenchError(f"Data API {op} -> {code}: {data[:200]!r}")
            return json.loads(data)

        def select1():
            # The Data API's JSON protocol by hand (the emulator does not check SigV4), so
            # the baseline is the emulator's round trip, not boto3's overhead; the calls
            # fleetline-aws's client makes for a query: ExecuteStatement asking the service
            # to wait (WaitTimeSeconds), DescribeStatement (also waiting) only if it is not
            # finished yet, then GetStatementResult.
            t0 = time.perf_counter()
            answer = data_api_call("ExecuteStatement", {
                "WorkgroupName": self.args.workgroup, "Database": self.database, "Sql": "SELECT 1",
                "WaitTimeSeconds": 20})
            sid, st = answer["Id"], answer.get("Status")
            while st != "FINISHED":
                if st in ("FAILED", "ABORTED"):
                    raise BenchError(f"SELECT 1: {st}")
                st = data_api_call("DescribeStatement", {"Id": sid, "WaitTimeSeconds": 20})["Status"]
            data_api_call("GetStatementResult", {"Id": sid})
            return time.perf_counter() - t0

        def unknown_path():
            code, _, _, secs = runner.api.get("/v1/bench-no-such-path")
            if code != 404:
                raise BenchError(f"GET /v1/bench-no-such-path -> {code}, expected 404")
            return secs

        samples = {name: [] for name, _ in endpoints}
        base = {"select1": [], "unknown": []}
        errors = {}
        n = s["requests"]
        warmup = 3
        log(f"query latency: {n} requests per endpoint (+{warmup} warm-up), interleaved, year {year}, "
            f"{len(vins)} vehicles")
        for i in range(n + warmup):
            # Interleaved round robin: noise from other work on the machine hits every
            # endpoint alike.
            for name, path in endpoints:
                code, _, body, secs = runner.api.get(path())
                if code != 200:
                    errors[name] = errors.get(name, 0) + 1
                    if errors[name] == 1:
                        log(f"  {name} -> {code}: {body[:200]!r}")
                elif i >= warmup:
                    samples[name].append(secs)
            sel, unk = select1(), unknown_path()
            if i >= warmup:
                base["select1"].append(sel)
                base["unknown"].append(unk)
            if (i + 1) % 50 == 0:
                log(f"  {i + 1}/{n + warmup} rounds")

        ms = lambda x: rnd(x * 1000, 1)  # noqa: E731
        b50, b99 = percentile(base["select1"], 50), percentile(base["select1"], 99)
        metrics = []
        for name, _ in endpoints:
            xs = samples[name]
            p50, p99 = percentile(xs, 50), percentile(xs, 99)
            metrics.append(metric(f"p50 {name}", ms(p50), "ms", baseline=ms(b50),
                                  ratio=rnd(p50 / b50, 2) if p50 and b50 else None))
            ratio = p99 / b99 if p99 and b99 else None
            metrics.append(metric(f"p99 {name}", ms(p99), "ms",
                                  target=f"<= {P99_TARGET_RATIO:g}× SELECT 1's p99",
                                  met=None if self.quick or ratio is None else ratio <= P99_TARGET_RATIO,
                                  baseline=ms(b99), ratio=rnd(ratio, 2) if ratio else None))
        metrics += [
            metric("p50 baseline: SELECT 1 through the Data API emulator", ms(b50), "ms"),
            metric("p99 baseline: SELECT 1 through the Data API emulator", ms(b99), "ms"),
            metric("p50 baseline: unknown path, API Gateway → query-api 404, no SQL",
                   ms(percentile(base["unknown"], 50)), "ms"),
            metric("p99 baseline: unknown path, API Gateway → query-api 404, no SQL",
                   ms(percentile(base["unknown"], 99)), "ms"),
            metric("non-200 answers", sum(errors.values()), "requests"),
        ]
        records = load[0]
        notes = [
            f"Data: {len(vins)} simulated vehicles × {s['days'] + 1} days "
            f"({first_day} … {last_day}), {s['trips_per_day']} trips a day, a reading every "
            f"{s['interval']} for {s['duration']} a day: {records} readings plus the new day's, "
            f"written to the lake by lake-writer (see batch_incremental), then batch-views "
            f"(boundary {self.today}): every day is served from the batch layer "
            f"(batch.vehicle_daily) merged with the speed layer, which holds no rows for days "
            f"≥ the boundary (freshness readings deleted).",
            f"Each request goes through the runner's API Gateway (HTTP keep-alive) → query-api "
            f"(concurrency 1) → Data API emulator → PostgreSQL; closed loop, one request at a "
            f"time, the six endpoints and the two baselines interleaved; {warmup} warm-up rounds "
            f"dropped. Random VINs/days (seeded). p99 of {n} samples ≈ the 2nd-largest.",
            "baseline/ratio of an endpoint = the same percentile of a trivial SELECT 1 sent "
            "to the Data API emulator directly, with the calls fleetline-aws makes for a query "
            "(ExecuteStatement with WaitTimeSeconds, DescribeStatement only if it was not "
            "finished, GetStatementResult; raw JSON protocol, no SDK): the round trip no query "
            "can avoid. The 404 baseline is the runner's API Gateway + query-api without SQL.",
            "Answers checked against the simulator's ground truth before timing: " + checks,
            f"Tables: {settled}.",
        ]
        over = [m["name"].removeprefix("p99 ") for m in metrics if m.get("met") is False]
        if over:
            why = ("; GET /v1/fleet/daily answers 365 rows where the others answer one or a "
                   "page: its time is mostly carrying them through GetStatementResult and "
                   "query-api's JSON, which SELECT 1 does not" if any("fleet/daily" in o for o in over)
                   else "")
            notes.append(f"Over the target in this run: {', '.join(over)}{why}. The ratios move "
                         "by up to 1× between runs on this shared 2-core machine.")
        if errors:
            notes.append(f"non-200 answers per endpoint: {errors}")
        if self.quick:
            notes.append("BENCH_QUICK=1: smoke sizes (not a year of data for 100 vehicles).")
        self.write("query_latency", "Query latency of the REST API over a year of data",
                   notes, metrics)

    def check_answers(self, runner, year):
        """The fleet's miles and every VIN's rapid accelerations for `year`, exactly."""
        miles_nano = sum(r["total_miles_nano"] for t in self.truths
                         for r in t["total_miles_by_year"] if r["year"] == year)
        rapid = {}
        for t in self.truths:
            for r in t["rapid_accelerations_by_vin_year"]:
                if r["year"] == year:
                    rapid[r["vin"]] = rapid.get(r["vin"], 0) + r["rapid_accelerations"]
        problems = []
        code, _, body, _ = runner.api.get(f"/v1/fleet/miles?year={year}")
        data = json.loads(body).get("data", []) if code == 200 else []
        got = (int(decimal.Decimal(data[0]["total_miles_exact"]) * 1_000_000_000)
               if data else None)
        if got != miles_nano:
            problems.append(f"fleet miles {year}: API {got} nano-miles, truth {miles_nano}")
        code, _, body, _ = runner.api.get(f"/v1/vehicles/rapid-accelerations?year={year}&limit=1000")
        rows = json.loads(body).get("data", []) if code == 200 else []
        api = {r["vin"]: r["rapid_accelerations"] for r in rows}
        if {v: c for v, c in api.items() if c} != {v: c for v, c in rapid.items() if c}:
            problems.append(f"rapid accelerations {year}: API and truth differ "
                            f"({sum(api.values())} vs {sum(rapid.values())} in total)")
        if problems:
            for p in problems:
                log(f"  WARNING: {p}")
            return "MISMATCH: " + "; ".join(problems)
        log(f"  answers match the ground truth (fleet miles {year}, rapid accelerations of {len(rapid)} VINs)")
        return (f"fleet miles {year} and the rapid accelerations of every VIN equal the "
                f"simulator's (exact, fixed-point).")

    def year_and_batch(self):
        s = self.size
        log(f"the year: {s['vehicles']} vehicles × {s['days']} days, then 1 new day")
        stream = self.create_stream("year")
        runner = self.runner("year", stream)
        t = self.today
        first = t - dt.timedelta(days=s["days"] + 1)
        new_day = t - dt.timedelta(days=1)
        load1 = self.load_lake(runner, first, s["days"])
        log(f"batch: initial build over the {s['days']}-day lake")
        init, init_s = self.batch(runner, {"boundary": new_day.isoformat()}, "first run: every day")
        load2 = self.stream_day(runner, new_day)
        log("batch: incremental (the new day) vs full rebuild")
        inc, inc_s = self.batch(runner, {"boundary": t.isoformat(), "reprocess_days": 0},
                                "incremental: the new day only")
        full, full_s = self.batch(runner, {"boundary": t.isoformat(), "full": True},
                                  "full rebuild")
        # Same pair again, so the ratio is not one noisy sample. The repeated incremental run
        # recomputes the same day ([B-1, B)) but has no partition to register any more.
        inc2, inc2_s = self.batch(runner, {"boundary": t.isoformat(), "reprocess_days": 1},
                                  "incremental again: same day, nothing new to register")
        full2, full2_s = self.batch(runner, {"boundary": t.isoformat(), "full": True},
                                    "full rebuild again")
        # What the emulator spends syncing the external table before each statement that
        # reads it (nothing new to load): batch-views' swap transaction has three CALLs.
        sync_s = []
        for _ in range(3):
            t0 = time.perf_counter()
            self.sql("SELECT 1 FROM spectrum.vehicle_telematics_raw LIMIT 0")
            sync_s.append(time.perf_counter() - t0)
        sync = statistics.median(sync_s)
        log(f"  emulator sync of every registered partition: {sync:.2f} s per statement")
        # The same three CALLs straight in PostgreSQL (no Data API, no emulator sync), in
        # transactions that are rolled back: what the SQL itself costs for 1 vs all days.
        threshold = full.get("rapid_accel_threshold_kmh_per_s", "10.0")
        sql_inc, sql_full = [], []
        if self.args.psql:
            for _ in range(3):
                sql_inc.append(self.pg_batch_sql(new_day, t, threshold))
                sql_full.append(self.pg_batch_sql(first, t, threshold))
            log(f"  SQL only, median of 3: incremental {statistics.median(x[0] for x in sql_inc):.2f} s, "
                f"full {statistics.median(x[0] for x in sql_full):.2f} s")
        for a, want in ((inc, 1), (inc2, 1), (full, s["days"] + 1), (full2, s["days"] + 1)):
            if a.get("days_recomputed") != want:
                raise BenchError(f"batch-views recomputed {a.get('days_recomputed')} days, expected {want}: {a}")
        ratio = inc_s / full_s
        ratio2 = inc2_s / full2_s
        target = "<= 1/20 of the full rebuild"
        met = None if self.quick else ratio <= 0.05
        met2 = None if self.quick else ratio2 <= 0.05
        ndays = s["days"] + 1
        metrics = [
            metric("incremental run, 1 new day", rnd(inc_s, 2), "s", target=target, met=met,
                   baseline=rnd(full_s, 2), ratio=rnd(ratio, 4)),
            metric(f"full rebuild, {ndays} days", rnd(full_s, 2), "s"),
            metric("incremental run again (same day, no new partition)", rnd(inc2_s, 2), "s",
                   target=target, met=met2, baseline=rnd(full2_s, 2), ratio=rnd(ratio2, 4)),
            metric(f"full rebuild again, {ndays} days", rnd(full2_s, 2), "s"),
            metric("emulator: sync of the external table, nothing new (one statement; "
                   "a batch run has 3 CALLs)", rnd(sync, 2), "s"),
        ]
        if sql_inc:
            si = statistics.median(x[0] for x in sql_inc)
            sf = statistics.median(x[0] for x in sql_full)
            ri = statistics.median(x[1] for x in sql_inc)
            rf = statistics.median(x[1] for x in sql_full)
            metrics += [
                metric("SQL only: incremental (the 3 CALLs in PostgreSQL, 1 day)", rnd(si, 3), "s",
                       target=target, met=None if self.quick else si / sf <= 0.05,
                       baseline=rnd(sf, 3), ratio=rnd(si / sf, 4)),
                metric(f"SQL only: full rebuild (the 3 CALLs in PostgreSQL, {ndays} days)", rnd(sf, 3), "s"),
                metric("SQL only: CALL batch.recompute_daily, 1 day", rnd(ri, 3), "s",
                       baseline=rnd(rf, 3), ratio=rnd(ri / rf, 4)),
                metric(f"SQL only: CALL batch.recompute_daily, {ndays} days", rnd(rf, 3), "s"),
            ]
        metrics += [
            metric(f"first build ({s['days']} days, first sync of every lake object)",
                   rnd(init_s, 2), "s"),
            metric("batch-views' own duration_ms: incremental", inc.get("duration_ms"), "ms"),
            metric("batch-views' own duration_ms: full rebuild", full.get("duration_ms"), "ms"),
            metric("batch.vehicle_daily rows after the full rebuild", full.get("rows_written"), "rows"),
            metric("lake partitions", full.get("lake_partitions"), "partitions"),
        ]
        notes = [
            f"Lake: {s['vehicles']} vehicles, {s['days']} days then 1 new day ({load1[0]} + {load2[0]} "
            f"readings, {s['trips_per_day']} trips/day, a reading every {s['interval']} for "
            f"{s['duration']} a day) written by the real lake-writer (Parquet, one object per day, "
            f"shard and batch). The year: lake-writer invoked through the runner's Invoke API with "
            f"Kinesis events of {LAKE_BATCH} records per shard (LocalStack Kinesis is too slow "
            f"for a bulk load here: seconds per 500-record PutRecords); the new day: PutRecords "
            f"into LocalStack Kinesis, consumed by the runner's event source mappings "
            f"(stream-processor and lake-writer), as in production.",
            "Times are wall clock of a synchronous invocation of the real batch-views binary "
            "through the runner's Invoke API (register partitions, CALL batch.recompute_daily "
            "and the seed's two yearly procedures, move the boundary, prune the speed layer).",
            f"incremental = {{\"boundary\": \"{t}\", \"reprocess_days\": 0}} right after the new "
            f"day reached the lake (registers its partition, recomputes [{new_day}, {t})); full = "
            f"{{\"boundary\": \"{t}\", \"full\": true}} on the same lake ({ndays} days, re-adds "
            f"every partition). The scheduled daily run recomputes the day the boundary moves over "
            f"plus the days whose lake content changed (docs/design.md §9).",
            "Local emulation cost in both: before every CALL the Data API emulator syncs every "
            "registered partition of the external table from LocalStack S3 (one listing per "
            "partition, objects already loaded are not read again), which grows with the lake "
            "whatever the run recomputes; Redshift Spectrum scans only the partitions a query needs. "
            "The seed's yearly procedures rebuild their tables from batch.vehicle_daily in both.",
            "SQL only = the same three CALLs (batch.recompute_daily over the run's days, then the "
            "seed's two yearly procedures) run straight in PostgreSQL with psql, in a transaction "
            "that is rolled back, median of 3 each: the warehouse work without Data API round "
            "trips and without the emulator's sync.",
            f"Load (not a metric): the year generated in {load1[1]:.0f} s and written to the "
            f"lake in {load1[2]:.0f} s; the new day consumed {load2[1]:.0f} s after the simulator started.",
        ]
        self.batch_notes_tail(notes, "the ratio is")
        self.write("batch_incremental", f"Incremental vs full batch run on a {s['days']}-day lake",
                   notes, metrics)
        return runner, load1

    # --- batch: cost against history length ---

    def history_stage(self, runner, day, history):
        """One new day `day` after `history` days of lake: incremental and full runs, each
        twice; the emulator's sync and the SQL alone for that day."""
        nxt = day + dt.timedelta(days=1)
        label = f"{history} days of history"
        self.batch(runner, {"boundary": day.isoformat(), "full": True},
                   f"{label}: register and build the history")
        self.stream_day(runner, day)
        inc, inc_s = self.batch(runner, {"boundary": nxt.isoformat(), "reprocess_days": 0},
                                f"{label}: incremental, the new day")
        full, full_s = self.batch(runner, {"boundary": nxt.isoformat(), "full": True},
                                  f"{label}: full rebuild")
        inc2, inc2_s = self.batch(runner, {"boundary": nxt.isoformat(), "reprocess_days": 1},
                                  f"{label}: incremental again, same day")
        full2, full2_s = self.batch(runner, {"boundary": nxt.isoformat(), "full": True},
                                    f"{label}: full rebuild again")
        for a, want in ((inc, 1), (inc2, 1), (full, history + 1), (full2, history + 1)):
            if a.get("days_recomputed") != want:
                raise BenchError(f"batch-views recomputed {a.get('days_recomputed')} days, "
                                 f"expected {want}: {a}")
        sync_s = []
        for _ in range(3):
            t0 = time.perf_counter()
            self.sql("SELECT 1 FROM spectrum.vehicle_telematics_raw LIMIT 0")
            sync_s.append(time.perf_counter() - t0)
        threshold = full.get("rapid_accel_threshold_kmh_per_s", "10.0")
        sql_one = ([self.pg_batch_sql(day, nxt, threshold) for _ in range(3)]
                   if self.args.psql else [])
        return {
            "history": history, "inc": inc_s, "inc2": inc2_s,
            "full": statistics.mean((full_s, full2_s)),
            "sync": statistics.median(sync_s),
            "sql": statistics.median(x[0] for x in sql_one) if sql_one else None,
            "sql_daily": statistics.median(x[1] for x in sql_one) if sql_one else None,
            "rows": full.get("rows_written"), "partitions": full.get("lake_partitions"),
        }

    def history_length(self):
        """The same change (one new day) after each history length, on one lake that grows
        backwards between stages: stage k's new day is the day after stage k-1's, and the
        days older than the lake so far are loaded before it."""
        s = self.size
        lengths = s["history"]
        truths = len(self.truths)
        log(f"batch cost against history length: {s['vehicles']} vehicles, "
            f"{', '.join(map(str, lengths))} days of history")
        stream = self.create_stream("history")
        # The lake change queue, as template.yaml wires it (and localstack/demo does): an
        # incremental run drains its notifications instead of listing the lake.
        self.changes_queue = f"fleetline-{self.id}-lake-changes"
        url = ensure_lake_changes(self.s3, self.sqs, self.args.bucket, self.lake_prefix,
                                  self.changes_queue)
        runner = self.runner("history", stream, resource_refs=[f"LakeChangesQueue={url}"])
        stages, oldest, load_s = [], None, 0.0
        for k, history in enumerate(lengths):
            day = self.today - dt.timedelta(days=len(lengths) - k)
            first = day - dt.timedelta(days=history)
            days = history if oldest is None else (oldest - first).days
            if days > 0:
                _, gen, write = self.load_lake(runner, first, days)
                load_s += gen + write
            oldest = first
            stages.append(self.history_stage(runner, day, history))
        # The simulator truths of this section are not part of the year the answers are checked on.
        del self.truths[truths:]
        self.write_history(stages, load_s)

    def write_history(self, stages, load_s):
        s = self.size
        base = stages[0]
        target = f"<= 1.2× the {base['history']}-day history's"
        metrics = []
        for key, what in (("inc", "incremental run, 1 new day"),
                          ("inc2", "incremental run again, same day")):
            for st in stages:
                if st is base:
                    metrics.append(metric(f"{what}, {st['history']} days of history",
                                          rnd(st[key], 2), "s"))
                    continue
                r = st[key] / base[key]
                metrics.append(metric(
                    f"{what}, {st['history']} days of history", rnd(st[key], 2), "s",
                    target=target, met=None if self.quick else r <= 1.2,
                    baseline=rnd(base[key], 2), ratio=rnd(r, 3)))
        # Estimate without the local-only sync (three CALLs each sync the whole table).
        base_est = base["inc"] - 3 * base["sync"]
        for st in stages[1:]:
            est = st["inc"] - 3 * st["sync"]
            metrics.append(metric(
                f"incremental run, 1 new day, less 3 × the emulator's sync (estimate), "
                f"{st['history']} days of history", rnd(est, 2), "s",
                baseline=rnd(base_est, 2), ratio=rnd(est / base_est, 3)))
        for st in stages:
            metrics.append(metric(f"full rebuild, {st['history'] + 1} days", rnd(st["full"], 2), "s",
                                  baseline=rnd(base["full"], 2),
                                  ratio=rnd(st["full"] / base["full"], 3)))
        for st in stages:
            metrics.append(metric(
                f"emulator: sync of the external table, nothing new, {st['partitions']} partitions",
                rnd(st["sync"], 3), "s"))
        if base["sql"] is not None:
            for st in stages:
                metrics.append(metric(
                    f"SQL only: the 3 CALLs for 1 day, {st['history']} days of history",
                    rnd(st["sql"], 3), "s", baseline=rnd(base["sql"], 3),
                    ratio=rnd(st["sql"] / base["sql"], 3)))
            for st in stages:
                metrics.append(metric(
                    f"SQL only: CALL batch.recompute_daily for 1 day, {st['history']} days of history",
                    rnd(st["sql_daily"], 3), "s", baseline=rnd(base["sql_daily"], 3),
                    ratio=rnd(st["sql_daily"] / base["sql_daily"], 3)))
        lengths = ", ".join(str(st["history"]) for st in stages)
        notes = [
            f"One lake, {s['vehicles']} vehicles ({s['trips_per_day']} trips/day, a reading every "
            f"{s['interval']} for {s['duration']} a day), grown backwards between stages so that "
            f"each stage's new day has {lengths} days of lake before it; the history loaded with "
            f"the real lake-writer through the runner's Invoke API (as in batch_incremental), "
            f"the new day through LocalStack Kinesis and the runner's event source mappings. "
            f"batch-views has the lake change queue (S3 ObjectCreated notifications into SQS, as "
            f"template.yaml wires it): an incremental run registers the new day's partition from "
            f"its notification instead of listing the lake (batch_incremental runs without one); "
            f"draining it ends with an empty receive, a fixed wait in every run.",
            "Each stage: a full run at the new day registers and builds the history; then the new "
            'day is streamed and timed: incremental = {"boundary": new day + 1, '
            '"reprocess_days": 0} (registers its partition, recomputes the new day), full = '
            '{"full": true} at the same boundary, incremental again = {"reprocess_days": 1} '
            "(the same day, nothing to register), full again. The full figure is the mean of the "
            "two full runs. Wall clock of a synchronous batch-views invocation.",
            "batch.recompute_daily filters the lake on plain year/month/day comparisons, which "
            "Redshift Spectrum prunes partitions with; on the Data API emulator they select "
            "through its PostgreSQL index on the partition columns (SQL only rows: the three "
            "CALLs, and recompute_daily alone, for the new day straight in PostgreSQL). Before "
            "every statement that reads the external table, CALLs included (three in a batch "
            "run), the emulator syncs every registered partition from LocalStack S3 (emulator "
            "sync rows): a CALL names no days, so what the procedure will read is not known "
            "before it runs. That sync is a local-only cost that grows with the lake.",
            "The seed's two yearly procedures rebuild their tables from batch.vehicle_daily in "
            "every run (a scan of the batch-owned daily rows, which grows with history, not "
            "with the lake).",
            f"Load (not a metric): {load_s:.0f} s to generate and write the history.",
        ]
        if any(m.get("met") is False for m in metrics):
            notes.append("Where a target is not met, the growth is the two costs above that follow "
                         "history rather than change: the emulator's sync (local only; see the "
                         "estimate rows without it) and the yearly procedures' scan of "
                         "batch.vehicle_daily.")
        self.batch_notes_tail(notes, "the ratios are")
        self.write("batch_history", "Batch cost against history length", notes, metrics)
        self.retries = []  # reported with this section only

    def run(self):
        self.setup()
        sections = self.args.sections
        if "freshness" in sections:
            self.freshness()
        if "sustained_ingest" in sections:
            sustained_ingest(self, Http, metric)
        if "data_api_calls" in sections:
            data_api_calls(self, metric)
        if "batch_history" in sections:
            self.history_length()
        if "batch_incremental" in sections or "query_latency" in sections:
            runner, load = self.year_and_batch()
            self.query_latency(runner, load)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return "?"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--bin-dir", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--psql", default="")
    p.add_argument("--pg-port", type=int, default=5433)
    p.add_argument("--stream-shards", type=int, default=2)
    p.add_argument("--bucket", default="fleetline-lake")
    p.add_argument("--workgroup", default="fleetline")
    p.add_argument("--admin-database", default="dev")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="run only these (batch_incremental and query_latency share their year)")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for b in ("local-runner", "simulator", "stream-processor", "lake-writer", "batch-views", "query-api"):
        if not (Path(args.bin_dir) / b).is_file():
            sys.exit(f"missing {args.bin_dir}/{b}: cargo build --workspace --bins")

    def interrupted(signum, _frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    bench = Bench(args)
    ok = False
    started = time.monotonic()
    try:
        bench.run()
        ok = True
    except (BenchError, Interrupted) as e:
        log(f"ERROR: {e}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log("cleaning up")
        bench.cleanup(ok)
    log(f"done in {time.monotonic() - started:.0f} s" + ("" if ok else " (FAILED)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
