#!/usr/bin/env python3
"""After a deploy: send readings for a fresh test VIN, wait, check the REST answers.

Run through `infra/smoke` (which picks a Python with boto3). Two ways to name the target:

  infra/smoke --stack fleetline [--region us-east-1]
      reads the stack's outputs (ApiUrl, StreamName, ApiKeyId → the key's value) and its
      RapidAccelThreshold / ApiAuth parameters;
  infra/smoke --api-url URL --stream NAME [--api-key KEY] [--rapid-threshold 10.0]
      explicit (e.g. the local runner: --api-url http://127.0.0.1:3000/).

What it sends: one trip of --readings readings (default 30, one per second, ending now) for a
random VIN, plus one exact duplicate, through Kinesis PutRecords (partition key = VIN), in
the shape of docs/contracts.md. What it expects is computed here from what it sent, with the
rules of README "Why the numbers are exact" and functions/query-api/README.md
(independently of functions/core):
  readings            distinct (VIN, timestamp) pairs, per (trip, UTC day)
  avg_speed_kmh       sum(speed) / readings, in milli-km/h rounded half away from zero
  miles_exact         (max odometer - min odometer) km x 0.621371, 9 decimals
  rapid_accelerations readings with acceleration >= threshold (km/h per s)
It polls GET /v1/vehicles/{vin}/trips?date=D until every reading is visible (or --timeout),
then checks trips, /v1/vehicles/{vin}/miles?year=Y and
/v1/vehicles/rapid-accelerations?vin=V&year=Y.

Exit status: 0 every answer matched; 1 an answer differed; 2 usage or stack problem (missing
output, no credentials); 3 the readings did not all become visible within --timeout;
4 sending to Kinesis failed.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_TIMEOUT, EXIT_SEND = 0, 1, 2, 3, 4

MILES_PER_KM = Decimal("0.621371")
# VIN characters (ISO 3779 excludes I, O, Q; the validator accepts [A-Z0-9]).
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
# Accelerations (km/h per s) placed at fixed positions of the trip, so that the count of
# rapid accelerations depends on the threshold: 12.5 is rapid at the default 10.0 but not at
# 20.0; 25.0 at both. The other readings get |a| <= 3.
MARKED_ACCELERATIONS = {3: Decimal("12.5000"), 7: Decimal("25.0000")}


class SmokeError(Exception):
    """A problem that is not a wrong answer (usage, stack, network); carries an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------
# Test data and the expected answers


@dataclass(frozen=True)
class Reading:
    vin: str
    trip_id: str
    ts: datetime  # UTC, whole seconds
    speed: Decimal  # km/h, 3 decimals
    acceleration: Decimal  # km/h per s, 4 decimals
    odometer: Decimal  # km, 3 decimals

    def payload(self) -> bytes:
        # float() of a short decimal reprs back to the same digits, so the JSON number text
        # is exactly the decimal (the validator reads the number's text).
        return json.dumps(
            {
                "VIN": self.vin,
                "trip_id": self.trip_id,
                "timestamp": self.ts.strftime("%Y-%m-%d %H:%M:%S.000"),
                "vehicleSpeed": float(self.speed),
                "acceleration": float(self.acceleration),
                "odometer": float(self.odometer),
                "_id_": "fleetline-smoke",
            },
            separators=(",", ":"),
        ).encode()


def random_vin(rng: random.Random) -> str:
    # "SMK" marks test vehicles in the data.
    return "SMK" + "".join(rng.choice(VIN_CHARS) for _ in range(14))


def make_readings(rng: random.Random, count: int, end: datetime, vin: str | None = None) -> list[Reading]:
    """One trip of `count` readings, one per second, the last at `end` (whole seconds)."""
    vin = vin or random_vin(rng)
    trip_id = "smoke-" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))
    end = end.astimezone(timezone.utc).replace(microsecond=0)
    odometer_m = rng.randint(1_000_000, 90_000_000)
    out = []
    for i in range(count):
        speed_milli = rng.randint(20_000, 120_000)
        accel = MARKED_ACCELERATIONS.get(i)
        if accel is None:
            accel = Decimal(rng.randint(-30_000, 30_000)) / 10_000
        odometer_m += rng.randint(5, 35)
        out.append(
            Reading(
                vin=vin,
                trip_id=trip_id,
                ts=end - timedelta(seconds=count - 1 - i),
                speed=Decimal(speed_milli) / 1000,
                acceleration=accel,
                odometer=Decimal(odometer_m) / 1000,
            )
        )
    return out


