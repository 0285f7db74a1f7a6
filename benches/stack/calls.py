"""Data API calls per 1,000 readings (the `data_api_calls` section of benches/stack/run).

Per case (the template's defaults, then SpeedBatchingWindowSeconds=5): a fresh 2-shard
stream and a fresh runner with stream-processor only, so nothing else calls the Data API on
the run's database; a steady real-time simulator load; once every record is acknowledged,
the difference of the emulator's call counters for the database (`GET /_fleetline/calls`,
per database and operation) per 1,000 readings and per stream-processor invocation (the
invocations are its `batch summary` log lines). Stdlib only; the Bench object
(stack_bench.py) provides runners and resources, ingest.py the simulator and the log lines.
"""

import json
import sys
import time
import urllib.request
from pathlib import Path

from ingest import batch_summaries, drop_stream, run_simulator
from stack_run import BenchError, log, rnd
from stack_run import percentile as pct

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "lib"))
import cost  # noqa: E402  (infra/lib/cost.py: the published-quota capacity model)

SECTION = "data_api_calls"
TITLE = "Data API calls per 1,000 readings (stream-processor, counted by the emulator)"
FUNCTION = "stream-processor"
SHARDS = 2
KINESIS_BATCH_SIZE = 500  # template.yaml KinesisBatchSize default (not overridden here)
# (label, SpeedBatchingWindowSeconds, parameter overrides)
CASES = (("window 1 s (template default)", 1, ()),
         ("window 5 s", 5, ("SpeedBatchingWindowSeconds=5",)))
RATE = {"full": 300, "quick": 100}  # readings/s: vehicles at one reading a second
LOAD_S = {"full": 20, "quick": 8}
DRAIN_TIMEOUT_S = 60
OPERATIONS = ("ExecuteStatement", "BatchExecuteStatement", "DescribeStatement",
              "GetStatementResult")
MAX_CALLS_PER_INVOCATION = 3  # docs/design.md §8, as tests/tests/data_api_calls.rs checks
SEED = 23


def counters(bench):
    """The emulator's call counts for the run's database, by operation."""
    url = bench.data_api_url.rstrip("/") + "/_fleetline/calls"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            doc = json.loads(resp.read())
    except (OSError, ValueError) as e:
        raise BenchError(f"GET {url}: {e}") from e
    return doc.get("by_database", {}).get(bench.database, {})


def difference(after, before):
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0) > 0}


