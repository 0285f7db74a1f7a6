"""Sustained end-to-end ingest (the `sustained_ingest` section of benches/stack/run).

Offered load steps (readings/s) per shard count, each on a fresh stream with its own runner:
the simulator sends in real time (one reading per vehicle per second) through LocalStack
Kinesis; the runner's event source mappings hand the batches to the real stream-processor
and lake-writer; freshness probes go through the same stream and are read back through
query-api. Per step: what LocalStack accepted, what each consumer acknowledged, the iterator
age (the runner's lag_ms), the backlog when the producer stopped and how long it took to
drain, freshness p50/p95, and each function's own per-invocation duration (its
`batch summary` log line, Data API waits included). Steps stop at the first one that is not
sustained. Stdlib only; the Bench object (stack_bench.py) provides runners and resources.
"""

import datetime as dt
import json
import os
import random
import string
import subprocess
import threading
import time

from stack_run import BenchError, log, rnd
from stack_run import percentile as pct

STEPS = {"full": (200, 500, 1000, 2000), "quick": (100, 300)}
SHARDS = (2, 4)
LOAD_S = {"full": 20, "quick": 8}  # seconds of offered load per step
IDLE_PROBE_S = {"full": 10, "quick": 4}  # unloaded freshness baseline, per shard count
DRAIN_CAP_S = 20  # stop waiting for the consumers after this long past the producer's end
# A step is sustained when LocalStack took the load in real time (the producer finished at
# most this late) and both consumers drained their backlog within DRAIN_OK_S of its end
# (lake-writer's 5 s batching window included).
PRODUCER_SLACK_S = 2.0
DRAIN_OK_S = 10.0
PUT_BASELINE_RECORDS = (200, 30)  # vehicles x seconds sent as fast as possible, no consumers
FRESH_TARGET_S = 3.0
POLL_S = 0.05
VISIBLE_DEADLINE_S = 30.0
CONSUMERS = ("stream-processor", "lake-writer")
# MemorySize in template.yaml (Globals 256 MB; lake-writer 512 MB): GB-s per invocation.
MEMORY_GB = {"stream-processor": 0.25, "lake-writer": 0.5}
PROBERS = 2  # probe threads at once (query-api runs one request at a time)
CPU_GROUPS = ("LocalStack Kinesis", "LocalStack", "PostgreSQL", "Data API emulator", "runner",
              "stream-processor", "lake-writer", "query-api", "simulator", "this script")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def batch_summaries(path, skip=0):
    """The `batch summary` JSON lines a function wrote to its runner log file, but the
    first `skip`."""
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if "batch summary" not in line or "{" not in line:
            continue
        try:
            doc = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        if doc.get("message") == "batch summary":
            out.append(doc)
    return out[skip:]


def durations(summaries):
    """p50/p95/mean of batch_duration_ms, invocations, mean records per invocation."""
    ms = [s.get("batch_duration_ms", 0) for s in summaries]
    recs = [s.get("records_in", 0) for s in summaries]
    return {
        "invocations": len(ms),
        "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": max(ms, default=None),
        "mean_ms": sum(ms) / len(ms) if ms else None,
        "sum_ms": sum(ms),
        "ms": ms,
        "records": sum(recs),
        "mean_batch": sum(recs) / len(recs) if recs else None,
        "max_record_age_ms": max((s.get("max_record_age_ms") or 0 for s in summaries), default=None),
    }


def lag_slope(samples, f, t0, t_end):
    """Least-squares slope of a consumer's iterator age (lag_ms) while the producer ran, in
    ms per s: about 0 when it keeps up, about 1000 when nothing moves."""
    pts = [(t, lag.get(f, 0)) for t, _, lag in samples if t0 <= t <= t_end]
    if len(pts) < 3:
        return None
    mt = sum(t for t, _ in pts) / len(pts)
    ml = sum(v for _, v in pts) / len(pts)
    var = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (v - ml) for t, v in pts) / var if var else None


def drop_stream(bench, name):
    """Deletes a stream at once: LocalStack's Kinesis persists every stream's records every
    5 s, so earlier steps' streams would slow the later ones down."""
    try:
        bench.kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        bench.streams.remove(name)
    except Exception as e:  # noqa: BLE001 - removed again at cleanup
        log(f"  could not delete stream {name} now: {e}")