def threshold_e4(kmh_per_s: Decimal) -> int:
    """The threshold in ten-thousandths, rounded half away from zero (it is > 0)."""
    return int((kmh_per_s * 10_000).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass
class TripExpectation:
    trip_id: str
    day: str
    readings: int
    avg_speed_kmh: Decimal
    miles_exact: Decimal
    rapid_accelerations: int


@dataclass
class Expected:
    vin: str
    trips: dict[str, list[TripExpectation]] = field(default_factory=dict)  # day -> trips
    miles_by_year: dict[int, Decimal] = field(default_factory=dict)
    rapid_by_year: dict[int, int] = field(default_factory=dict)

    def total_readings(self) -> int:
        return sum(t.readings for trips in self.trips.values() for t in trips)


def expected_answers(readings: list[Reading], rapid_threshold: Decimal) -> Expected:
    """What the API must answer for these readings (duplicates by (VIN, ts) count once)."""
    if not readings:
        raise ValueError("no readings")
    vin = readings[0].vin
    distinct: dict[tuple[str, datetime], Reading] = {}
    for r in readings:
        distinct.setdefault((r.vin, r.ts), r)
    limit = threshold_e4(rapid_threshold)
    groups: dict[tuple[str, str], list[Reading]] = {}
    for r in distinct.values():
        groups.setdefault((r.ts.date().isoformat(), r.trip_id), []).append(r)
    exp = Expected(vin=vin)
    for (day, trip_id), rs in sorted(groups.items()):
        n = len(rs)
        sum_milli = sum(int(r.speed * 1000) for r in rs)
        # Average in milli-km/h, half away from zero (speeds are >= 0).
        avg_milli = (2 * sum_milli + n) // (2 * n)
        miles = ((max(r.odometer for r in rs) - min(r.odometer for r in rs)) * MILES_PER_KM).quantize(
            Decimal("0.000000001")
        )
        rapid = sum(1 for r in rs if int(r.acceleration * 10_000) >= limit)
        exp.trips.setdefault(day, []).append(
            TripExpectation(trip_id, day, n, (Decimal(avg_milli) / 1000).quantize(Decimal("0.001")), miles, rapid)
        )
        year = int(day[:4])
        exp.miles_by_year[year] = exp.miles_by_year.get(year, Decimal(0)) + miles
        exp.rapid_by_year[year] = exp.rapid_by_year.get(year, 0) + rapid
    return exp


# ---------------------------------------------------------------------------------------
# Comparing answers (pure: the REST bodies in, a list of check results out)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _num(v) -> Decimal | None:
    if v is None:
        return None
    return Decimal(str(v))


def compare_trips(exp_trips: list[TripExpectation], body: dict) -> list[Check]:
    day = exp_trips[0].day
    rows = {row.get("trip_id"): row for row in body.get("data") or []}
    checks = []
    for t in exp_trips:
        row = rows.get(t.trip_id)
        name = f"trips {day} {t.trip_id}"
        if row is None:
            checks.append(Check(name, False, f"trip missing; answer: {json.dumps(body)[:300]}"))
            continue
        got = {
            "readings": row.get("readings"),
            "avg_speed_kmh": _num(row.get("avg_speed_kmh")),
            "miles_exact": _num(row.get("miles_exact")),
            "rapid_accelerations": row.get("rapid_accelerations"),
        }
        want = {
            "readings": t.readings,
            "avg_speed_kmh": t.avg_speed_kmh,
            "miles_exact": t.miles_exact,
            "rapid_accelerations": t.rapid_accelerations,
        }
        bad = [f"{k}: expected {want[k]}, got {got[k]}" for k in want if got[k] != want[k]]
        checks.append(Check(name, not bad, "; ".join(bad) or _fmt(want)))
    extra = set(rows) - {t.trip_id for t in exp_trips}
    if extra:
        checks.append(Check(f"trips {day}", False, f"unexpected trips {sorted(map(str, extra))}"))
    return checks


def compare_miles(vin: str, year: int, want: Decimal, body: dict) -> Check:
    rows = [r for r in body.get("data") or [] if r.get("year") == year]
    got = _num(rows[0].get("miles_exact")) if len(rows) == 1 else None
    return Check(f"miles {vin} {year}", got == want, f"expected {want}, got {got if rows else body}")


def compare_rapid(vin: str, year: int, want: int, body: dict) -> Check:
    rows = [r for r in body.get("data") or [] if r.get("vin") == vin and r.get("year") == year]
    got = rows[0].get("rapid_accelerations") if len(rows) == 1 else None
    return Check(f"rapid accelerations {vin} {year}", got == want, f"expected {want}, got {got if rows else body}")


def _fmt(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items())


# ---------------------------------------------------------------------------------------
# AWS and HTTP


@dataclass
class Target:
    api_url: str  # ends with '/'
    stream: str
    api_key: str | None
    rapid_threshold: Decimal
    sign_region: str | None = None  # SigV4-sign requests (ApiAuth=AWS_IAM)


def resolve_stack(cfn, apigw, stack: str) -> Target:
    """Target from a deployed stack's outputs and parameters."""
    try:
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as e:  # botocore ClientError, NoCredentialsError, ...
        raise SmokeError(f"describe-stacks {stack}: {e}") from e
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs") or []}
    params = {p["ParameterKey"]: p.get("ParameterValue") for p in desc.get("Parameters") or []}
    missing = [k for k in ("ApiUrl", "StreamName") if not outputs.get(k)]
    if missing:
        raise SmokeError(f"stack {stack} has no output {', '.join(missing)} (is the deploy complete?)")
    key = None
    if outputs.get("ApiKeyId"):
        try:
            key = apigw.get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)["value"]
        except Exception as e:
            raise SmokeError(f"apigateway get-api-key {outputs['ApiKeyId']}: {e}") from e
    url = outputs["ApiUrl"]
    return Target(
        api_url=url if url.endswith("/") else url + "/",
        stream=outputs["StreamName"],
        api_key=key,
        rapid_threshold=Decimal(params.get("RapidAccelThreshold") or "10.0"),
        sign_region=cfn.meta.region_name if params.get("ApiAuth") == "AWS_IAM" else None,
    )


