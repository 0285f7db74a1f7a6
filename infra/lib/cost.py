#!/usr/bin/env python3
"""Monthly AWS cost of a Fleetline deployment, from published prices and a stated model.

  python3 infra/lib/cost.py --batch-size 2000    the README table (100 / 10,000 / 100,000 vehicles)
  python3 infra/lib/cost.py --vehicles 500 --speed-window 300 --stream-mode PROVISIONED --shards 1
  python3 infra/lib/cost.py --markdown           the table as Markdown
  python3 infra/lib/cost.py --batch-size 2000 --per-million   cost per million readings (Markdown)
  python3 infra/lib/cost.py --capacity           readings/s the speed path carries per account
  python3 infra/lib/cost.py --bench-json DIR     both as BENCHMARKS.md sections (benches/run)

Standard library only. Every price is a us-east-1 on-demand list price as of PRICES_DATE
(the pages in PRICE_SOURCES render their rate tables dynamically; the Redshift Serverless
RPU-hour and the Lambda request price were read in transcripts of those pages, the others are
the published list prices: re-check them there); the free tiers are ignored. The model (one reading per vehicle per
second, 730 hours a month) and every assumption are the keyword arguments of `estimate`;
README "Deploy to AWS → Cost" explains them. The speed path's ceiling (`speed_path_capacity`)
comes from the published quotas in DATA_API_QUOTAS and the calls stream-processor makes per
invocation; docs/design.md §8 explains it.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

HOURS_PER_MONTH = 730
SPEED_PATHS = ("lambda", "streaming-ingestion")
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GIB = 1024**3
PRICES_DATE = "2026-12-07"

# us-east-1 list prices (USD). See PRICE_SOURCES for where each was read.
PRICES = {
    "kinesis_stream_hour": 0.04,  # on-demand, per stream-hour
    "kinesis_ingest_gb": 0.08,  # on-demand, per GB in (records rounded up to 1 KB)
    "kinesis_retrieval_gb": 0.04,  # on-demand, per GB read (standard consumers)
    "kinesis_shard_hour": 0.015,  # provisioned, per shard-hour
    "kinesis_put_unit_million": 0.014,  # provisioned, per million 25 KB PUT payload units
    "lambda_request_million": 0.20,
    "lambda_arm_gb_second": 0.0000133334,  # arm64 (the template's default Architecture)
    "s3_put_thousand": 0.005,  # S3 Standard PUT/COPY/POST/LIST per 1,000
    "s3_gb_month": 0.023,  # S3 Standard, first 50 TB
    "redshift_rpu_hour": 0.375,  # Redshift Serverless compute
    "redshift_rms_gb_month": 0.024,  # Redshift managed storage
    "logs_ingest_gb": 0.50,  # CloudWatch Logs standard ingestion
    "logs_gb_month": 0.03,  # CloudWatch Logs storage
    "sqs_request_million": 0.40,  # SQS standard queue requests
}
PRICE_SOURCES = {
    "kinesis": "https://aws.amazon.com/kinesis/data-streams/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "s3": "https://aws.amazon.com/s3/pricing/",
    "redshift": "https://aws.amazon.com/redshift/pricing/",
    "cloudwatch": "https://aws.amazon.com/cloudwatch/pricing/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
}


@dataclass
class Estimate:
    vehicles: int
    lines: dict[str, float]  # component -> USD per month
    facts: dict[str, float]  # intermediate quantities (for the README and the tests)

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def on_demand_shards(records_per_s: float, bytes_per_s: float) -> int:
    # An on-demand stream starts at 4 MB/s / 4,000 records/s write (4 shards' worth) and adds
    # shards of 1 MB/s / 1,000 records/s each as traffic grows.
    return max(4, math.ceil(records_per_s / 1000), math.ceil(bytes_per_s / 1024**2))


def invocations_per_s(shards: int, records_per_shard_s: float, batch_size: int, window_s: float, duration_s: float) -> float:
    """Kinesis ESM invocations per second: per shard one at a time; a batch is cut when it is
    full (batch_size) or the batching window has passed, and no sooner than the previous
    invocation ended (duration)."""
    per_shard = max(1 / max(window_s, duration_s, 1e-9), records_per_shard_s / batch_size)
    # Never more invocations than records (an idle stream invokes nothing).
    return shards * min(per_shard, 1 / duration_s, records_per_shard_s)


def estimate(
    vehicles: int,
    *,
    reading_bytes: int = 420,  # a full simulator reading (docs/contracts.md fields), JSON
    stream_mode: str = "ON_DEMAND",
    shards: int | None = None,  # PROVISIONED only (ShardCount)
    batch_size: int = 500,  # KinesisBatchSize
    speed_window_s: float = 1,  # SpeedBatchingWindowSeconds (stream-processor)
    lake_window_s: float = 5,  # KinesisBatchingWindowSeconds (lake-writer)
    speed_duration_s: float = 1.0,  # stream-processor: Data API ExecuteStatement + polling
    lake_duration_s: float = 0.5,  # lake-writer: Parquet encode + S3 PUT
    speed_memory_gb: float = 0.25,  # Globals MemorySize 256
    lake_memory_gb: float = 0.5,  # lake-writer MemorySize 512
    refreshes_per_hour: float = 4,  # ViewRefreshSchedule rate(15 minutes)
    batch_minutes_per_day: float = 10,  # batch-views, daily
    rpu: float = 8,  # ServingBaseCapacity (RPUs while active)
    parquet_bytes_per_reading: int = 200,  # lake object size per reading (raw JSON column)
    speed_days_kept: int = 3,  # speed.telemetry keeps days >= boundary - 2
    rms_bytes_per_reading: int = 40,  # compressed columnar row in Redshift
    log_bytes_per_invocation: int = 1000,  # Lambda platform lines + JSON log lines
    speed_path: str = "lambda",  # SpeedPath: lambda | streaming-ingestion
    loads_per_hour: float = 60,  # streaming-ingestion: view-refresher schedule (rate(1 minute))
    load_duration_s: float = 5.0,  # streaming-ingestion: REFRESH + load transaction + MV refresh
    refresher_memory_gb: float = 0.25,  # view-refresher (Globals MemorySize 256)
    stream_mv_bytes_per_reading: int = 900,  # streaming MV row: kinesis_data + SUPER payload + metadata
    # Days of raw rows the streaming MV holds: each load deletes the rows it loaded, so ~0.
    stream_mv_days_kept: float = 0,
    prices: dict[str, float] = PRICES,
) -> Estimate:
    if speed_path not in SPEED_PATHS:
        raise ValueError(f"speed_path must be one of {SPEED_PATHS}, not {speed_path!r}")
    streaming = speed_path == "streaming-ingestion"
    p = prices
    rec_s = float(vehicles)  # one reading per vehicle per second
    records = rec_s * SECONDS_PER_MONTH
    if stream_mode == "ON_DEMAND":
        n_shards = on_demand_shards(rec_s, rec_s * reading_bytes)
        billed_kib = math.ceil(reading_bytes / 1024)  # each record rounded up to 1 KB
        kinesis = (
            HOURS_PER_MONTH * p["kinesis_stream_hour"]
            + records * billed_kib * 1024 / GIB * p["kinesis_ingest_gb"]
            # two standard consumers (stream-processor, lake-writer) read every record
            + 2 * records * reading_bytes / GIB * p["kinesis_retrieval_gb"]
        )
    else:
        n_shards = shards or max(1, math.ceil(rec_s / 1000), math.ceil(rec_s * reading_bytes / 1024**2))
        put_units = records * math.ceil(reading_bytes / (25 * 1024))
        kinesis = n_shards * HOURS_PER_MONTH * p["kinesis_shard_hour"] + put_units / 1e6 * p["kinesis_put_unit_million"]
    per_shard = rec_s / n_shards

    # Streaming ingestion: Redshift reads the stream itself (a standard consumer in place of
    # stream-processor, so the retrieval line above is unchanged) and view-refresher loads it
    # on its schedule; no stream-processor invocations.
    sp_inv_s = 0.0 if streaming else invocations_per_s(n_shards, per_shard, batch_size, speed_window_s, speed_duration_s)
    lw_inv_s = invocations_per_s(n_shards, per_shard, batch_size, lake_window_s, lake_duration_s)
    load_inv_s = loads_per_hour / 3600 if streaming else 0.0
    invocations = (sp_inv_s + lw_inv_s + load_inv_s) * SECONDS_PER_MONTH
    gb_s = (
        sp_inv_s * speed_duration_s * speed_memory_gb
        + lw_inv_s * lake_duration_s * lake_memory_gb
        + load_inv_s * load_duration_s * refresher_memory_gb
    ) * SECONDS_PER_MONTH
    lam = invocations / 1e6 * p["lambda_request_million"] + gb_s * p["lambda_arm_gb_second"]

    # One lake object per (event day, shard, lake-writer batch): one PUT per invocation.
    s3_puts = lw_inv_s * SECONDS_PER_MONTH
    lake_gb = records * parquet_bytes_per_reading / GIB
    s3 = s3_puts / 1000 * p["s3_put_thousand"] + lake_gb * p["s3_gb_month"]
    # Each lake object sends one S3 event to the lake-changes queue; batch-views receives and
    # deletes them in batches of 10: about 1.2 requests per object.
    sqs = s3_puts * 1.2 / 1e6 * p["sqs_request_million"]

    # Redshift Serverless bills RPU-seconds while statements run, at least 60 s each time it
    # becomes active. Upper bound: every stream-processor statement, refresh and batch run
    # starts its own 60 s (no overlap), capped at the whole hour.
    # In streaming mode each scheduled load replaces a refresh (same function, same schedule).
    if streaming:
        activation_s = max(60.0, load_duration_s) * loads_per_hour
    else:
        activation_s = (sp_inv_s * 3600 + refreshes_per_hour) * 60
    busy = min(1.0, activation_s / 3600 + batch_minutes_per_day / (24 * 60))
    rpu_hours = rpu * busy * HOURS_PER_MONTH
    rms_gb = rec_s * 86400 * speed_days_kept * rms_bytes_per_reading / GIB
    if streaming:
        rms_gb += rec_s * 86400 * stream_mv_days_kept * stream_mv_bytes_per_reading / GIB
    redshift = rpu_hours * p["redshift_rpu_hour"] + rms_gb * p["redshift_rms_gb_month"]

    log_gb = invocations * log_bytes_per_invocation / GIB
    logs = log_gb * p["logs_ingest_gb"] + log_gb * p["logs_gb_month"]  # 30-day retention ≈ one month stored

    return Estimate(
        vehicles,
        {
            "Kinesis": kinesis,
            "Lambda": lam,
            "S3 lake": s3,
            "SQS lake changes": sqs,
            "Redshift Serverless": redshift,
            "CloudWatch Logs": logs,
        },
        {
            "shards": n_shards,
            "invocations_per_month": invocations,
            "gb_seconds": gb_s,
            "s3_puts": s3_puts,
            "lake_gb": lake_gb,
            "busy_fraction": busy,
            "rpu_hours": rpu_hours,
            "log_gb": log_gb,
            # One invocation at a time per shard: a consumer keeps up only if a full batch
            # per invocation duration covers the shard's rate.
            "speed_keeps_up": 1.0 if streaming else float(batch_size / speed_duration_s >= per_shard),
        },
    )


def table(estimates: list[Estimate], markdown: bool) -> str:
    comps = list(estimates[0].lines)
    head = ["vehicles (1 reading/s)"] + [f"{e.vehicles:,}" for e in estimates]
    rows = [[c] + [f"${e.lines[c]:,.0f}" for e in estimates] for c in comps]
    rows.append(["**total / month**" if markdown else "total / month"] + [f"${e.total:,.0f}" for e in estimates])
    rows.append(["Redshift busy (upper bound)"] + [f"{e.facts['busy_fraction']:.0%}" for e in estimates])
    if markdown:
        return markdown_table(head, rows)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [head, *rows])


# --- the speed path's ceiling -------------------------------------------------------------

# Redshift Data API quotas, per account and Region (requests per second unless stated). See
# QUOTA_SOURCES and the evidence table in docs/aws-audit.md for what was read where.
DATA_API_QUOTAS = {
    "batch_execute_tps": 20,  # BatchExecuteStatement
    "execute_tps": 30,  # ExecuteStatement (not used by stream-processor)
    "describe_tps": 100,  # DescribeStatement
    "get_result_tps": 20,  # GetStatementResult (not used by stream-processor)
    "active_statements": 200,  # SUBMITTED + STARTED statements per cluster
}
QUOTA_SOURCES = {
    "data_api": "https://docs.aws.amazon.com/redshift/latest/mgmt/amazon-redshift-limits.html",
    "lambda_kinesis": "https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html",
    "kinesis": "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html",
}
SHARD_RECORDS_PER_S = 1000  # Kinesis write limit per shard (1 MB/s or 1,000 records/s)
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # a Kinesis batch is cut at 6 MB
# Bytes of Lambda event per reading (base64 payload + record envelope): the benches'
# kinesis-10000.json holds 10,000 simulator readings in about 11 MB.
EVENT_BYTES_PER_RECORD = 1100
# The statement limits stream-processor's SQL plan follows (functions/aws/src/warehouse/sql.rs,
# functions/stream-processor/src/redshift/sql.rs): 100 KB statements, 40 per
# BatchExecuteStatement, of which 4 are fixed (LOCK, CREATE TEMP TABLE, the merge, DROP).
MAX_STATEMENT_BYTES = 100_000
VALUES_STATEMENTS_PER_TRANSACTION = 40 - 4
# One `(…)` VALUES row (`row_literal` in the same file): 212 bytes for its doc example with a
# 56-digit sequence number, a little more for longer odometers and speeds.
ROW_LITERAL_BYTES = 215
# The Data API adapter (functions/aws/src/warehouse/data_api.rs) sends BatchExecuteStatement
# and DescribeStatement with WaitTimeSeconds, at most 30 s (the API's maximum): each call
# answers when the statement ends or the wait is over.
MAX_WAIT_S = 30
LOCK_LIMIT = "one writer at a time (LOCK speed.telemetry)"


def describe_polls(statement_s: float, wait_s: float = MAX_WAIT_S) -> int:
    """DescribeStatement calls for a transaction that runs `statement_s`: BatchExecuteStatement
    waits up to `wait_s`, then one DescribeStatement reads the row counts (or waits on), and one
    more per further `wait_s`."""
    return max(1, math.ceil(statement_s / wait_s - 1e-9))


def transactions_for(records: int, row_bytes: int = ROW_LITERAL_BYTES) -> int:
    """BatchExecuteStatement calls stream-processor makes for `records` valid readings."""
    if records <= 0:
        return 0
    rows_per_statement = MAX_STATEMENT_BYTES // (row_bytes + 1)  # rows joined by ","
    statements = math.ceil(records / rows_per_statement)
    return math.ceil(statements / VALUES_STATEMENTS_PER_TRANSACTION)


@dataclass
class Capacity:
    window_s: float
    batch_size: int
    records_per_invocation: int  # from a shard written at its limit
    calls: dict[str, int]  # Data API calls per invocation
    ceilings: dict[str, float]  # readings/s one account carries, per limit

    @property
    def binding(self) -> tuple[str, float]:
        return min(self.ceilings.items(), key=lambda kv: kv[1])

    @property
    def binding_quota(self) -> tuple[str, float]:
        """The first published quota reached (the lock is the design's, not a quota)."""
        return min(((k, v) for k, v in self.ceilings.items() if k != LOCK_LIMIT), key=lambda kv: kv[1])


def speed_path_capacity(
    window_s: float,
    *,
    batch_size: int = 500,  # KinesisBatchSize
    statement_s: float = 1.0,  # one BatchExecuteStatement transaction on Redshift (assumed)
    quotas: dict[str, float] = DATA_API_QUOTAS,
    event_bytes_per_record: int = EVENT_BYTES_PER_RECORD,
    describe_calls: int | None = None,  # per transaction; default: describe_polls(statement_s)
) -> Capacity:
    """Readings/s the stream-processor path carries in one account, per limit.

    A busy shard (1,000 records/s) hands each invocation the records of one batching window
    (or of the previous invocation, which waits `statement_s` for its statement), up to the
    batch size and the 6 MB payload. Each invocation makes one BatchExecuteStatement per
    transaction, waiting for it (WaitTimeSeconds), and DescribeStatement for its row counts
    (describe_polls); no GetStatementResult. The account-wide request quotas then cap
    invocations/s, hence readings/s. Every transaction
    starts with `LOCK speed.telemetry`, so transactions run one at a time: while they queue,
    invocations wait and the next batches grow, up to the batch size, so that limit is
    `full batch / statement_s` whatever the window.
    """
    full_batch = min(batch_size, LAMBDA_PAYLOAD_BYTES // event_bytes_per_record)
    n = min(full_batch, int(SHARD_RECORDS_PER_S * max(window_s, statement_s)))
    tx = transactions_for(n)
    polls = describe_calls if describe_calls is not None else describe_polls(statement_s)
    calls = {"BatchExecuteStatement": tx, "DescribeStatement": tx * polls, "GetStatementResult": 0}
    ceilings = {
        "BatchExecuteStatement requests/s": quotas["batch_execute_tps"] / tx * n,
        "DescribeStatement requests/s": quotas["describe_tps"] / calls["DescribeStatement"] * n,
        "active statements": quotas["active_statements"] / (tx * statement_s) * n,
        LOCK_LIMIT: full_batch / (transactions_for(full_batch) * statement_s),
    }
    return Capacity(window_s, batch_size, n, calls, ceilings)


def capacity_table(caps: list[Capacity]) -> str:
    head = ["limit"] + [f"window {c.window_s:g} s, batch {c.batch_size:,}" for c in caps]
    rows = [["records per invocation (busy shard)"] + [f"{c.records_per_invocation:,}" for c in caps]]
    rows.append(["Data API calls per invocation"] + [" + ".join(f"{v} {k}" for k, v in c.calls.items() if v) for c in caps])
    rows += [[name] + [f"{c.ceilings[name]:,.0f} readings/s" for c in caps] for name in caps[0].ceilings]
    rows.append(["first quota reached"] + [f"{c.binding_quota[0]}: {c.binding_quota[1]:,.0f} readings/s" for c in caps])
    rows.append(["**binds first**"] + [f"{c.binding[0]}: {c.binding[1]:,.0f} readings/s" for c in caps])
    return markdown_table(head, rows)


# --- cost per million readings ------------------------------------------------------------


def per_million(e: Estimate) -> dict[str, float]:
    """Each component's monthly cost per million readings (one reading per vehicle per second)."""
    millions = e.vehicles * SECONDS_PER_MONTH / 1e6
    return {c: v / millions for c, v in e.lines.items()} if millions else {}


def per_million_table(estimates: list[Estimate]) -> str:
    estimates = [e for e in estimates if e.vehicles]  # no readings, no rate
    if not estimates:
        return "no readings: no cost per million readings"
    per = [per_million(e) for e in estimates]
    head = ["USD per million readings"] + [f"{e.vehicles:,} vehicles" for e in estimates]
    rows = [[c] + [f"${p[c]:,.4f}" for p in per] for c in estimates[0].lines]
    rows.append(["**total**"] + [f"**${sum(p.values()):,.4f}**" for p in per])
    for label, fact in (("Lambda GB-s", "gb_seconds"), ("S3 PUTs", "s3_puts"), ("Redshift RPU-hours", "rpu_hours")):
        per_m = [e.facts[fact] / (e.vehicles * SECONDS_PER_MONTH / 1e6) for e in estimates]
        rows.append([f"{label} per million readings"] + [f"{v:,.0f}" if v >= 100 else f"{v:.2f}" for v in per_m])
    return markdown_table(head, rows)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


# Batching windows and batch sizes the capacity table compares: the template's defaults
# (SpeedBatchingWindowSeconds 1, KinesisBatchSize 500), the README's 2,000, the maximum 10,000.
CAPACITY_CASES = [(1, 500), (5, 500), (1, 2000), (5, 2000), (1, 10_000), (5, 10_000)]
SOURCES_NOTE = (
    f"us-east-1 list prices as of {PRICES_DATE}; free tiers ignored; model and assumptions: infra/lib/cost.py"
)


def default_rpu(vehicles: int) -> float:
    """RPUs while active: ServingBaseCapacity (8), or the 16-RPU cap assumed at 100,000 vehicles."""
    return 16 if vehicles >= 100_000 else 8


def estimates_from(a: argparse.Namespace) -> list[Estimate]:
    return [
        estimate(
            v,
            stream_mode=a.stream_mode,
            shards=a.shards,
            speed_window_s=a.speed_window,
            batch_size=a.batch_size,
            refreshes_per_hour=a.refreshes_per_hour,
            speed_path=a.speed_path,
            loads_per_hour=a.loads_per_hour,
            rpu=a.rpu if a.rpu else default_rpu(v),
        )
        for v in a.vehicles
    ]


def capacities(statement_s: float = 1.0) -> list[Capacity]:
    return [speed_path_capacity(w, batch_size=b, statement_s=statement_s) for w, b in CAPACITY_CASES]


def metric(name: str, value: float, unit: str, detail: str) -> dict:
    return {"name": name, "value": round(value, 4), "unit": unit, "target": None, "met": None,
            "baseline": None, "ratio": None, "detail": detail}


def cost_section(ests: list[Estimate], batch_size: int) -> dict:
    metrics = [
        metric(f"total, {e.vehicles:,} vehicles", sum(per_million(e).values()), "USD per million readings",
               f"${e.total:,.0f} a month for {e.vehicles * SECONDS_PER_MONTH / 1e6:,g} million readings")
        for e in ests if e.vehicles
    ]
    return {
        "section": "cost_per_million",
        "title": "Cost per million readings",
        "command": f"python3 infra/lib/cost.py --batch-size {batch_size} --per-million",
        "notes": [
            "From published us-east-1 list prices, not measured on AWS: the monthly estimate of the README's Cost "
            "table divided by the readings of a month (one reading per vehicle per second, 730 h).",
            "Lambda GB-s use an assumed billed duration (stream-processor 1 s at 256 MB, almost all of it waiting "
            "for its Data API statement; lake-writer 0.5 s at 512 MB): no benchmark here measures billed duration on "
            "AWS, and the local stack's emulator does not have Redshift's statement latency. The sustained-ingest "
            "section measures them locally (stream-processor p95 about 0.1 s, lake-writer about 0.03 s): the "
            "lake-writer figure supports the assumption as an upper bound; stream-processor's leaves out Redshift's "
            "statement time, which only a deploy can measure.",
            f"KinesisBatchSize {batch_size}; Redshift Serverless 8 RPU (16 at 100,000 vehicles), busy all month "
            "because stream-processor commits every second; " + SOURCES_NOTE + ".",
        ],
        "metrics": metrics,
        "tables": [
            per_million_table(ests),
            "Both speed paths (`python3 infra/lib/cost.py --compare --batch-size "
            f"{batch_size}`; README \"Which speed path\"):\n\n"
            + comparison_table(path_comparison(COMPARE_VEHICLES, batch_size)),
        ],
    }


def capacity_section(caps: list[Capacity]) -> dict:
    metrics = [
        metric(f"window {c.window_s:g} s, KinesisBatchSize {c.batch_size:,}", int(c.binding[1]), "readings/s",
               f"binds: {c.binding[0]}; first quota: {c.binding_quota[0]} at {c.binding_quota[1]:,.0f}/s")
        for c in caps
    ]
    return {
        "section": "speed_path_capacity",
        "title": "Speed path capacity from published quotas",
        "command": "python3 infra/lib/cost.py --capacity",
        "notes": [
            "Readings/s one account's stream-processor path carries, computed from the Redshift Data API quotas "
            "(BatchExecuteStatement 20/s, DescribeStatement 100/s, 200 active statements) and the calls one "
            "invocation makes (BatchExecuteStatement and DescribeStatement with WaitTimeSeconds), for a transaction "
            "that runs 1 s on Redshift (assumed).",
            "Every transaction takes `LOCK speed.telemetry`, so transactions run one at a time: that binds before "
            "any quota. Other functions (query-api, view-refresher, batch-views) share the same account quotas.",
            "Derivation: docs/design.md §8.",
        ],
        "metrics": metrics,
        "tables": [capacity_table(caps)],
    }


# --- which speed path when ---------------------------------------------------------------

COMPARE_VEHICLES = [100, 500, 1_000, 5_000, 10_000, 100_000]


def path_comparison(vehicles: list[int], batch_size: int = 500, speed_window_s: float = 1,
                    statement_s: float = 1.0) -> list[dict]:
    """Per fleet size: the monthly cost of each speed path and whether the Lambda path carries
    the load at all (its ceiling from `speed_path_capacity`). Streaming ingestion is priced at
    two view-refresher schedules, rate(1 minute) and rate(5 minutes)."""
    ceiling = speed_path_capacity(speed_window_s, batch_size=batch_size, statement_s=statement_s).binding[1]
    rows = []
    for v in vehicles:
        rpu = default_rpu(v)
        lam = estimate(v, batch_size=batch_size, speed_window_s=speed_window_s, rpu=rpu)
        s1 = estimate(v, speed_path="streaming-ingestion", loads_per_hour=60, batch_size=batch_size, rpu=rpu)
        s5 = estimate(v, speed_path="streaming-ingestion", loads_per_hour=12, batch_size=batch_size, rpu=rpu)
        rows.append({"vehicles": v, "lambda": lam, "streaming_1min": s1, "streaming_5min": s5,
                     "lambda_carries": v <= ceiling, "lambda_ceiling": ceiling})
    return rows


def comparison_table(rows: list[dict]) -> str:
    def cell(e: Estimate) -> str:
        per = sum(per_million(e).values()) if e.vehicles else 0.0
        return f"${e.total:,.0f} (${per:,.3f}/M)"

    head = ["vehicles (1 reading/s)", "lambda: $/month ($/M readings)", "lambda carries it?",
            "streaming, rate(1 minute)", "streaming, rate(5 minutes)"]
    body = [[f"{r['vehicles']:,}", cell(r["lambda"]),
             "yes" if r["lambda_carries"] else f"no (ceiling ≈ {r['lambda_ceiling']:,.0f} readings/s)",
             cell(r["streaming_1min"]), cell(r["streaming_5min"])] for r in rows]
    return markdown_table(head, body)


def write_bench_json(out_dir: str, ests: list[Estimate], batch_size: int) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for doc in (cost_section(ests, batch_size), capacity_section(capacities())):
        (out / f"{doc['section']}.json").write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {out / (doc['section'] + '.json')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vehicles", type=int, nargs="*", default=[100, 10_000, 100_000])
    ap.add_argument("--stream-mode", choices=["ON_DEMAND", "PROVISIONED"], default="ON_DEMAND")
    ap.add_argument("--shards", type=int, help="PROVISIONED: ShardCount")
    ap.add_argument("--speed-window", type=float, default=1, help="SpeedBatchingWindowSeconds")
    ap.add_argument("--batch-size", type=int, default=500, help="KinesisBatchSize")
    ap.add_argument("--refreshes-per-hour", type=float, default=4, help="from ViewRefreshSchedule")
    ap.add_argument("--rpu", type=float, help="RPUs while active (default: 8; 16 from 100,000 vehicles)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--per-million", action="store_true", help="cost per million readings (Markdown)")
    ap.add_argument("--capacity", action="store_true", help="readings/s the speed path carries (Markdown)")
    ap.add_argument("--speed-path", choices=SPEED_PATHS, default="lambda", help="SpeedPath of the estimate")
    ap.add_argument("--loads-per-hour", type=float, default=60,
                    help="streaming-ingestion: view-refresher runs per hour (rate(1 minute) = 60)")
    ap.add_argument("--compare", action="store_true", help="both speed paths side by side (Markdown)")
    ap.add_argument("--statement-seconds", type=float, default=1.0,
                    help="--capacity: how long one stream-processor transaction runs on Redshift (assumed 1)")
    ap.add_argument("--bench-json", metavar="DIR", help="write DIR/cost_per_million.json and DIR/speed_path_capacity.json")
    a = ap.parse_args(argv)
    if a.capacity:
        print(capacity_table(capacities(a.statement_seconds)))
        return 0
    if a.compare:
        print(comparison_table(path_comparison(COMPARE_VEHICLES, a.batch_size, a.speed_window, a.statement_seconds)))
        print(f"\n{SOURCES_NOTE}")
        return 0
    ests = estimates_from(a)
    if a.bench_json:
        write_bench_json(a.bench_json, ests, a.batch_size)
        return 0
    if a.per_million:
        print(per_million_table(ests))
        print(f"\n{SOURCES_NOTE}")
        return 0
    print(table(ests, a.markdown))
    for e in ests:
        if not e.facts["speed_keeps_up"]:
            print(
                f"note: at {e.vehicles:,} vehicles one stream-processor batch of {a.batch_size} per ~1 s invocation is less than a "
                f"shard's {e.vehicles / e.facts['shards']:,.0f} records/s: raise KinesisBatchSize (up to 10000)"
            )
    print(f"\n{SOURCES_NOTE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