class DataApiCalls:
    def __init__(self, bench, metric):
        self.bench = bench
        self.metric = metric
        mode = "quick" if bench.quick else "full"
        self.rate = RATE[mode]
        self.load_s = LOAD_S[mode]
        self.results = []

    def case(self, label, window_s, overrides, seed):
        """One load on a fresh stream and runner: the calls it caused, and its invocations."""
        b = self.bench
        tag = f"calls-w{window_s}"
        stream = b.add_stream(f"fleetline-{b.id}-{tag}", SHARDS)
        runner = b.runner(tag, stream, overrides=overrides, functions=[FUNCTION])
        logfile = runner.dir / "logs" / f"{FUNCTION}.log"
        skip = len(batch_summaries(logfile))
        before = counters(b)
        sent, wall, _ = run_simulator(b, stream, self.rate, self.load_s, seed, True, tag)
        t_end = time.monotonic()
        runner.wait_for(lambda s: runner.acked(s).get(FUNCTION, 0) >= sent, DRAIN_TIMEOUT_S,
                        f"{FUNCTION} acknowledged all {sent} readings")
        drain_s = time.monotonic() - t_end
        made = difference(counters(b), before)
        runner.stop()  # its log is complete once the function processes have ended
        summaries = batch_summaries(logfile, skip)
        drop_stream(b, stream)
        if not summaries:
            raise BenchError(f"no `batch summary` lines in {logfile}")
        res = {"label": label, "window_s": window_s, "sent": sent, "producer_s": wall,
               "drain_s": drain_s, "calls": made,
               "records_in": [s.get("records_in", 0) for s in summaries],
               # readings an invocation sent to the warehouse (valid ones, duplicates too)
               "valid": [s.get("records_in", 0) - s.get("records_rejected", 0) for s in summaries],
               "outcomes": sorted({s.get("outcome", "?") for s in summaries})}
        log(f"  {label}: {sent} readings in {wall:.1f} s, drained {drain_s:.1f} s later; "
            f"{len(summaries)} invocations; calls {made}")
        return res

    def run(self):
        log(f"Data API calls: {self.rate} readings/s for {self.load_s} s at {SHARDS} shards, "
            f"{FUNCTION} only, windows {', '.join(str(c[1]) for c in CASES)} s")
        for i, (label, window_s, overrides) in enumerate(CASES):
            self.results.append(self.case(label, window_s, overrides, SEED + i))
        self.bench.write(SECTION, TITLE, self.notes(), self.metrics(), tables=[self.table()])

    # --- figures ---

    @staticmethod
    def figures(r):
        invocations = len(r["records_in"])
        total = sum(r["calls"].values())
        return {
            "invocations": invocations,
            "total": total,
            "per_1000": {op: n * 1000 / r["sent"] for op, n in r["calls"].items()},
            "per_invocation": total / invocations,
            "median": exact_median(r, invocations, total),
            "mean_records": sum(r["records_in"]) / invocations,
            "median_records": pct(r["records_in"], 50),
        }

    def metrics(self):
        metric = self.metric
        out = []
        for r in self.results:
            f = self.figures(r)
            name = r["label"]
            which = "mean" if f["median"] is None else "median"
            value = f["per_invocation"] if f["median"] is None else f["median"]
            out.append(metric(f"{name}: calls per {FUNCTION} invocation ({which})", rnd(value, 2),
                              "calls", target=f"<= {MAX_CALLS_PER_INVOCATION}",
                              met=value <= MAX_CALLS_PER_INVOCATION))
            out[-1]["detail"] = (f"{f['total']} calls over {f['invocations']} invocations, mean "
                                 f"{f['per_invocation']:.2f}; how the {which} is had: see the notes")
            out.append(metric(f"{name}: Data API calls per 1,000 readings, all operations",
                              rnd(f["total"] * 1000 / r["sent"], 1), "calls"))
            for op in OPERATIONS:
                out.append(metric(f"{name}: {op} per 1,000 readings",
                                  rnd(f["per_1000"].get(op, 0.0), 1), "calls"))
            out.append(metric(f"{name}: readings per invocation (mean)", rnd(f["mean_records"], 1),
                              "readings"))
            out[-1]["detail"] = (f"median {f['median_records']:.0f}, {f['invocations']} "
                                 f"invocations, {r['sent']} readings")
        return out

    def table(self):
        others = sorted({op for r in self.results for op in r["calls"]} - set(OPERATIONS))
        ops = list(OPERATIONS) + others
        head = ("| case | readings | invocations | " + " | ".join(ops)
                + " | all calls | per 1,000 readings | per invocation (mean) |\n"
                + "| --- " * (len(ops) + 6) + "|\n")
        rows = []
        for r in self.results:
            f = self.figures(r)
            cells = " | ".join(str(r["calls"].get(op, 0)) for op in ops)
            rows.append(f"| {r['label']} | {r['sent']:,} | "
                        f"{f['invocations']} | {cells} | {f['total']} | "
                        f"{f['total'] * 1000 / r['sent']:.1f} | {f['per_invocation']:.2f} |")
        return "Calls counted by the emulator during each load (raw counts):\n\n" + head + "\n".join(rows)

    def capacity_note(self):
        """What the measured calls mean for the published-quota ceiling, through cost.py's
        model (the section "Speed path capacity from published quotas"), not a copy of it."""
        measured, implied = [], []
        for r in self.results:
            inv = len(r["records_in"])
            bes = r["calls"].get("BatchExecuteStatement", 0)
            desc = r["calls"].get("DescribeStatement", 0)
            extra = {op: n for op, n in r["calls"].items()
                     if op not in ("BatchExecuteStatement", "DescribeStatement")}
            measured.append(
                f"window {r['window_s']} s: {bes / inv:.2f} BatchExecuteStatement + "
                f"{desc / inv:.2f} DescribeStatement per invocation"
                + (f" and {extra}, which the model does not count" if extra else ""))
            polls = max(1, round(desc / bes)) if bes else 1
            cap = cost.speed_path_capacity(r["window_s"], batch_size=KINESIS_BATCH_SIZE,
                                           describe_calls=polls)
            (quota, quota_rs), (binds, binds_rs) = cap.binding_quota, cap.binding
            implied.append(f"window {r['window_s']} s: {binds} binds first at {binds_rs:,.0f} "
                           f"readings/s, the first quota reached is {quota} at "
                           f"{quota_rs:,.0f} readings/s")
        return ("Published-quota capacity these calls imply: measured " + "; ".join(measured)
                + ". The model of the section \"Speed path capacity from published quotas\" "
                "(`python3 infra/lib/cost.py --capacity`, busy shards, 1 s transactions), fed "
                "the measured DescribeStatement per transaction, gives at KinesisBatchSize "
                f"{KINESIS_BATCH_SIZE}: " + "; ".join(implied) + ".")

    def per_reading_note(self):
        return ("Calls per 1,000 readings = calls per invocation × 1,000 ÷ readings per "
                "invocation, so they fall as batches grow (a busier shard, a longer window): "
                f"here each shard carried {self.rate // SHARDS} readings/s and the median "
                f"invocation had " + ", ".join(
                    f"{self.figures(r)['median_records']:.0f} readings (window {r['window_s']} s)"
                    for r in self.results)
                + f", against a batch size of {KINESIS_BATCH_SIZE}.")

    def median_cases(self):
        exact = [r["label"] for r in self.results if self.figures(r)["median"] is not None]
        if len(exact) == len(self.results):
            return "so in every case here"
        return "here: " + (", ".join(exact) if exact else "in no case")

    def notes(self):
        r0 = self.results[0]
        return [
            f"Per case: a fresh {SHARDS}-shard LocalStack stream and a fresh runner with "
            f"{FUNCTION} only (no query-api, lake-writer or view-refresher: no other caller uses "
            f"the run's database), KinesisBatchSize {KINESIS_BATCH_SIZE}; SpeedBatchingWindowSeconds "
            f"{' then '.join(str(c[1]) for c in CASES)} (the template's default, then "
            f"`--parameter-override SpeedBatchingWindowSeconds=5`). The simulator sends "
            f"{self.rate} readings/s in real time ({self.rate} vehicles, one reading a second, "
            f"no duplicates or malformed readings) for {self.load_s} s "
            f"({r0['sent']:,} readings in the first case).",
            "Calls = the Data API emulator's counters for the run's database "
            "(`GET /_fleetline/calls`, every request counted under its operation, throttled and "
            "failed ones included), read after the runner was ready and again once the mapping "
            "had acknowledged every reading; the difference per 1,000 readings sent.",
            f"Invocations = {FUNCTION}'s `batch summary` log lines during the load "
            f"(outcomes: {', '.join(sorted({o for r in self.results for o in r['outcomes']}))}). "
            "Calls per invocation: the log line carries no call count and the counters are per "
            "database, not per invocation, while the two shards' invocations overlap, so no "
            "invocation is counted alone (tests/tests/data_api_calls.rs counts them one at a "
            "time). Every transaction is one BatchExecuteStatement and at least one "
            "DescribeStatement (functions/aws/src/warehouse/data_api.rs), and every invocation "
            "with a valid reading sends at least one transaction: when every invocation had one "
            "and the calls were exactly one of each per invocation, each invocation made exactly "
            "2 and the median is 2 (" + self.median_cases() + "); otherwise the figure is the "
            "mean.",
            self.per_reading_note(),
            self.capacity_note(),
            "The emulator answers a statement in milliseconds, so BatchExecuteStatement's "
            "WaitTimeSeconds returns with the statement finished; on Redshift a transaction "
            "that runs longer than the wait adds DescribeStatement calls (the model's "
            "describe_polls).",
        ]


def exact_median(r, invocations, total):
    """The per-invocation median when the totals pin every invocation down: each one sent a
    valid reading (so at least one BatchExecuteStatement and one DescribeStatement) and the
    calls are exactly that many; None otherwise."""
    floor = {"BatchExecuteStatement": invocations, "DescribeStatement": invocations}
    if all(v > 0 for v in r["valid"]) and r["calls"] == floor:
        return total / invocations
    return None


def data_api_calls(bench, metric):
    """The section: `metric` is stack_bench's metric."""
    DataApiCalls(bench, metric).run()