def put_readings(kinesis, stream: str, readings: list[Reading], attempts: int = 10) -> int:
    """PutRecords (partition key = VIN), resending only failed entries. Returns records put."""
    pending = [r.payload() for r in readings]
    key = readings[0].vin
    put = 0
    for attempt in range(attempts):
        try:
            out = kinesis.put_records(
                StreamName=stream, Records=[{"Data": d, "PartitionKey": key} for d in pending]
            )
        except Exception as e:
            raise SmokeError(f"kinesis put-records to {stream}: {e}", EXIT_SEND) from e
        failed = [d for d, res in zip(pending, out["Records"]) if res.get("ErrorCode")]
        put += len(pending) - len(failed)
        if not failed:
            return put
        pending = failed
        time.sleep(min(0.2 * 2**attempt, 5))
    raise SmokeError(f"kinesis put-records: {len(pending)} records still failing after {attempts} attempts", EXIT_SEND)


def http_get(target: Target, path: str, session=None) -> tuple[int, dict]:
    url = target.api_url + path
    headers = {"accept": "application/json"}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    if target.sign_region and session is not None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        req = AWSRequest(method="GET", url=url, headers=headers)
        SigV4Auth(session.get_credentials(), "execute-api", target.sign_region).add_auth(req)
        headers = dict(req.headers.items())
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        raise SmokeError(f"GET {url}: {e}") from e
    try:
        return status, json.loads(text, parse_float=Decimal)
    except ValueError:
        return status, {"_raw": text[:300]}


# ---------------------------------------------------------------------------------------
# The run


def wait_visible(get: Callable[[str], tuple[int, dict]], exp: Expected, timeout: float, say, poll: float = 2.0) -> bool:
    """Polls the trips of every day until all readings are visible; False on timeout."""
    want = exp.total_readings()
    start = time.monotonic()
    last = None
    while True:
        seen = 0
        for day, trips in exp.trips.items():
            status, body = get(f"v1/vehicles/{exp.vin}/trips?date={day}")
            if status == 403:
                raise SmokeError(
                    "403 from the API: wrong or missing API key (pass --api-key, or --stack to read it)"
                )
            if status >= 500 or status == 429:
                # Transient on AWS (a resuming workgroup, throttling): keep polling until --timeout.
                say(f"GET trips: HTTP {status} {json.dumps(body, default=str)[:200]} (retrying)")
                continue
            if status != 200:
                raise SmokeError(f"GET trips: HTTP {status} {json.dumps(body, default=str)[:300]}")
            ids = {t.trip_id for t in trips}
            seen += sum(int(r.get("readings") or 0) for r in body.get("data") or [] if r.get("trip_id") in ids)
        elapsed = time.monotonic() - start
        if seen != last:
            say(f"waiting: {seen}/{want} readings visible ({elapsed:.0f} s)")
            last = seen
        if seen >= want:
            return True
        if elapsed >= timeout:
            say(f"gave up after {elapsed:.0f} s: {seen}/{want} readings visible")
            return False
        time.sleep(poll)


