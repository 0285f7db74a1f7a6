#!/usr/bin/env python3
"""Monthly AWS cost of a Fleetline deployment, from published prices and a stated model.

  python3 infra/lib/cost.py --batch-size 2000    the README table (100 / 10,000 / 100,000 vehicles)
  python3 infra/lib/cost.py --vehicles 500 --speed-window 300 --stream-mode PROVISIONED --shards 1
  python3 infra/lib/cost.py --markdown           the table as Markdown

Standard library only. Every price is a us-east-1 on-demand list price as of PRICES_DATE
(the pages in PRICE_SOURCES render their rate tables dynamically; the Redshift Serverless
RPU-hour and the Lambda request price were read in transcripts of those pages, the others are
the published list prices: re-check them there); the free tiers are ignored. The model (one reading per vehicle per
second, 730 hours a month) and every assumption are the keyword arguments of `estimate`;
README "Deploy to AWS → Cost" explains them.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

HOURS_PER_MONTH = 730
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
    prices: dict[str, float] = PRICES,
) -> Estimate:
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

    sp_inv_s = invocations_per_s(n_shards, per_shard, batch_size, speed_window_s, speed_duration_s)
    lw_inv_s = invocations_per_s(n_shards, per_shard, batch_size, lake_window_s, lake_duration_s)
    invocations = (sp_inv_s + lw_inv_s) * SECONDS_PER_MONTH
    gb_s = (sp_inv_s * speed_duration_s * speed_memory_gb + lw_inv_s * lake_duration_s * lake_memory_gb) * SECONDS_PER_MONTH
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
    activations_per_hour = sp_inv_s * 3600 + refreshes_per_hour
    busy = min(1.0, activations_per_hour * 60 / 3600 + batch_minutes_per_day / (24 * 60))
    rpu_hours = rpu * busy * HOURS_PER_MONTH
    rms_gb = rec_s * 86400 * speed_days_kept * rms_bytes_per_reading / GIB
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
            "speed_keeps_up": float(batch_size / speed_duration_s >= per_shard),
        },
    )


def table(estimates: list[Estimate], markdown: bool) -> str:
    comps = list(estimates[0].lines)
    head = ["vehicles (1 reading/s)"] + [f"{e.vehicles:,}" for e in estimates]
    rows = [[c] + [f"${e.lines[c]:,.0f}" for e in estimates] for c in comps]
    rows.append(["**total / month**" if markdown else "total / month"] + [f"${e.total:,.0f}" for e in estimates])
    rows.append(["Redshift busy (upper bound)"] + [f"{e.facts['busy_fraction']:.0%}" for e in estimates])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [head, *rows])


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
    a = ap.parse_args(argv)
    ests = [
        estimate(
            v,
            stream_mode=a.stream_mode,
            shards=a.shards,
            speed_window_s=a.speed_window,
            batch_size=a.batch_size,
            refreshes_per_hour=a.refreshes_per_hour,
            rpu=a.rpu if a.rpu else (16 if v >= 100_000 else 8),
        )
        for v in a.vehicles
    ]
    print(table(ests, a.markdown))
    for e in ests:
        if not e.facts["speed_keeps_up"]:
            print(
                f"note: at {e.vehicles:,} vehicles one stream-processor batch of {a.batch_size} per ~1 s invocation is less than a "
                f"shard's {e.vehicles / e.facts['shards']:,.0f} records/s: raise KinesisBatchSize (up to 10000)"
            )
    print(f"\nus-east-1 list prices as of {PRICES_DATE}; free tiers ignored; model and assumptions: infra/lib/cost.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
