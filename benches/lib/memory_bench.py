#!/usr/bin/env python3
"""Memory, size and init of every function binary (issue #9 item 6), run by benches/run.

Each release bootstrap runs as a real Lambda runtime process against a minimal Lambda
Runtime API served here (the 2018-06-01 protocol `lambda_runtime` speaks: /next,
/response, /error, /init/error), so that the measurement sees exactly one process:
  - peak RSS: VmHWM of /proc/<pid>/status once the function has answered its event and
    asked for the next one (not wait4's ru_maxrss: Linux carries that across exec, so it
    reports the forking Python process's ~90 MB, not the function's);
  - init: process spawn -> its first GET /runtime/invocation/next (median of N cold starts
    with no event);
  - cold first response: spawn -> the response to an event that was waiting for it.
(lambda-host implements the same API but does not expose the child's pid or the time of
its first /next; this probe adds nothing between the process and the clock.)

Events: stream-processor and lake-writer get the largest Kinesis batch Lambda can deliver
(the 6 MB invocation limit, kinesis-6mb.json) and, for information, the 10,000-record
batch (11 MB: over the limit, never delivered by Lambda); query-api the biggest page
(rapid-accelerations, limit=1000, over 1000 vehicles); batch-views and view-refresher a
scheduled event; simulator its default event (15 vehicles x 300 s to a Kinesis stream).
The functions talk to the running local stack with a throwaway database, lake prefix and
stream, all removed at the end. Needs the LocalStack venv's python (boto3).
"""

import argparse
import http.server
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

from stack_run import ROOT, BenchError, StackRun, log

ACCOUNT = "000000000000"
REGION = os.environ.get("AWS_REGION", "us-east-1")
MEMORY_LIMIT_MIB = 128
# The functions in template.yaml, schema-migrator (deploy-only) left out.
sys.path.insert(0, str(ROOT / "infra" / "lib"))
from functions import local_functions  # noqa: E402  (infra/lib/functions.py)

FUNCTIONS = local_functions()


# ------------------------------------------------------------------------------------------
# A minimal Lambda Runtime API for one process