def run_simulator(bench, stream, vehicles, seconds, seed, realtime, label):
    """Runs the simulator into `stream`, one reading per vehicle per second (in real time if
    `realtime`); returns (records sent, wall seconds, its ground truth)."""
    truth = bench.run_dir / f"truth-{label}.json"
    log_path = bench.run_dir / f"simulator-{label}.log"
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    cmd = [str(bench.bin_dir / "simulator"), "--vehicles", str(vehicles), "--interval", "1s",
           "--duration", f"{seconds}s", "--trips-per-day", "1", "--days", "1",
           "--start", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--seed", str(seed),
           "--kinesis-stream", stream, "--truth", str(truth), "--quiet"]
    if realtime:
        cmd.append("--realtime")
    t0 = time.monotonic()
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        bench.processes.append(proc)
        proc.wait()
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise BenchError(f"simulator failed ({proc.returncode}); see {log_path}")
    t = json.loads(truth.read_text())
    return t["counts"]["records_sent"], wall, t


def proc_cpu():
    """{pid: (comm, ppid, args, cpu seconds)} for every process, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
            args = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[1] = ppid, fields[11]/[12] = utime/stime (stat(5), counted from state = 0)
        out[int(d)] = (comm, int(fields[1]), args, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def machine_busy():
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = cpu[3] + cpu[4]
    return (sum(cpu) - idle) / CLK_TCK, sum(cpu) / CLK_TCK


def cpu_group(pid, info, runner_pid):
    """Which part of the stack a process is (None: the rest of the machine)."""
    comm, ppid, args, _ = info
    if "kinesis-local" in args:
        return "LocalStack Kinesis"
    if "localstack.runtime" in args:
        return "LocalStack"
    if comm == "postgres":
        return "PostgreSQL"
    if comm.startswith("redshift-data-e"):
        return "Data API emulator"
    if pid == runner_pid:
        return "runner"
    if ppid == runner_pid:
        return next((f for f in ("stream-processor", "lake-writer", "query-api")
                     if f.startswith(comm)), "runner")
    if ppid == os.getpid() and comm == "simulator":
        return "simulator"
    if pid == os.getpid():
        return "this script"
    return None


class CpuMeter:
    """CPU used by each part of the stack between `start` and `stop`, in cores (CPU seconds
    per second); `rest` = the machine's busy time not in any group (other work, processes
    that ended during the interval)."""

    def __init__(self, runner_pid):
        self.runner_pid = runner_pid
        self.before = self.t0 = self.busy0 = None

    def start(self):
        self.before, self.busy0, self.t0 = proc_cpu(), machine_busy(), time.monotonic()

    def stop(self):
        after, busy1, t1 = proc_cpu(), machine_busy(), time.monotonic()
        wall = t1 - self.t0
        groups = dict.fromkeys(CPU_GROUPS, 0.0)
        for pid, info in after.items():
            g = cpu_group(pid, info, self.runner_pid)
            if g is None:
                continue
            prev = self.before.get(pid)
            same = prev is not None and prev[0] == info[0]
            groups[g] += info[3] - (prev[3] if same else 0.0)
        cores = {g: v / wall for g, v in groups.items()}
        busy = (busy1[0] - self.busy0[0]) / wall
        cores["rest of the machine"] = max(0.0, busy - sum(cores.values()))
        cores["machine busy"] = busy
        cores["cores"] = (busy1[1] - self.busy0[1]) / wall
        return cores


class Monitor(threading.Thread):
    """Samples the runner's /runner/status every second: acknowledged records and the
    largest lag_ms (iterator age) per consumer, on a connection of its own. `snapshot` may
    be called directly only while the thread is not running."""

    def __init__(self, runner, http_cls):
        super().__init__(daemon=True)
        self.http = http_cls(runner.invoke_port)
        self.samples = []  # (t, {fn: acked}, {fn: max lag_ms})
        self.stop_event = threading.Event()
        self.error = None

    def snapshot(self):
        code, _, body, _ = self.http.get("/runner/status")
        if code != 200:
            raise BenchError(f"/runner/status -> {code}")
        acked, lag = {}, {}
        for sh in json.loads(body).get("shards", []):
            f = sh.get("function")
            acked[f] = acked.get(f, 0) + sh.get("records_acknowledged", 0) + sh.get(
                "records_to_on_failure", 0)
            lag[f] = max(lag.get(f, 0), sh.get("lag_ms") or 0)
        return time.monotonic(), acked, lag

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.samples.append(self.snapshot())
            except (OSError, ValueError, BenchError) as e:
                self.error = str(e)
            self.stop_event.wait(0.5)

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)
        self.http.close()


class Prober(threading.Thread):
    """Freshness probes, one at a time, as the freshness section measures them: one reading
    of a new VIN per PutRecords call, then GET /v1/vehicles/{vin}/trips?date=D every POLL_S
    until its trip shows; a random 0-0.5 s pause between probes."""

    def __init__(self, bench, runner, http_cls, seed):
        super().__init__(daemon=True)
        self.bench = bench
        self.runner = runner
        self.http = http_cls(runner.api_port)
        self.rng = random.Random(seed)
        self.latencies = []
        self.missing = 0
        self.stop_event = threading.Event()
        self.error = None

    def probe(self):
        vin = "BENCH" + "".join(self.rng.choice(string.ascii_uppercase + string.digits)
                                for _ in range(12))
        now = dt.datetime.now(dt.timezone.utc)
        trip = f"ingest-{vin[-6:]}"
        reading = {
            "VIN": vin, "trip_id": trip, "_id_": f"probe-{vin}",
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000",
            "vehicleSpeed": 50.0, "acceleration": 0.0, "odometer": 1000.0,
            "engineSpeed": 2000, "fuelLevel": 50.0, "fuelConsumedSinceRestart": 0.1,
            "oilTemp": 90.0, "brake": 0, "brakePedalStatus": False,
            "ignitionStatus": "run", "transmissionGearPosition": "third",
            "location": {"latitude": 47.61, "longitude": -122.33},
        }
        t0 = time.perf_counter()
        resp = self.bench.kinesis.put_records(
            StreamName=self.runner.stream,
            Records=[{"Data": json.dumps(reading).encode(), "PartitionKey": vin}])
        if resp.get("FailedRecordCount"):
            raise BenchError("probe PutRecords failed")
        path = f"/v1/vehicles/{vin}/trips?date={now.date().isoformat()}"
        while time.perf_counter() - t0 < VISIBLE_DEADLINE_S:
            code, _, body, _ = self.http.get(path)
            if code == 200 and any(row.get("trip_id") == trip and row.get("readings", 0) >= 1
                                   for row in json.loads(body).get("data", [])):
                self.latencies.append(time.perf_counter() - t0)
                return
            if self.stop_event.is_set() and time.perf_counter() - t0 > 10:
                break
            time.sleep(POLL_S)
        self.missing += 1

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.probe()
            except Exception as e:  # noqa: BLE001 - reported with the step, the load goes on
                self.error = str(e)[:200]
                time.sleep(0.5)
            self.stop_event.wait(self.rng.uniform(0.0, 0.5))

    def stop(self):
        self.stop_event.set()
        self.join(timeout=VISIBLE_DEADLINE_S + 5)
        self.http.close()


class SustainedIngest:
    def __init__(self, bench, http_cls, metric):
        self.bench = bench
        self.http_cls = http_cls
        self.metric = metric
        mode = "quick" if bench.quick else "full"
        self.steps = STEPS[mode]
        self.load_s = LOAD_S[mode]
        self.idle_s = IDLE_PROBE_S[mode]
        self.results = {}  # shards -> {"put_baseline", "idle", "steps": [...]}
        self.load_before = self.load_after = "?"

    # --- pieces ---

    def stream(self, shards, tag):
        return self.bench.add_stream(f"fleetline-{self.bench.id}-ing{shards}s-{tag}", shards)

    def drop_stream(self, name):
        drop_stream(self.bench, name)

    def simulator(self, stream, vehicles, seconds, seed, realtime, label):
        return run_simulator(self.bench, stream, vehicles, seconds, seed, realtime,
                             f"ingest-{label}")

    def wait_midnight(self, seconds):
        """Readings of a step on one UTC date (the probes read one date)."""
        now = dt.datetime.now(dt.timezone.utc)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(),
                                       dt.timezone.utc)
        if now + dt.timedelta(seconds=seconds) > midnight:
            time.sleep((midnight - now).total_seconds() + 1)

    def put_baseline(self, shards):
        """LocalStack's PutRecords ceiling with no consumer: the simulator as fast as it goes."""
        vehicles, seconds = PUT_BASELINE_RECORDS
        stream = self.stream(shards, "put")
        sent, wall, _ = self.simulator(stream, vehicles, seconds, 900 + shards, False,
                                       f"{shards}s-put")
        self.drop_stream(stream)
        log(f"  {shards} shards: PutRecords baseline {sent} records in {wall:.1f} s "
            f"({sent / wall:.0f}/s, no consumers)")
        return {"records": sent, "seconds": wall, "rate": sent / wall}

    # --- one step ---

    def step(self, shards, rate, idle_probe):
        label = f"{shards}s-{rate}"
        stream = self.stream(shards, str(rate))
        runner = self.bench.runner(f"ingest-{label}", stream,
                                   functions=["stream-processor", "lake-writer", "query-api"])
        idle, put_before = self.warm_up(runner, shards, idle_probe)
        self.wait_midnight(self.load_s + 10)
        load = self.load(runner, stream, shards, rate, put_before)
        runner.stop()
        self.drop_stream(stream)
        res = self.assess(shards, rate, load)
        res["idle"] = idle
        log(f"  {label}: sent {res['sent']} in {res['producer_s']:.1f} s; acknowledged/s sp "
            f"{fmt(res['consumed']['stream-processor'], 0)} lw {fmt(res['consumed']['lake-writer'], 0)}; "
            f"backlog at end {res['backlog_end']}; drain {res['drain_s']}; lag max "
            f"{res['lag_max_ms']}; freshness p50 {fmt(pct(res['fresh'], 50))} p95 "
            f"{fmt(pct(res['fresh'], 95))} s ({len(res['fresh'])} probes, {res['fresh_missing']} "
            f"missing); served {res['served']}; machine busy {res['cpu_cores']['machine busy']:.2f} "
            f"of {res['cpu_cores']['cores']:.0f} cores; "
            f"{'sustained' if res['sustained'] else 'NOT sustained: ' + res['why']}")
        return res

    def warm_up(self, runner, shards, idle_probe):
        """One uncounted probe (the first invocations after a runner starts pay for the
        functions' first Data API and S3 connections), then, if asked, the unloaded
        freshness baseline. Returns (baseline or None, records put so far)."""
        warm = Prober(self.bench, runner, self.http_cls, seed=7)
        warm.probe()
        warm.http.close()
        if not idle_probe:
            return None, 1
        probers = self.start_probers(runner, seed=shards)
        time.sleep(self.idle_s)
        idle = self.stop_probers(probers)
        log(f"  {shards} shards, no load: {len(idle['latencies'])} probes, p50 "
            f"{fmt(pct(idle['latencies'], 50))} s, p95 {fmt(pct(idle['latencies'], 95))} s")
        return idle, 1 + len(idle["latencies"]) + idle["missing"]

    def load(self, runner, stream, shards, rate, put_before):
        """The offered load with probes, the drain, and what was measured meanwhile."""
        monitor = Monitor(runner, self.http_cls)
        _, acked0, _ = monitor.snapshot()
        logs = runner.dir / "logs"
        skip = {f: len(batch_summaries(logs / f"{f}.log")) for f in CONSUMERS}
        monitor.start()
        cpu = CpuMeter(runner.proc.pid)
        cpu.start()
        probers = self.start_probers(runner, seed=1000 * shards + rate)
        t0 = time.monotonic()
        sent, wall, truth = self.simulator(stream, rate, self.load_s, 10000 * shards + rate, True,
                                           f"{shards}s-{rate}")
        t_end = time.monotonic()
        fresh = self.stop_probers(probers)
        # Per consumer: the load, its probes, and what it had not acknowledged yet of the
        # records put before (lake-writer's window may still hold the last probes).
        expected = {f: sent + len(fresh["latencies"]) + fresh["missing"]
                    + max(0, put_before - acked0.get(f, 0)) for f in CONSUMERS}
        backlog_end, drained_at = self.drain(monitor, acked0, expected, t_end)
        cores = cpu.stop()
        monitor.stop()
        return {
            "t0": t0, "t_end": t_end, "sent": sent, "wall": wall, "fresh": fresh,
            "acked0": acked0, "backlog_end": backlog_end, "drained_at": drained_at,
            "cores": cores, "monitor": monitor, "served": self.served(runner, truth),
            # The load's invocations only (the warm-up and unloaded probes' are left out).
            "durations": {f: durations(batch_summaries(logs / f"{f}.log", skip[f]))
                          for f in CONSUMERS},
        }

    def assess(self, shards, rate, m):
        """One step's figures, and whether it was sustained (and if not, why)."""
        samples, t0, t_end = m["monitor"].samples, m["t0"], m["t_end"]
        drain_s = {f: (m["drained_at"][f] - t_end) if m["drained_at"].get(f) is not None else None
                   for f in CONSUMERS}
        producer_ok = m["wall"] <= self.load_s + PRODUCER_SLACK_S
        reasons = []
        if not producer_ok:
            reasons.append(f"LocalStack PutRecords took {m['sent']} readings in {m['wall']:.1f} s "
                           f"(offered over {self.load_s} s)")
        for f in CONSUMERS:
            if drain_s[f] is None:
                reasons.append(f"{f} still {m['backlog_end'][f]} behind {DRAIN_CAP_S} s after "
                               f"the producer ended")
            elif drain_s[f] > DRAIN_OK_S:
                reasons.append(f"{f} took {drain_s[f]:.0f} s to drain {m['backlog_end'][f]} records")
        return {
            "shards": shards, "offered": rate, "sent": m["sent"], "producer_s": m["wall"],
            "put_rate": m["sent"] / max(m["wall"], self.load_s),
            "consumed": {f: self.ack_rate(samples, m["acked0"], f, t0) for f in CONSUMERS},
            "backlog_end": m["backlog_end"], "drain_s": drain_s,
            "lag_max_ms": {f: max((s[2].get(f, 0) for s in samples), default=None)
                           for f in CONSUMERS},
            "lag_growth": {f: lag_slope(samples, f, t0, t_end) for f in CONSUMERS},
            "fresh": m["fresh"]["latencies"], "fresh_missing": m["fresh"]["missing"],
            "prober_error": m["fresh"]["error"], "monitor_error": m["monitor"].error,
            "cpu_cores": m["cores"], "durations": m["durations"], "served": m["served"],
            "sustained": not reasons, "why": "; ".join(reasons),
            "series": [(round(s[0] - t0, 2), s[1], s[2]) for s in samples],
        }

    def start_probers(self, runner, seed):
        probers = [Prober(self.bench, runner, self.http_cls, seed=seed * 10 + i)
                   for i in range(PROBERS)]
        for p in probers:
            p.start()
        return probers

    def stop_probers(self, probers):
        for p in probers:
            p.stop_event.set()
        for p in probers:
            p.stop()
        return {"latencies": [x for p in probers for x in p.latencies],
                "missing": sum(p.missing for p in probers),
                "error": "; ".join(p.error for p in probers if p.error) or None}

    @staticmethod
    def ack_rate(samples, acked0, f, t0):
        """Records a consumer acknowledged per second from the producer's start to its last
        acknowledgement: a lower bound of its steady rate, since the span includes one
        batching window (lake-writer acknowledges in 5 s bursts, too coarse for a slope)."""
        series = [(t, a.get(f, 0) - acked0.get(f, 0)) for t, a, _ in samples]
        if not series or series[-1][1] <= 0:
            return None
        final = series[-1][1]
        last_t = next(t for t, n in series if n == final)
        return final / (last_t - t0) if last_t > t0 else None

    def drain(self, monitor, acked0, expected, t_end):
        """Backlog per consumer when the producer ended, and when each caught up (from the
        monitor's samples, 0.5 s apart)."""
        deadline = t_end + DRAIN_CAP_S
        drained = {}
        while time.monotonic() < deadline and len(drained) < len(CONSUMERS):
            time.sleep(0.25)
            for t, acked, _ in list(monitor.samples):
                for f in CONSUMERS:
                    if f not in drained and acked.get(f, 0) - acked0.get(f, 0) >= expected[f]:
                        drained[f] = t
        at_end = [s for s in monitor.samples if s[0] <= t_end + 0.5]
        acked = at_end[-1][1] if at_end else acked0
        backlog = {f: max(0, expected[f] - (acked.get(f, 0) - acked0.get(f, 0))) for f in CONSUMERS}
        return backlog, drained

    def served(self, runner, truth, n=5):
        """A few of the step's trips read back through query-api: readings equal to the
        simulator's ground truth. Returns (trips matching, trips checked)."""
        rows = truth.get("daily", [])
        ok = 0
        sample = random.Random(len(rows)).sample(rows, min(n, len(rows)))
        for row in sample:
            code, _, body, _ = runner.api.get(f"/v1/vehicles/{row['vin']}/trips?date={row['date']}")
            data = json.loads(body).get("data", []) if code == 200 else []
            got = next((t.get("readings") for t in data if t.get("trip_id") == row["trip_id"]), None)
            ok += got == row["readings"]
        return [ok, len(sample)]

    # --- the section ---

    def run(self):
        b = self.bench
        self.load_before = loadavg()
        log(f"sustained ingest: {', '.join(map(str, self.steps))} readings/s for {self.load_s} s "
            f"each, at {' and '.join(map(str, SHARDS))} shards")
        for shards in SHARDS:
            entry = {"put_baseline": self.put_baseline(shards), "steps": []}
            self.results[shards] = entry
            for i, rate in enumerate(self.steps):
                res = self.step(shards, rate, idle_probe=(i == 0))
                idle = res.pop("idle")
                if idle is not None:
                    entry["idle"] = idle
                entry["steps"].append(res)
                if not res["sustained"]:
                    break
        self.load_after = loadavg()
        b.sql("DELETE FROM speed.telemetry WHERE vin LIKE 'BENCH%'")
        (b.out / "raw").mkdir(exist_ok=True)
        raw = b.out / "raw" / "sustained_ingest.json"
        raw.write_text(json.dumps({str(k): v for k, v in self.results.items()}, indent=1) + "\n")
        self.write()

    def write(self):
        metric = self.metric
        metrics, rows = [], []
        all_sust = {f: [] for f in CONSUMERS}
        for shards, entry in self.results.items():
            steps = entry["steps"]
            sust = [s for s in steps if s["sustained"]]
            top = sust[-1] if sust else None
            worst = max((pct(s["fresh"], 95) for s in sust if s["fresh"]), default=None)
            metrics.append(metric(
                f"{shards} shards: highest sustained offered load", top["offered"] if top else None,
                "readings/s"))
            fresh_ok = [s for s in sust if s["fresh"] and pct(s["fresh"], 95) <= FRESH_TARGET_S]
            metrics.append(metric(
                f"{shards} shards: highest sustained offered load with freshness p95 <= "
                f"{FRESH_TARGET_S:g} s", fresh_ok[-1]["offered"] if fresh_ok else None, "readings/s"))
            if top:
                metrics.append(metric(
                    f"{shards} shards: achieved at that step (put into Kinesis, every reading "
                    f"acknowledged by both consumers within {DRAIN_OK_S:g} s of the producer's end)",
                    rnd(top["put_rate"], 0), "readings/s"))
                metrics[-1]["detail"] = (
                    f"drain {fmt(top['drain_s']['stream-processor'], 1)} s (stream-processor), "
                    f"{fmt(top['drain_s']['lake-writer'], 1)} s (lake-writer)")
            metrics.append(metric(
                f"{shards} shards: freshness p95, worst sustained step", rnd(worst), "s",
                target=f"<= {FRESH_TARGET_S:g} s", met=None if worst is None else worst <= FRESH_TARGET_S,
                baseline=rnd(pct(entry.get("idle", {}).get("latencies", []), 95)),
                ratio=rnd(worst / pct(entry["idle"]["latencies"], 95), 2)
                if worst and entry.get("idle", {}).get("latencies") else None))
            idle = entry.get("idle", {}).get("latencies", [])
            for q in (50, 95):
                metrics.append(metric(f"{shards} shards: freshness p{q} with no load (baseline)",
                                      rnd(pct(idle, q)), "s"))
                metrics[-1]["detail"] = f"{len(idle)} probes"
            sat = next((s for s in steps if not s["sustained"]), None)
            metrics.append(metric(f"{shards} shards: first step not sustained",
                                  sat["offered"] if sat else None, "readings/s"))
            metrics[-1]["detail"] = sat["why"] if sat else "every step was sustained"
            pb = entry["put_baseline"]
            metrics.append(metric(f"{shards} shards: LocalStack PutRecords alone (no consumers, "
                                  f"{pb['records']} readings, fresh stream)", rnd(pb["rate"], 0),
                                  "readings/s"))
            for s in steps:
                rows.append(self.row(s))
                if s["sustained"]:
                    for f in CONSUMERS:
                        all_sust[f].append(s["durations"][f])
        metrics += self.duration_metrics(all_sust)
        self.bench.write("sustained_ingest", "Sustained ingest: readings/s through Kinesis to "
                         "the REST API", self.notes(), metrics)
        self.add_tables(rows, [self.cpu_row(s) for e in self.results.values() for s in e["steps"]])

    def duration_metrics(self, per_fn):
        metric = self.metric
        out = []
        for f in CONSUMERS:
            ds = [d for d in per_fn[f] if d["invocations"]]
            if not ds:
                continue
            # Pooled over the sustained steps: every invocation weighs the same.
            pooled = [x for d in ds for x in d["ms"]]
            inv = len(pooled)
            recs = sum(d["records"] for d in ds)
            total_ms = sum(pooled)
            p50, p95 = pct(pooled, 50), pct(pooled, 95)
            mean = total_ms / inv
            gbs = total_ms / 1000 * MEMORY_GB[f] / recs * 1e6 if recs else None
            out += [
                metric(f"{f}: invocation duration p50, all sustained steps", rnd(p50, 1), "ms"),
                metric(f"{f}: invocation duration p95, all sustained steps", rnd(p95, 1), "ms"),
                metric(f"{f}: mean invocation duration, all sustained steps", rnd(mean, 1), "ms"),
                metric(f"{f}: longest invocation, all sustained steps", max(pooled), "ms"),
                metric(f"{f}: mean records per invocation, all sustained steps", rnd(recs / inv, 1), "records"),
                metric(f"{f}: GB-s per million readings at {int(MEMORY_GB[f] * 1024)} MB",
                       rnd(gbs, 1), "GB-s"),
            ]
        return out

    def row(self, s):
        sp, lw = (s["durations"][f] for f in CONSUMERS)

        def ms(d, k):
            return "—" if d.get(k) is None else f"{d[k]:.0f}"

        def drain(f):
            d = s["drain_s"][f]
            return f">{DRAIN_CAP_S}" if d is None else f"{d:.1f}"

        return (f"| {s['shards']} | {s['offered']} | {s['put_rate']:.0f} | "
                f"{fmt(s['consumed']['stream-processor'], 0)} / {fmt(s['consumed']['lake-writer'], 0)} | "
                f"{s['lag_max_ms']['stream-processor'] or 0:,} / {s['lag_max_ms']['lake-writer'] or 0:,} | "
                f"{fmt(s['lag_growth']['stream-processor'], 0)} / {fmt(s['lag_growth']['lake-writer'], 0)} | "
                f"{s['backlog_end']['stream-processor']:,} / {s['backlog_end']['lake-writer']:,} | "
                f"{drain('stream-processor')} / {drain('lake-writer')} | "
                f"{fmt(pct(s['fresh'], 50))} / {fmt(pct(s['fresh'], 95))} ({len(s['fresh'])}"
                f"{', ' + str(s['fresh_missing']) + ' missing' if s['fresh_missing'] else ''}) | "
                f"{ms(sp, 'p50_ms')} / {ms(sp, 'p95_ms')} ({sp['invocations']}, "
                f"{fmt(sp['mean_batch'], 0)}) | "
                f"{ms(lw, 'p50_ms')} / {ms(lw, 'p95_ms')} ({lw['invocations']}, "
                f"{fmt(lw['mean_batch'], 0)}) | {s['served'][0]}/{s['served'][1]} | "
                f"{'yes' if s['sustained'] else 'no: ' + s['why']} |")

    @staticmethod
    def cpu_row(s):
        c = s["cpu_cores"]
        cells = " | ".join(f"{c[g]:.2f}" for g in CPU_GROUPS + ("rest of the machine",))
        busy = f"{c['machine busy']:.2f} of {c['cores']:.1f}"
        return f"| {s['shards']} | {s['offered']} | {busy} | {cells} |"

    def add_tables(self, rows, cpu_rows):
        head = ("| shards | offered /s | put /s | acknowledged /s (sp / lw) | max iterator age ms "
                "(sp / lw) | iterator age growth ms/s (sp / lw) | backlog at producer end "
                "(sp / lw) | drain s (sp / lw) | freshness "
                "p50 / p95 s (probes) | stream-processor ms p50 / p95 (invocations, records each) "
                "| lake-writer ms p50 / p95 (invocations, records each) | trips served right "
                "| sustained |\n"
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
        groups = CPU_GROUPS + ("rest of the machine",)
        cpu_head = ("| shards | offered /s | machine busy (cores) | " + " | ".join(groups) + " |\n"
                    "| --- | --- | --- | " + " | ".join("---" for _ in groups) + " |\n")
        path = self.bench.out / "sustained_ingest.json"
        doc = json.loads(path.read_text())
        doc["tables"] = [head + "\n".join(rows),
                         "CPU per part of the stack during each step (cores, i.e. CPU seconds "
                         "per second, from the producer's start to the end of the drain):\n\n"
                         + cpu_head + "\n".join(cpu_rows)]
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def saturation_notes(self):
        """Where each shard count stopped, with the CPU figures that say why."""
        out = []
        for shards, entry in self.results.items():
            sat = next((s for s in entry["steps"] if not s["sustained"]), None)
            if sat is None:
                out.append(f"{shards} shards: every step up to {entry['steps'][-1]['offered']} "
                           f"readings/s was sustained.")
                continue
            c = sat["cpu_cores"]
            top = max((g for g in CPU_GROUPS), key=lambda g: c[g])
            out.append(
                f"{shards} shards, where it saturates: at {sat['offered']} readings/s offered, "
                f"{sat['why']} ({sat['put_rate']:.0f}/s, against {entry['put_baseline']['rate']:.0f}/s "
                f"into an empty stream with no consumer); the consumers drained within "
                f"{fmt(sat['drain_s']['stream-processor'], 1)} s (stream-processor) and "
                f"{fmt(sat['drain_s']['lake-writer'], 1)} s (lake-writer) of the producer's end. "
                f"Busiest process group: {top}, {c[top]:.2f} cores (LocalStack's Kinesis is one "
                f"Node.js event loop: about one core at most); machine busy {c['machine busy']:.2f} "
                f"of {c['cores']:.0f} cores, {c['rest of the machine']:.2f} of them other work.")
        return out

    def notes(self):
        b = self.bench
        n = [
            f"Per shard count ({', '.join(map(str, SHARDS))}) and offered load step "
            f"({', '.join(map(str, self.steps))} readings/s, {self.load_s} s each): a fresh "
            f"LocalStack stream and a fresh runner (stream-processor, lake-writer, query-api; "
            f"template defaults: KinesisBatchSize 500, SpeedBatchingWindowSeconds 1, "
            f"KinesisBatchingWindowSeconds 5); the simulator sends in real time, one reading per "
            f"vehicle per second (vehicles = offered load), PutRecords of up to 500. Steps stop "
            f"at the first that is not sustained.",
            f"Sustained = LocalStack took the readings in real time (the producer ended at most "
            f"{PRODUCER_SLACK_S:g} s late) and both consumers acknowledged every record within "
            f"{DRAIN_OK_S:g} s of the producer's end. acknowledged /s = records a consumer's "
            f"mapping acknowledged ÷ the time from the producer's start to its last "
            f"acknowledgement (a lower bound: the span includes one batching window; sp = "
            f"stream-processor, lw = lake-writer); iterator age = the "
            f"runner's lag_ms (age of the oldest record read and not yet acknowledged), largest "
            f"shard, sampled every 0.5 s; its growth = least-squares slope while the producer ran "
            f"(0: keeping up; lake-writer's saw-tooth of its 5 s window makes it noisy); backlog = "
            f"records sent but not acknowledged when the producer ended.",
            "Freshness = as in the freshness section, during the load: one probe reading of a new "
            "VIN per PutRecords call into the same stream, then GET /v1/vehicles/{vin}/trips?date=D "
            "(runner's API Gateway → query-api → Data API emulator) every 50 ms until its trip "
            f"shows; {PROBERS} probes in flight at a time, each 0–0.5 s after the previous one "
            f"of its thread. Baseline: the same probes on the first step's runner before its "
            f"load ({self.idle_s} s, no other records). A probe not visible within "
            f"{VISIBLE_DEADLINE_S:g} s counts as missing. Trips served right: 5 of the step's "
            f"simulated trips read back through GET /v1/vehicles/{{vin}}/trips after the drain, "
            f"readings equal to the simulator's ground truth.",
            "Invocation durations: batch_duration_ms of each function's own `batch summary` log "
            "line (stream-processor: classification, the Data API statements and their waits; "
            "lake-writer: Parquet encoding and the S3 PUTs), for the load's invocations only (the "
            "warm-up probe and the unloaded probes left out): the handler time Lambda bills, less "
            "the event's JSON/base64 decoding (see the hot-path section). GB-s per million "
            "readings = Σ duration × MemorySize ÷ readings, over the sustained steps.",
            "LocalStack PutRecords alone: the simulator as fast as it goes into a fresh stream with "
            "no consumer. LocalStack's Kinesis (kinesis-local on Node.js, persisting its whole "
            "state every 5 s) slows down as a stream fills, hence a fresh stream per step.",
            f"Machine: {os.cpu_count()} cores shared by LocalStack, PostgreSQL, the Data API "
            f"emulator, the runner, the function processes, the simulator and this script — and, "
            f"during this run, by other work on the machine (Rust builds and tests; the CPU table's "
            f"last column, load average {self.load_before} at the start of the section and "
            f"{self.load_after} at its end). Absolute rates are this machine's and the "
            f"emulator's, not Redshift's or Kinesis': the Data API emulator answers a statement "
            f"in milliseconds where Redshift Serverless takes hundreds; the baselines (LocalStack "
            f"alone, unloaded freshness) are measured in the same run.",
        ]
        n += self.saturation_notes()
        for shards, entry in self.results.items():
            errs = [f"{s['offered']}/s: {s['prober_error'] or ''} {s['monitor_error'] or ''}".strip()
                    for s in entry["steps"] if s["prober_error"] or s["monitor_error"]]
            if errs:
                n.append(f"{shards} shards, errors seen while measuring: " + "; ".join(errs))
        if b.quick:
            n.append("BENCH_QUICK=1: smoke sizes (two small steps).")
        return n


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def fmt(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def sustained_ingest(bench, http_cls, metric):
    """The section: `http_cls` and `metric` are stack_bench's Http and metric."""
    SustainedIngest(bench, http_cls, metric).run()