def run(target: Target, kinesis, readings: list[Reading], timeout: float, say, session=None) -> int:
    exp = expected_answers(readings, target.rapid_threshold)
    # One exact duplicate (a producer retry): it must count once.
    sent = readings + [readings[len(readings) // 2]]
    say(
        f"sending {len(sent)} records ({len(readings)} readings + 1 duplicate) for VIN {exp.vin} "
        f"to stream {target.stream}; API {target.api_url}; rapid threshold {target.rapid_threshold}"
    )
    put_readings(kinesis, target.stream, sent)

    def get(path: str):
        return http_get(target, path, session)

    if not wait_visible(get, exp, timeout, say):
        return EXIT_TIMEOUT
    checks: list[Check] = []
    for day, trips in exp.trips.items():
        status, body = get(f"v1/vehicles/{exp.vin}/trips?date={day}")
        checks += compare_trips(trips, body) if status == 200 else [Check(f"trips {day}", False, f"HTTP {status}")]
    for year, miles in exp.miles_by_year.items():
        status, body = get(f"v1/vehicles/{exp.vin}/miles?year={year}")
        checks.append(compare_miles(exp.vin, year, miles, body) if status == 200 else Check("miles", False, f"HTTP {status}"))
    for year, rapid in exp.rapid_by_year.items():
        q = urllib.parse.urlencode({"vin": exp.vin, "year": year})
        status, body = get(f"v1/vehicles/rapid-accelerations?{q}")
        checks.append(
            compare_rapid(exp.vin, year, rapid, body) if status == 200 else Check("rapid accelerations", False, f"HTTP {status}")
        )
    for c in checks:
        say(f"[{' OK ' if c.ok else 'FAIL'}] {c.name}: {c.detail}")
    failed = [c for c in checks if not c.ok]
    say("smoke: all answers match what was sent" if not failed else f"smoke: {len(failed)} of {len(checks)} checks failed")
    return EXIT_OK if not failed else EXIT_MISMATCH


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="infra/smoke", description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", help="read ApiUrl, StreamName, ApiKeyId and parameters from this stack")
    p.add_argument("--region", help="AWS region (default: the SDK's: AWS_REGION, profile)")
    p.add_argument("--api-url", help="base URL of the API (instead of --stack)")
    p.add_argument("--stream", help="Kinesis stream name (instead of --stack)")
    p.add_argument("--api-key", help="x-api-key value (with --api-url; --stack reads it)")
    p.add_argument("--rapid-threshold", type=Decimal, help="km/h per s (default: the stack's RapidAccelThreshold, else 10.0)")
    p.add_argument("--readings", type=int, default=30, help="readings in the test trip (10..500, default 30)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the readings to show (default 300)")
    p.add_argument("--seed", type=int, help="random seed of the measurements (the VIN is always fresh)")
    a = p.parse_args(argv)
    if bool(a.stack) == bool(a.api_url or a.stream):
        p.error("give either --stack NAME, or --api-url URL and --stream NAME")
    if not a.stack and not (a.api_url and a.stream):
        p.error("--api-url and --stream go together")
    if not 10 <= a.readings <= 500:
        p.error("--readings must be 10..500 (one PutRecords call; the marked accelerations need 8+)")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)

    def say(msg: str) -> None:
        print(msg, flush=True)

    try:
        import boto3

        session = boto3.session.Session(region_name=a.region)
        if a.stack:
            target = resolve_stack(session.client("cloudformation"), session.client("apigateway"), a.stack)
        else:
            url = a.api_url if a.api_url.endswith("/") else a.api_url + "/"
            target = Target(url, a.stream, a.api_key, Decimal("10.0"))
        if a.rapid_threshold is not None:
            target.rapid_threshold = a.rapid_threshold
        rng = random.Random(a.seed)
        # The VIN is always fresh (--seed only fixes the measurements): a VIN seen before would
        # add its earlier readings to the answers.
        vin = random_vin(random.SystemRandom())
        readings = make_readings(rng, a.readings, datetime.now(timezone.utc) - timedelta(seconds=5), vin)
        return run(target, session.client("kinesis"), readings, a.timeout, say, session)
    except SmokeError as e:
        print(f"smoke: {e}", file=sys.stderr)
        return e.code
    except Exception as e:  # credentials, region, endpoint: say what, not a traceback
        name = type(e).__name__
        if name in ("NoCredentialsError", "NoRegionError", "PartialCredentialsError"):
            print(f"smoke: {e} (configure credentials/region: aws configure, or AWS_PROFILE/AWS_REGION)", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
