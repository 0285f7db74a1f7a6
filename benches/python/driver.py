#!/usr/bin/env python3
"""Times the Python BASELINE handler (handler.py) on a Kinesis event file, as the Lambda
Python runtime would run it: json.loads of the invocation bytes, then the handler.

  driver.py --event kinesis-10000.json [--meta kinesis-10000.meta.json] [--repeat 15]
            [--out python.json]

Also times a bare parse in Python (json.loads of the event, base64 + json.loads of every
record) for reference. Prints and optionally writes JSON: best and median seconds per
batch over --repeat runs, records/s from the median, and whether the handler's counts
equal the simulator's labels in the .meta.json (stored = valid unique readings, rejected
= malformed, duplicates). Stdlib only.
"""

import argparse
import base64
import datetime as dt
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import handler  # noqa: E402


def run_handler(raw, now):
    event = json.loads(raw)
    s3, data_api = handler.RecordingS3(), handler.RecordingDataApi()
    result = handler.lambda_handler(event, None, s3, data_api, now=now)
    return result["counts"], s3, data_api


def bare_parse(raw):
    event = json.loads(raw)
    n = 0
    for r in event["Records"]:
        try:
            json.loads(base64.b64decode(r["kinesis"]["data"]))
            n += 1
        except ValueError:
            pass
    return n


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--event", required=True)
    p.add_argument("--meta")
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--out")
    args = p.parse_args()

    raw = Path(args.event).read_bytes()
    meta = json.loads(Path(args.meta).read_text()) if args.meta else {}
    now = (dt.datetime.fromisoformat(meta["now"]) if "now" in meta
           else dt.datetime.now(dt.timezone.utc))

    counts, s3, data_api = run_handler(raw, now)  # warm-up, and the counts to check
    records = counts["records_in"]
    checks = {}
    if meta:
        checks = {
            "records": (counts["records_in"], meta["records"]),
            "stored": (counts["stored"], meta["valid_unique"]),
            "rejected": (counts["rejected"], meta["malformed"]),
            "duplicates": (counts["duplicates"], meta["duplicates"]),
        }
    mismatches = {k: v for k, v in checks.items() if v[0] != v[1]}

    handler_times = timed(lambda: run_handler(raw, now), args.repeat)
    bare_times = timed(lambda: bare_parse(raw), args.repeat)
    med_h, med_b = statistics.median(handler_times), statistics.median(bare_times)
    out = {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "event": str(args.event),
        "event_bytes": len(raw),
        "records": records,
        "repeat": args.repeat,
        "handler_median_s": med_h,
        "handler_best_s": min(handler_times),
        "handler_records_per_s": records / med_h,
        "bare_parse_median_s": med_b,
        "bare_parse_records_per_s": records / med_b,
        "counts": counts,
        "sql_statements": data_api.statements,
        "sql_bytes": data_api.bytes,
        "dead_letters": s3.objects,
        "counts_match_simulator": (not mismatches) if meta else None,
        "mismatches": {k: {"handler": a, "simulator": b} for k, (a, b) in mismatches.items()},
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