class RuntimeApi:
    """Serves one function process: hands out queued events, records the answers."""

    def __init__(self, function):
        self.function = function
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.next_calls = queue.Queue()  # monotonic time of every GET /next
        self.stopping = threading.Event()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_GET(self):  # noqa: N802 - http.server's naming
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404)
                api.next_calls.put(time.monotonic())
                while not api.stopping.is_set():
                    try:
                        request_id, payload = api.events.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    deadline = int(time.time() * 1000) + 900_000
                    return self._reply(200, payload, {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn":
                            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{api.function}",
                        "Lambda-Runtime-Trace-Id":
                            "Root=1-00000000-000000000000000000000000;Sampled=0",
                    })
                return None  # shutting down: the process is killed, no answer needed

            def do_POST(self):  # noqa: N802
                body = self._body()
                parts = self.path.split("/")
                if self.path.endswith("/runtime/init/error"):
                    api.answers.put(("init_error", None, body, time.monotonic()))
                elif len(parts) >= 6 and parts[-1] in ("response", "error"):
                    api.answers.put((parts[-1], parts[-2], body, time.monotonic()))
                else:
                    return self._reply(404)
                return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def close(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def read_status_kib(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class FunctionProcess:
    """One cold execution environment: spawn, optionally one event, measure, stop."""

    def __init__(self, binary, function, env, log_path):
        self.api = RuntimeApi(function)
        self.binary = binary
        self.function = function
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.update({
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_LIMIT_MIB),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        })
        self.env = full_env
        self.log_path = log_path
        self.proc = None
        self.spawned_at = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen([str(self.binary)], env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)

    def _take(self, q, timeout, poll):
        """("item", the next item of `q`), or ("exited", None) when the process exits first,
        or ("timeout", None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return "item", q.get(timeout=poll)
            except queue.Empty:
                if self.proc.poll() is not None:
                    return "exited", None
        return "timeout", None

    def wait_next(self, timeout):
        """Time of the next GET /next, or None if the process exits or the time is up."""
        return self._take(self.api.next_calls, timeout, 0.05)[1]

    def invoke(self, payload, timeout):
        request_id = str(uuid.uuid4())
        self.api.events.put((request_id, payload))
        state, answer = self._take(self.api.answers, timeout, 0.1)
        if state == "exited":
            raise BenchError(f"{self.function} exited ({self.proc.returncode}) "
                             f"during the invocation; see {self.log_path}")
        if state == "timeout":
            raise BenchError(f"{self.function}: no answer within {timeout} s")
        return answer

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.api.close()
        if getattr(self, "logf", None):
            self.logf.close()


# ------------------------------------------------------------------------------------------


class MemoryBench(StackRun):
    def __init__(self, args):
        super().__init__(args, "benchmem")
        self.bin_dir = Path(args.bin_dir)
        self.data_dir = Path(args.data_dir)
        self.stream = f"fleetline-{self.id}"
        self.metrics = {"rss": [], "init": [], "first": [], "size": []}
        self.notes = []
        self.failures = []

    # --- resources ---

    def psql(self, sql):
        r = subprocess.run(
            [self.args.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.args.pg_port), "-U", "postgres", "-d", self.database, "-c", sql],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"psql: {r.stderr.strip()}")

    def psql_value(self, sql):
        r = subprocess.run(
            [self.args.psql, "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.args.pg_port),
             "-U", "postgres", "-d", self.database, "-c", sql],
            capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"psql: {r.stderr.strip()}")
        return r.stdout.strip()

    def lake_objects(self):
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.args.bucket, Prefix=self.lake_prefix)
        return sum(len(page.get("Contents", [])) for page in pages)

    def setup(self):
        log(f"database {self.database}, lake s3://{self.args.bucket}/{self.id}/, "
            f"stream {self.stream}, logs {self.run_dir}")
        self.create_database()
        self.add_stream(self.stream, 1)

    def function_env(self):
        return {
            "FLEETLINE_REDSHIFT_DATABASE": self.database,
            "FLEETLINE_REDSHIFT_WORKGROUP": self.args.workgroup,
            "LAKE_BUCKET": self.args.bucket,
            "LAKE_PREFIX": self.lake_prefix,
            "REJECTED_PREFIX": f"{self.id}/rejected/",
            "STREAM_NAME": self.stream,
            "RUST_LOG": "info",
        }

    def cleanup(self, ok):
        self.remove_resources(ok)

    # --- measurements ---

    def binary(self, function):
        return self.bin_dir / function

    def cold_invoke(self, function, payload, label, check, timeout=600):
        """One fresh process, one event: peak RSS and cold first response."""
        fp = FunctionProcess(self.binary(function), function, self.function_env(),
                             self.run_dir / f"{function}.log")
        fp.api.events.put((str(uuid.uuid4()), payload))  # waiting before the process starts
        fp.start()
        try:
            kind, _, body, answered = None, None, b"", None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    kind, _, body, answered = fp.api.answers.get(timeout=0.1)
                    break
                except queue.Empty:
                    if fp.proc.poll() is not None:
                        raise BenchError(f"{function} exited ({fp.proc.returncode}); "
                                         f"see {fp.log_path}")
            if kind is None:
                raise BenchError(f"{function}: no answer within {timeout} s")
            first_response_ms = (answered - fp.spawned_at) * 1000
            # Peak once the function is idle again (asking for the next event).
            fp.wait_next(10)
            fp.wait_next(10)
            hwm = read_status_kib(fp.proc.pid, "VmHWM")
        finally:
            fp.stop()
        problem = None
        if kind != "response":
            problem = f"{kind}: {body[:300].decode(errors='replace')}"
        else:
            try:
                problem = check(json.loads(body))
            except ValueError:
                problem = f"response is not JSON: {body[:200]!r}"
        if hwm is None:
            problem = problem or "could not read VmHWM"
        peak_kib = hwm
        log(f"  {function} [{label}]: peak RSS "
            + (f"{peak_kib / 1024:.1f} MiB" if peak_kib else "?")
            + f", cold first response {first_response_ms:.0f} ms"
            + (f"  PROBLEM: {problem}" if problem else ""))
        if problem:
            self.failures.append(f"{function} [{label}]: {problem}")
        return peak_kib, first_response_ms, problem

    def init_times(self, function, n):
        times = []
        for _ in range(n):
            fp = FunctionProcess(self.binary(function), function, self.function_env(),
                                 self.run_dir / f"{function}-init.log")
            fp.start()
            try:
                t = fp.wait_next(30)
            finally:
                fp.stop()
            if t is None:
                raise BenchError(f"{function}: never asked for an event; see {fp.log_path}")
            times.append((t - fp.spawned_at) * 1000)
        return times

    def record(self, function, label, peak_kib, first_ms, problem, primary=True):
        mib = round(peak_kib / 1024, 1) if peak_kib else None
        met = None if (mib is None or problem) else mib <= MEMORY_LIMIT_MIB
        target = f"<= {MEMORY_LIMIT_MIB} MiB" if primary else None
        self.metrics["rss"].append({
            "name": f"{function}: peak RSS, {label}", "value": mib, "unit": "MiB",
            "target": target, "met": met if primary else None, "baseline": None, "ratio": None})
        self.metrics["first"].append({
            "name": f"{function}: cold first response, {label}", "value": round(first_ms),
            "unit": "ms", "target": None, "met": None, "baseline": None, "ratio": None})

    def sizes(self, function):
        path = self.binary(function)
        size = path.stat().st_size
        zpath = self.run_dir / f"{function}.zip"
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(path, "bootstrap")
        zsize = zpath.stat().st_size
        zpath.unlink()
        self.metrics["size"].append({
            "name": f"{function}: bootstrap size", "value": round(size / 2**20, 1),
            "unit": "MiB", "target": None, "met": None, "baseline": None,
            "ratio": None, "detail": f"{round(zsize / 2**20, 1)} MiB zipped"})
        return size, zsize

    def run(self):
        missing = [f for f in FUNCTIONS if not self.binary(f).is_file()]
        if missing:
            raise BenchError(f"missing release binaries in {self.bin_dir}: {', '.join(missing)}")
        events = {}
        for name in ("kinesis-6mb", "kinesis-10000"):
            path = self.data_dir / f"{name}.json"
            meta = json.loads((self.data_dir / f"{name}.meta.json").read_text())
            events[name] = (path.read_bytes(), meta)
        self.setup()

        def kinesis_ok(body):
            if body.get("batchItemFailures"):
                return f"batchItemFailures: {body['batchItemFailures'][:2]}"
            return None

        def label(name):
            data, meta = events[name]
            size = f"{len(data) / 2**20:.1f} MiB"
            if name == "kinesis-6mb":
                return f"largest deliverable batch ({meta['records']} records, {size})"
            return f"10,000 records ({size}, over Lambda's 6 MB limit)"

        # Did the real work happen? Checked against the simulator's labels (.meta.json):
        # after the 6 MB batch, the speed table holds exactly its valid unique readings and
        # the lake has objects; the 10,000-record batch (a superset) then adds the rest.
        def stored_rows():
            return int(self.psql_value("SELECT COUNT(*) FROM speed.telemetry"))

        expect = {
            ("stream-processor", "kinesis-6mb"): lambda: (
                stored_rows(), events["kinesis-6mb"][1]["valid_unique"], "rows stored"),
            ("stream-processor", "kinesis-10000"): lambda: (
                stored_rows(), events["kinesis-10000"][1]["valid_unique"], "rows stored"),
            ("lake-writer", "kinesis-6mb"): lambda: (
                min(self.lake_objects(), 1), 1, "lake objects (at least one)"),
        }
        for function in ("stream-processor", "lake-writer"):
            for name, primary in (("kinesis-6mb", True), ("kinesis-10000", False)):
                log(f"{function}: {label(name)}")
                peak, first, problem = self.cold_invoke(function, events[name][0], label(name),
                                                        kinesis_ok)
                check = expect.get((function, name))
                if check and not problem:
                    got, want, what = check()
                    if got != want:
                        problem = f"{what}: {got}, expected {want}"
                        self.failures.append(f"{function} [{label(name)}]: {problem}")
                        log(f"  PROBLEM: {problem}")
                self.record(function, label(name), peak, first, problem, primary)

        # query-api: the biggest page needs > 1000 (vin, year) rows: 1000 extra vehicles,
        # 3 readings each, straight into the speed table of this run's database.
        self.psql(
            "INSERT INTO speed.telemetry (vin, trip_id, ts, event_day, vehicle_speed, "
            "acceleration, odometer, rapid_acceleration, latitude, longitude, shard_id, "
            "sequence_number) SELECT 'BENCH' || lpad(v::text, 12, '0'), 'trip-' || v, "
            "timestamp '2025-06-03 08:00:00' + r * interval '1 second', date '2025-06-03', "
            "50.0, CASE WHEN r = 0 THEN 12.0 ELSE 1.0 END, 1000 + r, "
            "CASE WHEN r = 0 THEN 1 ELSE 0 END, 47.6, -122.3, 'shardId-000000000000', "
            "(v * 10 + r)::text FROM generate_series(1, 1000) v, generate_series(0, 2) r")
        page = api_event("/v1/vehicles/rapid-accelerations", {"year": "2025", "limit": "1000"})

        def page_ok(body):
            if body.get("statusCode") != 200:
                return f"status {body.get('statusCode')}: {str(body.get('body'))[:200]}"
            rows = len(json.loads(body.get("body") or "{}").get("data", []))
            return None if rows == 1000 else f"{rows} rows, expected 1000"

        log("query-api: rapid-accelerations, limit=1000")
        q_label = "biggest page (1000 rows)"
        peak, first, problem = self.cold_invoke("query-api", page, q_label, page_ok)
        self.record("query-api", q_label, peak, first, problem)

        def no_error(body):
            return None if not (isinstance(body, dict) and body.get("errorType")) else str(body)

        for function in ("view-refresher", "batch-views"):
            log(f"{function}: scheduled event")
            peak, first, problem = self.cold_invoke(function, scheduled_event(function),
                                                    "scheduled event", no_error)
            self.record(function, "scheduled event", peak, first, problem)

        log("simulator: default event (15 vehicles x 300 s to Kinesis)")
        peak, first, problem = self.cold_invoke("simulator", b"{}", "default event", no_error)
        self.record("simulator", "default event (4,500 records)", peak, first, problem)

        n = self.args.init_runs
        log(f"init: {n} cold starts per function")
        for function in FUNCTIONS:
            times = self.init_times(function, n)
            med = statistics.median(times)
            log(f"  {function}: init median {med:.1f} ms (min {min(times):.1f}, "
                f"max {max(times):.1f})")
            self.metrics["init"].append({
                "name": f"{function}: init (spawn to first /next), median of {n}",
                "value": round(med, 1), "unit": "ms", "target": None, "met": None,
                "baseline": None, "ratio": None,
                "detail": f"min {min(times):.1f}, max {max(times):.1f}"})
            size, zsize = self.sizes(function)
            log(f"  {function}: bootstrap {size / 2**20:.1f} MiB, zipped {zsize / 2**20:.1f} MiB")

    def write(self, command, build_note):
        metrics = (self.metrics["rss"] + self.metrics["init"] + self.metrics["first"]
                   + self.metrics["size"])
        notes = [
            "Release bootstraps (`cargo build --release`, the workspace's release profile: "
            f"thin LTO, stripped), host target; {build_note}.",
            "Peak RSS = VmHWM of the function process after it answered the event (the whole "
            "process: runtime, SDK clients, buffers). Lambda bills memory for the whole "
            "execution environment, so keep headroom; the template gives the functions "
            "256 MB (lake-writer 512 MB).",
            "Each figure is one cold process per event, talking to the local stack "
            "(LocalStack S3/Kinesis, the Data API emulator) with a throwaway database, lake "
            "prefix and stream. Init = spawn to the first GET /runtime/invocation/next "
            "(no network before it in any function); cold first response = spawn to the "
            "answer to an event that was already waiting (init + one invocation against the "
            "local stack, so the stack's speed is part of it).",
            "The 10,000-record Kinesis batch of the hot-path benches is 11 MB as an event: "
            "Lambda never delivers it (6 MB invocation limit), so its peak RSS is for "
            "information only; the largest deliverable batch of simulator records has "
            f"{self.events_records} records.",
            "Bootstrap size: the stripped release binary (zip = what a deployment package "
            "holds; Lambda allows 50 MB zipped, 250 MB unzipped).",
        ] + [f"FAILED: {f}" for f in self.failures]
        doc = {"section": "memory", "title": "Memory, size and init of the function binaries",
               "command": command, "notes": notes, "metrics": metrics}
        out = Path(self.args.out) / "memory.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        log(f"wrote {out}")

    @property
    def events_records(self):
        try:
            return json.loads((self.data_dir / "kinesis-6mb.meta.json").read_text())["records"]
        except (OSError, ValueError, KeyError):
            return "?"


def api_event(path, query):
    """An API Gateway REST proxy event, shaped like the local runner's."""
    request_id = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    return json.dumps({
        "resource": "/v1/{proxy+}", "path": path, "httpMethod": "GET",
        "headers": {"Host": "localhost"}, "multiValueHeaders": {"Host": ["localhost"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": {"proxy": path.removeprefix("/v1/")}, "stageVariables": None,
        "requestContext": {
            "resourceId": "local", "resourcePath": "/v1/{proxy+}", "httpMethod": "GET",
            "extendedRequestId": request_id, "path": f"/api{path}", "accountId": ACCOUNT,
            "protocol": "HTTP/1.1", "stage": "api", "domainPrefix": "bench",
            "requestTimeEpoch": now_ms, "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
            "domainName": "localhost", "apiId": "bench00000"},
        "body": None, "isBase64Encoded": False,
    }).encode()


def scheduled_event(function):
    return json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{function}-schedule"],
        "detail": {},
    }).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--bin-dir", required=True, help="directory of the release binaries")
    p.add_argument("--data-dir", required=True, help="kinesis-*.json written by the benches")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--psql", required=True)
    p.add_argument("--pg-port", type=int, default=5433)
    p.add_argument("--bucket", default="fleetline-lake")
    p.add_argument("--workgroup", default="fleetline")
    p.add_argument("--admin-database", default="dev")
    p.add_argument("--init-runs", type=int, default=10)
    p.add_argument("--command", default="benches/run")
    p.add_argument("--build-note", default="built by benches/run")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    bench = MemoryBench(args)
    ok = False
    try:
        bench.run()
        ok = not bench.failures
    except (BenchError, KeyboardInterrupt) as e:
        log(f"ERROR: {e}")
        bench.failures.append(str(e))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.cleanup(ok)
    if bench.metrics["rss"]:
        bench.write(args.command, args.build_note)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
